"""The canvas: a QGraphicsView showing the photo, the hole mask as a translucent overlay, the
brush cursor and the rectangle band; zoom, pan and the painting tools.

Built for large photos: the photo item draws straight from the document's array (a QImage that
shares its memory, no conversion), the overlay is kept in 256x256 tiles that exist only where
there is hole and are refreshed only inside the box an edit touched, and repaints cover only
the exposed part of the view. A stroke on a 24-megapixel photo therefore costs what the brush
touches, not what the photo weighs.

The split before/after view draws the original left of a divider and the current photo right of
it, each straight from its shared QImage and only where exposed; moving the divider repaints the
band it swept.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetrics,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPen,
    QRadialGradient,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QStyleOptionGraphicsItem,
    QWidget,
)

from ..document import Document, Edit, Rect
from .qimage import wrap_rgb
from .tools import BrushTool, EraserTool, RectangleTool, Tool, ToolKind

MIN_ZOOM = 1 / 64
MAX_ZOOM = 32.0
ZOOM_STEP = 1.25
TILE = 256
OVERLAY_RGBA = (255, 36, 72, 140)  # the hole colour: a translucent red
DIVIDER_DARK = QColor(0, 0, 0, 220)  # the split divider: a dark and a light screen pixel side by
DIVIDER_LIGHT = QColor(255, 255, 255, 230)  # side, so it shows on any photo
LABEL_PX = 11  # the "Before" / "After" labels' font size, in screen pixels
LABEL_PAD, LABEL_GAP, LABEL_TOP = 5, 6, 8  # screen pixels: padding, gap to the divider, from the top


def _premultiplied_argb(r: int, g: int, b: int, a: int) -> np.uint32:
    return np.uint32((a << 24) | ((r * a // 255) << 16) | ((g * a // 255) << 8) | (b * a // 255))


def _exposed(option: QStyleOptionGraphicsItem, width: int, height: int) -> Rect:
    r = option.exposedRect
    return Rect(math.floor(r.left()), math.floor(r.top()), math.ceil(r.right()), math.ceil(r.bottom())).clip(
        width, height
    )


def _smooth_when_shrunk(painter: QPainter) -> None:
    scale = painter.worldTransform().m11()
    # Zoomed out: filter; zoomed in: show crisp pixels, as photo editors do.
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, scale < 1.0)


class PhotoItem(QGraphicsItem):
    """The photo at scene coordinates = image pixel coordinates. Shares the arrays' memory."""

    def __init__(self) -> None:
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self._arrays: dict[str, np.ndarray] = {}
        self._images: dict[str, QImage] = {}
        self._which = "current"
        self._w = self._h = 0
        self._split: float | None = None  # image x of the before/after divider, None: no split
        self._scale: float | None = None  # the zoom of the last paint (screen px per image px)
        self._label_font = QFont()
        self._label_font.setPixelSize(LABEL_PX)
        fm = QFontMetrics(self._label_font)
        self._label_size = (
            max(fm.horizontalAdvance(t) for t in ("Before", "After")) + 2 * LABEL_PAD,
            fm.height() + LABEL_PAD,
        )

    def set_arrays(self, current: np.ndarray | None, original: np.ndarray | None) -> None:
        self.prepareGeometryChange()
        self._arrays = {}
        self._images = {}
        if current is not None and original is not None:
            self._arrays = {"current": current, "original": original}
            self._images = {k: wrap_rgb(v) for k, v in self._arrays.items()}
            self._h, self._w = current.shape[:2]
        else:
            self._w = self._h = 0
        if self._split is not None:
            self._split = min(self._split, float(self._w))
        self.update()

    def show_original(self, on: bool) -> None:
        which = "original" if on else "current"
        if which != self._which:
            self._which = which
            self.update()

    @property
    def split(self) -> float | None:
        """Image x of the before/after divider (original left, current right), None: off."""
        return self._split

    def set_split(self, x: float | None) -> None:
        """Show the original left of image column ``x`` and the current photo right of it,
        with a divider between (clamped to the photo); None shows one photo again."""
        if x is not None:
            x = min(max(float(x), 0.0), float(self._w))
        if x == self._split:
            return
        old, self._split = self._split, x
        if old is None or x is None or not self._scale:
            self.update()
            return
        # Only the band the divider swept changes, plus its lines and labels (screen pixels).
        margin = (LABEL_GAP + self._label_size[0] + 2) / self._scale
        lo, hi = min(old, x) - margin, max(old, x) + margin
        self.update(QRectF(lo, 0, hi - lo, self._h))

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self._w, self._h)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if not self._images:
            return
        r = _exposed(option, self._w, self._h)
        if r.empty:
            return
        self._scale = painter.worldTransform().m11()
        _smooth_when_shrunk(painter)
        s = self._split
        if s is None:
            rect = QRectF(r.x0, r.y0, r.width, r.height)
            painter.drawImage(rect, self._images[self._which], rect)
            return
        # Each side is clipped at the divider (one rounding, so no gap and no overlap on screen)
        # and drawn only where exposed.
        sides = (
            ("original", Rect(r.x0, r.y0, min(r.x1, math.ceil(s)), r.y1), QRectF(0, 0, s, self._h)),
            ("current", Rect(max(r.x0, math.floor(s)), r.y0, r.x1, r.y1), QRectF(s, 0, self._w - s, self._h)),
        )
        for key, part, clip in sides:
            if part.empty or clip.width() <= 0:
                continue
            painter.save()
            painter.setClipRect(clip, Qt.ClipOperation.IntersectClip)
            rect = QRectF(part.x0, part.y0, part.width, part.height)
            painter.drawImage(rect, self._images[key], rect)
            painter.restore()
        self._paint_divider(painter, s)

    def _paint_divider(self, painter: QPainter, s: float) -> None:
        """The divider and its labels, in screen pixels (the same at any zoom), inside the photo."""
        t = painter.worldTransform()
        top_left, bottom_right = t.map(QPointF(0, 0)), t.map(QPointF(self._w, self._h))
        left, top = round(top_left.x()), round(top_left.y())
        right, bottom = round(bottom_right.x()), round(bottom_right.y())
        if right - left < 2 or bottom <= top:
            return
        b = min(max(round(t.map(QPointF(s, 0)).x()), left + 1), right - 1)  # first "after" column
        painter.save()
        painter.resetTransform()
        painter.fillRect(QRect(b - 1, top, 1, bottom - top), DIVIDER_DARK)
        painter.fillRect(QRect(b, top, 1, bottom - top), DIVIDER_LIGHT)
        lw, lh = self._label_size
        painter.setFont(self._label_font)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        for text, x in (("Before", b - LABEL_GAP - lw), ("After", b + LABEL_GAP)):
            box = QRect(x, top + LABEL_TOP, lw, lh)
            if box.left() < left or box.right() >= right or box.bottom() >= bottom:
                continue  # no room inside the photo on that side
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(0, 0, 0, 150))
            painter.drawRoundedRect(QRectF(box), 3, 3)
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()


class MaskOverlayItem(QGraphicsItem):
    """The hole mask as a translucent colour, in tiles allocated only where there is hole."""

    def __init__(self) -> None:
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self._w = self._h = 0
        self._tiles: dict[tuple[int, int], tuple[np.ndarray, QImage]] = {}
        self._colour = _premultiplied_argb(*OVERLAY_RGBA)

    @property
    def tile_count(self) -> int:
        return len(self._tiles)

    def reset(self, mask: np.ndarray | None) -> None:
        self.prepareGeometryChange()
        self._tiles.clear()
        if mask is None:
            self._w = self._h = 0
        else:
            self._h, self._w = mask.shape
            box = Rect.bounding(mask)
            if box is not None:
                self.refresh(mask, box)
        self.update()

    def refresh(self, mask: np.ndarray, rect: Rect) -> None:
        """Re-render the tiles under ``rect`` from ``mask`` and schedule a repaint of it."""
        rect = rect.clip(self._w, self._h)
        if rect.empty:
            return
        for ty in range(rect.y0 // TILE, (rect.y1 - 1) // TILE + 1):
            for tx in range(rect.x0 // TILE, (rect.x1 - 1) // TILE + 1):
                tile = Rect(
                    tx * TILE, ty * TILE, min((tx + 1) * TILE, self._w), min((ty + 1) * TILE, self._h)
                )
                part = Rect(
                    max(rect.x0, tile.x0), max(rect.y0, tile.y0), min(rect.x1, tile.x1), min(rect.y1, tile.y1)
                )
                sub = mask[part.slices]
                entry = self._tiles.get((ty, tx))
                if entry is None:
                    if not sub.any():
                        continue
                    data = np.zeros((tile.height, tile.width), dtype=np.uint32)
                    img = QImage(
                        data.data,
                        tile.width,
                        tile.height,
                        data.strides[0],
                        QImage.Format.Format_ARGB32_Premultiplied,
                    )
                    entry = self._tiles[(ty, tx)] = (data, img)
                data = entry[0]
                local = Rect(part.x0 - tile.x0, part.y0 - tile.y0, part.x1 - tile.x0, part.y1 - tile.y0)
                data[local.slices] = np.where(sub, self._colour, np.uint32(0))
                if not data.any():
                    del self._tiles[(ty, tx)]
        self.update(QRectF(rect.x0, rect.y0, rect.width, rect.height))

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self._w, self._h)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if not self._tiles:
            return
        r = _exposed(option, self._w, self._h)
        if r.empty:
            return
        _smooth_when_shrunk(painter)
        for ty in range(r.y0 // TILE, (r.y1 - 1) // TILE + 1):
            for tx in range(r.x0 // TILE, (r.x1 - 1) // TILE + 1):
                entry = self._tiles.get((ty, tx))
                if entry is None:
                    continue
                data, img = entry
                target = QRectF(tx * TILE, ty * TILE, data.shape[1], data.shape[0])
                painter.drawImage(target, img, QRectF(0, 0, data.shape[1], data.shape[0]))


class BrushCursorItem(QGraphicsItem):
    """A round, soft-edged preview of the brush, in image pixels (it scales with the zoom)."""

    def __init__(self) -> None:
        super().__init__()
        self._radius = 10.0
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)

    def set_radius(self, radius: float) -> None:
        if radius != self._radius:
            self.prepareGeometryChange()
            self._radius = radius

    @property
    def radius(self) -> float:
        return self._radius

    def boundingRect(self) -> QRectF:
        r = self._radius + 2
        return QRectF(-r, -r, 2 * r, 2 * r)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        r = self._radius
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        grad = QRadialGradient(QPointF(0, 0), r)
        grad.setColorAt(0.0, QColor(255, 255, 255, 0))
        grad.setColorAt(0.75, QColor(255, 255, 255, 30))
        grad.setColorAt(1.0, QColor(255, 255, 255, 90))
        painter.setBrush(QBrush(grad))
        dark = QPen(QColor(0, 0, 0, 200), 0)  # cosmetic: one screen pixel at any zoom
        painter.setPen(dark)
        painter.drawEllipse(QPointF(0, 0), r, r)
        light = QPen(QColor(255, 255, 255, 220), 0, Qt.PenStyle.DashLine)
        painter.setPen(light)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawEllipse(QPointF(0, 0), r, r)


class Canvas(QGraphicsView):
    """Shows a :class:`Document` and edits its mask with the current tool.

    Signals: ``edit_made(Document, Edit)`` when a tool finishes (the edit is applied to that
    document; push it to its undo stack), ``zoom_changed(float)``, ``compare_changed(bool)`` (the original is shown or not),
    ``split_changed(bool)`` (the split before/after view is on or not). Compare and split are
    never on together.
    """

    edit_made = Signal(object, object)
    zoom_changed = Signal(float)
    compare_changed = Signal(bool)
    split_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.scene().setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        self.setBackgroundBrush(QColor(46, 46, 50))
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setDragMode(QGraphicsView.DragMode.NoDrag)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAcceptDrops(False)  # files dropped on the canvas go to the main window
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)

        self.photo = PhotoItem()
        self.overlay = MaskOverlayItem()
        self.overlay.setZValue(1)
        self.band = QGraphicsRectItem()
        self.band.setZValue(2)
        pen = QPen(QColor(255, 255, 255), 0, Qt.PenStyle.DashLine)
        self.band.setPen(pen)
        self.band.setBrush(QColor(*OVERLAY_RGBA[:3], 90))
        self.band.setVisible(False)
        self.cursor_item = BrushCursorItem()
        self.cursor_item.setZValue(3)
        self.cursor_item.setVisible(False)
        for item in (self.photo, self.overlay, self.band, self.cursor_item):
            self.scene().addItem(item)

        self.doc: Document | None = None
        self._brush_size = 40
        self._tools: dict[ToolKind, Tool] = {
            ToolKind.BRUSH: BrushTool(lambda: self._brush_size),
            ToolKind.ERASER: EraserTool(lambda: self._brush_size),
            ToolKind.RECTANGLE: RectangleTool(self.band),
        }
        self._tool = self._tools[ToolKind.BRUSH]
        self._dragging = False  # a tool drag is in progress
        self._panning: QPointF | None = None
        self._space = False
        self._fit_mode = True
        self._editable = True
        self._comparing = False
        self._compare_held = False  # shown while the compare key is held (not the toggle)
        self._resume_split = False  # the held compare interrupted the split view: back after it
        self._splitting = False
        self._split_fraction = 0.5  # of the photo width; kept while the split is off
        self._split_dragging = False  # the divider is being dragged
        self.cursor_item.set_radius(self._brush_size / 2)
        self._update_cursor_shape()

    # ------------------------------------------------------------------ document
    def set_document(self, doc: Document | None) -> None:
        self.finish_drag()
        if self.doc is not None:
            self.doc.mask_changed.disconnect(self._on_mask_changed)
            self.doc.image_changed.disconnect(self._on_image_changed)
        self.doc = doc
        self.set_comparing(False)
        self.set_split(False)
        if doc is None:
            self.photo.set_arrays(None, None)
            self.overlay.reset(None)
            self.scene().setSceneRect(QRectF())
        else:
            self.photo.set_arrays(doc.image, doc.original)
            self.overlay.reset(doc.mask)
            doc.mask_changed.connect(self._on_mask_changed)
            doc.image_changed.connect(self._on_image_changed)
            self.scene().setSceneRect(QRectF(0, 0, doc.width, doc.height))
        self.fit()
        self.viewport().update()

    def _on_mask_changed(self, rect: Rect) -> None:
        assert self.doc is not None
        self.overlay.refresh(self.doc.mask, rect)

    def _on_image_changed(self, rect: Rect) -> None:
        self.photo.update(QRectF(rect.x0, rect.y0, rect.width, rect.height))

    # ------------------------------------------------------------------ tools
    @property
    def tool(self) -> ToolKind:
        return self._tool.kind

    def set_tool(self, kind: ToolKind) -> None:
        self.finish_drag()
        self._tool = self._tools[kind]
        self._update_cursor_shape()

    @property
    def brush_size(self) -> int:
        return self._brush_size

    def set_brush_size(self, diameter: int) -> None:
        self._brush_size = int(min(max(diameter, 1), 1000))
        self.cursor_item.set_radius(self._brush_size / 2)

    def set_editable(self, on: bool) -> None:
        """While a fill runs the mask must not change: the view still zooms and pans."""
        if not on:
            self.finish_drag()
        self._editable = on
        self._update_cursor_shape()

    @property
    def dragging(self) -> bool:
        """A tool drag (mouse button held) is in progress."""
        return self._dragging

    def finish_drag(self) -> None:
        """End the drag in progress now: a brush stroke so far becomes its undo step
        (``edit_made``), a rectangle being dragged is dropped; the rest of the drag does
        nothing. Call it before any other change of the document (undo, redo, clear, fill,
        another photo): a stroke's undo step must not span other edits."""
        if not self._dragging:
            return
        self._dragging = False
        doc = self.doc
        if doc is not None:
            edit = self._tool.cancel(doc)
            if edit is not None:
                self.edit_made.emit(doc, edit)

    def _update_cursor_shape(self) -> None:
        if self._panning is not None:
            shape = Qt.CursorShape.ClosedHandCursor
        elif self._space:
            shape = Qt.CursorShape.OpenHandCursor
        elif self._splitting:
            shape = Qt.CursorShape.SizeHorCursor
        elif not self._editable or self.doc is None:
            shape = Qt.CursorShape.ArrowCursor
        else:
            shape = Qt.CursorShape.CrossCursor
        self.viewport().setCursor(shape)
        if not self._shows_brush():
            self.cursor_item.setVisible(False)

    def _shows_brush(self) -> bool:
        return (
            self._tool.shows_brush
            and self._editable
            and self.doc is not None
            and not self._space
            and not self._splitting
        )

    # ------------------------------------------------------------------ compare
    @property
    def comparing(self) -> bool:
        return self._comparing

    def set_comparing(self, on: bool) -> None:
        """Show the photo as it was opened instead of the current one (and hide the mask)."""
        if not on:
            self._compare_held = False
            self._resume_split = False
        if on == self._comparing:
            return
        if on:
            self.set_split(False)
        self._comparing = on
        self.photo.show_original(on)
        self.overlay.setVisible(not on and not self._splitting)
        self.compare_changed.emit(on)

    def _end_held_compare(self) -> None:
        resume = self._resume_split
        self.set_comparing(False)
        if resume:
            self.set_split(True)

    # ------------------------------------------------------------------ split before/after
    @property
    def splitting(self) -> bool:
        return self._splitting

    @property
    def split_fraction(self) -> float:
        """Where the divider is, as a fraction of the photo width (0 left edge, 1 right edge)."""
        return self._split_fraction

    def set_split_fraction(self, fraction: float) -> None:
        self._split_fraction = min(max(float(fraction), 0.0), 1.0)
        if self._splitting and self.doc is not None:
            self.photo.set_split(self._split_fraction * self.doc.width)

    def set_split(self, on: bool) -> None:
        """Show the original left of a divider and the current photo right of it (the mask
        hidden, no painting: a left drag moves the divider). Needs a photo; ends compare."""
        if on == self._splitting or (on and self.doc is None):
            return
        if on:
            self.finish_drag()  # a stroke in progress becomes its undo step first
            self.set_comparing(False)
        self._splitting = on
        self._split_dragging = False
        self.photo.set_split(self._split_fraction * self.doc.width if on and self.doc is not None else None)
        self.overlay.setVisible(not on and not self._comparing)
        self._update_cursor_shape()
        self.split_changed.emit(on)

    def _move_divider(self, pos: QPointF) -> None:
        assert self.doc is not None
        self.set_split_fraction(self.to_image(pos).x() / self.doc.width)

    # ------------------------------------------------------------------ coordinates and zoom
    def to_image(self, pos: QPointF) -> QPointF:
        """Viewport coordinates -> continuous image coordinates (sub-pixel exact)."""
        inverse, _ = self.viewportTransform().inverted()
        return inverse.map(QPointF(pos))

    def from_image(self, x: float, y: float) -> QPointF:
        return self.viewportTransform().map(QPointF(x, y))

    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Zoom to ``zoom`` keeping the image point under ``anchor`` (viewport coordinates,
        default the centre) where it is."""
        zoom = min(max(zoom, MIN_ZOOM), MAX_ZOOM)
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
        self.set_zoom(self.zoom * ZOOM_STEP)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom / ZOOM_STEP)

    def actual_size(self) -> None:
        self.set_zoom(1.0)

    def fit(self) -> None:
        """Show the whole photo (never enlarged beyond 100 %); follows window resizes."""
        self._fit_mode = True
        if self.doc is None:
            self.resetTransform()
        else:
            vw, vh = max(1, self.viewport().width() - 4), max(1, self.viewport().height() - 4)
            z = min(vw / self.doc.width, vh / self.doc.height, 1.0)
            self.resetTransform()
            self.scale(z, z)
            self.centerOn(self.doc.width / 2, self.doc.height / 2)
        self.zoom_changed.emit(self.zoom)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fit_mode:
            self.fit()

    def wheelEvent(self, event: QWheelEvent) -> None:
        if self.doc is None:
            return
        steps = event.angleDelta().y() / 120.0
        if steps == 0:
            steps = event.pixelDelta().y() / 60.0
        if steps:
            self.set_zoom(self.zoom * ZOOM_STEP**steps, event.position())
        event.accept()

    # ------------------------------------------------------------------ mouse
    def _start_pan(self, pos: QPointF) -> None:
        self._panning = QPointF(pos)
        self._update_cursor_shape()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and self._space):
            self._start_pan(event.position())
            event.accept()
            return
        if button == Qt.MouseButton.LeftButton and self._splitting and self.doc is not None:
            self._split_dragging = True
            self._move_divider(event.position())
            event.accept()
            return
        if (
            button == Qt.MouseButton.LeftButton
            and self.doc is not None
            and self._editable
            and not self._comparing
            and not self._splitting
        ):
            self.finish_drag()  # a press without a release (the release went elsewhere)
            p = self.to_image(event.position())
            self._dragging = True
            self._tool.press(self.doc, p.x(), p.y())
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        p = self.to_image(pos)
        if self._panning is not None:
            delta = pos - self._panning
            self._panning = QPointF(pos)
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - round(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(delta.y()))
            event.accept()
            return
        if self._split_dragging and self.doc is not None:
            self._move_divider(pos)
            event.accept()
            return
        if self._shows_brush():
            self.cursor_item.setPos(p)
            self.cursor_item.setVisible(True)
        if self._dragging and self.doc is not None:
            self._tool.move(self.doc, p.x(), p.y())
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._panning is not None and event.button() in (
            Qt.MouseButton.MiddleButton,
            Qt.MouseButton.LeftButton,
        ):
            self._panning = None
            self._update_cursor_shape()
            event.accept()
            return
        if self._split_dragging and event.button() == Qt.MouseButton.LeftButton:
            self._split_dragging = False
            if self.doc is not None:
                self._move_divider(event.position())
            event.accept()
            return
        if self._dragging and event.button() == Qt.MouseButton.LeftButton and self.doc is not None:
            self._dragging = False
            doc = self.doc
            p = self.to_image(event.position())
            edit: Edit | None = self._tool.release(doc, p.x(), p.y())
            if edit is not None:
                self.edit_made.emit(doc, edit)
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def leaveEvent(self, event) -> None:
        self.cursor_item.setVisible(False)
        super().leaveEvent(event)

    # ------------------------------------------------------------------ keys
    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self._space = True
                self._update_cursor_shape()
            event.accept()
            return
        if event.key() == Qt.Key.Key_Backslash:
            if not event.isAutoRepeat() and self.doc is not None and not self._comparing:
                self.finish_drag()
                resume = self._splitting  # held compare shows the whole original, then the split again
                self.set_comparing(True)
                self._compare_held = True
                self._resume_split = resume
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self._space = False
                self._update_cursor_shape()
            event.accept()
            return
        if event.key() == Qt.Key.Key_Backslash:
            if not event.isAutoRepeat() and self._compare_held:
                self._end_held_compare()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def focusOutEvent(self, event) -> None:
        # A key released elsewhere must not leave the view stuck in pan or compare mode.
        self._space = False
        if self._compare_held:
            self._end_held_compare()
        self._update_cursor_shape()
        super().focusOutEvent(event)

    # ------------------------------------------------------------------ empty state
    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        if self.doc is not None:
            return
        painter.save()
        painter.resetTransform()
        painter.setPen(QColor(190, 190, 195))
        painter.drawText(
            self.viewport().rect(),
            Qt.AlignmentFlag.AlignCenter,
            "Open a photo (Ctrl+O), drop one here, or paste one (Ctrl+V)",
        )
        painter.restore()
