"""Whether a fill averages in the mirrored second pass by default (:data:`MIRROR`). Torch-free,
so that the app's settings, ``retoucher batch`` and ``retoucher-train evaluate`` take their
default from here before the engine (torch) is loaded.

With the pass, the network fills each crop and its left-right mirror image in one batch and the
two fills are averaged (:class:`engine.Inpainter`'s ``mirror``); see :mod:`engine.inpainter` for
what it measured and costs.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIRROR", "check_mirror"]

MIRROR = True  # the default of Inpainter(mirror=...), the app's setting and the command lines


def check_mirror(value: object) -> bool:
    """``value`` as a bool; ValueError unless it is one (numpy's too): ``"False"`` or ``-1``
    given by mistake turned the second pass on (twice the network's time) without a word."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"mirror must be True or False, got {value!r}")
