"""Navigation like GIMP and Photoshop: the wheel scrolls, Shift+wheel scrolls sideways, Ctrl+wheel
and a trackpad pinch zoom about the pointer; the "Mouse wheel zooms" preference brings back the
wheel that zooms. Synthesized wheel and native-gesture events sent to the canvas viewport."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QMouseEvent, QNativeGestureEvent, QPointingDevice, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from retoucher.document import Document
from retoucher.qt.main_window import MainWindow
from retoucher.qt.settings import Settings
from retoucher.qt.zoom_view import MIN_ZOOM, ZOOM_STEP

H, W = 1500, 2000  # larger than the view at 100 %: both scroll bars have room to move
Mod = Qt.KeyboardModifier


@pytest.fixture
def window(noise_window_at_100):
    return noise_window_at_100(H, W, seed=5)


def _wheel(w: MainWindow, pos: QPointF, angle=(0, 0), pixels=(0, 0), mods=Mod.NoModifier) -> None:
    vp = w.canvas.viewport()
    ev = QWheelEvent(
        pos,
        vp.mapToGlobal(pos),
        QPoint(*pixels),
        QPoint(*angle),
        Qt.MouseButton.NoButton,
        mods,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(vp, ev)


def _pinch(w: MainWindow, pos: QPointF, value: float, kind=Qt.NativeGestureType.ZoomNativeGesture) -> bool:
    """Send a trackpad gesture; whether the canvas took it."""
    vp = w.canvas.viewport()
    ev = QNativeGestureEvent(
        kind,
        QPointingDevice.primaryPointingDevice(),
        2,
        pos,
        pos,
        vp.mapToGlobal(pos),
        value,
        QPointF(0, 0),
    )
    QApplication.sendEvent(vp, ev)
    return ev.isAccepted()


def _bars(w: MainWindow) -> tuple[int, int]:
    return w.canvas.horizontalScrollBar().value(), w.canvas.verticalScrollBar().value()


def _stays_put(w: MainWindow, pos: QPointF, before: QPointF) -> None:
    after = w.canvas.to_image(pos)
    assert abs(after.x() - before.x()) < 1 and abs(after.y() - before.y()) < 1


def test_the_wheel_scrolls_and_shift_wheel_scrolls_sideways(window):
    w = window
    assert not w.settings.wheel_zooms and not w.canvas.wheel_zooms  # the default
    pos = QPointF(300, 200)
    h0, v0 = _bars(w)
    _wheel(w, pos, angle=(0, -120))  # one notch towards the user: the photo moves up
    h1, v1 = _bars(w)
    assert w.canvas.zoom == 1.0 and h1 == h0 and v1 > v0
    _wheel(w, pos, angle=(0, 120))
    assert _bars(w) == (h0, v0)  # and back
    _wheel(w, pos, angle=(0, -120), mods=Mod.ShiftModifier)
    h2, v2 = _bars(w)
    assert w.canvas.zoom == 1.0 and h2 > h0 and v2 == v0
    # A wheel that the system already turned sideways for Shift scrolls sideways too.
    _wheel(w, pos, angle=(120, 0), mods=Mod.ShiftModifier)
    assert _bars(w) == (h0, v0)


def test_the_brush_outline_stays_under_the_pointer_while_the_wheel_scrolls_or_zooms(window):
    w = window
    pos = QPoint(300, 200)
    QTest.mouseMove(w.canvas.viewport(), pos)
    item = w.canvas.cursor_item
    assert item.isVisible()
    for mods in (Mod.NoModifier, Mod.ShiftModifier, Mod.ControlModifier):
        before = w.canvas.pointed_at(QPointF(pos))
        _wheel(w, QPointF(pos), angle=(0, -120), mods=mods)
        under = w.canvas.pointed_at(QPointF(pos))
        if mods != Mod.ControlModifier:
            assert under != before  # the photo moved under the pointer
        assert abs(item.pos().x() - under.x()) < 1e-6 and abs(item.pos().y() - under.y()) < 1e-6


def test_trackpad_pixel_deltas_scroll_by_exactly_those_pixels_both_ways(window):
    w = window
    h0, v0 = _bars(w)
    _wheel(w, QPointF(300, 200), angle=(-36, -48), pixels=(-30, -40))
    assert _bars(w) == (h0 + 30, v0 + 40) and w.canvas.zoom == 1.0


@pytest.mark.parametrize("notches", [2, -1])
def test_ctrl_wheel_zooms_about_the_pointer(window, notches):
    w = window
    pos = QPointF(200, 150)
    before = w.canvas.to_image(pos)
    _wheel(w, pos, angle=(0, 120 * notches), mods=Mod.ControlModifier)
    assert w.canvas.zoom == pytest.approx(1.25**notches)
    assert w.zoom_label.text() == f"{1.25**notches * 100:.0f}%"
    _stays_put(w, pos, before)


def test_trackpad_pinch_zooms_about_the_fingers(window):
    w = window
    pos = QPointF(650, 420)
    before = w.canvas.to_image(pos)
    for _ in range(3):
        assert _pinch(w, pos, 0.2)
    assert w.canvas.zoom == pytest.approx(1.2**3)
    _stays_put(w, pos, before)
    assert _pinch(w, pos, -0.5)
    assert w.canvas.zoom == pytest.approx(1.2**3 * 0.5)
    _stays_put(w, pos, before)


def test_smart_zoom_switches_between_fit_and_actual_pixels(window):
    w = window
    w.canvas.fit()
    fit = w.canvas.zoom
    pos = QPointF(400, 300)
    before = w.canvas.to_image(pos)
    assert _pinch(w, pos, 0.0, Qt.NativeGestureType.SmartZoomNativeGesture)
    assert w.canvas.zoom == 1.0
    _stays_put(w, pos, before)
    assert _pinch(w, pos, 0.0, Qt.NativeGestureType.SmartZoomNativeGesture)
    assert w.canvas.zoom == pytest.approx(fit)


def test_gestures_and_wheel_do_nothing_without_a_photo(window):
    w = window
    w.set_document(None)
    zoom = w.canvas.zoom
    _pinch(w, QPointF(100, 100), 0.5)
    _wheel(w, QPointF(100, 100), angle=(0, 240), mods=Mod.ControlModifier)
    assert w.canvas.zoom == zoom


def test_wheel_zooms_preference_is_persisted_and_brings_back_the_zooming_wheel(window, qtbot, tmp_path):
    w = window
    dlg = w.open_preferences()
    assert not dlg.wheel_zooms.isChecked()
    dlg.wheel_zooms.setChecked(True)
    dlg.accept()
    assert w.canvas.wheel_zooms
    assert Settings.from_file(tmp_path / "settings.ini").wheel_zooms  # stored (QSettings)
    pos = QPointF(200, 150)
    before = w.canvas.to_image(pos)
    h0, v0 = _bars(w)
    _wheel(w, pos, angle=(0, 240))
    assert w.canvas.zoom == pytest.approx(1.25**2)  # today's wheel: zoom about the pointer
    _stays_put(w, pos, before)
    # Shift+wheel still scrolls sideways, and so does a trackpad's sideways swipe.
    w.canvas.set_zoom(1.0)
    h0, v0 = _bars(w)
    _wheel(w, pos, angle=(0, -120), mods=Mod.ShiftModifier)
    h1, v1 = _bars(w)
    assert h1 > h0 and v1 == v0 and w.canvas.zoom == 1.0
    _wheel(w, pos, angle=(24, 0), pixels=(20, 0))
    assert _bars(w) == (h1 - 20, v1) and w.canvas.zoom == 1.0
    # A new window reads the preference.
    again = MainWindow(Settings.from_file(tmp_path / "settings.ini"), w.inpainters)
    qtbot.addWidget(again)
    assert again.canvas.wheel_zooms


def test_actual_pixels_and_fit_count_screen_pixels_on_a_2x_screen(window, monkeypatch):
    """On a screen of device pixel ratio 2 a logical pixel is 2x2 of the screen's: Actual Pixels
    ("one photo pixel per screen pixel") is a view scale of 0.5 and reads 100 %; Fit never goes
    beyond it, smart zoom goes to it (it showed each photo pixel 2x2 and read 100 %)."""
    w = window
    monkeypatch.setattr(w.canvas, "devicePixelRatioF", lambda: 2.0)
    w.actual_size_action.trigger()
    assert w.canvas.zoom == 0.5 and w.zoom_label.text() == "100%"
    w.canvas.zoom_in()
    assert w.zoom_label.text() == "125%"
    # a photo smaller than the view: fit stops at 100 %
    monkeypatch.setattr(w.canvas, "content_rect", lambda: QRectF(0, 0, 40, 30))
    w.canvas.fit()
    assert w.canvas.zoom == 0.5 and w.zoom_label.text() == "100%"
    w.canvas.set_zoom(0.2)
    w.canvas._fit_mode = True
    assert _pinch(w, QPointF(100, 100), 0.0, Qt.NativeGestureType.SmartZoomNativeGesture)
    assert w.canvas.zoom == 0.5


def test_moving_to_a_screen_of_another_ratio_updates_the_zoom_shown_and_fit(window, monkeypatch):
    """Fit's cap and the zoom shown count the screen's pixels: a move from a 1x to a 2x screen
    (DevicePixelRatioChange) updates both (they kept the first screen's)."""
    from PySide6.QtCore import QEvent

    w = window
    monkeypatch.setattr(w.canvas, "content_rect", lambda: QRectF(0, 0, 40, 30))  # fits at 100 %
    w.canvas.fit()
    assert w.canvas.zoom == 1.0 and w.zoom_label.text() == "100%"
    monkeypatch.setattr(w.canvas, "devicePixelRatioF", lambda: 2.0)
    QApplication.sendEvent(w.canvas, QEvent(QEvent.Type.DevicePixelRatioChange))
    assert w.canvas.zoom == 0.5 and w.zoom_label.text() == "100%"
    w.canvas.set_zoom(1.0)  # not fitting: the zoom stays, the label follows the screen
    monkeypatch.setattr(w.canvas, "devicePixelRatioF", lambda: 1.0)
    QApplication.sendEvent(w.canvas, QEvent(QEvent.Type.DevicePixelRatioChange))
    assert w.canvas.zoom == 1.0 and w.zoom_label.text() == "100%"
    monkeypatch.setattr(w.canvas, "devicePixelRatioF", lambda: 2.0)
    QApplication.sendEvent(w.canvas, QEvent(QEvent.Type.DevicePixelRatioChange))
    assert w.zoom_label.text() == "200%"


def test_the_brush_outline_follows_the_photo_moved_by_keys_fit_and_another_photo(window):
    """Zoom In/Out, Fit, keyboard scrolling and opening another photo move the photo under a
    still pointer: the outline goes back under the pointer (a click paints there)."""
    w = window
    canvas = w.canvas
    pos = QPoint(300, 250)
    QTest.mouseMove(canvas.viewport(), pos)
    item = canvas.cursor_item
    assert item.isVisible()
    moves = [
        lambda: QTest.keyClick(canvas, Qt.Key.Key_Equal, Mod.ControlModifier),
        lambda: QTest.keyClick(canvas, Qt.Key.Key_Minus, Mod.ControlModifier),
        lambda: QTest.keyClick(canvas, Qt.Key.Key_PageDown),
        lambda: QTest.keyClick(canvas, Qt.Key.Key_Right),
        lambda: QTest.keyClick(canvas, Qt.Key.Key_0, Mod.ControlModifier),
        lambda: w.resize(1200, 800),
        lambda: w.set_document(Document(np.zeros((300, 400, 3), np.uint8))),
    ]
    for i, move in enumerate(moves):
        before = canvas.pointed_at(QPointF(pos))
        move()
        QApplication.processEvents()
        under = canvas.pointed_at(QPointF(pos))
        assert under != before, i  # the photo moved under the pointer
        assert abs(item.pos().x() - under.x()) < 1e-6 and abs(item.pos().y() - under.y()) < 1e-6, i


def test_panning_keeps_the_grabbed_point_under_a_pointer_that_moves_by_fractions(window):
    """On a scaled screen the pointer moves by fractions of a logical pixel: a slow drag must
    move the photo with the hand (rounding each step stood still at 2x, ran ahead at 1.5x)."""
    w = window
    canvas = w.canvas
    vp = canvas.viewport()
    middle = Qt.MouseButton.MiddleButton

    def send(kind, pos, button, buttons):
        ev = QMouseEvent(kind, pos, vp.mapToGlobal(pos), button, buttons, Mod.NoModifier)
        QApplication.sendEvent(vp, ev)

    for ratio in (2.0, 1.5, 1.25):
        canvas.centerOn(W / 2, H / 2)  # room to scroll 200 px
        start = QPointF(600.0, 300.0)
        grabbed = canvas.to_image(start)
        h0 = canvas.horizontalScrollBar().value()
        send(QEvent.Type.MouseButtonPress, start, middle, middle)
        pos = start
        for i in range(int(200 * ratio)):  # one device pixel per event, 200 logical pixels left
            pos = QPointF(start.x() - (i + 1) / ratio, start.y())
            send(QEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton, middle)
        send(QEvent.Type.MouseButtonRelease, pos, middle, Qt.MouseButton.NoButton)
        assert abs(canvas.horizontalScrollBar().value() - h0 - 200) <= 1, ratio
        assert abs(canvas.to_image(pos).x() - grabbed.x()) <= 1, ratio


def test_zoom_out_at_fit_never_zooms_into_a_very_long_photo(shown_window):
    """Fit needs less than the smallest zoom for a 26,000 px tall photo: Zoom Out there stays at
    Fit (it jumped in to the smallest zoom, and the photo no longer fitted)."""
    w = shown_window(Document(np.full((26000, 400, 3), 200, np.uint8)), size=(640, 420))
    canvas = w.canvas
    fit = canvas.zoom
    assert fit < MIN_ZOOM
    w.zoom_out_action.trigger()
    assert canvas.zoom == pytest.approx(fit)
    _wheel(w, QPointF(200, 150), angle=(0, -120), mods=Mod.ControlModifier)
    assert canvas.zoom == pytest.approx(fit)
    w.zoom_in_action.trigger()  # and in again, from there
    assert canvas.zoom == pytest.approx(fit * ZOOM_STEP)
    w.zoom_out_action.trigger()
    assert canvas.zoom == pytest.approx(fit)
    # a Zoom Out (or a Ctrl+wheel) that changed nothing left Fit: the zoom no longer followed
    # the window
    w.fit_action.trigger()
    w.zoom_out_action.trigger()
    _wheel(w, QPointF(200, 150), angle=(0, -120), mods=Mod.ControlModifier)
    w.resize(900, 700)
    QApplication.processEvents()
    assert canvas.zoom > fit * 1.5


def test_actual_size_leaves_fit_even_where_fit_is_100_percent(shown_window):
    """A small photo in a large window: Fit is 100 %, and Actual Size must still stop the zoom
    following the window (it did until a no-op step was told apart from Actual Size)."""
    w = shown_window(Document(np.zeros((600, 800, 3), np.uint8)), size=(1400, 1000))
    canvas = w.canvas
    assert canvas.zoom == pytest.approx(canvas.actual_zoom)
    w.actual_size_action.trigger()
    w.resize(700, 500)
    QApplication.processEvents()
    assert canvas.zoom == pytest.approx(canvas.actual_zoom)


def test_a_pan_stopped_at_the_photos_edge_moves_back_at_once(window):
    """Dragged past the end of the scroll bar, the way back moves the photo with the hand at
    once (it waited until the pointer was back over the point it had grabbed)."""
    w = window
    canvas = w.canvas
    vp = canvas.viewport()
    middle = Qt.MouseButton.MiddleButton
    bar = canvas.horizontalScrollBar()
    bar.setValue(bar.maximum() - 100)  # 100 px of room to the right

    def send(kind, pos, button, buttons):
        QApplication.sendEvent(
            vp, QMouseEvent(kind, pos, vp.mapToGlobal(pos), button, buttons, Mod.NoModifier)
        )

    send(QEvent.Type.MouseButtonPress, QPointF(700, 300), middle, middle)
    for x in range(690, 299, -10):  # 400 px left: the photo stops after 100
        send(QEvent.Type.MouseMove, QPointF(x, 300), Qt.MouseButton.NoButton, middle)
    assert bar.value() == bar.maximum()
    for x in range(310, 451, 10):  # 150 px back
        send(QEvent.Type.MouseMove, QPointF(x, 300), Qt.MouseButton.NoButton, middle)
    send(QEvent.Type.MouseButtonRelease, QPointF(450, 300), middle, Qt.MouseButton.NoButton)
    assert bar.value() == bar.maximum() - 150
