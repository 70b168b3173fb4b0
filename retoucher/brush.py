"""The round brush: which mask pixels a stroke segment covers.

Pixel ``(row i, column j)`` covers the continuous square ``[j, j+1) x [i, i+1)``; brush
positions are continuous coordinates in that space (what a view gets from its scene
coordinates). A pixel is painted when its centre lies within the brush radius of the segment,
and so is the pixel each end of the segment lies in (a 1 px brush near a pixel's corner, whose
centre is up to 0.71 px away). A brush of diameter ``d`` paints lines ``d`` pixels wide wherever
it lies: the segment is moved by :data:`TIE_BREAK`, so that a point on a pixel's centre (the
view points at screen pixels' centres, which at 100% are the photo pixels') or edge does not
paint the pixels on both sides of a tie (``d + 1`` rows: a 2 px brush at 100% painted 3).
"""

from __future__ import annotations

import math

import numpy as np

from engine.geometry import Rect

__all__ = ["paint_capsule"]

TIE_BREAK = -1 / 97
"""Pixels the segment is moved by (left and up) before it is measured, towards the pixel Qt
shows in a screen pixel that straddles two; invisible. No screen pixel's centre lands on a tie
after it at the zoom steps from 100% up and the display scales 100-200% (a dyadic fraction,
1/64, made new ties at 3200%); at some zoom in between (Fit, a trackpad's) one may, as it may
with any fixed fraction: a 1 px line then lies on two rows there."""


def paint_capsule(
    mask: np.ndarray, p0: tuple[float, float], p1: tuple[float, float], radius: float, value: bool
) -> Rect | None:
    """Set to ``value`` every pixel of ``mask`` whose centre lies within ``radius`` of the
    segment p0-p1 (``(x, y)`` points); return the box of the pixels that changed, None when
    none did (a dab over pixels that already had ``value`` is no change of the mask).
    Long segments are cut into pieces so that each works on a small box."""
    h, w = mask.shape
    r = max(float(radius), 0.5)
    p0, p1 = ((x + TIE_BREAK, y + TIE_BREAK) for x, y in (p0, p1))
    # the pixels under the (moved) ends, whatever the radius: the same points as the distances
    # (the ends unmoved and the distances moved put a 1 px line on two rows at a pixel's edge)
    ends = _end_pixels(mask, (p0, p1), value)
    # Only the part of the segment within r of the photo can paint (a point far off, a tablet's
    # glitch, was walked piece by piece: seconds for a point at 1e8)
    clipped = _clip(p0, p1, (-r - 1, -r - 1, w + r + 1, h + r + 1))
    if clipped is None:
        return ends
    (x0, y0), (x1, y1) = clipped
    length = math.hypot(x1 - x0, y1 - y0)
    pieces = max(1, math.ceil(length / max(4 * r, 32)))
    total = ends
    for k in range(pieces):
        ax, ay = x0 + (x1 - x0) * k / pieces, y0 + (y1 - y0) * k / pieces
        bx, by = x0 + (x1 - x0) * (k + 1) / pieces, y0 + (y1 - y0) * (k + 1) / pieces
        box = Rect(
            math.floor(min(ax, bx) - r),
            math.floor(min(ay, by) - r),
            math.ceil(max(ax, bx) + r) + 1,
            math.ceil(max(ay, by) + r) + 1,
        ).clip(w, h)
        if box.empty:
            continue
        # float64: a float32 pixel centre is off by up to 0.5 px beyond x = 8 million (a long strip)
        cy = np.arange(box.y0, box.y1, dtype=np.float64)[:, None] + 0.5
        cx = np.arange(box.x0, box.x1, dtype=np.float64)[None, :] + 0.5
        dx, dy = bx - ax, by - ay
        seg2 = dx * dx + dy * dy
        if seg2 > 0:
            t = np.clip(((cx - ax) * dx + (cy - ay) * dy) / seg2, 0.0, 1.0)
            px, py = ax + t * dx, ay + t * dy
        else:
            px, py = ax, ay
        inside = (cx - px) ** 2 + (cy - py) ** 2 <= r * r
        inside &= mask[box.slices] != value
        if not inside.any():
            continue
        mask[box.slices][inside] = value
        hit = Rect.bounding(inside)
        assert hit is not None
        total = hit.translated(box.x0, box.y0).union(total)
    return total


def _end_pixels(mask: np.ndarray, points, value: bool) -> Rect | None:
    """Set the pixels that hold ``points`` (those on the mask) to ``value``; the box of the
    ones that changed."""
    h, w = mask.shape
    changed: Rect | None = None
    for x, y in points:
        if not (math.isfinite(x) and math.isfinite(y) and 0 <= x < w and 0 <= y < h):
            continue
        j, i = int(x), int(y)
        if mask[i, j] != value:
            mask[i, j] = value
            changed = Rect(j, i, j + 1, i + 1).union(changed)
    return changed


def _clip(
    p0: tuple[float, float], p1: tuple[float, float], box: tuple[float, float, float, float]
) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """The part of the segment p0-p1 inside ``box`` (x0, y0, x1, y1), None when none
    (Liang-Barsky)."""
    (x0, y0), (x1, y1) = p0, p1
    dx, dy = x1 - x0, y1 - y0
    t0, t1 = 0.0, 1.0
    for p, q in ((-dx, x0 - box[0]), (dx, box[2] - x0), (-dy, y0 - box[1]), (dy, box[3] - y0)):
        if p == 0:
            if q < 0:
                return None
        elif p < 0:
            t0 = max(t0, q / p)
        else:
            t1 = min(t1, q / p)
    if t0 > t1:
        return None
    return (x0 + t0 * dx, y0 + t0 * dy), (x0 + t1 * dx, y0 + t1 * dy)
