"""The mask tools under simulated input (pytest-qt, offscreen): lasso and polygon, Shift+click
lines, grow / shrink, invert, load mask, the overlay's visibility and colour. Every change is
one undo step and shows at once."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
from gui_input import capsule
from gui_input import drag as _drag  # tests/retoucher/gui_input.py
from gui_input import view_point as _vp
from PIL import Image
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QAction, QColor, QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox

from retoucher import mask_ops
from retoucher.document import Rect
from retoucher.qt.canvas_items import TILE
from retoucher.qt.main_window import MainWindow
from retoucher.qt.settings import DEFAULT_MASK_STEP, Settings
from retoucher.qt.tools import ToolKind

H, W = 600, 800
NONE = Qt.KeyboardModifier.NoModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier
ALT = Qt.KeyboardModifier.AltModifier
LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def window(noise_window_at_100):
    return noise_window_at_100(H, W, seed=1)


def _key(w: MainWindow, key: Qt.Key, mods=NONE) -> None:
    QTest.keyClick(w.canvas, key, mods)


def _image_point(w: MainWindow, p: QPoint) -> tuple[float, float]:
    q = w.canvas.pointed_at(p)
    return (q.x(), q.y())


def _click(w: MainWindow, x: float, y: float, mods=NONE) -> tuple[float, float]:
    """A click at image point (x, y); returns the image point the canvas got."""
    p = _vp(w, x, y)
    QTest.mouseClick(w.canvas.viewport(), LEFT, mods, p)
    return _image_point(w, p)


def _polygon(points, h=H, w=W) -> np.ndarray:
    out = np.zeros((h, w), bool)
    result = mask_ops.polygon(points, w, h)
    if result is not None:
        out[result[0].slices] = result[1]
    return out


def _capsule(x0, y0, x1, y1, r):
    return capsule((H, W), x0, y0, x1, y1, r)


def _overlay_pixel(w: MainWindow, x: int, y: int) -> int:
    """The premultiplied RGBA the overlay holds for image pixel (x, y), as R<<24|G<<16|B<<8|A
    (0: none)."""
    data, _image = w.canvas.overlay._tiles.get((y // TILE, x // TILE), (None, None))
    return 0 if data is None else int.from_bytes(bytes(data[y % TILE, x % TILE]), "big")


# --------------------------------------------------------------------------- lasso
def test_lasso_drag_fills_the_freehand_outline_on_release(window):
    w = window
    _key(w, Qt.Key.Key_L)
    assert w.canvas.tool is ToolKind.LASSO and w.tool_actions[ToolKind.LASSO].isChecked()
    route = [(300, 200), (400, 190), (450, 260), (420, 330), (340, 350), (290, 300), (305, 205)]
    view = [_vp(w, *p) for p in route]
    QTest.mousePress(w.canvas.viewport(), LEFT, NONE, view[0])
    for p in view[1:]:
        QTest.mouseMove(w.canvas.viewport(), p)
    assert w.canvas.outline.isVisible() and not w.doc.mask.any()  # a preview until released
    QTest.mouseRelease(w.canvas.viewport(), LEFT, NONE, view[-1])
    expected = _polygon([_image_point(w, p) for p in view])
    assert expected.sum() > 10000 and np.array_equal(w.doc.mask, expected)
    assert not w.canvas.outline.isVisible()
    assert w.undo_stack.count() == 1 and w.undo_stack.undoText() == "Lasso"
    w.undo_action.trigger()
    assert not w.doc.mask.any()
    w.redo_action.trigger()
    assert np.array_equal(w.doc.mask, expected)


def test_polygon_clicks_then_enter_fills_then_alt_polygon_removes(window):
    w = window
    w.tool_actions[ToolKind.LASSO].trigger()
    corners = [_click(w, x, y) for x, y in [(200, 150), (500, 160), (480, 420), (220, 400)]]
    assert not w.doc.mask.any() and w.undo_stack.count() == 0  # still open
    QTest.mouseMove(w.canvas.viewport(), _vp(w, 300, 300))  # the rubber band follows the pointer
    assert w.canvas.outline.isVisible()
    _key(w, Qt.Key.Key_Return)
    square = _polygon(corners)
    assert np.array_equal(w.doc.mask, square) and w.undo_stack.undoText() == "Lasso"
    # Alt at the first click removes; a double-click closes.
    inner = [_click(w, 300, 250, ALT), _click(w, 400, 250), _click(w, 400, 320)]
    QTest.mouseDClick(w.canvas.viewport(), LEFT, NONE, _vp(w, 400, 320))
    assert np.array_equal(w.doc.mask, square & ~_polygon(inner))
    assert w.undo_stack.count() == 2 and w.undo_stack.undoText() == "Erase lasso"
    w.undo_action.trigger()
    assert np.array_equal(w.doc.mask, square)


def test_polygon_closes_on_its_first_corner_backspace_takes_back_and_esc_cancels(window):
    w = window
    w.tool_actions[ToolKind.LASSO].trigger()
    # Where Backspace is a shortcut too (Clear Mask is Delete = Backspace on macOS), the polygon
    # being clicked takes it first.
    taken: list[bool] = []
    backspace = QAction("Backspace elsewhere", w)
    backspace.setShortcut(QKeySequence("Backspace"))
    backspace.triggered.connect(lambda: taken.append(True))
    w.addAction(backspace)
    a, b, c = _click(w, 100, 100), _click(w, 300, 100), _click(w, 300, 300)
    _click(w, 250, 500)  # a corner taken back with Backspace
    _key(w, Qt.Key.Key_Backspace)
    assert taken == [] and len(w.canvas._lasso.points) == 3
    _click(w, 101, 101)  # within a few screen pixels of the first corner: closes
    assert np.array_equal(w.doc.mask, _polygon([a, b, c])) and w.undo_stack.count() == 1
    _click(w, 500, 100)
    _click(w, 700, 100)
    _click(w, 700, 300)
    _key(w, Qt.Key.Key_Escape)
    assert not w.canvas.outline.isVisible()
    _key(w, Qt.Key.Key_Return)  # nothing pending any more
    assert np.array_equal(w.doc.mask, _polygon([a, b, c])) and w.undo_stack.count() == 1
    _key(w, Qt.Key.Key_Backspace)  # nothing pending: the shortcut has it
    assert taken == [True]
    # Two corners make no polygon: dropped when the tool changes.
    _click(w, 500, 100)
    _click(w, 700, 100)
    _key(w, Qt.Key.Key_B)
    assert w.canvas.tool is ToolKind.BRUSH and not w.canvas.outline.isVisible()
    assert np.array_equal(w.doc.mask, _polygon([a, b, c])) and w.undo_stack.count() == 1


def test_a_polygon_being_clicked_is_closed_not_lost_by_a_tool_change_or_a_mask_command(window, tmp_path):
    """Its corners were work: switching to the brush (or running a Mask command, or exporting the
    mask) dropped a polygon of any number of corners without a word; it is closed as its own
    step first now, which Undo takes back. The same tool again leaves it open."""
    w = window
    w.tool_actions[ToolKind.LASSO].trigger()
    first = [_click(w, 100, 100), _click(w, 300, 100), _click(w, 300, 300)]
    _key(w, Qt.Key.Key_L)  # the lasso again: still clicking the same polygon
    assert w.canvas.shape_pending and w.undo_stack.count() == 0
    _key(w, Qt.Key.Key_B)
    assert w.canvas.tool is ToolKind.BRUSH and not w.canvas.shape_pending
    assert np.array_equal(w.doc.mask, _polygon(first)) and w.undo_stack.undoText() == "Lasso"
    w.tool_actions[ToolKind.LASSO].trigger()
    second = [_click(w, 500, 100), _click(w, 700, 100), _click(w, 700, 300)]
    _key(w, Qt.Key.Key_BracketRight, Qt.KeyboardModifier.ControlModifier)  # Grow mask 2 px
    assert [w.undo_stack.text(i) for i in range(w.undo_stack.count())] == ["Lasso", "Lasso", "Grow mask 2 px"]
    assert np.array_equal(w.doc.mask, _apply_grow(_polygon(first) | _polygon(second), 2))
    w.undo_action.trigger()
    assert np.array_equal(w.doc.mask, _polygon(first) | _polygon(second))
    third = [_click(w, 100, 400), _click(w, 300, 400), _click(w, 300, 550)]  # exported as shown
    out = tmp_path / "exported.png"
    w.ask_save_path = lambda title, suggestion, filters: str(out)
    assert w.export_mask()
    expected = _polygon(first) | _polygon(second) | _polygon(third)
    assert np.array_equal(w.doc.mask, expected) and np.array_equal(
        np.asarray(Image.open(out)) > 127, expected
    )


def test_fill_with_a_polygon_being_clicked_closes_it_into_the_hole(shown_window, qtbot):
    """Ctrl+Enter (Fill) after the corners of a polygon: the polygon is part of the hole, one
    step before the fill (it was dropped, and only the brushed part filled)."""
    from gui_fakes import FlatFill  # tests/retoucher/gui_fakes.py
    from PySide6.QtWidgets import QApplication

    from retoucher.document import Document
    from retoucher.qt.fill_worker import InpainterCache

    cache = InpainterCache()
    cache.set(FlatFill())
    rgb = np.random.default_rng(1).integers(0, 256, (H, W, 3), dtype=np.uint8)
    w = shown_window(Document(rgb), cache)
    w.canvas.set_zoom(1.0)
    w.canvas.centerOn(W / 2, H / 2)
    QApplication.processEvents()
    w.set_brush_size(6)
    _drag(w, [(100.5, 100.5), (150.5, 100.5)])
    stroke = w.doc.mask.copy()
    w.tool_actions[ToolKind.LASSO].trigger()
    corners = [_click(w, x, y) for x, y in [(300, 200), (500, 210), (480, 420)]]
    QTest.keyClick(w.canvas, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)  # Fill
    qtbot.waitUntil(lambda: not w.busy, timeout=5000)
    hole = stroke | _polygon(corners)
    assert [w.undo_stack.text(i) for i in range(w.undo_stack.count())] == ["Brush stroke", "Lasso", "Fill"]
    assert (w.doc.image[hole] == 128).all() and np.array_equal(w.doc.image[~hole], rgb[~hole])
    # Two corners make no polygon: dropped, and the fill has nothing to do
    _click(w, 600, 100)
    _click(w, 700, 100)
    w.fill_action.trigger()
    assert not w.canvas.outline.isVisible() and w.undo_stack.count() == 3


def test_undo_while_a_polygon_is_clicked_takes_back_its_last_corner_only(window):
    w = window
    w.set_brush_size(6)
    _drag(w, [(100.5, 100.5), (150.5, 100.5)])
    stroke = w.doc.mask.copy()
    w.tool_actions[ToolKind.LASSO].trigger()
    a, b, c = _click(w, 300, 200), _click(w, 500, 210), _click(w, 480, 420)
    _click(w, 250, 500)
    w.undo_action.trigger()  # the last corner, not the brush stroke before the polygon
    assert w.canvas._lasso.points == [a, b, c] and np.array_equal(w.doc.mask, stroke)
    w.redo_action.trigger()  # nothing to redo inside the polygon: it stays
    assert w.canvas._lasso.points == [a, b, c] and w.undo_stack.count() == 1
    _key(w, Qt.Key.Key_Return)
    assert np.array_equal(w.doc.mask, stroke | _polygon([a, b, c])) and w.undo_stack.count() == 2
    w.undo_action.trigger()  # nothing pending now: the polygon's step
    assert np.array_equal(w.doc.mask, stroke)


def test_ctrl_z_takes_back_a_corner_even_with_nothing_to_undo(window):
    """On a photo just opened the Undo action is off: Ctrl+Z reached nothing, and the README's
    "Ctrl+Z takes the last corner back" was false there."""
    w = window
    w.tool_actions[ToolKind.LASSO].trigger()
    a, b, c = _click(w, 300, 200), _click(w, 500, 210), _click(w, 480, 420)
    _click(w, 250, 500)
    assert w.undo_stack.count() == 0 and not w.undo_action.isEnabled()
    _key(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert w.canvas._lasso.points == [a, b, c]
    _key(w, Qt.Key.Key_Return)
    assert np.array_equal(w.doc.mask, _polygon([a, b, c])) and w.undo_stack.count() == 1


# --------------------------------------------------------------------------- Shift+click lines
@pytest.mark.parametrize("tool", [ToolKind.BRUSH, ToolKind.ERASER])
def test_shift_click_draws_a_straight_line_from_the_last_point(window, tool):
    w = window
    w.set_brush_size(6)
    if tool is ToolKind.ERASER:
        w._push_edit(w.doc.set_rect(Rect(0, 0, W, H)))
        _key(w, Qt.Key.Key_E)
    p0 = _click(w, 150, 150)
    first = w.doc.mask.copy()
    p1 = _click(w, 450, 350, SHIFT)
    line = _capsule(*p0, *p1, 3.0)
    assert np.array_equal(w.doc.mask, first | line if tool is ToolKind.BRUSH else first & ~line)
    label = "Brush line" if tool is ToolKind.BRUSH else "Erase line"
    assert w.undo_stack.undoText() == label
    # The line ends where the next Shift+click starts; each line is one step.
    p2 = _click(w, 600, 150, SHIFT)
    second = _capsule(*p1, *p2, 3.0)
    assert (w.doc.mask[second] == (tool is ToolKind.BRUSH)).all()
    w.undo_action.trigger()
    assert np.array_equal(w.doc.mask, first | line if tool is ToolKind.BRUSH else first & ~line)
    w.undo_action.trigger()
    assert np.array_equal(w.doc.mask, first)


def test_shift_click_without_an_earlier_stroke_paints_one_dab(window):
    w = window
    w.set_brush_size(10)
    p = _click(w, 200, 200, SHIFT)
    assert np.array_equal(w.doc.mask, _capsule(*p, *p, 5.0))
    assert w.undo_stack.undoText() == "Brush stroke"


# --------------------------------------------------------------------------- grow, shrink, invert
def test_grow_and_shrink_shortcuts_use_the_remembered_step(window, tmp_path):
    w = window
    assert w.settings.mask_step == DEFAULT_MASK_STEP == 2
    assert "by 2 px" in w.masks.grow_action.text()
    w.set_brush_size(1)
    _drag(w, [(100.5, 300.5), (700.5, 300.5)])  # a hairline
    hair = w.doc.mask.copy()
    assert hair.any(axis=1).sum() <= 2
    _key(w, Qt.Key.Key_BracketRight, Qt.KeyboardModifier.ControlModifier)
    grown = _apply_grow(hair, 2)
    assert np.array_equal(w.doc.mask, grown) and w.undo_stack.undoText() == "Grow mask 2 px"
    ring_y, ring_x = (int(v[0]) for v in np.nonzero(grown & ~hair))
    assert _overlay_pixel(w, ring_x, ring_y) != 0  # shown at once
    w.masks.step_action.trigger()
    dlg = _last_input_dialog(w)
    dlg.setIntValue(1)
    dlg.accept()
    assert w.settings.mask_step == 1 and "by 1 px" in w.masks.shrink_action.text()
    assert Settings.from_file(tmp_path / "settings.ini").mask_step == 1  # remembered
    _key(w, Qt.Key.Key_BracketLeft, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(w.doc.mask, grown & ~_apply_grow(~grown, 1))
    assert w.undo_stack.undoText() == "Shrink mask 1 px"
    w.undo_action.trigger()
    assert np.array_equal(w.doc.mask, grown)
    w.undo_action.trigger()
    assert np.array_equal(w.doc.mask, hair) and _overlay_pixel(w, ring_x, ring_y) == 0
    w.redo_action.trigger()
    assert np.array_equal(w.doc.mask, grown)


def _apply_grow(mask: np.ndarray, r: int) -> np.ndarray:
    out = mask.copy()
    box, new = mask_ops.grow(mask, r)
    out[box.slices] = new
    return out


def _last_input_dialog(w: MainWindow):
    from PySide6.QtWidgets import QInputDialog

    dialogs = [d for d in w.findChildren(QInputDialog) if d.isVisible()]
    assert len(dialogs) == 1
    return dialogs[0]


def test_grow_without_a_hole_changes_nothing(window):
    w = window
    w.masks.grow_action.trigger()
    assert w.undo_stack.count() == 0 and "No hole" in w.statusBar().currentMessage()


def test_invert_is_one_step_and_an_all_hole_mask_is_refused_at_fill(window):
    w = window
    w._push_edit(w.doc.set_rect(Rect(10, 10, 50, 40)))
    before = w.doc.mask.copy()
    _key(w, Qt.Key.Key_I, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(w.doc.mask, ~before) and w.undo_stack.undoText() == "Invert mask"
    w.undo_action.trigger()
    assert np.array_equal(w.doc.mask, before)
    w.clear_mask_action.trigger()
    w.masks.invert_action.trigger()
    assert w.doc.mask.all()
    assert w.fill() is None and w.last_error is not None and w.last_error[0] == "Cannot fill"
    assert w.doc.mask.all()  # nothing lost


def test_mask_actions_wait_for_a_running_fill(window, monkeypatch):
    w = window
    w._push_edit(w.doc.set_rect(Rect(10, 10, 50, 40)))
    assert w.masks.grow_action.isEnabled() and w.masks.load_action.isEnabled()
    monkeypatch.setattr(type(w.jobs), "busy", property(lambda self: True))
    w._update_actions()  # what a fill starting does
    assert not any(a.isEnabled() for a in (w.masks.grow_action, w.masks.invert_action, w.masks.load_action))
    before = w.doc.mask.copy()
    assert w.masks.grow() is None and w.masks.invert() is None
    assert np.array_equal(w.doc.mask, before) and w.undo_stack.count() == 1


# --------------------------------------------------------------------------- load mask
def test_load_mask_scales_replaces_and_is_one_step(window, tmp_path):
    w = window
    w._push_edit(w.doc.set_rect(Rect(0, 0, 20, 20)))
    painted = w.doc.mask.copy()
    small = np.zeros((H // 4, W // 4), np.uint8)
    small[20:40, 50:100] = 255
    Image.fromarray(small, "L").save(tmp_path / "mask.png")
    w.files.ask_mask_path = lambda: str(tmp_path / "mask.png")
    w.masks.load_action.trigger()
    expected = np.zeros((H, W), bool)
    expected[80:160, 200:400] = True
    assert np.array_equal(w.doc.mask, expected) and w.undo_stack.undoText() == "Load mask"
    assert _overlay_pixel(w, 300, 100) != 0 and _overlay_pixel(w, 5, 5) == 0
    w.undo_action.trigger()
    assert np.array_equal(w.doc.mask, painted)


def test_load_and_export_mask_read_and_write_off_the_gui_thread(window, tmp_path, monkeypatch):
    """A 24-megapixel mask took 8-17 s to read in the GUI thread (the window froze): the file
    work runs in the file worker as a photo's does; its errors still come back as error boxes."""
    import threading

    import engine.imageio

    w = window
    threads = []
    real_load, real_save = engine.imageio.load_mask, engine.imageio.save_mask

    def load(*args, **kwargs):
        threads.append(("load", threading.get_ident()))
        return real_load(*args, **kwargs)

    def save(*args, **kwargs):
        threads.append(("save", threading.get_ident()))
        return real_save(*args, **kwargs)

    monkeypatch.setattr(engine.imageio, "load_mask", load)
    monkeypatch.setattr(engine.imageio, "save_mask", save)
    w._push_edit(w.doc.set_rect(Rect(10, 20, 30, 40)))
    out = tmp_path / "exported.png"
    w.ask_save_path = lambda title, suggestion, filters: str(out)
    assert w.export_mask()
    w._push_edit(w.doc.set_rect(Rect(0, 0, 5, 5)))
    w.files.ask_mask_path = lambda: str(out)
    w.masks.load_action.trigger()
    expected = np.zeros((H, W), bool)
    expected[20:40, 10:30] = True
    assert np.array_equal(w.doc.mask, expected)
    gui = threading.get_ident()
    assert [kind for kind, _ in threads] == ["save", "load"] and all(t != gui for _, t in threads)
    out.write_bytes(b"broken")
    assert w.masks.load(out) is None and w.last_error[0] == "Cannot load the mask"


@pytest.mark.parametrize(
    "content, words",
    [
        (b"not an image at all", "mask.png"),
        ("square", "aspect"),
    ],
)
def test_a_bad_mask_file_gives_an_error_and_changes_nothing(window, tmp_path, content, words):
    w = window
    w._push_edit(w.doc.set_rect(Rect(0, 0, 20, 20)))
    painted = w.doc.mask.copy()
    path = tmp_path / "mask.png"
    if content == "square":
        Image.fromarray(np.full((50, 50), 255, np.uint8), "L").save(path)
    else:
        path.write_bytes(content)
    assert w.masks.load(path) is None
    assert w.last_error is not None and w.last_error[0] == "Cannot load the mask"
    assert words in w.last_error[1]
    assert np.array_equal(w.doc.mask, painted) and w.undo_stack.count() == 1


# --------------------------------------------------------------------------- overlay
def test_h_hides_and_shows_the_overlay_and_painting_goes_on(window):
    w = window
    assert w.canvas.overlay.isVisible() and w.masks.overlay_action.isChecked()
    _key(w, Qt.Key.Key_H)
    assert not w.canvas.overlay.isVisible() and not w.masks.overlay_action.isChecked()
    _drag(w, [(300, 300), (320, 300)])
    assert w.doc.mask.any()  # painting works while hidden
    # Split and compare keep it hidden; ending them leaves it as the user chose.
    w.split_action.trigger()
    w.split_action.trigger()
    assert not w.canvas.overlay.isVisible()
    _key(w, Qt.Key.Key_H)
    assert w.canvas.overlay.isVisible() and w.masks.overlay_action.isChecked()


def test_overlay_colour_preference_applies_at_once_and_persists(window, tmp_path):
    w = window
    w._push_edit(w.doc.set_rect(Rect(10, 10, 30, 30)))
    red = _overlay_pixel(w, 15, 15)
    assert red != 0
    dlg = w.open_preferences()
    box = dlg.overlay_colour
    assert box.colour().name() == "#ff2448"
    box.setCurrentIndex(box.findText("Green"))
    dlg.accept()
    green = QColor(box.colour())
    assert green.name() == "#00c853"
    value = _overlay_pixel(w, 15, 15)
    assert value not in (0, red)
    assert (value >> 16) & 0xFF > value >> 24  # premultiplied RGBA: more green than red
    assert Settings.from_file(tmp_path / "settings.ini").overlay_colour.name() == "#00c853"
    # A colour picked with "Other..." is kept too.
    dlg = w.open_preferences()
    box = dlg.overlay_colour
    box.activated.emit(box.count() - 1)
    assert box.picker is not None
    box.picker.setCurrentColor(QColor("#123456"))
    box.picker.accept()
    assert box.colour().name() == "#123456"
    dlg.accept()
    assert w.settings.overlay_colour.name() == "#123456"
    assert w.canvas.overlay.colour[:3] == (0x12, 0x34, 0x56)


def test_new_shortcuts_clash_with_no_other_action(window):
    w = window
    seen: dict[str, object] = {}
    for action in w.findChildren(type(w.undo_action)):
        for seq in action.shortcuts():
            key = seq.toString(QKeySequence.SequenceFormat.PortableText)
            other = seen.setdefault(key, action)
            assert other is action, f"{key} is both {other.text()} and {action.text()}"
    assert seen["L"] is w.tool_actions[ToolKind.LASSO] and seen["H"] is w.masks.overlay_action
    assert seen["Ctrl+]"] is w.masks.grow_action and seen["Ctrl+["] is w.masks.shrink_action
    assert seen["Ctrl+I"] is w.masks.invert_action


def test_a_polygon_being_clicked_stays_open_across_a_look_at_the_original(window):
    """Holding \\ (compare) or turning Split on and off dropped the corners clicked so far."""
    w = window
    w.tool_actions[ToolKind.LASSO].trigger()
    corners = [_click(w, x, y) for x, y in [(200, 150), (500, 160), (480, 420)]]
    QTest.keyPress(w.canvas, Qt.Key.Key_Backslash)
    assert w.canvas.comparing
    QTest.keyRelease(w.canvas, Qt.Key.Key_Backslash)
    w.split_action.trigger()
    assert w.canvas.shape_pending
    w.split_action.trigger()
    assert w.canvas.shape_pending
    corners.append(_click(w, 220, 400))
    _key(w, Qt.Key.Key_Return)
    assert np.array_equal(w.doc.mask, _polygon(corners)) and w.undo_stack.count() == 1


def test_a_polygon_being_clicked_survives_an_open_that_does_not_happen_and_a_clear(window, tmp_path):
    """Open dropped the corners before reading the file (a corrupt file, or Cancel at the
    unsaved-changes question, left the photo open and the polygon gone); Clear Mask and the Find
    Damage panel dropped them too (Undo of Clear did not bring the polygon back)."""
    w = window
    errors, asked = [], []
    w.show_error = lambda title, text: errors.append(text)
    w.tool_actions[ToolKind.LASSO].trigger()
    corners = [_click(w, 100, 100), _click(w, 300, 100), _click(w, 300, 300)]
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not a photo")
    assert not w.open_path(bad)
    assert errors and w.canvas.shape_pending  # nothing was replaced: still clicking it
    w.damage.adjust(0.4, 3)  # the panel's sensitivity or grow moved: the polygon is no change yet
    assert w.canvas.shape_pending and w.undo_stack.count() == 0
    good = tmp_path / "other.png"
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(good)
    doc = w.doc

    def cancel():
        asked.append(int(w.doc.mask.sum()))
        return QMessageBox.StandardButton.Cancel

    w.ask_unsaved_changes = cancel
    assert not w.open_path(good)
    # asked about the polygon as part of the hole, which stays as its own step
    assert w.doc is doc and asked == [int(_polygon(corners).sum())]
    assert np.array_equal(w.doc.mask, _polygon(corners)) and w.undo_stack.undoText() == "Lasso"
    w.ask_unsaved_changes = lambda: QMessageBox.StandardButton.Discard
    more = [_click(w, 500, 100), _click(w, 700, 100), _click(w, 700, 300)]
    w.clear_mask_action.trigger()
    assert not w.doc.mask.any()
    assert [w.undo_stack.text(i) for i in range(w.undo_stack.count())] == ["Lasso", "Lasso", "Clear mask"]
    w.undo_action.trigger()
    assert np.array_equal(w.doc.mask, _polygon(corners) | _polygon(more))


def test_a_double_click_while_comparing_does_not_close_the_polygon(window):
    """Compare and split paint nothing, yet a double-click closed the polygon being clicked
    into the hole while the original was shown."""
    w = window
    w.tool_actions[ToolKind.LASSO].trigger()
    corners = [_click(w, 100, 100), _click(w, 300, 100), _click(w, 300, 300)]
    for toggle in (w.compare_action, w.split_action):
        toggle.trigger()
        QTest.mouseDClick(w.canvas.viewport(), LEFT, NONE, _vp(w, 150, 250))
        assert w.canvas.shape_pending and not w.doc.mask.any() and w.undo_stack.count() == 0
        toggle.trigger()
    _key(w, Qt.Key.Key_Return)
    assert np.array_equal(w.doc.mask, _polygon(corners))


def test_the_lasso_outline_and_the_band_show_on_a_white_photo(shown_window):
    """White dashes alone all but vanished on a bright photo: a lasso that removes (no fill) or a
    polygon's first edge showed nothing (a dark line under the dashes now, as under the brush's)."""
    from PySide6.QtGui import QImage
    from PySide6.QtWidgets import QApplication

    from retoucher.document import Document

    w = shown_window(Document(np.full((900, 1200, 3), 245, np.uint8)))
    w.canvas.set_zoom(1.0)
    w.canvas.centerOn(600, 450)
    vp = w.canvas.viewport()

    def dark_pixels() -> int:
        w.canvas.cursor_item.setVisible(False)
        QApplication.processEvents()
        img = vp.grab().toImage().convertToFormat(QImage.Format.Format_Grayscale8)
        a = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())[
            :, : img.width()
        ]
        return int(np.count_nonzero(a < 128))

    assert dark_pixels() == 0
    _key(w, Qt.Key.Key_L)
    points = [_vp(w, x, y) for x, y in ((500, 400), (700, 420), (680, 560), (520, 540))]
    QTest.mousePress(vp, LEFT, ALT, points[0])  # a lasso that removes: no fill
    for p in points[1:]:
        QTest.mouseMove(vp, p)
    assert dark_pixels() > 100
    QTest.mouseRelease(vp, LEFT, ALT, points[-1])
    _key(w, Qt.Key.Key_R)
    QTest.mousePress(vp, LEFT, NONE, points[0])
    QTest.mouseMove(vp, points[2])
    assert dark_pixels() > 100  # the rectangle band's edge
    QTest.mouseRelease(vp, LEFT, NONE, points[2])
