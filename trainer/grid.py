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


def draw_grid(labels: list[str], rows: list[list[np.ndarray]], path: Path) -> Path:
    """One row per entry of ``rows`` (uint8 HxWx3 tiles, one per label), tiles unscaled; cells
    take the largest tile's size and smaller tiles sit top-left on white. JPEG (quality 92) for
    a .jpg/.jpeg path, else Pillow's format for the suffix; written atomically."""
    h = max(t.shape[0] for row in rows for t in row)
    w = max(t.shape[1] for row in rows for t in row)
    header = max(18, h // 10)
    pad = 2
    canvas = Image.new("RGB", (len(labels) * (w + pad) + pad, header + len(rows) * (h + pad) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    font = _font(max(10, header * 2 // 3))
    for j, label in enumerate(labels):
        draw.text((pad + j * (w + pad) + 4, 2), label, fill="black", font=font)
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
