"""Saturated colours: the network fills in the colours it was trained on, the photo's cast added back.

The network learnt its colours from birds and their surroundings. Around a hole in a strongly
coloured surface (a magenta wall, a blue car, a green sign) it paints the colours it knows: an
80x100 hole in flat magenta (230, 30, 200) came out a dull mauve, 65 grey levels off on average
(blue, cyan and green 16-22, purple 18, red 6; greys, sky, skin and foliage 2-5). The edge
matching (:mod:`engine.seams`) corrects the fill at the hole's edge, not in its middle.

:func:`cast_offset` measures the colour cast of the known pixels around the hole (their mean's
departure from grey, the mean of its three channels) and takes it off the crop before the
network sees it, all but ``FREE`` of it (the network still sees its direction, about 6 grey
levels on the largest channel; a slighter cast is left as it is); the network's output gets it
back. The same
hole then came out 2-3 grey levels off in every colour above (``runs/chroma-val.out``). Paired
on the val split (the same photos and holes): 100 photos' brush strokes +0.01 dB (95% interval
-0.02 to +0.03), objects -0.00 (-0.04 to +0.04), thin scratches the same (their fill is the
photo's own); the same photos with their saturation raised 1.8x, strokes +0.02 (-0.02 to +0.05),
objects +0.07 (+0.01 to +0.13); 500 squares, centre hole -0.00 (-0.02 to +0.01), NVIDIA masks
+0.00 (-0.00 to +0.01).
"""

from __future__ import annotations

import torch

from .seams import square_max

__all__ = ["FREE", "RING", "cast_offset"]

FREE = 0.05  # the cast left to the network: this far from grey on its largest channel, in [-1, 1]
RING = 16  # the cast is measured on the known pixels this near the hole (chessboard distance), px


def cast_offset(x: torch.Tensor, valid: torch.Tensor, free: float = FREE, ring: int = RING) -> torch.Tensor:
    """(N,3,1,1): the part of each image's colour cast around its hole beyond ``free``. ``x``
    (N,3,H,W) in [-1, 1], ``valid`` (N,1,H,W) 1 = valid; the cast is the mean of the valid
    pixels within ``ring`` px of a hole pixel minus that mean's average over the channels,
    scaled down so that its largest channel is ``free`` less (0 where it is within ``free``, or
    where no valid pixel is near a hole). ``network(x - offset) + offset`` fills in the colours
    the network knows; hole pixels of ``x`` are never read."""
    valid = valid.to(x.dtype)
    near = (square_max(1.0 - valid, ring) > 0).to(x.dtype) * valid
    count = near.sum((2, 3), keepdim=True)
    mean = torch.where(near > 0, x, 0.0).sum((2, 3), keepdim=True) / count.clamp(min=1.0)
    cast = mean - mean.mean(1, keepdim=True)
    size = cast.abs().amax(1, keepdim=True)
    return cast * (1.0 - free / size.clamp(min=1e-12)).clamp(min=0.0)
