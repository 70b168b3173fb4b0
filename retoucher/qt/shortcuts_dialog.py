"""Help > Keyboard Shortcuts: every shortcut of the window, read from its QActions when the
dialog opens (grouped by the menu they are in, with all their key sequences), and the canvas's
own keys and mouse controls from :func:`.canvas_keys.canvas_controls`. Nothing here is a
hand-kept list: an action added or rebound at run time shows as it is."""

from __future__ import annotations

import re

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLineEdit,
    QMainWindow,
    QMenu,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .canvas_keys import canvas_controls

__all__ = [
    "CANVAS_GROUP",
    "OTHER_GROUP",
    "ShortcutGroup",
    "ShortcutsDialog",
    "action_label",
    "key_name",
    "shortcut_groups",
]

ShortcutGroup = tuple[str, list[tuple[str, str]]]
"""A heading and its ``(what, keys)`` rows."""
CANVAS_GROUP = "On the photo"
OTHER_GROUP = "Other"


def action_label(text: str) -> str:
    """A menu text as read (``"Save &As\u2026"`` -> ``"Save As"``; ``"&&"`` is a literal ``&``)."""
    return re.sub(r"&(.)", r"\1", text).rstrip(".\u2026").strip()


def key_name(seq: QKeySequence) -> str:
    """A key sequence as the platform writes it; a key that only some keyboards have (the
    Open, Save, Undo, Help... keys that standard shortcuts also bind) says it is a key:
    ``"Open key"``, not a bare ``"Open"``."""
    name = seq.toString(QKeySequence.SequenceFormat.NativeText)
    if seq.count() == 1 and (seq[0].key().value >= Qt.Key.Key_Back.value or seq[0].key() == Qt.Key.Key_Help):
        name += " key"
    return name


def _keys(action: QAction) -> str:
    names: list[str] = []
    for seq in action.shortcuts():
        name = key_name(seq)
        if name and name not in names:
            names.append(name)
    return ", ".join(names)


def _menu_rows(menu: QMenu, seen: set[QAction]) -> list[tuple[str, str]]:
    """The rows of a menu's actions with shortcuts, its submenus' included (in menu order)."""
    rows: list[tuple[str, str]] = []
    for a in menu.actions():
        seen.add(a)
        sub = a.menu()
        if isinstance(sub, QMenu):
            rows += _menu_rows(sub, seen)
        elif not a.isSeparator() and _keys(a):
            rows.append((action_label(a.text()), _keys(a)))
    return rows


def shortcut_groups(window: QMainWindow, wheel_zooms: bool) -> list[ShortcutGroup]:
    """Every shortcut of ``window`` as it is now: one group per menu of its menu bar, then the
    actions with shortcuts that are in no menu but added to the window or a widget in it
    (:data:`OTHER_GROUP`), then the canvas's own controls (:data:`CANVAS_GROUP`;
    ``wheel_zooms``: the wheel preference)."""
    groups: list[ShortcutGroup] = []
    seen: set[QAction] = set()
    for top in window.menuBar().actions():
        menu = top.menu()
        if isinstance(menu, QMenu):
            rows = _menu_rows(menu, seen)
            if rows:
                groups.append((action_label(menu.title()), rows))
    others: list[tuple[str, str]] = []
    for widget in [window, *window.findChildren(QWidget)]:  # where a shortcut works: added to a widget
        for a in widget.actions():
            if a not in seen and _keys(a):
                seen.add(a)
                others.append((action_label(a.text()), _keys(a)))
    if others:
        groups.append((OTHER_GROUP, others))
    groups.append((CANVAS_GROUP, canvas_controls(wheel_zooms)))
    return groups


class ShortcutsDialog(QDialog):
    """The groups as a two-column tree (what, keys) with a filter field."""

    def __init__(self, groups: list[ShortcutGroup], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard Shortcuts")
        self.resize(620, 640)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter (e.g. zoom, Ctrl+S)")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._apply_filter)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(2)
        self.tree.setHeaderLabels(["Action", "Keys"])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        for heading, rows in groups:
            top = QTreeWidgetItem(self.tree, [heading])
            font = top.font(0)
            font.setBold(True)
            top.setFont(0, font)
            top.setFirstColumnSpanned(True)
            for what, keys in rows:
                QTreeWidgetItem(top, [what, keys]).setToolTip(1, keys)
        self.tree.expandAll()
        self.tree.resizeColumnToContents(0)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.filter)
        layout.addWidget(self.tree, 1)
        layout.addWidget(buttons)

    def rows(self, visible_only: bool = False) -> list[tuple[str, str, str]]:
        """``(group, what, keys)`` for every row shown (``visible_only``: not filtered out)."""
        out = []
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            for j in range(top.childCount()):
                item = top.child(j)
                if not (visible_only and item.isHidden()):
                    out.append((top.text(0), item.text(0), item.text(1)))
        return out

    def _apply_filter(self, text: str) -> None:
        needle = text.strip().lower()
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            shown = 0
            for j in range(top.childCount()):
                item = top.child(j)
                hide = bool(needle) and needle not in f"{item.text(0)} {item.text(1)}".lower()
                item.setHidden(hide)
                shown += not hide
            top.setHidden(shown == 0)
