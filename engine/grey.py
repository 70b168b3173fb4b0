"""A grey photo gets a grey fill.

The network was trained on colour photos and paints a faint colour into holes of a greyscale
scan (a channel spread of a few grey levels, more on a 1-bit scan). Where every known pixel
around a hole is neutral (R = G = B, as in a greyscale file read as RGB), the fill is made
neutral too: each hole pixel takes its luma (ITU-R 601, Pillow's ``convert("L")``, which keeps a
grey pixel's value exactly). A colour photo's fill is left as it is.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LUMA", "is_grey", "grey_fill"]

#: ITU-R 601 luma weights of R, G and B (Pillow's ``convert("L")``); the fill's integer form below
#: is these in 16-bit fixed point (they sum to 65536, so a grey pixel keeps its value exactly).
LUMA = (0.299, 0.587, 0.114)
_LUMA_16 = tuple(round(w * 65536) for w in LUMA)


def is_grey(image: np.ndarray, hole: np.ndarray | None = None) -> bool:
    """Whether every known pixel of ``image`` (uint8 HxWx3; ``hole`` bool HxW, True = hole;
    None: every pixel is known) has R = G = B (False when no pixel is known)."""
    known = image.reshape(-1, 3) if hole is None else image[~hole]
    return bool(known.size) and bool(
        (known[:, 0] == known[:, 1]).all() and (known[:, 1] == known[:, 2]).all()
    )


def grey_fill(fill: np.ndarray, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``fill`` with its hole pixels turned to their luma when ``image`` is grey around the hole
    (:func:`is_grey`); otherwise ``fill`` itself."""
    if not hole.any() or not is_grey(image, hole):
        return fill
    rgb = fill[hole].astype(np.uint32)
    luma = (rgb @ np.array(_LUMA_16, np.uint32) + 32768) >> 16
    out = fill.copy()
    out[hole] = luma.astype(np.uint8)[:, None]
    return out
