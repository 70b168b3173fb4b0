"""The split before/after view: original left of a divider, current photo right of it
(pytest-qt, offscreen). Pixels are read from what the view renders."""

from __future__ import annotations

import math
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
from gui_input import drag as _drag  # tests/retoucher/gui_input.py
from gui_input import drag_in_view
from gui_input import view_point as _vp
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from retoucher.document import Document, Rect
from retoucher.qt.main_window import MainWindow
from retoucher.qt.tools import ToolKind

H, W = 400, 600


def _retouched(h: int = H, w: int = W, seed: int = 5) -> Document:
    """A photo whose every pixel differs between the original and the current picture."""
    rng = np.random.default_rng(seed)
    original = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    doc = Document(original)
    doc.apply_fill((original.astype(np.int16) + 128).astype(np.uint8), np.ones((h, w), bool))
    assert (doc.image != doc.original).all()
    return doc


@pytest.fixture
def window(shown_window):
    return shown_window(_retouched())


def _rendered(w: MainWindow) -> QImage:
    """The viewport painted from scratch."""
    return w.canvas.viewport().grab().toImage()


def _on_screen(w: MainWindow) -> QImage:
    """What the window's backing store holds after the pending (partial) repaints: catches a
    repaint that misses part of what changed. Cropped to the viewport."""
    QApplication.processEvents()
    vp = w.canvas.viewport()
    img = QApplication.primaryScreen().grabWindow(w.winId()).toImage()
    return img.copy(vp.mapTo(w, QPoint(0, 0)).x(), vp.mapTo(w, QPoint(0, 0)).y(), vp.width(), vp.height())


def _pixel(w: MainWindow, img: QImage, x: int, y: int) -> tuple[int, int, int]:
    """The colour shown for image pixel (x, y) (its centre's screen pixel)."""
    c = w.canvas.from_image(x + 0.5, y + 0.5)
    return img.pixelColor(math.floor(c.x()), math.floor(c.y())).getRgb()[:3]


def _side(w: MainWindow, img: QImage, x: int, y: int) -> str:
    shown = _pixel(w, img, x, y)
    if shown == tuple(w.doc.original[y, x]):
        return "original"
    if shown == tuple(w.doc.image[y, x]):
        return "current"
    return f"neither: {shown}"


def _sides(w: MainWindow, img: QImage, xs, ys=(60, 200, 390)) -> set[str]:
    return {_side(w, img, x, y) for x in xs for y in ys}


def _assert_divider_at(w: MainWindow, img: QImage, x: float, ys=(30, 150, 250, 380)) -> None:
    """A dark screen column and a light one right of it, where image column ``x`` is shown."""
    b = round(w.canvas.from_image(x, 0).x())
    for y in ys:
        sy = math.floor(w.canvas.from_image(0, y + 0.5).y())
        dark = img.pixelColor(b - 1, sy).getRgb()[:3]
        light = img.pixelColor(b, sy).getRgb()[:3]
        assert max(dark) <= 40 and min(light) >= 220, (y, dark, light)


@pytest.mark.parametrize("zoom", [1.0, 3.0])
def test_split_shows_the_original_left_and_the_current_photo_right(window, zoom):
    w = window
    canvas = w.canvas
    w._push_edit(w.doc.set_rect(Rect(250, 100, 350, 300)))  # a hole across the divider
    canvas.set_zoom(zoom)
    canvas.centerOn(W / 2, H / 2)
    QApplication.processEvents()
    assert not canvas.splitting and canvas.split_fraction == 0.5
    img = _rendered(w)
    assert _side(w, img, 260, 200).startswith("neither")  # tinted by the mask overlay
    assert _sides(w, img, [200, 400], ys=[200]) == {"current"}

    w.split_action.trigger()
    assert canvas.splitting and w.split_action.isChecked()
    assert not canvas.overlay.isVisible()  # the mask is hidden: both sides show the photos as they are
    img = _rendered(w)
    seen_left = range(int(W / 2 - 90 / zoom), 299, max(1, int(7 / zoom)))
    seen_right = range(301, int(W / 2 + 90 / zoom), max(1, int(7 / zoom)))
    assert _sides(w, img, seen_left, ys=[150, 200, 250]) == {"original"}
    assert _sides(w, img, seen_right, ys=[150, 200, 250]) == {"current"}
    _assert_divider_at(w, img, W / 2, ys=[150, 200, 250])  # one screen pixel each at any zoom

    w.split_action.trigger()
    assert not canvas.splitting and canvas.overlay.isVisible()
    img = _rendered(w)
    assert _sides(w, img, [200, 400], ys=[200]) == {"current"}
    assert _side(w, img, 260, 200).startswith("neither")  # the mask overlay is back


def test_the_whole_photo_is_split_at_fit(window):
    w = window
    w.fit_action.trigger()
    w.split_action.trigger()
    img = _on_screen(w)
    assert _sides(w, img, range(0, 298, 37)) == {"original"}
    assert _sides(w, img, range(302, W, 37)) == {"current"}
    _assert_divider_at(w, img, W / 2)
    # "Before" and "After" near the top, either side of the divider
    assert w.canvas.zoom == 1.0
    assert _sides(w, img, range(W // 2 - 30, W // 2 - 10, 2), ys=[16, 18]) - {"original"}
    assert _sides(w, img, range(W // 2 + 10, W // 2 + 30, 2), ys=[16, 18]) - {"current"}
    assert _sides(w, img, range(0, W // 2 - 80, 7), ys=[16, 18]) == {"original"}


def test_dragging_moves_the_divider_and_never_edits(window, qtbot):
    w = window
    canvas = w.canvas
    w.fit_action.trigger()
    hole = Rect(400, 100, 500, 200)
    w._push_edit(w.doc.set_rect(hole))
    mask = w.doc.mask.copy()
    edits = []
    canvas.edit_made.connect(lambda doc, edit: edits.append(edit))
    w.split_action.trigger()
    QTest.mouseMove(canvas.viewport(), _vp(w, 450, 150))
    assert canvas.viewport().cursor().shape() == Qt.CursorShape.SizeHorCursor
    assert not canvas.cursor_item.isVisible()  # no brush in split mode

    assert canvas.zoom == 1.0  # fitted: the labels' rows below are image rows
    vp = canvas.viewport()
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, _vp(w, 300, 150))
    QTest.mouseMove(vp, _vp(w, 250, 160))
    assert canvas.split_fraction == pytest.approx(250 / W, abs=1.5 / W)  # it follows the drag
    assert _sides(w, _on_screen(w), range(252, W, 13)) == {"current"}
    QTest.mouseMove(vp, _vp(w, 150.2, 170))
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, _vp(w, 150.2, 170))
    assert canvas.split_fraction == pytest.approx(150 / W, abs=1.5 / W)
    for img in (_on_screen(w), _rendered(w)):  # the partial repaints left nothing stale
        assert _sides(w, img, range(0, 148, 13)) == {"original"}
        assert _sides(w, img, range(153, W, 13)) == {"current"}
        _assert_divider_at(w, img, canvas.split_fraction * W)
        # where the divider's labels were (near the top, either side of it): the photo again
        assert _sides(w, img, range(215, 360, 3), ys=[12, 18, 24]) == {"current"}

    # A press alone moves it too; beyond the photo it stops at the edge.
    _drag(w, [(450, 150)])
    assert canvas.split_fraction == pytest.approx(450 / W, abs=1.5 / W)
    assert _sides(w, _on_screen(w), range(300, 448, 13)) == {"original"}
    _drag(w, [(450, 150), (W + 300, 150)])
    assert canvas.split_fraction == 1.0
    assert _sides(w, _on_screen(w), range(0, W, 29)) == {"original"}
    _drag(w, [(300, 150), (-300, 150)])
    assert canvas.split_fraction == 0.0
    assert _sides(w, _on_screen(w), range(2, W, 29)) == {"current"}

    # Nothing of all that was an edit, with any tool.
    for action in w.tool_actions.values():
        action.trigger()
        _drag(w, [(420, 120), (480, 180)])
    assert edits == [] and np.array_equal(w.doc.mask, mask) and w.undo_stack.count() == 1
    assert not w.doc.stroking and not canvas.dragging

    # The position is kept while the split is off; painting works again then.
    canvas.set_split_fraction(0.25)
    w.split_action.trigger()
    w.split_action.trigger()
    assert canvas.split_fraction == 0.25
    assert _sides(w, _rendered(w), range(152, W, 29)) == {"current"}
    w.split_action.trigger()
    w.set_tool(ToolKind.BRUSH)
    w.set_brush_size(10)
    _drag(w, [(100, 300), (120, 300)])
    assert len(edits) == 1 and w.doc.mask[300, 110] and canvas.split_fraction == 0.25


def test_pan_and_zoom_keep_working_in_split_mode(window):
    w = window
    canvas = w.canvas
    canvas.set_zoom(3.0)
    canvas.centerOn(W / 2, H / 2)
    w.split_action.trigger()
    vp = canvas.viewport()
    h0 = canvas.horizontalScrollBar().value()
    drag_in_view(vp, [QPoint(300, 300), QPoint(260, 300)], Qt.MouseButton.MiddleButton)
    assert canvas.horizontalScrollBar().value() == h0 + 40
    canvas.setFocus()
    QTest.keyPress(canvas, Qt.Key.Key_Space)
    drag_in_view(vp, [QPoint(300, 300), QPoint(330, 300)])
    QTest.keyRelease(canvas, Qt.Key.Key_Space)
    assert canvas.horizontalScrollBar().value() == h0 + 40 - 30
    assert canvas.split_fraction == 0.5 and canvas.splitting  # panning never moves the divider
    pos = QPointF(200, 150)
    ev = QWheelEvent(
        pos,
        vp.mapToGlobal(pos),
        QPoint(0, 0),
        QPoint(0, -120),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.ControlModifier,  # Ctrl+wheel zooms (the plain wheel scrolls)
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(vp, ev)
    assert canvas.zoom == pytest.approx(3.0 / 1.25)
    assert canvas.splitting and canvas.split_fraction == 0.5
    img = _rendered(w)
    assert _sides(w, img, range(260, 298, 5), ys=[200]) == {"original"}
    assert _sides(w, img, range(302, 340, 5), ys=[200]) == {"current"}


def test_split_during_a_stroke_ends_the_stroke_first(window):
    w = window
    canvas = w.canvas
    canvas.set_zoom(1.0)
    canvas.centerOn(W / 2, H / 2)
    w.set_brush_size(10)
    vp = canvas.viewport()
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, _vp(w, 100, 100))
    QTest.mouseMove(vp, _vp(w, 140, 100))
    assert w.doc.stroking
    w.split_action.trigger()  # Y pressed with the mouse still held
    assert canvas.splitting and not w.doc.stroking and not canvas.dragging
    stroke = w.doc.mask.copy()
    assert stroke[100, 100:140].all()
    assert w.undo_stack.count() == 1 and w.undo_stack.undoText() == "Brush stroke"
    QTest.mouseMove(vp, _vp(w, 200, 100))
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, _vp(w, 200, 100))
    assert np.array_equal(w.doc.mask, stroke) and w.undo_stack.count() == 1
    assert canvas.split_fraction == 0.5  # the drag began as a stroke: it does not move the divider


def test_compare_and_split_exclude_each_other(window):
    w = window
    canvas = w.canvas
    events = []
    canvas.compare_changed.connect(lambda on: events.append(("compare", on)))
    canvas.split_changed.connect(lambda on: events.append(("split", on)))

    w.split_action.trigger()
    assert events == [("split", True)]
    w.compare_action.trigger()
    assert events[1:] == [("split", False), ("compare", True)]
    assert canvas.comparing and not canvas.splitting
    assert w.compare_action.isChecked() and not w.split_action.isChecked()
    assert _sides(w, _rendered(w), range(0, W, 37)) == {"original"}  # the whole original
    assert not canvas.overlay.isVisible()

    w.split_action.trigger()
    assert events[3:] == [("compare", False), ("split", True)]
    assert canvas.splitting and not canvas.comparing
    assert w.split_action.isChecked() and not w.compare_action.isChecked()
    assert not canvas.overlay.isVisible()
    img = _rendered(w)
    assert _sides(w, img, range(0, 298, 37)) == {"original"}
    assert _sides(w, img, range(302, W, 37)) == {"current"}

    canvas.set_comparing(True)  # from code, not the action: the actions follow the canvas
    assert not canvas.splitting and not w.split_action.isChecked() and w.compare_action.isChecked()
    canvas.set_split(True)
    assert not canvas.comparing and w.split_action.isChecked() and not w.compare_action.isChecked()
    canvas.set_split(False)
    assert not w.split_action.isChecked() and not w.compare_action.isChecked()
    assert canvas.overlay.isVisible()
    assert events[5:] == [
        ("split", False),
        ("compare", True),
        ("compare", False),
        ("split", True),
        ("split", False),
    ]


def test_holding_backslash_in_split_mode_shows_the_whole_original_then_the_split_again(window):
    w = window
    canvas = w.canvas
    canvas.setFocus()
    QApplication.processEvents()
    w.split_action.trigger()
    canvas.set_split_fraction(0.3)
    QTest.keyPress(canvas, Qt.Key.Key_Backslash)
    assert canvas.comparing and not canvas.splitting and not w.split_action.isChecked()
    assert _sides(w, _rendered(w), range(200, W, 37)) == {"original"}
    QTest.keyRelease(canvas, Qt.Key.Key_Backslash)
    assert canvas.splitting and not canvas.comparing and w.split_action.isChecked()
    assert canvas.split_fraction == 0.3
    assert _sides(w, _rendered(w), range(200, W, 37)) == {"current"}
    # Without the split, the held compare ends in the normal view as before.
    w.split_action.trigger()
    QTest.keyPress(canvas, Qt.Key.Key_Backslash)
    QTest.keyRelease(canvas, Qt.Key.Key_Backslash)
    assert not canvas.splitting and not canvas.comparing


def test_another_photo_ends_the_split_and_the_action_follows(window):
    w = window
    canvas = w.canvas
    assert w.split_action.shortcut().toString() == "Y"
    assert "(Y)" in w.split_action.toolTip()
    w.canvas.setFocus()
    QTest.keyClick(canvas, Qt.Key.Key_Y)  # the shortcut
    assert canvas.splitting and w.split_action.isChecked()
    canvas.set_split_fraction(0.7)

    w.set_document(_retouched(seed=9))
    assert not canvas.splitting and not w.split_action.isChecked()
    assert canvas.overlay.isVisible()
    assert _sides(w, _rendered(w), range(0, W, 37)) == {"current"}
    w.split_action.trigger()
    assert canvas.split_fraction == 0.7  # the position is kept for the next photo
    assert _sides(w, _rendered(w), range(0, 418, 37)) == {"original"}

    w.set_document(None)
    assert not canvas.splitting and not w.split_action.isChecked()
    assert not w.split_action.isEnabled()
    w.split_action.setChecked(True)  # even forced, there is nothing to split
    assert not canvas.splitting and not w.split_action.isChecked()
    w.set_document(_retouched(50, 60))
    assert w.split_action.isEnabled() and not w.split_action.isChecked()


def test_the_split_action_sits_next_to_the_before_after_toggle(window):
    w = window
    view = next(a.menu() for a in w.menuBar().actions() if a.text() == "&View")
    items = view.actions()
    assert items[items.index(w.compare_action) + 1] is w.split_action
    assert w.split_action.isCheckable() and w.split_action.text() == "&Split Before/After"
    from PySide6.QtWidgets import QToolBar

    tb = w.findChild(QToolBar, "tools")
    acts = tb.actions()
    assert acts[acts.index(w.compare_action) + 1] is w.split_action


def test_the_labels_stay_at_the_top_of_the_view_when_the_photo_is_scrolled(window):
    """Zoomed in, the photo's top is above the view: "Before" and "After" are drawn at the top
    of the view, on screen after the scroll (the canvas repaints the whole view then)."""
    w = window
    canvas = w.canvas
    w.split_action.trigger()
    canvas.set_zoom(3.0)
    canvas.centerOn(W / 2, H / 2)
    QApplication.processEvents()
    img = _on_screen(w)
    top = canvas.to_image(QPointF(0, 16)).y()  # the image row at the labels' height in the view
    assert top > 30  # the photo's top is well above the view
    xs = [
        int(canvas.to_image(QPointF(canvas.from_image(W / 2, 0).x() + dx, 0)).x()) for dx in range(-40, 41, 4)
    ]
    ys = [int(canvas.to_image(QPointF(0, y)).y()) for y in (14, 16, 18)]
    assert any(_side(w, img, x, y).startswith("neither") for x in xs if x < W / 2 for y in ys)  # Before
    assert any(_side(w, img, x, y).startswith("neither") for x in xs if x > W / 2 for y in ys)  # After
    # scrolled down by the keyboard, the labels are drawn anew at the top, not scrolled away
    canvas.verticalScrollBar().setValue(canvas.verticalScrollBar().value() + 120)
    img = _on_screen(w)
    ys = [int(canvas.to_image(QPointF(0, y)).y()) for y in (14, 16, 18)]
    assert any(_side(w, img, x, y).startswith("neither") for x in xs if x < W / 2 for y in ys)
    far = [int(canvas.to_image(QPointF(0, y)).y()) for y in (100, 130)]  # where they were before
    assert _sides(w, img, [x for x in xs if x < W / 2 - 2], ys=far) == {"original"}


@pytest.mark.parametrize("width, aside", [(900, True), (1500, False)])
def test_the_split_hint_is_shown_whole_in_a_small_window(shown_window, width, aside):
    """In a 900 px window the split view's hint was cut after "drag" beside the device and model
    labels: they step aside while a message does not fit, and come back when it goes (in a
    wide window they stay)."""
    w = shown_window(_retouched(), size=(width, 700))
    sb = w.statusBar()
    w.set_split(True)
    text = sb.currentMessage()
    assert text.startswith("Original left, retouched right") and text.endswith("Y to end")
    assert w.model_label.isHidden() == aside and w.device_label.isHidden() == aside
    shown = [
        x for x in (w.progress, w.size_label, w.zoom_label, w.device_label, w.model_label) if x.isVisible()
    ]
    assert sb.fontMetrics().horizontalAdvance(text) + sum(x.width() for x in shown) < sb.width()
    sb.clearMessage()
    assert w.model_label.isVisible() and w.device_label.isVisible()
