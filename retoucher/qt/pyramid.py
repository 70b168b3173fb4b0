"""Half-size copies of a photo for drawing it zoomed out (a mipmap pyramid).

Qt's smooth scaling of an image is bilinear: shrunk more than 2:1 it samples the photo instead of
averaging it, so at Fit a 1-pixel scratch on a 24-megapixel photo (zoom 15 %) showed on 3 of 613
screen rows, and fine stripes turned into moire. The canvas therefore draws from the copy of the
photo halved as often as the zoom allows while it still has at least one of its pixels per pixel
of the screen, each halving the mean of 2x2 pixels, and Qt's bilinear filter shrinks that copy by
less than 2:1: the scratch shows as the faint continuous line that averaging makes of it.

The copies are made when a zoom first needs them and follow the photo's changes within the
boxes that changed (a fill, an undo), level by level: a fill of specks spread over the photo
(Find Damage's) remakes the specks' boxes, not the box around them all (0.2-0.3 s at Fit on a
24-megapixel photo for each undo or redo of two specks in opposite corners).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PIL import Image
from PySide6.QtGui import QImage

from ..document import Rect
from .qimage import wrap_rgb

__all__ = ["Pyramid", "halved", "halved_any", "level_for"]

MAX_STALE = 1024  # boxes kept per level before they are merged into the one box around them


def level_for(scale: float) -> int:
    """How many halvings to draw from at ``scale`` (screen pixels per photo pixel): the most that
    keep at least one pixel of the copy per pixel of the screen (0 from 100 % up)."""
    if scale <= 0 or scale >= 1.0:
        return 0
    return max(0, math.floor(math.log2(1.0 / scale) + 1e-9))


def halved(array: np.ndarray) -> np.ndarray:
    """``array`` (uint8 HxWx3) at half its size, rounded up: each pixel the mean of a 2x2 block
    (of what there is of it at a last odd row or column), Pillow's box reduction."""
    return np.array(Image.fromarray(array).reduce(2))  # a writable copy of its own


def halved_any(tile: np.ndarray) -> np.ndarray:
    """An overlay tile (uint8 HxWx4, one colour where there is hole, 0 elsewhere) at half its
    size, rounded up: a pixel is hole where any of its 2x2 block is. A mask is drawn to show where
    the holes are: averaged, a 1 px scratch found by Find Damage faded to a quarter at Fit."""
    h, w = tile.shape[:2]
    if h % 2 or w % 2:
        tile = np.pad(tile, ((0, h % 2), (0, w % 2), (0, 0)))
    # the maximum of the four strided quarters: 8x quicker than a reshape's max over two axes
    # (a whole-photo mask change at Fit halves hundreds of tiles: 1-2 s of repaint on 24 MP)
    return np.maximum(
        np.maximum(tile[0::2, 0::2], tile[0::2, 1::2]), np.maximum(tile[1::2, 0::2], tile[1::2, 1::2])
    )


class Pyramid:
    """The halvings of one array (a photo, ``uint8 HxWx3``, which the document changes in place;
    or a mask overlay's tile with ``reduce=halved_any``), each with a QImage sharing its memory
    (made by ``wrap``). A change only marks the box it touched; a level is brought up to date
    when it is next drawn (an undo at 100 % costs nothing here)."""

    def __init__(
        self,
        base: np.ndarray,
        *,
        reduce: Callable[[np.ndarray], np.ndarray] = halved,
        wrap: Callable[[np.ndarray], QImage] = wrap_rgb,
    ) -> None:
        self._base = base
        self._reduce, self._wrap = reduce, wrap
        self._base_image: QImage | None = None
        self._levels: list[tuple[np.ndarray, QImage]] = []  # level 1, 2, ...
        # per level: the boxes of the photo changed since (a dict: a box undone and redone at
        # 100% is remade once)
        self._stale: list[dict[Rect, None]] = []

    def image(self, level: int) -> tuple[QImage, int]:
        """The QImage of the photo halved ``level`` times, and how many times it really is
        (fewer once the photo is down to a single pixel; 0: the photo itself)."""
        for i in range(min(level, len(self._levels))):
            self._refresh(i)
        while len(self._levels) < level:
            below = self._levels[-1][0] if self._levels else self._base
            if below.shape[0] == 1 and below.shape[1] == 1:
                break
            small = self._reduce(below)
            self._levels.append((small, self._wrap(small)))
            self._stale.append({})
        level = min(level, len(self._levels))
        if level == 0:
            if self._base_image is None:
                self._base_image = self._wrap(self._base)
            return self._base_image, 0
        return self._levels[level - 1][1], level

    def changed(self, rect: Rect) -> None:
        """The base array changed inside ``rect``: the levels made so far follow when drawn."""
        for i, boxes in enumerate(self._stale):
            if rect in boxes:
                continue
            if len(boxes) >= MAX_STALE:
                merged = rect
                for box in boxes:
                    merged = merged.union(box)
                self._stale[i] = {merged: None}
            else:
                boxes[rect] = None

    def _refresh(self, i: int) -> None:
        """Level ``i + 1`` made again where the photo changed (the level below is up to date)."""
        boxes, self._stale[i] = self._stale[i], {}
        for rect in boxes:
            self._remake(i, rect)

    def _remake(self, i: int, rect: Rect) -> None:
        """Level ``i + 1``'s pixels over the photo's box ``rect`` made again from level ``i``."""
        small = self._levels[i][0]
        below = self._levels[i - 1][0] if i else self._base
        k = 1 << (i + 1)
        part = Rect(rect.x0 // k, rect.y0 // k, -(-rect.x1 // k), -(-rect.y1 // k)).clip(
            small.shape[1], small.shape[0]
        )
        if part.empty:
            return
        # the block of the level below that those pixels average (2x, clipped to it)
        src = below[2 * part.y0 : 2 * part.y1, 2 * part.x0 : 2 * part.x1]
        small[part.slices] = self._reduce(src)[: part.height, : part.width]
