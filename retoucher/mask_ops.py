"""Whole-mask operations, Qt-free: grow and shrink by a disc, fill a polygon.

Pixel ``(row i, column j)`` covers ``[j, j+1) x [i, i+1)`` and stands for its centre
``(j + 0.5, i + 0.5)`` (the convention of :mod:`retoucher.document`).

- **Grow by r** (a dilation by a disc): a pixel becomes hole when the centre of some hole pixel
  lies within Euclidean distance ``r`` of its own centre (the offsets ``dx*dx + dy*dy <= r*r``).
  **Shrink by r** (an erosion) is its dual: a hole pixel stays hole only when no non-hole pixel
  of the photo lies within ``r``. Outside the photo counts as hole for a shrink, so a hole that
  reaches the edge becomes thinner, not shorter.
- **Polygon**: a pixel is inside when its centre is (nonzero winding, so a freehand outline that
  crosses itself fills every loop); a centre exactly on a left or top edge is inside, on a right
  or bottom edge outside, so two polygons sharing an edge never share a pixel.

Each function returns the box it looked at and the new mask inside it (or None when nothing can
change), so that the caller stores only what changed. The work is limited to the hole's box plus
the radius, and the disc is built from horizontal runs on bit-packed rows (eight pixels a byte), so
growing a hairline on a 24-megapixel photo costs what the hairline's box weighs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from engine.geometry import Rect

__all__ = ["MAX_RADIUS", "check_radius", "disc_half_widths", "grow", "polygon", "shrink"]

MAX_RADIUS = 500
"""The largest grow or shrink, in pixels."""


def disc_half_widths(radius: int) -> list[int]:
    """``w[dy + r]``: the disc of ``radius`` holds the offsets ``(dx, dy)`` with ``|dx| <= w``."""
    r = int(radius)
    return [math.isqrt(r * r - dy * dy) for dy in range(-r, r + 1)]


def check_radius(radius: int) -> int:
    """``radius`` as an int; ValueError unless it is a whole number of pixels in 0..MAX_RADIUS."""
    r = int(radius)
    if r != radius or not 0 <= r <= MAX_RADIUS:
        raise ValueError(
            f"a grow or shrink radius is a whole number of pixels from 0 to {MAX_RADIUS}, not {radius}"
        )
    return r


# --------------------------------------------------------------------------- packed rows
# A bool HxW array packed with np.packbits(axis=1): column x is bit 7 - x % 8 of byte x // 8.


def _pull(packed: np.ndarray, k: int) -> np.ndarray:
    """``out[:, x] = in[:, x + k]`` (k >= 0) on packed rows; columns past the end read as 0."""
    q, s = divmod(k, 8)
    n = packed.shape[1]
    out = np.zeros_like(packed)
    if q >= n:
        return out
    np.left_shift(packed[:, q:], s, out=out[:, : n - q])
    if s and n - q > 1:
        out[:, : n - q - 1] |= packed[:, q + 1 :] >> (8 - s)
    return out


def _push(packed: np.ndarray, k: int) -> np.ndarray:
    """``out[:, x] = in[:, x - k]`` (k >= 0) on packed rows; columns before 0 read as 0."""
    q, s = divmod(k, 8)
    n = packed.shape[1]
    out = np.zeros_like(packed)
    if q >= n:
        return out
    np.right_shift(packed[:, : n - q], s, out=out[:, q:])
    if s and n - q > 1:
        out[:, q + 1 :] |= packed[:, : n - q - 1] << (8 - s)
    return out


def _dilate(a: np.ndarray, r: int) -> np.ndarray:
    """The disc dilation of bool ``a``, with everything outside ``a`` taken as False."""
    h, w = a.shape
    if r == 0 or not a.any():
        return a.copy()
    # r zero columns on the left keep the runs that start left of column 0 (they reach into it).
    packed = np.packbits(np.pad(a, ((0, 0), (r, 0))), axis=1)
    # runs[L][:, x] = OR of columns x .. x + L - 1, built by doubling for L = 1, 2, 4, ...
    runs = {1: packed}
    length = 1
    while 2 * length <= 2 * r + 1:
        runs[2 * length] = runs[length] | _pull(runs[length], length)
        length *= 2
    rows_of: dict[int, list[int]] = {}  # half width -> the row offsets dy of the disc that have it
    for dy, half in zip(range(-r, r + 1), disc_half_widths(r)):
        if abs(dy) < h:
            rows_of.setdefault(half, []).append(dy)
    out = np.zeros_like(packed)
    # One half width at a time (kept all at once, they weighed up to ~1 GB for a 24 MP photo)
    for half, offsets in rows_of.items():
        size = 2 * half + 1
        base = 1 << (size.bit_length() - 1)
        run = runs[base] if base == size else runs[base] | _pull(runs[base], size - base)
        src = _push(run, half)  # OR of columns x - half .. x + half
        for dy in offsets:
            if dy >= 0:  # row y takes row y - dy
                out[dy:] |= src[: h - dy]
            else:
                out[: h + dy] |= src[-dy:]
    return np.unpackbits(out, axis=1, count=w + r)[:, r:].astype(bool)


def grow(mask: np.ndarray, radius: int) -> tuple[Rect, np.ndarray] | None:
    """The mask grown by a disc of ``radius`` pixels: ``(box, new mask inside box)``, None when
    it cannot change (no hole, or radius 0)."""
    r = check_radius(radius)
    hole = Rect.bounding(mask)
    if hole is None or r == 0:
        return None
    h, w = mask.shape
    box = hole.grown(r).clip(w, h)
    return box, _dilate(mask[box.slices], r)


def shrink(mask: np.ndarray, radius: int) -> tuple[Rect, np.ndarray] | None:
    """The mask shrunk by a disc of ``radius`` pixels (outside the photo counts as hole):
    ``(box, new mask inside box)``, None when it cannot change."""
    r = check_radius(radius)
    hole = Rect.bounding(mask)
    if hole is None or r == 0:
        return None
    h, w = mask.shape
    # Only hole pixels change; the non-hole pixels within r of the hole's box decide which.
    near = hole.grown(r).clip(w, h)
    keep = ~_dilate(~mask[near.slices], r)
    inner = hole.translated(-near.x0, -near.y0)
    return hole, mask[hole.slices] & keep[inner.slices]


# --------------------------------------------------------------------------- polygons
def polygon(points: Sequence[tuple[float, float]], width: int, height: int) -> tuple[Rect, np.ndarray] | None:
    """The pixels of a ``width x height`` photo whose centre lies inside the closed polygon
    ``points`` (``(x, y)`` in continuous image coordinates): ``(box, inside)`` for the
    polygon's box within the photo, None when the polygon covers no pixel centre."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3 or not np.isfinite(pts).all():
        return None
    xs, ys = pts[:, 0], pts[:, 1]
    box = Rect(
        math.floor(xs.min()), math.floor(ys.min()), math.ceil(xs.max()) + 1, math.ceil(ys.max()) + 1
    ).clip(width, height)
    if box.empty:
        return None
    x0, y0 = xs, ys
    x1, y1 = np.roll(xs, -1), np.roll(ys, -1)
    lo, hi = np.minimum(y0, y1), np.maximum(y0, y1)
    # An edge crosses the centre line of row i when lo <= i + 0.5 < hi (half-open: a vertex
    # between two edges counts once, a horizontal edge never).
    first = np.clip(np.ceil(lo - 0.5), box.y0, box.y1).astype(np.int64)
    stop = np.clip(np.ceil(hi - 0.5), box.y0, box.y1).astype(np.int64)
    count = np.maximum(stop - first, 0)
    total = int(count.sum())
    if total == 0:
        return None
    edge = np.repeat(np.arange(len(pts)), count)
    row = first[edge] + (np.arange(total) - np.repeat(np.cumsum(count) - count, count))
    centre = row + 0.5
    x = x0[edge] + (centre - y0[edge]) * (x1[edge] - x0[edge]) / (y1[edge] - y0[edge])
    direction = np.where(y1[edge] > y0[edge], 1, -1)
    order = np.lexsort((x, row))
    row, x = row[order], x[order]
    # Each row's crossings sum to zero, so the running sum is that row's winding number.
    winding = np.cumsum(direction[order])
    span = np.flatnonzero(winding[:-1] != 0)  # from crossing k to k + 1, always the same row
    if span.size == 0:
        return None
    # Pixel j is inside a span [a, b) when a <= j + 0.5 < b.
    a = np.clip(np.ceil(x[span] - 0.5), box.x0, box.x1).astype(np.int64) - box.x0
    b = np.clip(np.ceil(x[span + 1] - 0.5), box.x0, box.x1).astype(np.int64) - box.x0
    edges = np.zeros((box.height, box.width + 1), dtype=np.int8)
    r = row[span] - box.y0
    np.add.at(edges, (r, a), 1)
    np.add.at(edges, (r, b), -1)
    inside = np.cumsum(edges, axis=1, dtype=np.int8)[:, :-1] > 0
    if not inside.any():
        return None
    return box, inside
