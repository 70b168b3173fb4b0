"""Fitting the network's fill into the photo: its edge matched, thin parts filled smoothly.

The network reproduces the pixels around a hole only approximately. Pasting its hole pixels into
the photo turns that difference into a step along the hole's edge and, where the difference is
the same all round, into a colour offset of the whole fill. :func:`match_edges` measures the
difference on the valid pixels, interpolates it smoothly into the hole (a membrane: the harmonic
function with those values at the edge) and subtracts it from the fill. The fill then meets the
photo at the edge and keeps its own detail inside: seamless cloning (Perez et al. 2003, "Poisson
image editing") with the network's output as the source.

Thin parts of a hole (a scratch, a hair, a thin stroke: at most ``2 * THIN`` pixels across) are
filled from the photo's own edge (:func:`smooth_fill`), and the network's detail comes in over
``RAMP`` more pixels of half-width. Across a few pixels the photo's own edge values say more than
the network does: measured on the val photos, thin scratches 2-6 px wide came out 23.20 dB with
the network's matched fill and 23.63 dB with the photo's membrane (harmonic inpainting), while
strokes and objects did not change (+0.01 dB). The membrane is flat across a scratch: it joins
the two edges' values but not their slopes, so a scratch across a shaded cheek or a gradient sky
stays a faint line. The thin plate (the biharmonic fill, as scikit-image's ``inpaint_biharmonic``:
the least squared Laplacian) carries the slopes across, and overshoots where the edge is noisy or
steep; clamped to the range of the photo's values within ``CLAMP`` px and blended
``PLATE`` : ``1 - PLATE`` with the membrane, it fills the thin parts here. Hole PSNR on the thin
scratches of 100 val photos (a one-off comparison over whole scratches): membrane 25.10 dB, plate
25.26, plate clamped 25.78, clamped and blended 25.85, Navier-Stokes 24.57. Through the
Inpainter with the bundled v6 on 200 val photos (``benchmarks/texture.py``): thin scratches 25.67
dB against 24.90 with the membrane, strokes and objects +0.01 dB.

The membrane is solved coarse to fine: the known values are averaged down a pyramid, each level
starts from the bilinear upsampling of the coarser one's solution and relaxes the unknown pixels
towards the mean of their four neighbours (Jacobi). Cost: a few convolutions per level, a few
milliseconds for a 512x512 crop; every step is batched and runs on the fill's device. The thin
plate starts from the membrane and takes ``PLATE_ITERATIONS`` conjugate-gradient steps on the
thin parts and their ramp only (every unknown pixel is then within ``THIN + RAMP`` px of a fixed
one, so it converges in a few dozen steps), two 5-point Laplacians each, with no sync with the host.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["match_edges", "membrane", "smooth_fill", "thin_plate", "wide_parts"]

ITERATIONS = 8  # Jacobi sweeps per level: the coarser level's solution is already close
_COARSEST = 8  # below this side the unknown pixels start from the mean of the known ones
THIN = 3  # a hole part at most this far from its edge everywhere (<= 6-7 px across) is thin
RAMP = 4  # the network's detail comes in over this many more pixels of half-width
MARGIN = 8  # valid context around the holes for the membrane's coarse levels
PLATE = 0.7  # the thin parts' fill: this much clamped thin plate, the rest membrane
CLAMP = 4  # the thin plate is kept within the photo's values this near (chessboard distance), px
PLATE_ITERATIONS = 32  # conjugate-gradient steps of the thin plate


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


def wide_parts(valid: torch.Tensor, thin: int = THIN, ramp: int = RAMP) -> torch.Tensor:
    """(N,1,H,W) in [0, 1]: 0 on the hole's thin parts (every pixel of the part within ``thin``
    pixels of a valid one, chessboard distance), 1 on its wide parts and on valid pixels, rising
    over ``ramp`` pixels of half-width in between."""
    hole = 1.0 - valid
    depth = torch.zeros_like(hole)  # distance to the nearest valid pixel, capped at thin + ramp
    inner = hole
    for _ in range(thin + ramp):
        depth = depth + inner
        inner = -F.max_pool2d(-inner, 3, 1, 1)  # erode the hole by one pixel
    half_width = F.max_pool2d(depth, 2 * ramp + 1, 1, ramp)  # the deepest pixel nearby
    return torch.where(hole > 0, ((half_width - thin) / max(ramp, 1)).clamp(0.0, 1.0), torch.ones_like(hole))


def _laplacian(x: torch.Tensor) -> torch.Tensor:
    """The 5-point Laplacian at the interior pixels of ``x`` (..., H-2, W-2): shifted views, many
    times quicker on a CPU than a grouped 3x3 convolution."""
    centre = x[..., 1:-1, 1:-1]
    return x[..., :-2, 1:-1] + x[..., 2:, 1:-1] + x[..., 1:-1, :-2] + x[..., 1:-1, 2:] - 4.0 * centre


def _normal(x: torch.Tensor) -> torch.Tensor:
    """L^T L x (the thin plate energy's gradient, halved): the Laplacian is symmetric, so its
    transpose is the Laplacian of the zero-padded interior values."""
    return _laplacian(F.pad(_laplacian(x), (2, 2, 2, 2)))


def thin_plate(values: torch.Tensor, free: torch.Tensor, iterations: int = PLATE_ITERATIONS) -> torch.Tensor:
    """``values`` (N,C,H,W) with its ``free`` pixels (N,1,H,W, 1 = free) replaced by the thin
    plate over the others: the values that minimise the summed squared 5-point Laplacian over the
    image's interior pixels, the others fixed. Solved by conjugate gradients from ``values``
    itself (start from a close guess, such as the membrane); a free pixel that no interior
    Laplacian reads (an image corner) keeps its start."""
    free = free.to(values.dtype)
    if min(values.shape[-2:]) < 3 or not bool((free > 0).any()):
        return values
    x = values.clone()
    r = _normal(x).mul_(-free)  # the residual on the free pixels (the gradient is 0 at the minimum)
    p = r.clone()
    rs = (r * r).sum((2, 3), keepdim=True)
    for _ in range(iterations):  # in place: the steps are memory-bound on a CPU
        ap = _normal(p).mul_(free)
        alpha = rs / (p * ap).sum((2, 3), keepdim=True).clamp(min=1e-30)
        x.addcmul_(alpha, p)
        r.addcmul_(alpha, ap, value=-1.0)
        rs_next = (r * r).sum((2, 3), keepdim=True)
        p.mul_(rs_next / rs.clamp(min=1e-30)).add_(r)
        rs = rs_next
    return x


def smooth_fill(
    photo: torch.Tensor, valid: torch.Tensor, start: torch.Tensor, wide: torch.Tensor | None = None
) -> torch.Tensor:
    """The fill of the hole's thin parts and ramp from ``photo`` (N,C,H,W) at its ``valid``
    pixels (N,1,H,W, 1 = valid) alone: ``PLATE`` of the thin plate (from the membrane ``start``,
    kept within the range of the valid values within ``CLAMP`` px) and the rest membrane.
    ``wide``: :func:`wide_parts` of ``valid`` where the caller has it. Hole pixels of ``photo``
    are never read; beyond the ramp the result is the membrane."""
    valid = valid.to(photo.dtype)
    wide = wide_parts(valid) if wide is None else wide
    free = (1.0 - valid) * (wide < 1).to(photo.dtype)
    plate = thin_plate(torch.where(valid > 0, photo, start), free)
    size, big = 2 * CLAMP + 1, torch.finfo(photo.dtype).max
    high = F.max_pool2d(torch.where(valid > 0, photo, -big), size, 1, CLAMP)
    low = -F.max_pool2d(torch.where(valid > 0, -photo, -big), size, 1, CLAMP)
    near = high > -big  # some valid pixel lies within CLAMP px
    plate = torch.where(near, torch.minimum(torch.maximum(plate, low), high), plate)
    return torch.where(free > 0, start + PLATE * (plate - start), start)


def match_edges(
    out: torch.Tensor, image: torch.Tensor, valid: torch.Tensor, *, thin: bool = True
) -> torch.Tensor:
    """The network's ``out`` (N,3,H,W) fitted into ``image``: its hole pixels corrected so that
    they meet ``image`` at the hole's edge (``out`` minus the membrane of ``out - image`` over
    the ``valid`` pixels, N,1,H,W, 1 = valid) and, with ``thin``, the hole's thin parts filled
    from ``image`` alone (:func:`smooth_fill`, :func:`wide_parts`). Hole pixels of ``image`` are
    never read; valid pixels of the result are the input's ``out`` (the caller pastes only hole
    pixels). The membranes are solved in the holes' bounding box with a margin of ``MARGIN``
    valid pixels, not the whole image, one image at a time."""
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
        photo = torch.where(v > 0, image[win].to(out.dtype), 0.0)  # never reads a hole pixel
        error = out[win] - photo  # membrane() reads it on the valid pixels only
        # with thin: both membranes in one pass, the fill's error and the photo itself
        solved = membrane(torch.cat([error, photo], 1) if thin else error, v)
        fill = out[win] - solved[:, : out.shape[1]]
        if thin:
            wide = wide_parts(v)
            smooth = smooth_fill(photo, v, solved[:, out.shape[1] :], wide)
            fill = smooth + wide * (fill - smooth)
        fixed[win] = out[win] + (fill - out[win]) * (1.0 - v)
    return fixed


def _span(index: torch.Tensor, size: int) -> tuple[int, int]:
    return max(0, int(index.min()) - MARGIN), min(size, int(index.max()) + 1 + MARGIN)
