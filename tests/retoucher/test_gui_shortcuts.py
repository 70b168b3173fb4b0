"""Help > Keyboard Shortcuts lists every shortcut, read from the window's actions (also those
added at run time) and the canvas's own keys from the table the canvas uses."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtTest import QTest

from retoucher.document import Document
from retoucher.qt.canvas_keys import COMPARE_KEY, PAN_KEY, canvas_controls, key_text
from retoucher.qt.shortcuts_dialog import CANVAS_GROUP, OTHER_GROUP, ShortcutsDialog, action_label, key_name


@pytest.fixture
def window(shown_window):
    return shown_window(Document(np.zeros((40, 60, 3), np.uint8)))


def _native(seq: QKeySequence) -> str:
    return seq.toString(QKeySequence.SequenceFormat.NativeText)


def _open(w) -> ShortcutsDialog:
    w.shortcuts_action.trigger()
    dlg = next(d for d in w.findChildren(ShortcutsDialog) if d.isVisible())
    assert not dlg.isModal()  # a reference to keep open beside the photo
    return dlg


def test_every_action_with_a_shortcut_is_listed_with_all_its_keys(window):
    w = window
    dlg = _open(w)
    rows = dlg.rows()
    listed = {(what, keys) for _group, what, keys in rows}
    actions = [a for a in w.findChildren(QAction) if a.shortcuts()]
    assert len(actions) >= 20  # File, Edit, View, Tools and Help all have some
    for a in actions:
        keys = [_native(s) for s in a.shortcuts()]
        row = next((k for what, k in listed if what == action_label(a.text())), None)
        assert row is not None, f"{a.text()!r} is missing"
        items = row.split(", ")
        assert all(k in items or f"{k} key" in items for k in keys), (a.text(), keys, row)
    # Grouped by the menu they are in; a standard key lists every binding (Zoom In: Ctrl++ and Ctrl+=).
    groups = {what: group for group, what, _keys in rows}
    assert groups["Save As"] == "File" and groups["Fill"] == "Edit" and groups["Brush"] == "Tools"
    assert groups["Keyboard Shortcuts"] == "Help"
    zoom_in = next(k for _g, what, k in rows if what == "Zoom In").split(", ")
    assert len(zoom_in) == len({_native(s) for s in w.zoom_in_action.shortcuts()}) >= 2
    assert _native(QKeySequence("Ctrl+=")) in zoom_in
    # A key only some keyboards have is named as a key (the Open key), not as a bare word.
    assert key_name(QKeySequence(Qt.Key.Key_Open)) == f"{_native(QKeySequence(Qt.Key.Key_Open))} key"
    assert key_name(QKeySequence("Ctrl+O")) == _native(QKeySequence("Ctrl+O"))
    dlg.close()


def test_an_action_added_at_run_time_is_listed_where_it_is(window):
    w = window
    extra = QAction("&Frobnicate\u2026", w)
    extra.setShortcuts([QKeySequence("Ctrl+Alt+F"), QKeySequence("F9")])
    w.addAction(extra)  # in no menu: a window shortcut
    in_menu = QAction("Sharpen", w)
    in_menu.setShortcut(QKeySequence("Ctrl+Alt+S"))
    view_menu = next(a.menu() for a in w.menuBar().actions() if a.text() == "&View")
    view_menu.addAction(in_menu)
    on_canvas = QAction("Peek", w.canvas)
    on_canvas.setShortcut(QKeySequence("Alt+P"))
    w.canvas.addAction(on_canvas)  # a widget's own shortcut
    w.zoom_out_action.setShortcut(QKeySequence("Ctrl+Alt+Z"))  # rebound
    rows = _open(w).rows()
    assert (OTHER_GROUP, "Frobnicate", f"{_native(QKeySequence('Ctrl+Alt+F'))}, F9") in rows
    assert ("View", "Sharpen", _native(QKeySequence("Ctrl+Alt+S"))) in rows
    assert ("View", "Zoom Out", _native(QKeySequence("Ctrl+Alt+Z"))) in rows
    assert (OTHER_GROUP, "Peek", _native(QKeySequence("Alt+P"))) in rows


def test_the_canvas_keys_come_from_the_table_the_canvas_uses(window):
    w = window
    dlg = _open(w)
    canvas_rows = [(what, keys) for group, what, keys in dlg.rows() if group == CANVAS_GROUP]
    assert canvas_rows == canvas_controls(wheel_zooms=False)
    keys = " ".join(k for _w, k in canvas_rows)
    assert f"Hold {key_text(PAN_KEY)}" in keys and f"Hold {key_text(COMPARE_KEY)}" in keys
    assert ("Scroll up and down", "Wheel") in canvas_rows
    # The canvas acts on those very keys.
    w.canvas.setFocus()
    QTest.keyPress(w.canvas, COMPARE_KEY)
    assert w.canvas.comparing
    QTest.keyRelease(w.canvas, COMPARE_KEY)
    assert not w.canvas.comparing
    # With the wheel-zoom preference the list says what the wheel does then.
    dlg.close()
    w.canvas.set_wheel_zooms(True)
    rows = _open(w).rows()
    assert (CANVAS_GROUP, "Zoom about the pointer", "Wheel") in rows


def test_the_filter_hides_rows_that_do_not_match(window):
    dlg = _open(window)
    dlg.filter.setText("zoom")
    shown = dlg.rows(visible_only=True)
    assert shown and all("zoom" in f"{what} {keys}".lower() for _g, what, keys in shown)
    assert any(what == "Zoom In" for _g, what, _k in shown)
    dlg.filter.setText("")
    assert dlg.rows(visible_only=True) == dlg.rows()


def test_the_shortcut_opens_the_dialog(window, qtbot):
    w = window
    assert (
        w.shortcuts_action in next(a.menu() for a in w.menuBar().actions() if a.text() == "&Help").actions()
    )
    QTest.keySequence(w, w.shortcuts_action.shortcut())
    qtbot.waitUntil(lambda: any(d.isVisible() for d in w.findChildren(ShortcutsDialog)), timeout=3000)
    first = next(d for d in w.findChildren(ShortcutsDialog) if d.isVisible())
    w.shortcuts_action.trigger()  # again: a fresh list replaces the open one
    shown = [d for d in w.findChildren(ShortcutsDialog) if d.isVisible()]
    assert len(shown) == 1 and shown[0] is not first


def test_a_standard_key_s_extra_binding_never_takes_a_key_another_action_names(shown_window, monkeypatch):
    """In the X11, KDE and GNOME key schemes Delete (Clear Mask) is also Ctrl+D, which Find
    Damage names: Qt ran neither ("Ambiguous shortcut overload") and Ctrl+D did nothing on a
    Linux desktop. (Offscreen Qt takes the Windows scheme: that desktop's bindings are given
    here as Qt gives them there.)"""
    import retoucher.qt.actions as actions

    real = actions.key_sequences

    def x11(keys):
        listed = keys if isinstance(keys, list) else [keys]
        if QKeySequence.StandardKey.Delete in listed:
            return [QKeySequence("Del"), QKeySequence("Ctrl+D")]
        return real(keys)

    monkeypatch.setattr(actions, "key_sequences", x11)
    w = shown_window(Document(np.zeros((40, 60, 3), np.uint8)))
    taken: dict[str, list[str]] = {}
    for a in w.findChildren(QAction):
        for s in a.shortcuts():
            taken.setdefault(s.toString(QKeySequence.SequenceFormat.PortableText), []).append(a.text())
    assert taken["Ctrl+D"] == [w.damage.action.text()]
    assert [s.toString() for s in w.clear_mask_action.shortcuts()] == ["Del"]
    assert all(len(names) == 1 for names in taken.values()), taken
    assert w.clear_mask_action.toolTip() == "Remove the whole mask (Del)"
    w.canvas.setFocus()
    found = []
    w.damage.action.triggered.disconnect()  # (the search itself needs a detector)
    w.damage.action.triggered.connect(lambda: found.append(1))
    QTest.keyClick(w.canvas, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert found == [1]


def test_each_menu_item_has_an_alt_letter_of_its_own_in_its_menu(window):
    """Mask had C&lear Mask and &Load Mask..., Tools &Lasso and &Larger Brush: the letter only
    moved between the two items, and neither ran."""
    import re

    def letters(menu, where: str) -> None:
        seen: dict[str, str] = {}
        for a in menu.actions():
            if a.isSeparator() or not a.isEnabled() and a.text() == "(none)":
                continue
            found = re.search(r"&([^&])", a.text().replace("&&", ""))
            assert found, f"{where} > {a.text()} has no Alt letter"
            key = found.group(1).lower()
            assert key not in seen, f"{where}: {seen.get(key)!r} and {a.text()!r} share Alt+{key.upper()}"
            seen[key] = a.text()
            if a.menu() is not None:
                letters(a.menu(), f"{where} > {a.text()}")

    bar = window.menuBar()
    letters(bar, "menu bar")
    assert len(bar.actions()) >= 6


def _unnamed_controls(root) -> list[str]:
    """Controls a screen reader would announce without a name: an input with neither an
    accessible name nor a label tied to it (QFormLayout ties its row labels), a button with no
    text; and buttons that read the same (three "Browse..." in Batch)."""
    from PySide6.QtWidgets import (
        QAbstractButton,
        QAbstractSpinBox,
        QComboBox,
        QLabel,
        QLineEdit,
        QSlider,
        QWidget,
    )

    tied = {id(label.buddy()) for label in root.findChildren(QLabel) if label.buddy() is not None}
    problems, said = [], {}
    for widget in root.findChildren(QWidget):
        if isinstance(widget, QLineEdit) and isinstance(widget.parent(), (QAbstractSpinBox, QComboBox)):
            continue  # the box's own editor: the box is named
        if isinstance(widget, (QLineEdit, QAbstractSpinBox, QSlider, QComboBox)):
            if not widget.accessibleName() and id(widget) not in tied:
                problems.append(f"{type(widget).__name__} {widget.toolTip()[:40]!r}")
        elif isinstance(widget, QAbstractButton) and not widget.objectName().startswith("qt_"):  # Qt's own
            name = widget.accessibleName() or widget.text().replace("&", "")
            if not name:
                problems.append(
                    f"{type(widget).__name__} {widget.objectName()!r} without text {widget.toolTip()[:40]!r}"
                )
            elif widget.isVisibleTo(root) and type(widget).__name__ == "QPushButton":
                said.setdefault(name, []).append(widget)
    problems += [f"{len(v)} buttons read {k!r}" for k, v in said.items() if len(v) > 1]
    return problems


def test_every_control_has_a_name_a_screen_reader_can_say(window):
    """The toolbar's Size box and slider, the Sensitivity slider, Preferences' weights field and
    texture box, Batch's folder fields and hole boxes had none."""
    w = window
    w.damage.panel.show()
    assert _unnamed_controls(w) == []
    prefs = w.open_preferences()
    assert _unnamed_controls(prefs) == []
    prefs.reject()
    batch = w.open_batch_dialog()
    assert _unnamed_controls(batch) == []
    batch.reject()


def test_a_dialog_that_finished_is_deleted_not_kept_by_the_window(window):
    """Every Preferences, About, Keyboard Shortcuts and Batch dialog ever opened stayed a child of
    the window (about 1-2 MB each: 790 MB after 200 rounds of the four)."""
    from PySide6.QtCore import QCoreApplication, QEvent
    from PySide6.QtWidgets import QDialog

    w = window
    for _ in range(3):
        w.open_preferences().reject()
        w.about_action.trigger()
        w.shortcuts_action.trigger()
        w.open_batch_dialog().reject()
        for d in w.findChildren(QDialog):
            d.close()  # About and the shortcuts list are not modal: their close finishes them
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert [type(d).__name__ for d in w.findChildren(QDialog)] == []
