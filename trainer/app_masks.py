"""Holes drawn the way the app's round brush draws them, for the ``photos`` evaluation task.

Three kinds, each seeded (the same ``rng`` state gives the same mask) and at the photo's native
resolution (the ranges below are the evaluation's; training draws the same shapes with its own
ranges, :mod:`trainer.masks`):

* :func:`brush_strokes` - 2 to 4 polyline strokes, each 12-48 px wide (one width per stroke),
  3 to 6 vertices, segments of 8-25 % of the photo's shorter side.
* :func:`scratches` - 1 to 3 thin scratches 2-6 px wide: long (35-70 % of the photo's diagonal),
  slightly curved (a quadratic Bezier whose control point sits at most 8 % of the length off the
  chord).
* :func:`object_blob` - one filled irregular closed shape (a star-shaped polygon with smoothly
  varying radius) covering 4-12 % of the photo.

A stroke is a :class:`Stroke` (centre line + width) drawn by :func:`draw_paths` with Pillow: a
``width``-pixel line with round joints and a round dab of the same diameter at each vertex, as
a round brush leaves. A horizontal path of width ``w`` covers exactly ``w`` rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    "Stroke",
    "draw_paths",
    "stroke_paths",
    "scratch_paths",
    "brush_strokes",
    "scratches",
    "object_blob",
    "HOLE_KINDS",
    "STROKE_WIDTHS",
    "SCRATCH_WIDTHS",
    "BLOB_AREA",
]

STROKE_WIDTHS = (12, 48)
SCRATCH_WIDTHS = (2, 6)
BLOB_AREA = (0.04, 0.12)


@dataclass(frozen=True)
class Stroke:
    points: tuple[tuple[float, float], ...]  # (x, y) vertices of the centre line
    width: int


def draw_paths(h: int, w: int, paths: list[Stroke]) -> np.ndarray:
    """Bool ``h x w`` mask of the paths (True = hole)."""
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    for p in paths:
        draw.line(list(p.points), fill=255, width=p.width, joint="curve")
        if p.width > 3:  # round tips; a dab on a thin line would only fatten it by a pixel
            r = (p.width - 1) / 2
            for x, y in (p.points[0], p.points[-1]):
                draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    return np.asarray(canvas) > 0


def _clip(v: float, lo: float, hi: float) -> float:
    return float(min(max(v, lo), hi))


def stroke_paths(
    rng: np.random.Generator, h: int, w: int, widths: tuple[int, int] = STROKE_WIDTHS
) -> list[Stroke]:
    """2 to 4 brush strokes, each of one width in ``widths`` (pixels, both ends included)."""
    paths = []
    short = min(h, w)
    for _ in range(int(rng.integers(2, 5))):
        width = int(rng.integers(widths[0], widths[1] + 1))
        x, y = float(rng.uniform(0, w - 1)), float(rng.uniform(0, h - 1))
        angle = float(rng.uniform(0, 2 * np.pi))
        pts = [(x, y)]
        for _ in range(int(rng.integers(2, 6))):
            angle += float(rng.uniform(-1.2, 1.2))
            step = float(rng.uniform(0.08, 0.25)) * short
            x = _clip(x + step * np.cos(angle), 0, w - 1)
            y = _clip(y + step * np.sin(angle), 0, h - 1)
            pts.append((x, y))
        paths.append(Stroke(tuple(pts), width))
    return paths


def scratch_paths(
    rng: np.random.Generator, h: int, w: int, widths: tuple[int, int] = SCRATCH_WIDTHS
) -> list[Stroke]:
    """1 to 3 long, slightly curved scratches, each of one width in ``widths`` (pixels)."""
    paths = []
    diag = float(np.hypot(h, w))
    for _ in range(int(rng.integers(1, 4))):
        width = int(rng.integers(widths[0], widths[1] + 1))
        length = float(rng.uniform(0.35, 0.7)) * diag
        angle = float(rng.uniform(0, np.pi))
        cx, cy = float(rng.uniform(0.25, 0.75)) * w, float(rng.uniform(0.25, 0.75)) * h
        d = np.array([np.cos(angle), np.sin(angle)]) * length / 2
        a, b = np.array([cx, cy]) - d, np.array([cx, cy]) + d
        normal = np.array([-d[1], d[0]]) / (np.linalg.norm(d) + 1e-9)
        ctrl = (a + b) / 2 + normal * float(rng.uniform(-0.08, 0.08)) * length
        t = np.linspace(0.0, 1.0, 48)[:, None]
        curve = (1 - t) ** 2 * a + 2 * (1 - t) * t * ctrl + t**2 * b
        curve[:, 0] = curve[:, 0].clip(0, w - 1)
        curve[:, 1] = curve[:, 1].clip(0, h - 1)
        paths.append(Stroke(tuple((float(x), float(y)) for x, y in curve), width))
    return paths


def brush_strokes(
    rng: np.random.Generator, h: int, w: int, widths: tuple[int, int] = STROKE_WIDTHS
) -> np.ndarray:
    return draw_paths(h, w, stroke_paths(rng, h, w, widths))


def scratches(
    rng: np.random.Generator, h: int, w: int, widths: tuple[int, int] = SCRATCH_WIDTHS
) -> np.ndarray:
    return draw_paths(h, w, scratch_paths(rng, h, w, widths))


def _polygon(h: int, w: int, centre: np.ndarray, radii: np.ndarray, angles: np.ndarray) -> np.ndarray:
    pts = centre + np.stack([np.cos(angles), np.sin(angles)], 1) * radii[:, None]
    canvas = Image.new("L", (w, h), 0)
    ImageDraw.Draw(canvas).polygon([(float(x), float(y)) for x, y in pts], fill=255)
    return np.asarray(canvas) > 0


def object_blob(
    rng: np.random.Generator, h: int, w: int, area: tuple[float, float] = BLOB_AREA
) -> np.ndarray:
    """One irregular filled shape inside the photo covering a fraction in ``area`` of it."""
    target = float(rng.uniform(*area)) * h * w
    n = int(rng.integers(12, 21))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    # Smooth radius variation: a few low-frequency harmonics with random phases.
    shape = np.ones(n)
    for k in (2, 3, 5):
        shape += float(rng.uniform(0.05, 0.2)) * np.cos(k * angles + float(rng.uniform(0, 2 * np.pi)))
    shape = np.clip(shape, 0.4, None)
    scale = np.sqrt(target / (np.pi * float(np.mean(shape**2))))
    extent = scale * shape.max()
    margin_x, margin_y = min(extent, w / 2), min(extent, h / 2)
    centre = np.array([rng.uniform(margin_x, w - margin_x), rng.uniform(margin_y, h - margin_y)])
    for _ in range(6):  # rescale until the drawn area is within 2 % of the target
        mask = _polygon(h, w, centre, scale * shape, angles)
        area = float(mask.sum())
        if abs(area - target) <= 0.02 * target:
            break
        scale *= np.sqrt(target / max(area, 1.0))
    return mask


HOLE_KINDS = {
    "strokes": ("Brush strokes 12-48 px wide", brush_strokes),
    "scratches": ("Thin scratches 2-6 px wide", scratches),
    "object": ("One object blob, 4-12 % of the photo", object_blob),
}
