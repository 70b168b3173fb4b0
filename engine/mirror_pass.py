"""Whether a fill averages in the mirrored second pass by default (:data:`MIRROR`). Torch-free,
so that the app's settings, ``retoucher batch`` and ``retoucher-train evaluate`` take their
default from here before the engine is loaded.

With the pass, the network fills each crop and its left-right mirror image in one batch and the
two fills are averaged (:class:`engine.Inpainter`'s ``mirror``); see :mod:`engine.inpainter` for
what it measured and costs.
"""

from __future__ import annotations

__all__ = ["MIRROR"]

MIRROR = True  # the default of Inpainter(mirror=...), the app's setting and the command lines
