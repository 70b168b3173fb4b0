"""A QGraphicsView that zooms and scrolls like a photo editor: the wheel scrolls (Shift+wheel
sideways), Ctrl+wheel and a trackpad pinch zoom about the pointer, a trackpad scrolls by its
exact pixels; with :attr:`ZoomView.wheel_zooms` (the "Mouse wheel zooms" preference) the plain
wheel zooms instead. Fit to window follows resizes. The canvas (:mod:`.canvas`) builds on it;
the modifiers come from :mod:`.canvas_keys`, the table Help > Keyboard Shortcuts lists."""

from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QNativeGestureEvent, QResizeEvent, QTransform, QWheelEvent
from PySide6.QtWidgets import QApplication, QGraphicsView, QWidget

from .canvas_keys import SIDEWAYS_MODIFIER, ZOOM_MODIFIER

__all__ = ["MAX_ZOOM", "MIN_ZOOM", "ZOOM_STEP", "ZoomView"]

MIN_ZOOM = 1 / 64
MAX_ZOOM = 32.0
ZOOM_STEP = 1.25
"""One wheel notch, or one Zoom In / Zoom Out."""
PIXELS_PER_ZOOM_STEP = 60.0
"""A trackpad's pixel scroll that counts as one :data:`ZOOM_STEP` when it zooms."""


DEVICE_TIE = 1e-6
"""Device pixels added before rounding an offset half up: the painter's transform carries float
noise (-189.0000000001 logical for the view's -189, -283.5 device pixels at 150%), which sent
the drawn photo to -284 and the pointer's mapping to -283: a click at 125% zoom marked the row
above the one shown."""


def on_device_pixels(world: QTransform, ratio: float, origin: QPointF | None = None) -> QTransform:
    """``world`` (a view's transform, in logical pixels) with its offset rounded to whole device
    pixels (``ratio`` of them to a logical one) of the window, as the photo and the hole overlay
    are drawn. ``origin``: where the view's viewport sits in its window's backing store (logical
    pixels; a 1 px frame and a 51 px bar above put it on half a device pixel at 150%).
    On a 125% or 150% display the view's offset (whole logical pixels) falls on half a device
    pixel at every other scroll position, where Qt's raster drawing rounded the photo and the
    overlay's tiles apart: the overlay showed one device pixel right of and below the pixels it
    marks (42% of a random mask's device pixels at 150%, 100% zoom); rounded within the viewport
    alone, the window's half pixel did the same (41%) and a click marked the pixel up and left of
    the one shown. A rotated, sheared or projective transform is returned as it is."""
    if world.m12() or world.m21() or world.m13() or world.m23() or not ratio:
        return world
    ox, oy = (origin.x(), origin.y()) if origin is not None else (0.0, 0.0)
    # half up, never half to even: a scroll of whole device pixels, which Qt makes by copying the
    # pixels on screen, must move the drawn photo as far (round() put 4.5 on 4 and 7.5 on 8: a
    # 2 px scroll at 150% moved it 4 device px while the copy moved 3)
    dx = math.floor((world.dx() + ox) * ratio + 0.5 + DEVICE_TIE) / ratio - ox
    dy = math.floor((world.dy() + oy) * ratio + 0.5 + DEVICE_TIE) / ratio - oy
    return QTransform(world.m11(), 0.0, 0.0, world.m22(), dx, dy)


class ZoomView(QGraphicsView):
    """Zoom (a uniform scale, :attr:`zoom`), scrolling and fit for :meth:`content_rect` (the
    photo).

    Signal: ``zoom_changed(float)``."""

    zoom_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self._fit_mode = True
        self._wheel_zooms = False

    def content_rect(self) -> QRectF | None:
        """What :meth:`fit` shows, in scene coordinates; None: nothing to show (the wheel and
        gestures do nothing). Default: the scene's rectangle, when not empty."""
        rect = self.sceneRect()
        return None if rect.isEmpty() else rect

    def _has_content(self) -> bool:
        return self.content_rect() is not None

    def photo_moved(self, pointer: QPointF) -> None:
        """The photo moved under a pointer that did not (wheel, pinch): what follows the pointer
        follows it now. ``pointer``: viewport coordinates."""

    # ------------------------------------------------------------------ coordinates and zoom
    def to_image(self, pos: QPointF) -> QPointF:
        """Viewport coordinates -> continuous image coordinates (sub-pixel exact)."""
        inverse, _ = self.viewportTransform().inverted()
        return inverse.map(QPointF(pos))

    def from_image(self, x: float, y: float) -> QPointF:
        return self.viewportTransform().map(QPointF(x, y))

    def pointed_at(self, pos: QPointF) -> QPointF:
        """The image point a pointer at viewport position ``pos`` points at: the centre of the
        screen pixel it is on (a mouse reports that pixel's top-left corner; taken as the point,
        a click of a 1 px brush at 100% fell on the corner of four photo pixels and marked all
        four), through the transform the photo is drawn with (:func:`on_device_pixels`). A
        tablet's sub-pixel position moves by under half a screen pixel."""
        ratio = self.devicePixelRatioF()
        half = 0.5 / ratio
        vp = self.viewport()
        origin = QPointF(vp.mapTo(vp.window(), QPoint(0, 0)))  # where it is drawn in the window
        drawn, _ = on_device_pixels(self.viewportTransform(), ratio, origin).inverted()
        return drawn.map(QPointF(pos) + QPointF(half, half))

    @property
    def zoom(self) -> float:
        """Photo pixels per logical pixel of the view (the transform's scale)."""
        return self.transform().m11()

    @property
    def actual_zoom(self) -> float:
        """The :attr:`zoom` that shows one photo pixel per pixel of the screen: 1 / the screen's
        device pixel ratio (0.5 on a 2x "Retina" screen, whose logical pixel is 2x2 of its own)."""
        return 1.0 / max(self.devicePixelRatioF(), 1e-6)

    @property
    def screen_zoom(self) -> float:
        """Photo pixels per screen pixel, what the window shows as the zoom (100 % = one each)."""
        return self.zoom / self.actual_zoom

    def set_zoom(self, zoom: float, anchor: QPointF | None = None, *, step: bool = False) -> None:
        """Zoom to ``zoom`` keeping the image point under ``anchor`` (viewport coordinates,
        default the centre) where it is. The zoom stays within :data:`MIN_ZOOM` (or Fit's zoom,
        where a very long photo needs less to fit) and :data:`MAX_ZOOM`, and a step never goes
        the other way (Zoom Out at Fit below :data:`MIN_ZOOM` stays at Fit). ``step``: a zoom
        step (Zoom In/Out, the wheel, a pinch) that the limits leave where it is does nothing, so
        Fit keeps following the window."""
        lo = min(MIN_ZOOM, self._fit_zoom() or MIN_ZOOM, self.zoom)
        zoom = min(max(zoom, lo), max(MAX_ZOOM, self.zoom))
        if step and math.isclose(zoom, self.zoom, rel_tol=1e-9):
            return
        if anchor is None:
            anchor = QPointF(self.viewport().width() / 2, self.viewport().height() / 2)
        fixed = self.to_image(anchor)
        self._fit_mode = False
        self.resetTransform()
        self.scale(zoom, zoom)
        moved = self.from_image(fixed.x(), fixed.y()) - anchor
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + round(moved.x()))
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + round(moved.y()))
        self.zoom_changed.emit(self.zoom)

    def zoom_in(self) -> None:
        self.set_zoom(self.zoom * ZOOM_STEP, step=True)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom / ZOOM_STEP, step=True)

    def actual_size(self) -> None:
        """One photo pixel per screen pixel (on a 2x screen, a zoom of 0.5)."""
        self.set_zoom(self.actual_zoom)

    def _fit_zoom(self) -> float | None:
        """The zoom that shows the whole photo (at most 100 %); None without a photo."""
        rect = self.content_rect()
        if rect is None:
            return None
        vw, vh = max(1, self.viewport().width() - 4), max(1, self.viewport().height() - 4)
        return min(vw / rect.width(), vh / rect.height(), self.actual_zoom)

    def fit(self) -> None:
        """Show the whole photo (never enlarged beyond 100 %, one photo pixel per screen pixel);
        follows window resizes."""
        self._fit_mode = True
        self.resetTransform()
        z = self._fit_zoom()
        rect = self.content_rect()
        if z is not None and rect is not None:
            self.scale(z, z)
            self.centerOn(rect.center())
        self.zoom_changed.emit(self.zoom)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fit_mode:
            self.fit()

    def event(self, event: QEvent) -> bool:
        """Moved to a screen of another pixel ratio: Fit's cap and the zoom shown (both count that
        screen's pixels) follow."""
        handled = super().event(event)
        if event.type() == QEvent.Type.DevicePixelRatioChange:
            if self._fit_mode:
                self.fit()
            else:
                self.zoom_changed.emit(self.zoom)
        return handled

    # ------------------------------------------------------------------ wheel and trackpad
    @property
    def wheel_zooms(self) -> bool:
        """The plain wheel zooms (the "Mouse wheel zooms" preference) instead of scrolling."""
        return self._wheel_zooms

    def set_wheel_zooms(self, on: bool) -> None:
        self._wheel_zooms = bool(on)

    def wheelEvent(self, event: QWheelEvent) -> None:
        """The wheel scrolls (Shift: sideways), Ctrl+wheel zooms about the pointer; with
        :attr:`wheel_zooms` the plain wheel zooms too. When the wheel zooms, a trackpad's
        sideways part still scrolls."""
        if not self._has_content():
            return
        mods = event.modifiers()
        angle, pixels = event.angleDelta(), event.pixelDelta()
        if mods & ZOOM_MODIFIER or (self._wheel_zooms and not mods & SIDEWAYS_MODIFIER):
            steps = angle.y() / 120.0 or pixels.y() / PIXELS_PER_ZOOM_STEP
            if steps:
                self.set_zoom(self.zoom * ZOOM_STEP**steps, event.position(), step=True)
            angle, pixels = QPoint(angle.x(), 0), QPoint(pixels.x(), 0)
        elif mods & SIDEWAYS_MODIFIER and not (angle.x() or pixels.x()):
            angle, pixels = QPoint(angle.y(), 0), QPoint(pixels.y(), 0)  # the wheel turned sideways
        self._scroll_by(angle, pixels)
        self.photo_moved(event.position())
        event.accept()

    def _scroll_by(self, angle: QPoint, pixels: QPoint) -> None:
        """Scroll by a wheel's turn: a trackpad's exact pixels, else the platform's lines per
        notch (120 eighths of a degree), one scroll-bar step each."""
        lines = QApplication.wheelScrollLines()
        for bar, a, p in (
            (self.horizontalScrollBar(), angle.x(), pixels.x()),
            (self.verticalScrollBar(), angle.y(), pixels.y()),
        ):
            moved = p if not pixels.isNull() else a / 120.0 * lines * bar.singleStep()
            if moved:
                bar.setValue(bar.value() - round(moved))

    def viewportEvent(self, event: QEvent) -> bool:
        if isinstance(event, QNativeGestureEvent) and self._native_gesture(event):
            return True
        return super().viewportEvent(event)

    def _native_gesture(self, event: QNativeGestureEvent) -> bool:
        """A trackpad pinch zooms about the fingers; a smart zoom (two-finger double tap on
        macOS) switches between fit and 100 %. Returns whether the gesture was used."""
        kind = event.gestureType()
        if kind == Qt.NativeGestureType.ZoomNativeGesture and self._has_content():
            # The value is the change of scale: 0.1 is 10 % larger.
            self.set_zoom(self.zoom * max(1.0 + event.value(), 0.01), event.position(), step=True)
        elif kind == Qt.NativeGestureType.SmartZoomNativeGesture and self._has_content():
            if self._fit_mode:
                self.set_zoom(self.actual_zoom, event.position())
            else:
                self.fit()
        else:
            return False
        self.photo_moved(event.position())
        event.accept()
        return True
