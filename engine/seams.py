"""Matching a fill to the photo at the hole's edge (no seam, no colour offset).

The network reproduces the pixels around a hole only approximately. Pasting its hole pixels into
the photo turns that difference into a step along the hole's edge and, where the difference is
the same all round, into a colour offset of the whole fill. :func:`match_edges` measures the
difference on the valid pixels, interpolates it smoothly into the hole (a membrane: the harmonic
function with those values at the edge) and subtracts it from the fill. The fill then meets the
photo at the edge and keeps its own detail inside: seamless cloning (Perez et al. 2003, "Poisson
image editing") with the network's output as the source.

The membrane is solved coarse to fine: the known values are averaged down a pyramid, each level
starts from the bilinear upsampling of the coarser one's solution and relaxes the unknown pixels
towards the mean of their four neighbours (Jacobi). Cost: a few convolutions per level, a few
milliseconds for a 512x512 crop; every step is batched and runs on the fill's device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["match_edges", "membrane"]

ITERATIONS = 8  # Jacobi sweeps per level: the coarser level's solution is already close
_COARSEST = 8  # below this side the unknown pixels start from the mean of the known ones


def membrane(values: torch.Tensor, known: torch.Tensor, iterations: int = ITERATIONS) -> torch.Tensor:
    """``values`` (N,C,H,W) where ``known`` (N,1,H,W, 1 = known) is set, and a smooth
    interpolation of them elsewhere (approximately harmonic; image borders are reflecting)."""
    known = known.to(values.dtype)
    if bool((known > 0).all()):
        return values
    h, w = values.shape[-2:]
    if min(h, w) > _COARSEST:
        count = F.avg_pool2d(known, 2, ceil_mode=True)
        coarse_known = (count > 0).to(values.dtype)
        coarse = F.avg_pool2d(values * known, 2, ceil_mode=True) / count.clamp(min=1e-6)
        coarse = membrane(coarse * coarse_known, coarse_known, iterations)
        start = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    else:
        total = (values * known).sum((2, 3), keepdim=True)
        start = (total / known.sum((2, 3), keepdim=True).clamp(min=1.0)).expand_as(values)
    fixed = values * known  # the known values, zero elsewhere
    free = 1.0 - known
    x = fixed + free * start
    for _ in range(iterations):
        p = F.pad(x, (1, 1, 1, 1), mode="replicate")
        mean = (p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:]) * 0.25
        x = torch.addcmul(fixed, free, mean)
    return x


def match_edges(out: torch.Tensor, image: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """The network's ``out`` (N,3,H,W) corrected so that its hole pixels meet ``image`` at the
    hole's edge: ``out`` minus the membrane of ``out - image`` over the ``valid`` pixels
    (N,1,H,W, 1 = valid). Hole pixels of ``image`` are never read; valid pixels of the result
    are the input's ``out`` there (the caller pastes only hole pixels). The membrane is solved
    in the holes' bounding box with a margin of ``MARGIN`` valid pixels, not the whole image."""
    valid = valid.to(out.dtype)
    fixed = out.clone()
    h, w = out.shape[-2:]
    for i in range(out.shape[0]):  # each image in its own window: a batch fills like single calls
        hole = valid[i, 0] <= 0
        if not bool(hole.any()) or bool(hole.all()):
            continue
        y0, y1 = _span(torch.nonzero(hole.any(1)), h)
        x0, x1 = _span(torch.nonzero(hole.any(0)), w)
        win = (slice(i, i + 1), slice(None), slice(y0, y1), slice(x0, x1))
        v = valid[win]
        diff = (out[win] - image[win].to(out.dtype)) * v
        fixed[win] = out[win] - membrane(diff, v) * (1.0 - v)
    return fixed


MARGIN = 8  # valid context around the holes for the membrane's coarse levels


def _span(index: torch.Tensor, size: int) -> tuple[int, int]:
    return max(0, int(index.min()) - MARGIN), min(size, int(index.max()) + 1 + MARGIN)
