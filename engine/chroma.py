"""Saturated colours and bright or dark surrounds: the network fills in the colours and at the
brightness it was trained on, the photo's cast and level added back.

The network learnt its colours from birds and their surroundings. Around a hole in a strongly
coloured surface (a magenta wall, a blue car, a green sign) it paints the colours it knows: an
80x100 hole in flat magenta (230, 30, 200) came out a dull mauve, 65 grey levels off on average
(blue, cyan and green 16-22, purple 18, red 6; greys, sky, skin and foliage 2-5). The edge
matching (:mod:`engine.seams`) corrects the fill at the hole's edge, not in its middle.

:func:`cast_field` measures the colour cast of the known pixels around the holes (their local
mean colour's departure from grey, the mean of its three channels); the Inpainter takes it off
the crop before the network sees it, all but ``FREE`` of it (the network still sees its
direction, about 6 grey levels on the largest channel; a slighter cast is left as it is), and
adds it back to the network's output. The cast is a smooth field, not one colour per crop: a
crop can hold a hole in a magenta wall and another in a grey one, or one stroke across both (one
cast for the whole crop tinted such a grey hole 15 grey levels pink). The known pixels within
``RING`` px of a hole are averaged in cells of ``CELL`` px; the cells' casts are spread with a
Gaussian of ``SIGMA`` px (weighted by their pixels), times their coherence (the squared mean
cast over the mean squared one: 1 where the cells around share one colour, the share of them
that have it where a saturated surface meets a grey one, so that a hole across that boundary
gets a part of the cast, not the mean's), carried over the cells with no such pixel (the holes'
middles, the crop away from them) by the membrane of :mod:`engine.seams`, and upsampled
bilinearly. 8-12 ms for a 512x512 crop on the 2-core development CPU with the spread measured in
the same pass (a box hole, the ``benchmarks/inference.py`` stroke).

An 80x100 hole in each colour above then came out 2-3 grey levels off (``runs/chroma-val.out``);
a hole three quarters in a grey wall and a quarter in a magenta one is still a compromise: its
grey part 9-13 grey levels off on average (7 without the cast taken off), its magenta part 31-41
(54-61 without).
Paired on the val split, the same photos and holes (the Inpainter as the app fills): 100 photos'
brush strokes +0.02 dB (95% interval +0.00 to +0.04), objects +0.00 (-0.03 to +0.04), thin
scratches the same (their fill is the photo's own); the same photos with their saturation raised
1.8x, strokes +0.05 (+0.02 to +0.09), objects +0.06 (+0.00 to +0.13); 500 squares, centre hole
+0.01 (-0.01 to +0.02), NVIDIA masks +0.01 (+0.01 to +0.02).

Brightness likewise. A large hole in a very bright or dark surround drifted towards mid-grey in
its middle: a disc 240 px across in a 512 px crop of flat white (255, a little noise) came out
239 on average, of black 20, of 235 about 227 and tinted (its red lowest); across 400 px of a
1600 px photo 215, 40 and 205-215: a grey blob on a white wall or a bright sky. Mid-greys came out
within 1-3 levels. :func:`level_field` measures the local mean brightness of the same known
pixels (the mean of the three channels, spread and carried over as the cast is) and the
Inpainter takes off all but ``LEVEL_FREE`` of its distance from mid-grey (0.4 in [-1, 1]: 178 or
77 of 255; nearer mid-grey it is left as it is), adding it back to the output. The same holes
then: white 253 and 247 on the large photo, black 3.5 and 8, 235 within 1-3 (7-10 on the large
photo). Paired on 150 val photos, the same holes (the Inpainter as the app fills, texture 0.5):
strokes +0.01 dB (95% interval -0.00 to +0.03), objects +0.04 (-0.03 to +0.14), thin scratches the
same (their fill is the photo's own); the objects' texture ratio 0.358 -> 0.353. ``LEVEL_FREE``
0.2 was no better there (objects +0.03 against none, texture 0.350).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .gaussian import gaussian_blur
from .seams import membrane, square_max

__all__ = [
    "CELL",
    "FREE",
    "LEVEL_FREE",
    "RING",
    "SIGMA",
    "cast_field",
    "level_field",
    "spread_field",
    "surround_field",
    "surround_fields",
]

FREE = 0.05  # the cast left to the network: this far from grey on its largest channel, in [-1, 1]
LEVEL_FREE = 0.4  # the brightness left to the network: this far from mid-grey, in [-1, 1]
RING = 16  # the cast is measured on the known pixels this near a hole (chessboard distance), px
CELL = 8  # the field's cells, px
SIGMA = 32.0  # the Gaussian that spreads the cells' colours, px
RIDGE = 0.01  # added to the cells' places' variances (in sigmas squared) in the spread's plane fit


def _cells(x: torch.Tensor, valid: torch.Tensor, ring: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each cell's (``CELL`` px) mean of ``x``'s channels over its known pixels within ``ring`` px
    of a hole (N,C,h,w), and the share of its pixels that are such (N,1,h,w)."""
    h, w = x.shape[-2:]
    near = (square_max(1.0 - valid, ring) > 0).float() * valid
    # whole cells: the right and bottom ones padded with pixels of no weight, not averaged over less
    pad = (0, -w % CELL, 0, -h % CELL)
    weight = F.avg_pool2d(F.pad(near, pad), CELL)
    return F.avg_pool2d(F.pad(torch.where(near > 0, x, 0.0), pad), CELL) / weight.clamp(min=1e-12), weight


def _upsampled(field: torch.Tensor, h: int, w: int, dtype: torch.dtype) -> torch.Tensor:
    """Each cell's value at its centre, pixel for pixel: the crop is not a whole number of cells."""
    return F.interpolate(field, scale_factor=CELL, mode="bilinear", align_corners=False)[..., :h, :w].to(
        dtype
    )


def _surround(
    x: torch.Tensor, valid: torch.Tensor, ring: int, sigma: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The cast (N,3,h,w), the level (N,1,h,w) and the spread (N,1,h,w) around the holes per
    cell, before ``free`` is left to the network: the cells' mean colours (:func:`_cells`),
    their departure from grey, their grey and their colours' and places' moments spread with a
    Gaussian of ``sigma`` px weighted by their pixels (a normalised convolution), the cast
    times its coherence, the spread (:func:`_spread`), all carried over the cells with no known
    pixel near a hole by the membrane. One pass for all (see the module's docstring and
    :func:`spread_field`)."""
    cell, weight = _cells(x, valid, ring)
    grey = cell.mean(1, keepdim=True)  # each cell's mean brightness
    chroma = cell - grey  # each cell's mean colour's departure from grey
    ones = weight.new_ones(weight.shape)
    # each cell's place, in units of the Gaussian's sigma, from the grid's middle (the spread's
    # local plane; moments about the middle keep float32's cancellation small)
    h, w = cell.shape[-2:]
    scale = CELL / sigma
    v = ((torch.arange(h, dtype=cell.dtype, device=cell.device) - (h - 1) / 2) * scale).view(1, 1, h, 1)
    u = ((torch.arange(w, dtype=cell.dtype, device=cell.device) - (w - 1) / 2) * scale).view(1, 1, 1, w)
    u, v = u.expand_as(grey), v.expand_as(grey)
    place = torch.cat([u, v, u * u, v * v, u * v], 1)
    sums = gaussian_blur(
        torch.cat(
            [
                chroma,
                chroma.square().sum(1, keepdim=True),
                ones,
                grey,
                cell,
                cell.square(),
                place,
                cell * u,
                cell * v,
            ],
            1,
        )
        * weight,
        sigma / CELL,
        border="zeros",  # a normalised convolution: divided by the blurred weight below
    )
    total = sums[:, 4:5].clamp(min=1e-12)
    mean, square, level = sums[:, :3] / total, sums[:, 3:4] / total, sums[:, 5:6] / total
    m = sums[:, 6:] / total
    spread = _spread(m[:, 0:3], m[:, 3:6], m[:, 6:11], m[:, 11:14], m[:, 14:17])
    known = (weight > 0).to(x.dtype)  # cells holding a pixel near a hole: the rest is carried over
    # the cast's coherence: 1 where the cells around share one colour, the share of them that
    # have it where a saturated surface meets a grey one (a hole across their boundary)
    coherence = mean.square().sum(1, keepdim=True) / square.clamp(min=1e-12)
    fields = membrane(torch.cat([mean * coherence.clamp(max=1.0), level, spread], 1) * known, known)
    return fields[:, :3], fields[:, 3:4], fields[:, 4:]


def _spread(
    colour: torch.Tensor,
    colour_square: torch.Tensor,
    place: torch.Tensor,
    colour_u: torch.Tensor,
    colour_v: torch.Tensor,
) -> torch.Tensor:
    """(N,1,h,w): the root of the mean of the three channels' variances of the cells' mean
    colours around each cell, less what a plane explains (a weighted least-squares fit of each
    channel on the cells' places, ``RIDGE`` added to the places' variances), from the Gaussian
    means of the cells' colours, their squares, their places' moments (``place``: u, v, uu, vv,
    uv) and the colours times u and times v. The cells' means, not the pixels: a grain of 6
    levels gave a flat night sky a spread of 6 (an allowance of 20 levels, through which the
    network's blob came +5 levels); a plane's variance is a gradient the photo's membrane follows
    (a sky of 130 levels a photo's height, an allowance of 7.5 levels, its fill up to 12 off)."""
    mu, mv = place[:, 0:1], place[:, 1:2]
    uu = (place[:, 2:3] - mu * mu).clamp(min=0.0) + RIDGE
    vv = (place[:, 3:4] - mv * mv).clamp(min=0.0) + RIDGE
    uv = place[:, 4:5] - mu * mv
    cu, cv = colour_u - colour * mu, colour_v - colour * mv  # each channel's covariance with u, v
    explained = (cu * cu * vv - 2 * cu * cv * uv + cv * cv * uu) / (uu * vv - uv * uv).clamp(min=1e-12)
    variance = colour_square - colour.square() - explained
    return variance.clamp(min=0.0).mean(1, keepdim=True).sqrt()


def _cast_beyond(cast: torch.Tensor, free: float) -> torch.Tensor:
    """The cast scaled down so that its largest channel is ``free`` less (0 within ``free``)."""
    size = cast.abs().amax(1, keepdim=True)
    return cast * (1.0 - free / size.clamp(min=1e-12)).clamp(min=0.0)


def _level_beyond(level: torch.Tensor, free: float) -> torch.Tensor:
    """The level less ``free`` towards mid-grey (0 within ``free``)."""
    return level.sign() * (level.abs() - free).clamp(min=0.0)


def cast_field(
    x: torch.Tensor,
    valid: torch.Tensor,
    free: float = FREE,
    ring: int = RING,
    sigma: float = SIGMA,
) -> torch.Tensor:
    """(N,3,H,W): the part of the colour cast around the holes beyond ``free`` at each pixel of
    ``x`` (N,3,H,W) in [-1, 1], ``valid`` (N,1,H,W) 1 = valid: the local mean colour of the valid
    pixels within ``ring`` px of a hole pixel (see the module's docstring) minus its average over
    the channels, scaled down so that its largest channel is ``free`` less (0 where it is within
    ``free``; 0 everywhere for an image with no valid pixel near a hole). ``network(x - field)
    + field`` fills in the colours the network knows; hole pixels of ``x`` are never read."""
    h, w = x.shape[-2:]
    dtype, x, valid = x.dtype, x.float(), valid.float()  # 1e-12 is 0 in half precision
    cast, _, _ = _surround(x, valid, ring, sigma)
    return _upsampled(_cast_beyond(cast, free), h, w, dtype)


def level_field(
    x: torch.Tensor,
    valid: torch.Tensor,
    free: float = LEVEL_FREE,
    ring: int = RING,
    sigma: float = SIGMA,
) -> torch.Tensor:
    """(N,1,H,W): the part of the brightness around the holes beyond ``free`` from mid-grey at
    each pixel of ``x`` (N,3,H,W) in [-1, 1], ``valid`` (N,1,H,W) 1 = valid: the local mean of
    the three channels of the valid pixels within ``ring`` px of a hole pixel, measured, spread
    and carried over as :func:`cast_field` does the cast, less ``free`` towards 0 (0 within it).
    ``network(x - field) + field`` fills at the brightness the network knows; hole pixels of
    ``x`` are never read."""
    h, w = x.shape[-2:]
    dtype, x, valid = x.dtype, x.float(), valid.float()
    _, level, _ = _surround(x, valid, ring, sigma)
    return _upsampled(_level_beyond(level, free), h, w, dtype)


def surround_field(
    x: torch.Tensor, valid: torch.Tensor, ring: int = RING, sigma: float = SIGMA
) -> torch.Tensor:
    """(N,3,H,W): :func:`cast_field` plus :func:`level_field` (at ``FREE`` and ``LEVEL_FREE``),
    what the Inpainter takes off before the network and adds back after, measured once."""
    return surround_fields(x, valid, ring, sigma)[0]


def spread_field(
    x: torch.Tensor, valid: torch.Tensor, ring: int = RING, sigma: float = SIGMA
) -> torch.Tensor:
    """(N,1,H,W): how much the valid pixels of ``x`` (N,3,H,W) within ``ring`` px of a hole vary
    around each pixel at the scale of the shapes a network paints: the standard deviation of
    the cells' (``CELL`` px) mean colours under a Gaussian of ``sigma`` px less what a plane
    explains (the root of the mean of the three channels' variances; :func:`_spread`), measured
    from the same cells as the cast, spread and carried over as it is (0 for an image with no
    valid pixel near a hole). Grain and a gradient are not variation. How far a fill may depart
    from the photo's smooth continuation (:func:`engine.seams.match_edges`)."""
    return surround_fields(x, valid, ring, sigma)[1]


def surround_fields(
    x: torch.Tensor, valid: torch.Tensor, ring: int = RING, sigma: float = SIGMA
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`surround_field` and :func:`spread_field`, measured in one pass (the Inpainter's)."""
    h, w = x.shape[-2:]
    dtype, x, valid = x.dtype, x.float(), valid.float()
    cast, level, spread = _surround(x, valid, ring, sigma)
    up = _upsampled(
        torch.cat([_cast_beyond(cast, FREE), _level_beyond(level, LEVEL_FREE), spread], 1), h, w, dtype
    )
    return up[:, :3] + up[:, 3:4], up[:, 4:]
