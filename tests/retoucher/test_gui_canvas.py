"""The canvas under simulated mouse and keyboard input (pytest-qt, offscreen); the wheel and
gestures: test_gui_navigation.py."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
from gui_input import capsule, drag_in_view
from gui_input import drag as _drag  # tests/retoucher/gui_input.py
from gui_input import view_point as _vp
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QStyle, QStyleOptionSpinBox

from retoucher.document import Document, Rect
from retoucher.qt.canvas import COMPARE_NOTICE
from retoucher.qt.main_window import MainWindow
from retoucher.qt.tools import ToolKind

H, W = 1500, 2000  # larger than the view at 100 %, so the view scrolls instead of centring


@pytest.fixture
def window(shown_window):
    return shown_window(Document(np.random.default_rng(1).integers(0, 256, (H, W, 3), dtype=np.uint8)))


def _capsule(x0, y0, x1, y1, r):
    return capsule((H, W), x0, y0, x1, y1, r)


def _set_zoom_at(w: MainWindow, zoom: float, x: float, y: float) -> None:
    w.canvas.set_zoom(zoom)
    w.canvas.centerOn(x, y)
    QApplication.processEvents()


def _pointed(w: MainWindow, x: float, y: float) -> tuple[float, float]:
    """The image point the pointer on the screen pixel that holds (x, y) points at."""
    p = w.canvas.pointed_at(QPointF(_vp(w, x, y)))
    return p.x(), p.y()


@pytest.mark.parametrize("zoom", [1.0, 4.0])
def test_brush_stroke_sets_the_expected_pixels_at_any_zoom(window, zoom):
    w = window
    _set_zoom_at(w, zoom, 320, 200)
    w.set_brush_size(9)
    _drag(w, [(300.5, 200.5), (310.5, 200.5), (340.5, 200.5)])
    (x0, y0), (x1, y1) = _pointed(w, 300.5, 200.5), _pointed(w, 340.5, 200.5)
    if zoom == 1.0:  # at 100% the pointer points at the photo pixel's centre
        assert (x0, y0, x1, y1) == (300.5, 200.5, 340.5, 200.5)
    assert np.array_equal(w.doc.mask, _capsule(x0, y0, x1, y1, 4.5))
    # One stroke, one undo step; undo clears it exactly.
    assert w.undo_stack.count() == 1 and w.undo_stack.undoText() == "Brush stroke"
    w.undo_stack.undo()
    assert not w.doc.mask.any()


@pytest.mark.parametrize("zoom", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_a_thin_brush_paints_lines_as_wide_as_its_size(window, zoom, size):
    """A 1 px brush for a scratch: a click marks one pixel, a drag a line 1 px wide, wherever
    the pointer lies on the photo pixel (at 100% a click fell on the corner of four and marked
    all four; a 2 px brush painted 3 rows)."""
    w = window
    _set_zoom_at(w, zoom, 320, 200)
    w.set_brush_size(size)
    vp = w.canvas.viewport()
    c = vp.rect().center()
    for row, dy in enumerate(range(0, 3 * round(zoom) + 1, 1)):  # every phase within a photo pixel
        w.doc.set_mask(np.zeros_like(w.doc.mask))
        start = c + QPoint(0, dy + 40 * row)
        drag_in_view(vp, [start + QPoint(dx, 0) for dx in range(0, 81, 4)])
        cols = w.doc.mask.any(axis=0)
        xs = np.flatnonzero(cols)
        widths = {int(w.doc.mask[:, x].sum()) for x in xs[size + 1 : -size - 1]}
        assert widths == {size}, (dy, widths)
    w.doc.set_mask(np.zeros_like(w.doc.mask))
    if size == 1:
        QTest.mouseClick(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, c)
        assert np.count_nonzero(w.doc.mask) == 1


@pytest.mark.parametrize("zoom", [1.0, 3.0])
def test_rectangle_tool_marks_the_dragged_box(window, zoom):
    w = window
    _set_zoom_at(w, zoom, 150, 120)
    w.tool_actions[ToolKind.RECTANGLE].trigger()
    assert w.canvas.tool is ToolKind.RECTANGLE
    _drag(w, [(120.25, 100.25), (150.25, 120.25), (180.25, 140.25)])
    expected = np.zeros((H, W), bool)
    expected[100:141, 120:181] = True
    assert np.array_equal(w.doc.mask, expected)
    assert not w.canvas.band.isVisible()


@pytest.mark.parametrize("zoom", [1.25, 1.5, 2.5])
def test_a_rectangle_click_marks_the_pixel_a_1px_brush_click_marks(window, zoom):
    """At these zooms a screen pixel's centre can fall on a photo pixel's edge; the brush takes the
    pixel Qt shows there, the rectangle took its right or lower neighbour (9-16 of 24 clicks)."""
    w = window
    _set_zoom_at(w, zoom, 320, 200)
    vp = w.canvas.viewport()
    c = vp.rect().center()
    w.set_brush_size(1)
    for i in range(24):
        p = c + QPoint(7 * i - 80, 5 * i - 60)
        marked = {}
        for tool in (ToolKind.BRUSH, ToolKind.RECTANGLE):
            w.tool_actions[tool].trigger()
            w.doc.set_mask(np.zeros_like(w.doc.mask))
            QTest.mouseClick(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p)
            marked[tool] = np.argwhere(w.doc.mask).tolist()
        assert marked[ToolKind.RECTANGLE] == marked[ToolKind.BRUSH] and len(marked[ToolKind.BRUSH]) == 1, (
            i,
            marked,
        )


def test_eraser_clears_what_the_brush_painted(window):
    w = window
    _set_zoom_at(w, 1.0, 400, 300)
    w.tool_actions[ToolKind.RECTANGLE].trigger()
    _drag(w, [(380.25, 280.25), (420.25, 320.25)])
    assert w.doc.mask[280:321, 380:421].all()
    w.tool_actions[ToolKind.ERASER].trigger()
    w.set_brush_size(10)
    _drag(w, [(400, 300), (400, 300)])
    hole = _capsule(*_pointed(w, 400, 300), *_pointed(w, 400, 300), 5.0)
    expected = np.zeros((H, W), bool)
    expected[280:321, 380:421] = True
    expected &= ~hole
    assert np.array_equal(w.doc.mask, expected)
    assert w.undo_stack.count() == 2
    w.undo_stack.undo()
    assert w.doc.mask[280:321, 380:421].all()


def test_zoom_shortcuts_fit_and_actual_size(window):
    w = window
    w.canvas.fit()
    fit = w.canvas.zoom
    assert fit < 1.0  # 2000x1500 does not fit a 1000x700 window
    w.zoom_in_action.trigger()
    assert w.canvas.zoom == pytest.approx(fit * 1.25)
    w.zoom_out_action.trigger()
    w.zoom_out_action.trigger()
    assert w.canvas.zoom == pytest.approx(fit / 1.25)
    w.actual_size_action.trigger()
    assert w.canvas.zoom == 1.0
    assert w.zoom_label.text() == "100%"
    w.fit_action.trigger()
    assert w.canvas.zoom == pytest.approx(fit)
    # Fitted, the whole photo is visible.
    tl, br = w.canvas.from_image(0, 0), w.canvas.from_image(W, H)
    vp = w.canvas.viewport().rect()
    assert tl.x() >= -1 and tl.y() >= -1 and br.x() <= vp.width() + 1 and br.y() <= vp.height() + 1


def test_middle_button_and_space_drag_pan_without_painting(window):
    w = window
    _set_zoom_at(w, 2.0, 1000, 750)
    canvas = w.canvas
    vp = canvas.viewport()
    h0 = canvas.horizontalScrollBar().value()
    v0 = canvas.verticalScrollBar().value()
    drag_in_view(vp, [QPoint(300, 300), QPoint(250, 280)], Qt.MouseButton.MiddleButton)
    assert canvas.horizontalScrollBar().value() == h0 + 50
    assert canvas.verticalScrollBar().value() == v0 + 20
    canvas.setFocus()
    QTest.keyPress(canvas, Qt.Key.Key_Space)
    drag_in_view(vp, [QPoint(300, 300), QPoint(330, 300)])
    QTest.keyRelease(canvas, Qt.Key.Key_Space)
    assert canvas.horizontalScrollBar().value() == h0 + 50 - 30
    assert not w.doc.mask.any()  # panning never paints
    # After panning, a stroke still lands where the pointer shows it.
    w.set_brush_size(5)
    target = canvas.to_image(QPointF(400, 300))
    _drag(w, [(target.x(), target.y())])
    ys, xs = np.nonzero(w.doc.mask)
    assert abs(xs.mean() + 0.5 - target.x()) < 1 and abs(ys.mean() + 0.5 - target.y()) < 1


def test_bracket_keys_and_slider_change_the_brush(window):
    w = window
    w.set_brush_size(40)
    w.larger_action.trigger()
    assert w.canvas.brush_size == 48 and w.size_slider.value() == 48 and w.size_spin.value() == 48
    w.smaller_action.trigger()
    w.smaller_action.trigger()
    assert w.canvas.brush_size == 33
    w.size_slider.setValue(12)
    assert w.canvas.brush_size == 12
    assert w.canvas.cursor_item.radius == 6.0
    # The shortcuts are bound to [ and ].
    assert w.smaller_action.shortcut().toString() == "["
    assert w.larger_action.shortcut().toString() == "]"


def test_brush_cursor_follows_the_pointer(window):
    w = window
    _set_zoom_at(w, 1.0, 500, 500)
    w.set_brush_size(30)
    QTest.mouseMove(w.canvas.viewport(), _vp(w, 500, 480))
    item = w.canvas.cursor_item
    assert item.isVisible()
    assert abs(item.pos().x() - 500) <= 1 and abs(item.pos().y() - 480) <= 1
    assert item.boundingRect().width() >= 30


def test_overlay_tiles_follow_the_mask(window):
    w = window
    overlay = w.canvas.overlay
    assert overlay.tile_count == 0
    from retoucher.document import Rect

    edit = w.doc.set_rect(Rect(10, 10, 600, 20))  # spans three 256-pixel tiles
    assert overlay.tile_count == 3
    w.doc.undo(edit)
    assert overlay.tile_count == 0  # tiles are dropped again when their mask is empty


def test_clear_mask_is_one_undo_step(window):
    w = window
    from retoucher.document import Rect

    w._push_edit(w.doc.set_rect(Rect(0, 0, 50, 50)))
    w.clear_mask_action.trigger()
    assert not w.doc.mask.any()
    w.undo_stack.undo()
    assert w.doc.mask[:50, :50].all()


def test_the_photo_is_drawn_from_the_document_memory_not_a_converted_copy(window):
    # What keeps a 24-megapixel photo smooth: no per-edit conversion to a QImage.
    w = window
    img = w.canvas.photo._images["current"]
    address = np.frombuffer(img.constBits(), dtype=np.uint8, count=1).ctypes.data
    assert address == w.doc.image.ctypes.data
    from retoucher.document import Rect

    w.doc.set_rect(Rect(0, 0, 8, 8))
    w.doc.apply_fill(np.zeros_like(w.doc.image), w.doc.mask.copy())
    assert w.canvas.photo._images["current"] is img  # still the same, and it shows the fill
    assert img.pixelColor(3, 3).getRgb()[:3] == (0, 0, 0)


# ---------------------------------------------------------------- edits while the mouse is held
def _press_and_move(w: MainWindow, points: list[tuple[float, float]]) -> None:
    vp = w.canvas.viewport()
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, _vp(w, *points[0]))
    for p in points[1:]:
        QTest.mouseMove(vp, _vp(w, *p))


def _move_and_release(w: MainWindow, x: float, y: float) -> None:
    vp = w.canvas.viewport()
    QTest.mouseMove(vp, _vp(w, x, y))
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, _vp(w, x, y))


def test_clear_mask_during_a_stroke_ends_the_stroke_first_so_undo_stays_exact(window):
    from retoucher.document import Rect

    w = window
    _set_zoom_at(w, 1.0, 100, 100)
    w.set_brush_size(10)
    w._push_edit(w.doc.set_rect(Rect(40, 40, 120, 120)))
    rect_only = w.doc.mask.copy()
    _press_and_move(w, [(30, 100), (60, 100)])
    w.clear_mask_action.trigger()  # Delete pressed with the mouse still held
    assert not w.doc.mask.any() and not w.doc.stroking
    _move_and_release(w, 90, 100)
    assert not w.doc.mask.any()  # the stroke ended at Delete; the rest of the drag paints nothing
    assert [w.undo_stack.text(i) for i in range(w.undo_stack.count())] == [
        "Rectangle",
        "Brush stroke",
        "Clear mask",
    ]
    w.undo_action.trigger()
    assert np.array_equal(w.doc.mask, rect_only | _capsule(*_pointed(w, 30, 100), *_pointed(w, 60, 100), 5.0))
    w.undo_action.trigger()
    assert np.array_equal(w.doc.mask, rect_only)
    w.undo_action.trigger()
    assert not w.doc.mask.any()
    for _ in range(3):
        w.redo_action.trigger()
    assert not w.doc.mask.any()


def test_undo_during_a_stroke_takes_back_the_stroke_so_far(window):
    from retoucher.document import Rect

    w = window
    _set_zoom_at(w, 1.0, 100, 100)
    w.set_brush_size(10)
    w._push_edit(w.doc.set_rect(Rect(40, 40, 120, 120)))
    rect_only = w.doc.mask.copy()
    _press_and_move(w, [(130, 100), (160, 100)])
    w.undo_action.trigger()  # Ctrl+Z with the mouse still held
    assert np.array_equal(w.doc.mask, rect_only) and not w.doc.stroking
    assert w.undo_stack.undoText() == "Rectangle" and w.undo_stack.redoText() == "Brush stroke"
    assert w.undo_action.text().endswith("Rectangle") and w.redo_action.text().endswith("Brush stroke")
    _move_and_release(w, 190, 100)
    assert np.array_equal(w.doc.mask, rect_only) and w.undo_stack.count() == 2
    w.redo_action.trigger()
    assert np.array_equal(
        w.doc.mask, rect_only | _capsule(*_pointed(w, 130, 100), *_pointed(w, 160, 100), 5.0)
    )
    w.undo_action.trigger()
    w.undo_action.trigger()
    assert not w.doc.mask.any()


def test_a_new_photo_during_a_stroke_never_receives_the_old_photos_stroke(window):
    w = window
    _set_zoom_at(w, 1.0, 300, 300)
    old = w.doc
    _press_and_move(w, [(300, 300), (320, 320)])
    new = Document(np.zeros((50, 50, 3), np.uint8))
    w.set_document(new)  # what Open, Paste or a drop do, with the mouse still held
    assert w.undo_stack.count() == 0 and not old.stroking
    _move_and_release(w, 10, 10)
    assert not new.mask.any() and w.undo_stack.count() == 0
    # An edit the canvas reports for another photo never reaches this photo's history.
    stray = old.set_rect(Rect(0, 0, 5, 5))
    w.canvas.edit_made.emit(old, stray)
    assert w.undo_stack.count() == 0
    w.undo_stack.undo()
    assert not new.mask.any()


def test_an_edit_that_cannot_be_undone_is_reported_not_fatal(window):
    w = window
    other = Document(np.zeros((400, 400, 3), np.uint8))
    other.begin_stroke(True)
    other.stroke_to(300, 300, 20)
    foreign = other.end_stroke()
    small = Document(np.zeros((50, 50, 3), np.uint8))
    w.set_document(small)
    w._push_edit(foreign)  # a bug elsewhere: an edit of another photo on this photo's stack
    w.undo_action.trigger()
    assert w.last_error is not None and w.last_error[0] == "Cannot undo"
    assert not small.mask.any()
    w.set_brush_size(4)
    _drag(w, [(10, 10)])  # the window still works
    assert small.mask.any()


def test_compare_held_on_the_canvas_ends_when_the_canvas_loses_focus(window):
    w = window
    canvas = w.canvas
    canvas.setFocus()
    QApplication.processEvents()
    assert canvas.hasFocus()
    QTest.keyPress(canvas, Qt.Key.Key_Backslash)
    assert canvas.comparing and w.compare_action.isChecked()
    w.size_spin.setFocus()  # e.g. a click elsewhere: the key release goes to that widget
    QApplication.processEvents()
    assert not canvas.hasFocus()
    assert not canvas.comparing and not w.compare_action.isChecked()
    assert canvas.overlay.isVisible()
    # Compare switched on with the toolbar toggle is a mode, not a held key: it stays on.
    w.compare_action.setChecked(True)
    canvas.setFocus()
    QApplication.processEvents()
    w.size_spin.setFocus()
    QApplication.processEvents()
    assert canvas.comparing
    w.compare_action.setChecked(False)
    assert not canvas.comparing


def test_compare_shows_that_it_does_not_paint_and_says_so_on_a_press(window):
    w = window
    canvas, vp = w.canvas, w.canvas.viewport()
    _set_zoom_at(w, 1.0, 500, 500)
    QTest.mouseMove(vp, _vp(w, 503, 457))  # a point no other test leaves the pointer on
    assert canvas.cursor_item.isVisible()
    assert vp.cursor().shape() == Qt.CursorShape.CrossCursor
    w.compare_action.trigger()  # the toolbar's Before/After
    QApplication.processEvents()
    assert canvas.comparing
    # no painting cursor while the original is shown, even after the pointer moves
    QTest.mouseMove(vp, _vp(w, 510, 490))
    assert not canvas.cursor_item.isVisible()
    assert vp.cursor().shape() == Qt.CursorShape.ArrowCursor
    _drag(w, [(500, 480), (560, 520)])
    QApplication.processEvents()
    assert not w.doc.mask.any()
    assert w.statusBar().currentMessage() == COMPARE_NOTICE
    w.compare_action.trigger()  # back to editing: the cross and the brush again, and it paints
    QApplication.processEvents()
    QTest.mouseMove(vp, _vp(w, 507, 463))
    assert canvas.cursor_item.isVisible()
    assert vp.cursor().shape() == Qt.CursorShape.CrossCursor
    _drag(w, [(500, 480), (560, 520)])
    assert w.doc.mask.any()


def test_compare_switched_on_during_a_stroke_ends_the_stroke_as_its_step(window):
    w = window
    _set_zoom_at(w, 1.0, 500, 500)
    vp = w.canvas.viewport()
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, _vp(w, 500, 480))
    QTest.mouseMove(vp, _vp(w, 540, 480))
    w.compare_action.trigger()  # e.g. its shortcut, the button still held
    painted = w.doc.mask.copy()
    assert painted.any() and w.undo_stack.count() == 1
    QTest.mouseMove(vp, _vp(w, 600, 560))  # the hidden mask gets no more paint
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, _vp(w, 600, 560))
    assert np.array_equal(w.doc.mask, painted) and w.undo_stack.count() == 1


def test_the_size_box_arrows_hand_the_keys_back_to_the_canvas(window):
    """A click on the brush-size box's arrows left the keyboard in the box: Space+drag then
    painted instead of panning, and \\ and the one-key shortcuts did nothing."""
    w = window
    _set_zoom_at(w, 1.0, 1000, 750)
    canvas, spin = w.canvas, w.size_spin
    canvas.setFocus()
    size = canvas.brush_size
    opt = QStyleOptionSpinBox()
    spin.initStyleOption(opt)
    up = spin.style().subControlRect(
        QStyle.ComplexControl.CC_SpinBox, opt, QStyle.SubControl.SC_SpinBoxUp, spin
    )
    QTest.mouseClick(spin, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, up.center())
    QApplication.processEvents()
    assert canvas.brush_size == size + 1
    assert QApplication.focusWidget() is canvas
    QTest.keyPress(canvas, Qt.Key.Key_Space)
    h0 = canvas.horizontalScrollBar().value()
    drag_in_view(canvas.viewport(), [QPoint(300, 300), QPoint(330, 300)])
    QTest.keyRelease(canvas, Qt.Key.Key_Space)
    assert canvas.horizontalScrollBar().value() == h0 - 30 and not w.doc.mask.any()
    # a click in the number field keeps the keys there, for typing a size
    QTest.mouseClick(spin.lineEdit(), Qt.MouseButton.LeftButton)
    QApplication.processEvents()
    assert QApplication.focusWidget() is spin.lineEdit() or QApplication.focusWidget() is spin


def test_a_key_that_is_no_part_of_a_number_leaves_the_size_box_for_the_window(window):
    """Typed 25 into the Size box (no Enter): Ctrl+Z undid the typing instead of the last step,
    and E, ] and Space did nothing until Enter; now the 25 counts and the key is the window's."""
    w = window
    _set_zoom_at(w, 1.0, 1000, 750)
    canvas, spin = w.canvas, w.size_spin
    w._push_edit(w.doc.set_rect(Rect(10, 10, 60, 60)))
    line = spin.lineEdit()

    def type_size(text):
        QTest.mouseClick(
            line, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, line.rect().center()
        )
        QApplication.processEvents()
        line.selectAll()
        QTest.keyClicks(spin, text)
        assert QApplication.focusWidget() in (spin, line)

    type_size("25")
    QTest.keyClick(spin, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    QApplication.processEvents()
    assert canvas.brush_size == 25 and w.undo_stack.index() == 0 and not w.doc.mask.any()
    assert QApplication.focusWidget() is canvas
    type_size("31")
    QTest.keyClick(spin, Qt.Key.Key_E)
    assert canvas.brush_size == 31 and canvas.tool is ToolKind.ERASER
    type_size("40")
    QTest.keyClick(spin, Qt.Key.Key_BracketRight)
    assert canvas.brush_size > 40  # ] made it larger than the 40 typed
    type_size("12")
    QTest.keyPress(spin, Qt.Key.Key_Space)
    QApplication.processEvents()
    assert canvas.brush_size == 12 and QApplication.focusWidget() is canvas
    h0 = canvas.horizontalScrollBar().value()
    drag_in_view(canvas.viewport(), [QPoint(300, 300), QPoint(330, 300)])
    QTest.keyRelease(canvas, Qt.Key.Key_Space)
    assert canvas.horizontalScrollBar().value() == h0 - 30 and not w.doc.mask.any()  # Space panned
    # digits, corrections and the arrows stay in the box, and so do a modifier pressed alone (with
    # the flag some platforms give it) and Ctrl+Shift selections
    type_size("7")
    for key in (Qt.Key.Key_Backspace, Qt.Key.Key_9, Qt.Key.Key_Up):
        QTest.keyClick(spin, key)
    ctrl, shift = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier
    QTest.keyClick(spin, Qt.Key.Key_Meta, Qt.KeyboardModifier.MetaModifier)  # (Alt alone: the menu bar's)
    QTest.keyClick(spin, Qt.Key.Key_Left, ctrl | shift)
    QTest.keyClick(spin, Qt.Key.Key_Delete, ctrl)
    assert QApplication.focusWidget() in (spin, line)


@pytest.mark.parametrize("steps", [5, 6, 7])  # Zoom In from 100 %: 305 %, 381 %, 477 %
def test_the_mask_overlay_covers_exactly_the_photo_pixels_it_marks_at_any_zoom(shown_window, steps):
    """The hole drawn over exactly a white block: at zooms like 305 % the overlay's tiles were
    scaled with other rounding than the photo (a hairline of untinted white along one side)."""
    yy, xx = np.mgrid[0:600, 0:800]
    block = (xx >= 301) & (xx < 331) & (yy >= 201) & (yy < 231)
    rgb = np.repeat(np.where(block[..., None], 255, 0).astype(np.uint8), 3, axis=2)
    w = shown_window(Document(rgb))
    canvas = w.canvas
    w.doc.set_mask(block.copy())
    w.actual_size_action.trigger()
    for _ in range(steps):
        w.zoom_in_action.trigger()
    canvas.centerOn(330, 216)
    QApplication.processEvents()

    def shown() -> np.ndarray:
        img = canvas.viewport().grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
        h, width, bpl = img.height(), img.width(), img.bytesPerLine()
        buf = np.frombuffer(img.constBits(), np.uint8, count=bpl * h).reshape(h, bpl)
        return buf[:, : width * 3].reshape(h, width, 3).copy()

    canvas.overlay.setVisible(False)
    white = (shown() == 255).all(-1)
    canvas.overlay.setVisible(True)
    canvas.photo.setVisible(False)
    tinted = (shown() != (46, 46, 50)).any(-1)  # the overlay over the background alone
    canvas.photo.setVisible(True)
    assert white.sum() > 30 * 30 * 3  # the block is on screen, zoomed in
    assert int((white != tinted).sum()) == 0


def _at(w, x, y):
    """Window coordinates of image point (x, y): events sent to the window, as a real mouse's
    are, so that Qt's blocking of a window under a modal dialog applies."""
    return w.canvas.viewport().mapTo(w, _vp(w, x, y))


def test_a_stroke_whose_release_a_modal_dialog_took_ends_and_paints_no_more(qtbot, noise_window_at_100):
    """A dialog opened by a shortcut with the brush button held (Preferences, Open, Save As, the
    Quit question) takes the button's release: the stroke stayed open and the pointer, moved on
    with no button down, went on painting hole (710 px here)."""
    w = noise_window_at_100(120, 160, 0)
    w.set_brush_size(5)
    win = w.windowHandle()
    left, none = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    QTest.mousePress(win, left, none, _at(w, 20.5, 20.5))
    QTest.mouseMove(win, _at(w, 30.5, 20.5))
    QApplication.processEvents()
    painted = w.doc.mask.copy()
    assert painted.any() and w.canvas.dragging
    w.preferences_action.trigger()  # Ctrl+, with the button held
    dlg = w._dialogs[-1]
    qtbot.waitUntil(dlg.isVisible)
    QTest.mouseRelease(win, left, none, _at(w, 30.5, 20.5))  # let go while the dialog is up
    QApplication.processEvents()
    dlg.reject()
    QApplication.processEvents()
    for p in ((60.5, 60.5), (100.5, 90.5), (140.5, 100.5)):  # on, with no button held
        QTest.mouseMove(win, _at(w, *p))
        QApplication.processEvents()
    assert np.array_equal(w.doc.mask, painted) and not w.canvas.dragging and not w.doc.stroking
    assert w.undo_stack.count() == 1  # the stroke so far is its own undo step
    w.undo()
    assert not w.doc.mask.any()


def test_clicking_fill_with_nothing_painted_leaves_the_keys_on_the_canvas(noise_window_at_100):
    """The click left the focus on the Fill button: space held to pan went to the button, and a
    space-drag painted a stroke (2062 px) instead of panning."""
    w = noise_window_at_100(300, 400, 0)
    w.canvas.setFocus()
    QTest.mouseClick(w.fill_button, Qt.MouseButton.LeftButton)  # "paint over what should go first"
    assert QApplication.focusWidget() is w.canvas
    QTest.keyPress(QApplication.focusWidget(), Qt.Key.Key_Space)
    _drag(w, [(60, 60), (40, 60)])
    QTest.keyRelease(QApplication.focusWidget(), Qt.Key.Key_Space)
    assert not w.doc.mask.any()


def test_a_transparent_photo_is_shown_over_a_checkerboard_and_follows_its_edits(shown_window):
    """The canvas drew the hidden colour of transparent pixels (black here) as if it were the
    photo, and a JPEG saved from it (flattened onto white) differed from what was shown. Now the
    photo is composited over a grey checkerboard by its alpha; opaque pixels are drawn as they are,
    and a fill there shows at once."""
    from retoucher.qt.canvas_items import CHECKER, over_checkerboard

    h, w_ = 48, 64
    rgb = np.zeros((h, w_, 3), np.uint8)
    rgb[:, 32:] = (200, 40, 10)
    alpha = np.zeros((h, w_), np.uint8)
    alpha[:, 32:] = 255
    alpha[:, 24:32] = 128  # a soft edge: half over the board
    w = shown_window(Document(rgb, alpha=alpha))
    w.canvas.set_zoom(1.0)
    w.canvas.centerOn(w_ / 2, h / 2)
    QApplication.processEvents()

    def shown(x, y):
        p = w.canvas.viewport().grab().toImage().pixelColor(_vp(w, x, y))
        return p.red(), p.green(), p.blue()

    assert shown(40, 10) == (200, 40, 10)  # opaque: the photo itself
    squares = {shown(x, y) for x in (2, 2 + CHECKER) for y in (2, 2 + CHECKER)}
    assert squares == {(204, 204, 204), (153, 153, 153)}  # transparent: the board, not black
    assert shown(26, 2) == tuple(over_checkerboard(rgb[2:3, 26:27], alpha[2:3, 26:27], 2, 26)[0, 0])
    result = w.doc.image.copy()
    result[:, 40:44] = (0, 0, 255)
    hole = np.zeros((h, w_), bool)
    hole[:, 40:44] = True
    w._push_edit(w.doc.apply_fill(result, hole))
    QApplication.processEvents()
    assert shown(41, 10) == (0, 0, 255)
    w.undo()
    QApplication.processEvents()
    assert shown(41, 10) == (200, 40, 10)
    assert w.doc.image[10, 2].tolist() == [0, 0, 0]  # the document keeps its hidden colour


def _pen_eraser():
    from PySide6.QtGui import QInputDevice, QPointingDevice

    caps = QInputDevice.Capability.Position | QInputDevice.Capability.Pressure
    return QPointingDevice(
        "pen eraser", 7, QInputDevice.DeviceType.Stylus, QPointingDevice.PointerType.Eraser, caps, 1, 2
    )


def _pen(w, x, y, device, *, tablet=True, kinds=("press", "release")) -> None:
    """The pen (``device``) pressed and lifted at image point (x, y): the tablet's press, then the
    mouse events Qt makes of it (with the pen's device, or a mouse's when ``device`` is None)."""
    from PySide6.QtGui import QMouseEvent, QPointingDevice, QTabletEvent

    vp = w.canvas.viewport()
    pos = QPointF(_vp(w, x, y))
    glob = QPointF(vp.mapToGlobal(pos))
    left, none, plain = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    if tablet and "press" in kinds:
        press = QTabletEvent(
            QEvent.Type.TabletPress, device, pos, glob, 0.8, 0, 0, 0, 0, 0, plain, left, left
        )
        QApplication.sendEvent(vp, press)
    mouse_device = device if not tablet else QPointingDevice.primaryPointingDevice()
    events = {
        "press": (QEvent.Type.MouseButtonPress, left),
        "release": (QEvent.Type.MouseButtonRelease, none),
    }
    for k in kinds:
        kind, buttons = events[k]
        QApplication.sendEvent(vp, QMouseEvent(kind, pos, glob, left, buttons, plain, mouse_device))


@pytest.mark.parametrize("told_by", ["tablet press", "mouse press's device"])
def test_a_pens_eraser_end_erases_and_the_tool_stays(window, told_by):
    """A Wacom pen turned over painted: its eraser end erases (with the brush's size) for that
    stroke, whatever tool is chosen, and the tool is the same after it."""
    w = window
    _set_zoom_at(w, 1.0, 400, 300)
    w.tool_actions[ToolKind.RECTANGLE].trigger()
    _drag(w, [(380.25, 280.25), (420.25, 320.25)])
    assert w.doc.mask[280:321, 380:421].all()
    w.set_brush_size(10)
    _pen(w, 400, 300, _pen_eraser(), tablet=told_by == "tablet press")
    hole = _capsule(*_pointed(w, 400, 300), *_pointed(w, 400, 300), 5.0)
    expected = np.zeros((H, W), bool)
    expected[280:321, 380:421] = True
    assert np.array_equal(w.doc.mask, expected & ~hole)
    assert w.canvas.tool is ToolKind.RECTANGLE and w.tool_actions[ToolKind.RECTANGLE].isChecked()
    _drag(w, [(100.25, 100.25), (110.25, 110.25)])  # the mouse again: the rectangle's
    assert w.doc.mask[100:111, 100:111].all()


@pytest.mark.parametrize("where", ["split", "compare", "not editable"])
def test_a_pens_eraser_press_that_paints_nothing_leaves_no_eraser_for_the_mouse(window, where):
    """An eraser-end press in Split or Compare (or while a fill runs) left the tablet's word for
    the next plain mouse press, which erased instead of painting."""
    w = window
    _set_zoom_at(w, 1.0, 400, 300)
    setting = {
        "split": w.canvas.set_split,
        "compare": w.canvas.set_comparing,
        "not editable": lambda on: w.canvas.set_editable(not on),
    }[where]
    setting(True)
    _pen(w, 400, 300, _pen_eraser())
    setting(False)
    w.doc.set_mask(np.zeros_like(w.doc.mask))
    w.set_brush_size(1)
    QTest.mouseClick(
        w.canvas.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, _vp(w, 400, 300)
    )
    assert w.doc.mask.any() and w.canvas.tool is ToolKind.BRUSH


def test_a_tool_chosen_during_a_pens_eraser_stroke_is_the_tool_after_it(window):
    """E pressed with the eraser end down: the toolbar said Eraser, the canvas went back to Brush
    when the pen was lifted; the brush outline stayed up over a Rectangle after such a stroke."""
    w = window
    _set_zoom_at(w, 1.0, 400, 300)
    _pen(w, 400, 300, _pen_eraser(), kinds=("press",))
    w.tool_actions[ToolKind.ERASER].trigger()
    _pen(w, 400, 300, _pen_eraser(), kinds=("release",))
    assert w.canvas.tool is ToolKind.ERASER and w.tool_actions[ToolKind.ERASER].isChecked()
    w.tool_actions[ToolKind.RECTANGLE].trigger()
    _pen(w, 400, 300, _pen_eraser())
    QTest.mouseMove(w.canvas.viewport(), _vp(w, 450, 350))
    assert w.canvas.tool is ToolKind.RECTANGLE and not w.canvas.cursor_item.isVisible()
