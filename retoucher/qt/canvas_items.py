"""The canvas's scene items, in image pixel coordinates: the photo (and the split before/after
view), the hole mask as a translucent overlay, and the brush cursor.

Built for large photos: the photo item draws straight from the document's array (a QImage that
shares its memory, no conversion), zoomed out below 50 % from halved copies of it
(:mod:`.pyramid`: averaged, so fine scratches stay visible at Fit), the overlay is kept in 256x256 tiles that exist only where
there is hole and are refreshed only inside the box an edit touched, and every item paints only
the exposed part of the view. A stroke on a 24-megapixel photo therefore costs what the brush
touches, not what the photo weighs.

A photo with transparent pixels is shown over a grey checkerboard (copies composited by its
alpha, kept in step with edits inside the box they touch): its hidden colour, often black, was
shown as if it were the photo, and a JPEG saved from it (flattened onto white) differed from
what the window showed.

The split view draws the original left of a divider and the current photo right of it, each
straight from its shared QImage and only where exposed; moving the divider repaints the band it
swept.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetrics,
    QImage,
    QPainter,
    QPen,
    QRadialGradient,
)
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from ..document import Rect
from .pyramid import Pyramid, halved_any, level_for
from .qimage import wrap_rgb
from .zoom_view import on_device_pixels

__all__ = [
    "CHECKER",
    "OVERLAY_RGBA",
    "TILE",
    "BrushCursorItem",
    "MaskOverlayItem",
    "PhotoItem",
    "over_checkerboard",
]

CHECKER = 8  # image pixels a side of the transparency checkerboard's squares
_CHECKER_GREYS = (204, 153)  # its light and dark squares


def over_checkerboard(rgb: np.ndarray, alpha: np.ndarray, y0: int = 0, x0: int = 0) -> np.ndarray:
    """``rgb`` (uint8 hxwx3) over the checkerboard by ``alpha`` (uint8 hxw), the part of the
    photo whose top-left pixel is (``x0``, ``y0``): the squares stay where they are in the
    photo whatever part is composited."""
    h, w = alpha.shape
    ys = (np.arange(y0, y0 + h) // CHECKER) % 2
    xs = (np.arange(x0, x0 + w) // CHECKER) % 2
    light, dark = _CHECKER_GREYS
    board = np.where((ys[:, None] ^ xs[None, :]) == 0, light, dark).astype(np.uint32)
    a = alpha.astype(np.uint32)[..., None]
    return ((rgb.astype(np.uint32) * a + board[..., None] * (255 - a) + 127) // 255).astype(np.uint8)


TILE = 256
OVERLAY_RGBA = (255, 36, 72, 140)  # the default hole colour: a translucent red
DIVIDER_DARK = QColor(0, 0, 0, 220)  # the split divider: a dark and a light screen pixel side by
DIVIDER_LIGHT = QColor(255, 255, 255, 230)  # side, so it shows on any photo
LABEL_PX = 11  # the "Before" / "After" labels' font size, in screen pixels
LABEL_PAD, LABEL_GAP, LABEL_TOP = 5, 6, 8  # screen pixels: padding, gap to the divider, from the top


def _premultiplied_rgba(r: int, g: int, b: int, a: int) -> np.ndarray:
    return np.array([r * a // 255, g * a // 255, b * a // 255, a], dtype=np.uint8)


# The overlay's tiles are RGBA bytes, which Qt scales through the same code as the photo's RGB
# bytes: as premultiplied ARGB32 words, a tile's pixel edges were rounded otherwise than the
# photo's at zooms like 305 % (a hairline of untinted photo along one side of a hole).
_TILE_FORMAT = QImage.Format.Format_RGBA8888_Premultiplied


def _tile_image(data: np.ndarray) -> QImage:
    """A QImage sharing the memory of an overlay tile (uint8 HxWx4, premultiplied RGBA)."""
    return QImage(data.data, data.shape[1], data.shape[0], data.strides[0], _TILE_FORMAT)


def _label_font() -> QFont:
    font = QFont()
    font.setPixelSize(LABEL_PX)
    return font


def _smooth_when_shrunk(painter: QPainter) -> None:
    # Photo pixels per pixel of the screen (the device's: on a 2x screen the view's scale 0.5 is
    # 100 %). Zoomed out: filter (bilinear, from a copy halved to less than 2:1, see .pyramid);
    # at 100 % and zoomed in: crisp pixels, as photo editors do.
    scale = painter.deviceTransform().m11()
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, scale < 1.0 - 1e-6)
    _on_device_pixels(painter)


def _on_device_pixels(painter: QPainter) -> None:
    """Draw on whole device pixels (:func:`.zoom_view.on_device_pixels`): the photo and the hole
    overlay both paint through here, so they round alike."""
    world, device = painter.worldTransform(), painter.deviceTransform()
    if world.m11():
        ratio = device.m11() / world.m11()
        # the device transform adds where the painted widget sits in the window (its backing
        # store; nothing in a grab of the widget alone): round on the window's device pixels
        origin = QPointF(device.dx() / ratio - world.dx(), device.dy() / ratio - world.dy())
        painter.setWorldTransform(on_device_pixels(world, ratio, origin))


class _PhotoSizedItem(QGraphicsItem):
    """An item as large as the photo (``_w`` x ``_h`` image pixels) that paints only the part
    of it the view exposes."""

    def __init__(self) -> None:
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self._w = self._h = 0

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self._w, self._h)

    def _exposed(self, option: QStyleOptionGraphicsItem) -> Rect:
        """The whole pixels of the photo that this paint must cover."""
        r = option.exposedRect
        return Rect(
            math.floor(r.left()), math.floor(r.top()), math.ceil(r.right()), math.ceil(r.bottom())
        ).clip(self._w, self._h)


class PhotoItem(_PhotoSizedItem):
    """The photo at scene coordinates = image pixel coordinates. Shares the arrays' memory."""

    def __init__(self) -> None:
        super().__init__()
        self._arrays: dict[str, np.ndarray] = {}  # what is drawn (the photos, or composited)
        self._sources: dict[str, np.ndarray] = {}  # the photos
        self._alpha: np.ndarray | None = None  # their transparency, None: opaque
        self._screen: Callable[[np.ndarray], np.ndarray] | None = None  # their colours on screen
        self._images: dict[str, QImage] = {}
        self._pyramids: dict[str, Pyramid] = {}  # halved copies, for drawing zoomed out
        self._which = "current"
        self._split: float | None = None  # image x of the before/after divider, None: no split
        self._scale: float | None = None  # the zoom of the last paint (screen px per image px)
        self._label_font = _label_font()
        fm = QFontMetrics(self._label_font)
        self._label_size = (
            max(fm.horizontalAdvance(t) for t in ("Before", "After")) + 2 * LABEL_PAD,
            fm.height() + LABEL_PAD,
        )

    def set_arrays(
        self,
        current: np.ndarray | None,
        original: np.ndarray | None,
        alpha: np.ndarray | None = None,
        screen: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        """Draw the ``current`` photo and its ``original`` (uint8 HxWx3, shared: never copied
        unless ``alpha``, uint8 HxW, says some pixel is not opaque, or ``screen`` converts their
        colours for the screen: :mod:`retoucher.screen_colours`)."""
        self.prepareGeometryChange()
        self._arrays = {}
        self._sources = {}
        self._images = {}
        self._pyramids = {}
        self._alpha = alpha if alpha is not None and int(alpha.min()) < 255 else None
        self._screen = screen
        if current is not None and original is not None:
            self._sources = {"current": current, "original": original}
            if self._alpha is None and screen is None:
                self._arrays = dict(self._sources)
            else:
                shown = self._shown(current, Rect(0, 0, current.shape[1], current.shape[0]))
                same = original is current or np.array_equal(original, current)  # a photo just opened
                self._arrays = {
                    "current": shown,
                    "original": shown.copy()
                    if same
                    else self._shown(original, Rect(0, 0, original.shape[1], original.shape[0])),
                }
            self._images = {k: wrap_rgb(v) for k, v in self._arrays.items()}
            self._pyramids = {k: Pyramid(v) for k, v in self._arrays.items()}
            self._h, self._w = current.shape[:2]
        else:
            self._w = self._h = 0
        if self._split is not None:
            self._split = min(self._split, float(self._w))
        self.update()

    def _shown(self, source: np.ndarray, rect: Rect) -> np.ndarray:
        """The part ``rect`` of the photo (``source``, those pixels) as drawn: in the screen's
        colours, over the checkerboard where it is transparent."""
        rgb = self._screen(source) if self._screen is not None else source
        if self._alpha is not None:
            rgb = over_checkerboard(rgb, self._alpha[rect.slices], rect.y0, rect.x0)
        return rgb

    def image_changed(self, rect: Rect) -> None:
        """The current photo's array changed inside ``rect`` (a fill, an undo): repaint it, its
        halved copies following."""
        if (self._alpha is not None or self._screen is not None) and "current" in self._arrays:
            rows, cols = rect.slices
            self._arrays["current"][rows, cols] = self._shown(self._sources["current"][rows, cols], rect)
        if "current" in self._pyramids:
            self._pyramids["current"].changed(rect)
        self.update(QRectF(rect.x0, rect.y0, rect.width, rect.height))

    def _draw(self, painter: QPainter, key: str, r: Rect, level: int) -> None:
        """The photo ``key``'s pixels ``r`` where they belong, from its copy halved ``level``
        times (0: the photo itself)."""
        target = QRectF(r.x0, r.y0, r.width, r.height)
        if level == 0:
            painter.drawImage(target, self._images[key], target)
            return
        image, level = self._pyramids[key].image(level)
        k = float(1 << level)
        painter.drawImage(target, image, QRectF(r.x0 / k, r.y0 / k, r.width / k, r.height / k))

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

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if not self._images:
            return
        r = self._exposed(option)
        if r.empty:
            return
        self._scale = painter.worldTransform().m11()
        _smooth_when_shrunk(painter)
        level = level_for(painter.deviceTransform().m11())
        s = self._split
        if s is None:
            self._draw(painter, self._which, r, level)
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
            self._draw(painter, key, part, level)
            painter.restore()
        self._paint_divider(painter, s)

    @staticmethod
    def label_band() -> int:
        """The height of the view's top band (screen pixels) that the labels are drawn in."""
        return LABEL_TOP + QFontMetrics(_label_font()).height() + LABEL_PAD + 2

    def _paint_divider(self, painter: QPainter, s: float) -> None:
        """The divider and its labels, in screen pixels (the same at any zoom), inside the photo
        and the view (a vertical scroll in split mode repaints the labels' band, see
        :meth:`label_band`)."""
        t = painter.worldTransform()
        top_left, bottom_right = t.map(QPointF(0, 0)), t.map(QPointF(self._w, self._h))
        left, top = round(top_left.x()), round(top_left.y())
        right, bottom = round(bottom_right.x()), round(bottom_right.y())
        if right - left < 2 or bottom <= top:
            return
        x = t.map(QPointF(s, 0)).x()
        b = min(max(round(x), left + 1), right - 1)  # first "after" column
        # the two lines one device pixel wide each (two on a 2x display, where 1 is one logical px)
        ratio = painter.device().devicePixelRatioF() or 1.0
        d = math.floor(x * ratio + 0.5)
        d = min(max(d, math.ceil(left * ratio) + 1), math.floor(right * ratio) - 1)  # whole device px
        painter.save()
        painter.resetTransform()
        height = float(bottom - top)
        painter.fillRect(QRectF((d - 1) / ratio, top, 1 / ratio, height), DIVIDER_DARK)
        painter.fillRect(QRectF(d / ratio, top, 1 / ratio, height), DIVIDER_LIGHT)
        lw, lh = self._label_size
        painter.setFont(self._label_font)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        label_top = max(top, 0) + LABEL_TOP  # at the top of the view when the photo's is above it
        for text, x in (("Before", b - LABEL_GAP - lw), ("After", b + LABEL_GAP)):
            box = QRect(x, label_top, lw, lh)
            if box.left() < left or box.right() >= right or box.bottom() >= bottom:
                continue  # no room inside the photo on that side
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(0, 0, 0, 150))
            painter.drawRoundedRect(QRectF(box), 3, 3)
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()


class MaskOverlayItem(_PhotoSizedItem):
    """The hole mask as a translucent colour, in tiles allocated only where there is hole."""

    def __init__(self) -> None:
        super().__init__()
        self._tiles: dict[tuple[int, int], tuple[np.ndarray, QImage]] = {}  # (HxWx4 uint8, image)
        # each tile halved 1, 2, ... times (a pixel is hole where any of its block is), for
        # drawing zoomed out below 50 %: made when first drawn, dropped when the tile changes
        self._halved: dict[tuple[int, int], Pyramid] = {}
        self._rgba = OVERLAY_RGBA
        self._colour = _premultiplied_rgba(*OVERLAY_RGBA)

    @property
    def tile_count(self) -> int:
        return len(self._tiles)

    @property
    def colour(self) -> tuple[int, int, int, int]:
        """The hole's colour, ``(r, g, b, alpha)``."""
        return self._rgba

    def set_colour(self, r: int, g: int, b: int) -> None:
        """Show the hole in another colour (same translucency), repainting the tiles at once."""
        self._rgba = (int(r), int(g), int(b), OVERLAY_RGBA[3])
        new = _premultiplied_rgba(*self._rgba)
        if np.array_equal(new, self._colour):
            return
        self._colour = new
        for data, _image in self._tiles.values():
            data[data[..., 3] != 0] = new
        self._halved.clear()
        self.update()

    def reset(self, mask: np.ndarray | None) -> None:
        self.prepareGeometryChange()
        self._tiles.clear()
        self._halved.clear()
        if mask is None:
            self._w = self._h = 0
        else:
            self._h, self._w = mask.shape
            box = Rect.bounding(mask)
            if box is not None:
                self.refresh(mask, box)
        self.update()

    def refresh(self, mask: np.ndarray, rect: Rect) -> None:
        """Re-render the tiles under ``rect`` from ``mask`` and schedule a repaint of it. Only the
        pixels whose hole state differs from the tile's are written, and a tile's halved copies
        follow only where it changed: a fill of 500 specks over a 24-megapixel photo (and its
        undo) touches every tile's box, a few of each tile's pixels."""
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
                    data = np.zeros((tile.height, tile.width, 4), dtype=np.uint8)
                    entry = self._tiles[(ty, tx)] = (data, _tile_image(data))
                data = entry[0]
                local = Rect(part.x0 - tile.x0, part.y0 - tile.y0, part.x1 - tile.x0, part.y1 - tile.y0)
                # a pixel as one 32-bit word: whole rows written at once (pixel by pixel, a
                # rectangle over 90% of a 24-megapixel photo, or its undo, took 0.4 s)
                region = data.view(np.uint32)[..., 0][local.slices]
                differs = (region != 0) != sub
                rows = np.flatnonzero(differs.any(axis=1))
                if not len(rows):
                    continue
                cols = np.flatnonzero(differs.any(axis=0))
                np.copyto(region, np.where(sub, self._colour.view(np.uint32)[0], np.uint32(0)), where=differs)
                if not data[..., 3].any():
                    del self._tiles[(ty, tx)]
                    self._halved.pop((ty, tx), None)
                elif (ty, tx) in self._halved:
                    y0, x0 = local.y0 + int(rows[0]), local.x0 + int(cols[0])
                    self._halved[(ty, tx)].changed(
                        Rect(x0, y0, local.x0 + int(cols[-1]) + 1, local.y0 + int(rows[-1]) + 1)
                    )
        self.update(QRectF(rect.x0, rect.y0, rect.width, rect.height))

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        if not self._tiles:
            return
        r = self._exposed(option)
        if r.empty:
            return
        _smooth_when_shrunk(painter)
        level = level_for(painter.deviceTransform().m11())
        for ty in range(r.y0 // TILE, (r.y1 - 1) // TILE + 1):
            for tx in range(r.x0 // TILE, (r.x1 - 1) // TILE + 1):
                entry = self._tiles.get((ty, tx))
                if entry is None:
                    continue
                data, img = entry
                h, w = data.shape[:2]
                k = 1
                if level:
                    img, done = self._tile_halved((ty, tx), data, img, level)
                    k = 1 << done
                painter.drawImage(QRectF(tx * TILE, ty * TILE, w, h), img, QRectF(0, 0, w / k, h / k))

    def _tile_halved(
        self, key: tuple[int, int], data: np.ndarray, image: QImage, level: int
    ) -> tuple[QImage, int]:
        """The tile ``key`` (its ``data`` and ``image``) halved ``level`` times (fewer once it
        is one pixel; 0: the tile itself)."""
        pyramid = self._halved.get(key)
        if pyramid is None:
            pyramid = self._halved[key] = Pyramid(data, reduce=halved_any, wrap=_tile_image)
        halved_image, done = pyramid.image(level)
        return (halved_image, done) if done else (image, 0)


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
