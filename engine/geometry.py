"""Pixel boxes: :class:`Rect`, the one box type of the engine and the app.

A :class:`Rect` is the half-open box ``[x0, x1) x [y0, y1)`` in pixels (``x`` = column,
``y`` = row), so ``image[rect.slices]`` is the part of an ``HxW...`` array inside it. The crop
plan (:mod:`engine.crops`), the Inpainter and the app's document all use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Rect"]


@dataclass(frozen=True)
class Rect:
    """A pixel box ``[x0, x1) x [y0, y1)``; an inverted box has no pixels (width or height 0)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return max(0, self.x1 - self.x0)

    @property
    def height(self) -> int:
        return max(0, self.y1 - self.y0)

    @property
    def empty(self) -> bool:
        return self.width == 0 or self.height == 0

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, columns)``: index an ``HxW...`` array with it."""
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    def contains(self, other: Rect) -> bool:
        return self.x0 <= other.x0 and other.x1 <= self.x1 and self.y0 <= other.y0 and other.y1 <= self.y1

    def translated(self, dx: int, dy: int) -> Rect:
        """The box moved by ``dx`` columns and ``dy`` rows (into or out of another box's
        coordinates)."""
        return Rect(self.x0 + dx, self.y0 + dy, self.x1 + dx, self.y1 + dy)

    def grown(self, margin: int) -> Rect:
        """The box with ``margin`` more pixels on every side (a negative margin shrinks it)."""
        return Rect(self.x0 - margin, self.y0 - margin, self.x1 + margin, self.y1 + margin)

    def union(self, other: Rect | None) -> Rect:
        """The smallest box holding both (an empty or missing box adds nothing)."""
        if other is None or other.empty:
            return self
        if self.empty:
            return other
        return Rect(
            min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1), max(self.y1, other.y1)
        )

    def clip(self, width: int, height: int) -> Rect:
        """The part inside ``[0, width) x [0, height)``."""
        return Rect(
            min(max(self.x0, 0), width),
            min(max(self.y0, 0), height),
            min(max(self.x1, 0), width),
            min(max(self.y1, 0), height),
        )

    @staticmethod
    def per_cell(ys: np.ndarray, xs: np.ndarray, cell: int) -> list[Rect]:
        """The bounding boxes of the pixels at rows ``ys`` and columns ``xs``, one for each
        ``cell`` x ``cell`` square of the grid from (0, 0) that holds some (row-major order):
        what changed, told in pieces a view can redraw alone (500 specks over a photo are 500
        small boxes, not one box the size of the photo). It sorts them: for many in a box,
        :meth:`per_cell_of` their map."""
        ys, xs = np.asarray(ys, dtype=np.int64), np.asarray(xs, dtype=np.int64)
        if ys.size == 0:
            return []
        key = (ys // cell) * (int(xs.max()) // cell + 1) + xs // cell
        order = np.argsort(key, kind="stable")
        key, ys, xs = key[order], ys[order], xs[order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        y0, y1 = np.minimum.reduceat(ys, starts), np.maximum.reduceat(ys, starts) + 1
        x0, x1 = np.minimum.reduceat(xs, starts), np.maximum.reduceat(xs, starts) + 1
        return [Rect(int(a), int(b), int(c), int(d)) for a, b, c, d in zip(x0, y0, x1, y1, strict=True)]

    @staticmethod
    def per_cell_of(mask: np.ndarray, x0: int, y0: int, cell: int) -> list[Rect]:
        """:meth:`per_cell` of the True pixels of a 2-D ``mask`` whose first pixel is at
        (``x0``, ``y0``), from the map itself (cheap where they are many)."""
        h, w = mask.shape
        top, left = y0 % cell, x0 % cell
        ny, nx = -(-(top + h) // cell), -(-(left + w) // cell)
        grid = np.zeros((ny * cell, nx * cell), dtype=bool)
        grid[top : top + h, left : left + w] = mask
        cells = grid.reshape(ny, cell, nx, cell)
        rows, cols = cells.any(axis=3), cells.any(axis=1)  # (ny, cell, nx), (ny, nx, cell)
        first_row, end_row = rows.argmax(axis=1), cell - rows[:, ::-1].argmax(axis=1)
        first_col, end_col = cols.argmax(axis=2), cell - cols[:, :, ::-1].argmax(axis=2)
        gy, gx = y0 - top, x0 - left  # the grid's origin in the photo
        return [
            Rect(
                gx + cx * cell + int(first_col[cy, cx]),
                gy + cy * cell + int(first_row[cy, cx]),
                gx + cx * cell + int(end_col[cy, cx]),
                gy + cy * cell + int(end_row[cy, cx]),
            )
            for cy, cx in zip(*np.nonzero(rows.any(axis=1)), strict=True)
        ]

    @staticmethod
    def bounding(mask: np.ndarray) -> Rect | None:
        """The bounding box of the True pixels of a 2-D array, None when there are none."""
        rows = np.flatnonzero(mask.any(axis=1))
        if rows.size == 0:
            return None
        cols = np.flatnonzero(mask.any(axis=0))
        return Rect(int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
