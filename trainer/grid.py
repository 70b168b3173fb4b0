"""Example grids of ``retoucher-train evaluate``: labelled columns of image tiles at 100 %."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from engine.atomic import atomic_path

__all__ = ["draw_grid"]


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _fitted(draw: ImageDraw.ImageDraw, label: str, font: ImageFont.ImageFont, width: float) -> str:
    """``label``, cut and ended with an ellipsis where it is wider than ``width`` pixels."""
    if draw.textlength(label, font=font) <= width:
        return label
    while label and draw.textlength(label + "\u2026", font=font) > width:
        label = label[:-1]
    return label.rstrip() + "\u2026"


def draw_grid(labels: list[str], rows: list[list[np.ndarray]], path: Path) -> Path:
    """One row per entry of ``rows`` (uint8 HxWx3 tiles, one per label), tiles unscaled; cells
    take the largest tile's size and smaller tiles sit top-left on white; a label wider than its
    column is cut with an ellipsis. JPEG (quality 92) for a .jpg/.jpeg path, else Pillow's format
    for the suffix; written atomically."""
    h = max(t.shape[0] for row in rows for t in row)
    w = max(t.shape[1] for row in rows for t in row)
    header = max(18, h // 10)
    pad = 2
    canvas = Image.new("RGB", (len(labels) * (w + pad) + pad, header + len(rows) * (h + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    font = _font(max(10, header * 2 // 3))
    for j, label in enumerate(labels):
        draw.text((pad + j * (w + pad) + 4, 2), _fitted(draw, label, font, w - 6), fill="black", font=font)
    for i, row in enumerate(rows):
        y = header + pad + i * (h + pad)
        for j, tile in enumerate(row):
            canvas.paste(Image.fromarray(tile), (pad + j * (w + pad), y))
    with atomic_path(path) as tmp:
        if path.suffix.lower() in (".jpg", ".jpeg"):
            canvas.save(tmp, quality=92)
        else:
            canvas.save(tmp)
    return path
