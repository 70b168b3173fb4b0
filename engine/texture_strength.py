"""How much of the photo's texture the fill gets (:mod:`engine.texture`): the strength of a
model whose weight file names none, and the check of a strength. Torch-free, so that the app's
settings and ``retoucher batch`` check a strength before the engine is loaded.

0 is the network's fill alone; 1 adds texture as strong as the photo's around the hole (the
level of the known pixels near each place); above 1 exaggerates it, up to :data:`MAX_TEXTURE`.
"""

from __future__ import annotations

import math
import numbers

__all__ = ["MAX_TEXTURE", "TEXTURE", "check_texture"]

TEXTURE = 0.0  # a model's own strength when its weight file names none (engine.weights)
MAX_TEXTURE = 4.0


def check_texture(value: object) -> float:
    """``value`` as a float; ValueError unless it is a real number (numpy's too) from 0 to
    :data:`MAX_TEXTURE` (not a bool, not text: a strength read from a setting or an argument is
    converted first)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy's bool is no Real
        raise ValueError(f"texture must be a number from 0 to {MAX_TEXTURE:g}, got {value!r}")
    t = float(value)
    if not (math.isfinite(t) and 0.0 <= t <= MAX_TEXTURE):
        raise ValueError(f"texture must be a number from 0 to {MAX_TEXTURE:g}, got {value!r}")
    return t
