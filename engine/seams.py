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
dB against 24.90 with the membrane, strokes and objects +0.01 dB. ``THIN`` 5 rather than 3 (parts
up to 10-11 px across filled so), paired on the same 200 photos: strokes +0.04 dB (95% interval
+0.02 to +0.06), objects +0.02 (+0.01 to +0.03), scratches the same; 8 was no better than 3. On
the test split on its own (docs/training-rounds.md, twenty-fifth round): centre and irregular +0.02 dB, strokes
+0.02 (+0.00 to +0.04), scratches +0.01, objects +0.04 (+0.02 to +0.06).

The membrane is solved coarse to fine: the known values are averaged down a pyramid (halved
along each side still longer than 8 px, so a strip along the photo's border coarsens along its
length; a 3-8 px strip down a border of 100 val photos came out +0.85 dB, 95% interval +0.41 to
+1.51, every other hole kind the same to 0.01 dB), each level
starts from the bilinear upsampling of the coarser one's solution and relaxes the unknown pixels
towards the mean of their four neighbours (Jacobi). Cost: a few convolutions per level, a few
milliseconds for a 512x512 crop; every step is batched and runs on the fill's device. The thin
plate starts from the membrane and takes ``PLATE_ITERATIONS`` conjugate-gradient steps on the
thin parts and their ramp only (every unknown pixel is then within ``THIN + RAMP`` px of a fixed
one, so it converges in a few dozen steps), the Laplacian gathered on those pixels alone. The
distances and ranges are square maxima (:func:`square_max`), not ``max_pool2d``, which is 20-50x
slower on a CPU with stride 1. For the 40 px stroke of ``benchmarks/inference.py`` (512x512)
:func:`match_edges` takes about 25 ms (60 ms with whole-window steps and max pooling).

**A flat surround keeps a flat fill.** Inside a large hole in a flat surface (a clear sky, a
painted wall, a studio backdrop) the network paints shapes of its own, which the edge match
leaves alone: a 300x200 hole in a 400x300 flat blue came out with a blurred rectangle in it, up
to 40 grey levels off the blue (10.7 on average; up to 52 in a flat beige, 25 in a flat grey);
a 100x100 hole in a real photo's plain background a lighter blob, up to 8 levels off. Given the
surround's ``spread`` (:func:`engine.chroma.spread_field`: how much the known pixels near the
holes vary, a smooth field), the matched fill may depart from the photo's own membrane over the
hole (flat for a flat surround, a ramp for a gradient) by at most ``FLAT_GAIN`` times the spread
plus ``FLAT_FLOOR``, softly (``allowance * tanh(departure / allowance)``: a small departure
passes unchanged). Around structure the allowance is large and nothing changes; the same holes
come out within 2 levels of the flat colour (13 with a noise of 2 levels in the flat blue, 41
before; the texture step adds the photo's grain after). Paired on 150 val photos, the same holes
(``runs/flat-ab2``, with the clamp's wider range round known specks below): strokes +0.03 dB (95%
interval +0.02 to +0.04; texture 0.396 -> 0.393), objects +0.01 (+0.00 to +0.02; 0.353 -> 0.350),
scratches the same; a gain of 2 measured the same, a floor of 6 levels too (``runs/flat-ab``).
The spread was the known pixels' own standard deviation until 2026-12-07: grain and a gradient
counted as variation, and the hold let go where it was most needed (a 300 px disc in a dark
surface with a grain of 6 levels came out 5.4 levels brighter, a grainy flat colour under a 90%
hole 15 levels off, a sky gradient's blob up to 17). It is the 8 px cells' means' now, less what
a plane explains (:func:`engine.chroma.spread_field`): the allowance in those surfaces 20 -> 4.5
and 7.5 -> 2.9 levels. Paired on 200 val photos with the spread's plane and cells alone
(``runs/s42/ab-val.md``): strokes +0.00 dB (95% interval +0.00 to +0.01), objects -0.00 (-0.01
to +0.01), the texture the same.
The photo's membrane is the one the thin parts start from: no extra solve (with
``Inpainter(thin=False)`` it is solved for the hold alone, beside the fill's error).

Memory: the sweeps run in two buffers (the state with its border, the next state), and a window
over ``_PLANE`` pixels is matched one channel at a time (its membrane bit for bit as all at once,
the thin plate to float rounding: its sums run over one channel). An object of 10% of a 24 MP
photo with a wire into it (a 1443x2978 window) took 55 float planes of its window above the
inputs, +1.1 GB and 3.4 s; 16.5 planes (three of them the result), +0.36 GB and 1.2 s now.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .layers import box_sum

__all__ = [
    "FLAT_FLOOR",
    "FLAT_GAIN",
    "edge_window",
    "match_edges",
    "membrane",
    "photo_fill",
    "smooth_fill",
    "square_max",
    "thin_fill",
    "thin_plate",
    "wide_parts",
]

ITERATIONS = 8  # Jacobi sweeps per level: the coarser level's solution is already close
_PLANE = 1 << 20  # a larger membrane is solved one channel at a time (memory)
_COARSEST = 8  # at or below this side the unknown pixels start from the mean of the known ones
THIN = 5  # a hole part at most this far from its edge everywhere (<= 10-11 px across) is thin
RAMP = 4  # the network's detail comes in over this many more pixels of half-width
MARGIN = 8  # valid context around the holes for the membrane's coarse levels
PLATE = 0.7  # the thin parts' fill: this much clamped thin plate, the rest membrane
CLAMP = 4  # the thin plate is kept within the photo's values this near (chessboard distance), px
CLAMP_KNOWN = 6  # ... where at least this many are that near; where fewer (a known speck inside
CLAMP_WIDE = 16  # the hole), within this many px: one speck's value made a flat 9x9 square
PLATE_ITERATIONS = 32  # conjugate-gradient steps of the thin plate
FLAT_GAIN = 3.0  # a fill may depart from the photo's membrane by this many of the surround's spreads
FLAT_FLOOR = 2 / 127.5  # ... plus this much, in [-1, 1] (2 grey levels)
_STENCIL = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))  # the 5-point Laplacian: centre -4, the rest 1


def membrane(values: torch.Tensor, known: torch.Tensor, iterations: int = ITERATIONS) -> torch.Tensor:
    """``values`` (N,C,H,W) where ``known`` (N,1,H,W, 1 = known) is set, and a smooth
    interpolation of them elsewhere (approximately harmonic; image borders are reflecting)."""
    known = known.to(values.dtype)
    if bool((known > 0).all()):
        return values
    h, w = values.shape[-2:]
    if values.shape[1] > 1 and h * w > _PLANE:  # one channel at a time: the same values, less memory
        solved = torch.empty_like(values)
        for c in range(values.shape[1]):
            solved[:, c : c + 1] = membrane(values[:, c : c + 1], known, iterations)
        return solved
    if max(h, w) > _COARSEST:
        # halved along the sides still longer than the coarsest: a narrow window (a strip along
        # the photo's border) goes on coarsening along its length instead of starting from the
        # mean of the whole window, which the few sweeps left far from the one edge it has
        step = (2 if h > _COARSEST else 1, 2 if w > _COARSEST else 1)
        count = F.avg_pool2d(known, step, ceil_mode=True)
        coarse_known = (count > 0).to(values.dtype)
        coarse = F.avg_pool2d(values * known, step, ceil_mode=True) / count.clamp(min=1e-6)
        coarse = membrane(coarse * coarse_known, coarse_known, iterations)
        start = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    else:
        total = (values * known).sum((2, 3), keepdim=True)
        start = (total / known.sum((2, 3), keepdim=True).clamp(min=1.0)).expand_as(values)
    fixed = values * known  # the known values, zero elsewhere
    free = 1.0 - known
    x = fixed + free * start
    del start
    if iterations <= 0:
        return x
    # the sweeps in two buffers: the state with its border replicated, and the next state
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    del x
    mean = torch.empty_like(fixed)
    for i in range(iterations):
        if i:
            p[..., 1:-1, 1:-1] = mean
            p[..., 0, :], p[..., -1, :] = p[..., 1, :], p[..., -2, :]
            p[..., :, 0], p[..., :, -1] = p[..., :, 1], p[..., :, -2]
        torch.add(p[..., :-2, 1:-1], p[..., 2:, 1:-1], out=mean)
        mean += p[..., 1:-1, :-2]
        mean += p[..., 1:-1, 2:]
        mean *= 0.25
        torch.addcmul(fixed, free, mean, out=mean)
    return mean


def wide_parts(valid: torch.Tensor, thin: int = THIN, ramp: int = RAMP, *, rim: bool = False) -> torch.Tensor:
    """(N,1,H,W) in [0, 1]: 0 on the hole's thin parts (every pixel of the part within ``thin``
    pixels of a valid one, chessboard distance), 1 on its wide parts and on valid pixels, rising
    over ``ramp`` pixels of half-width in between: the rim of a wide part too, whose pixels
    beside the valid ones rise as a thin part's do (the fill's weight, :func:`match_edges`: the
    photo's own fill there). ``rim``: a wide part's rim is wide too, the pixels of any square of
    ``2 (thin + ramp) - 1`` px all hole, with the same ramp from it into a thin part joined to it
    (the texture's weight, :mod:`engine.texture`: without it, every wide hole in a grainy photo
    had a band 4 px wide along its edge without grain)."""
    hole = 1.0 - valid
    depth = torch.zeros_like(hole)  # distance to the nearest valid pixel, capped at thin + ramp
    inner = hole
    for _ in range(thin + ramp):
        depth = depth + inner
        inner = -square_max(-inner, 1)  # erode the hole by one pixel
    half_width = square_max(depth, ramp)  # the deepest pixel nearby
    weight = ((half_width - thin) / max(ramp, 1)).clamp(0.0, 1.0)
    if rim:
        # the half-width of the widest all-hole square each pixel lies in (an opening), as the
        # weight above, then ramped down over ramp px into thin parts joined to it
        width = torch.zeros_like(hole)
        for r in range(thin + 1, thin + ramp + 1):
            width = torch.where(square_max((depth >= r).to(hole.dtype), r - 1) > 0, float(r), width)
        square = ((width - thin) / max(ramp, 1)).clamp(0.0, 1.0)
        for _ in range(1, ramp):
            square = torch.maximum(square, square_max(square, 1) - 1.0 / ramp)
        weight = torch.maximum(weight, square)
    return torch.where(hole > 0, weight, torch.ones_like(hole))


def square_max(x: torch.Tensor, radius: int) -> torch.Tensor:
    """The maximum of ``x`` (..., H, W) over the (2 ``radius`` + 1)-pixel square around each
    pixel, the outside not counted: ``max_pool2d(x, 2 * radius + 1, 1, radius)``, as running
    maxima of shifted views (rows, then columns; log2 of the side steps each), 20-50x quicker on a
    CPU than max_pool2d with stride 1."""
    return _max_along(_max_along(x, radius, -1), radius, -2)


def _max_along(x: torch.Tensor, radius: int, dim: int) -> torch.Tensor:
    size, n = 2 * radius + 1, x.shape[dim]
    pad = [radius, radius] if dim == -1 else [0, 0, radius, radius]
    m = F.pad(x, pad, value=float("-inf"))
    width = 1  # m holds the maxima over windows of this many pixels
    while 2 * width <= size:
        m = torch.maximum(m.narrow(dim, 0, m.shape[dim] - width), m.narrow(dim, width, m.shape[dim] - width))
        width *= 2
    return torch.maximum(m.narrow(dim, 0, n), m.narrow(dim, size - width, n))  # two windows cover it


def _laplacian(x: torch.Tensor) -> torch.Tensor:
    """The 5-point Laplacian at the interior pixels of ``x`` (..., H-2, W-2): shifted views, many
    times quicker on a CPU than a grouped 3x3 convolution."""
    centre = x[..., 1:-1, 1:-1]
    return x[..., :-2, 1:-1] + x[..., 2:, 1:-1] + x[..., 1:-1, :-2] + x[..., 1:-1, 2:] - 4.0 * centre


def _normal(x: torch.Tensor) -> torch.Tensor:
    """L^T L x (the thin plate energy's gradient, halved): the Laplacian is symmetric, so its
    transpose is the Laplacian of the zero-padded interior values."""
    return _laplacian(F.pad(_laplacian(x), (2, 2, 2, 2)))


def _stencil_tables(free: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The 5-point Laplacian restricted to the ``free`` pixels (bool H,W) as index tables:
    the free pixels' rows and columns; for each interior pixel whose Laplacian reads a free pixel,
    the free pixels it reads (5,R; centre first); for each free pixel, the interior pixels that read
    it (5,F; the centre's first). ``F`` (``R``) stands for none: the zero entry a vector of free
    (interior) values gets at its end."""
    h, w = free.shape
    ys, xs = torch.nonzero(free, as_tuple=True)
    padded = F.pad(free, (1, 1, 1, 1))
    col = torch.full((h + 2, w + 2), ys.numel(), dtype=torch.long, device=free.device)
    col[ys + 1, xs + 1] = torch.arange(ys.numel(), device=free.device)
    reads_free = torch.zeros_like(free)
    for dy, dx in _STENCIL:
        reads_free |= padded[1 + dy : h + 1 + dy, 1 + dx : w + 1 + dx]
    reads_free[[0, -1], :] = False  # the Laplacian is taken at interior pixels only
    reads_free[:, [0, -1]] = False
    ry, rx = torch.nonzero(reads_free, as_tuple=True)
    row = torch.full((h + 2, w + 2), ry.numel(), dtype=torch.long, device=free.device)
    row[ry + 1, rx + 1] = torch.arange(ry.numel(), device=free.device)
    reads = torch.stack([col[ry + 1 + dy, rx + 1 + dx] for dy, dx in _STENCIL])
    read_by = torch.stack([row[ys + 1 - dy, xs + 1 - dx] for dy, dx in _STENCIL])
    return ys, xs, reads, read_by


def _blocks(reads: torch.Tensor, read_by: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The independent systems among the free pixels of :func:`_stencil_tables` (``reads`` 5,R
    and ``read_by`` 5,F): two free pixels are in one when a Laplacian reads both, or through a
    chain of such pixels (a speck, a scratch; pixels more than 2 px apart in nothing else).
    Returns each free pixel's system (F,: 0 .. count - 1) and the count. Connected components
    by hooking and pointer jumping (Shiloach and Vishkin): each pixel points to a pixel of its
    system, a root points to itself; every Laplacian hooks the roots of the pixels it reads onto
    the least of them, then every pointer is followed to its root; until nothing changes. A few
    rounds for a speck, tens for a spiral hair (taking the least label from the neighbours only
    took a round per 2 px of a winding scratch's length: 260 rounds, 2.2 s, for one of 83k px)."""
    n_free = read_by.shape[1]
    label = torch.arange(n_free + 1, device=reads.device)  # the last: none, kept the largest
    while True:
        roots = label[reads]  # (5,R): the roots of the pixels each Laplacian reads
        least = roots.min(0).values.repeat(5)
        new = label.scatter_reduce(0, roots.flatten(), least, reduce="amin")
        new[n_free] = n_free
        while True:  # every pointer to its root
            jumped = new[new]
            if torch.equal(jumped, new):
                break
            new = jumped
        if torch.equal(new, label):
            break
        label = new
    found, block = torch.unique(label[:n_free], return_inverse=True)
    return block, int(found.numel())


def _dot(a: torch.Tensor, b: torch.Tensor, block: torch.Tensor | None, count: int) -> torch.Tensor:
    """The sum of ``a * b`` (C,F) over each system's pixels (C,count; ``block``: each pixel's
    system, :func:`_blocks`), or over all of them (C,1) for None."""
    if block is None:
        return (a * b).sum(1, keepdim=True)
    return a.new_zeros(a.shape[0], count).index_add_(1, block, a * b)


def _spread(x: torch.Tensor, block: torch.Tensor | None) -> torch.Tensor:
    """Each system's value of ``x`` (C,count) at each of its pixels (C,F); ``x`` itself for None."""
    return x if block is None else x[:, block]


def _apply_stencil(padded: torch.Tensor, table: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out`` (C,M): the 5-point Laplacian's weights (centre -4, neighbours 1) on ``padded``
    (C,K+1: the values, then the zero that index K reads) gathered through ``table``, the (5,M)
    table of :func:`_stencil_tables` flattened. One ``index_select`` into a vector that keeps its
    zero entry: on a CPU about twice as quick as indexing with the 2-D table after padding."""
    c, m = out.shape
    g = torch.index_select(padded, 1, table).view(c, 5, m)
    return torch.sub(g[:, 1:].sum(1), g[:, 0], alpha=4.0, out=out)


def thin_plate(values: torch.Tensor, free: torch.Tensor, iterations: int = PLATE_ITERATIONS) -> torch.Tensor:
    """``values`` (N,C,H,W) with its ``free`` pixels (N,1,H,W, 1 = free) replaced by the thin
    plate over the others: the values that minimise the summed squared 5-point Laplacian over the
    image's interior pixels, the others fixed. Solved by conjugate gradients from ``values``
    itself (start from a close guess, such as the membrane), each channel on its own; a free pixel
    that no interior Laplacian reads (an image corner) keeps its start. Parts that no Laplacian
    reads together (:func:`_blocks`) are separate systems, each with its own step sizes: as each
    would be solved alone, however many the window holds (one step size for all left a window of
    many specks less converged in 32 steps than each speck's own window: dust on three mosaics of
    val photos, hole L1 +0.03 against the specks one at a time, +0.006 with a system each; finding
    the parts takes under a millisecond of the benchmark stroke's fill). The steps run on the free
    pixels only (the operator gathered through index tables), so their cost follows the free
    pixels, not the window: the benchmark stroke's thin rim in its 316x174 window (7,910 free
    pixels) takes 16-23 ms on the development CPU (35-51 ms when each step indexed with the 2-D
    tables after padding)."""
    if min(values.shape[-2:]) < 3 or not bool((free > 0).any()):
        return values
    x = values.clone()
    gradient = _normal(values)  # of the energy at the start (halved), everywhere
    c = values.shape[1]
    for i in range(values.shape[0]):
        ys, xs, reads, read_by = _stencil_tables(free[i, 0] > 0)
        n_free, n_rows = ys.numel(), reads.shape[1]
        p_padded = values.new_zeros(c, n_free + 1)  # the search direction, then the zero entry
        lp_padded = values.new_zeros(c, n_rows + 1)  # L p at the interior pixels, likewise
        p, lp = p_padded[:, :n_free], lp_padded[:, :n_rows]
        r = -gradient[i][:, ys, xs]  # (C,F): the residual (the gradient is 0 at the minimum)
        p.copy_(r)
        ap = torch.empty_like(r)
        step = torch.zeros_like(r)
        block, count = _blocks(reads, read_by)
        if count == 1:
            block = None  # one system: its sums as they were (the same fill to the bit)
        reads, read_by = reads.flatten(), read_by.flatten()
        rs = _dot(r, r, block, count)
        for _ in range(iterations):
            _apply_stencil(p_padded, reads, lp)
            _apply_stencil(lp_padded, read_by, ap)  # L^T L p on the free pixels
            alpha = _spread(rs / _dot(p, ap, block, count).clamp(min=1e-30), block)
            step.addcmul_(alpha, p)
            r.addcmul_(alpha, ap, value=-1.0)
            rs_next = _dot(r, r, block, count)
            p.mul_(_spread(rs_next / rs.clamp(min=1e-30), block)).add_(r)
            rs = rs_next
        x[i, :, ys, xs] += step
    return x


def smooth_fill(
    photo: torch.Tensor,
    valid: torch.Tensor,
    start: torch.Tensor,
    wide: torch.Tensor | None = None,
) -> torch.Tensor:
    """The fill of the hole's thin parts and ramp from ``photo`` (N,C,H,W) at its ``valid``
    pixels (N,1,H,W, 1 = valid) alone: ``PLATE`` of the thin plate (from the membrane ``start``,
    kept within the range of the valid values within ``CLAMP`` px, or ``CLAMP_WIDE`` where fewer
    than ``CLAMP_KNOWN`` are that near) and the rest membrane. ``wide``: :func:`wide_parts` of
    ``valid`` where the caller has it. Hole pixels of ``photo`` are never read; beyond the ramp
    the result is the membrane."""
    valid = valid.to(photo.dtype)
    wide = wide_parts(valid) if wide is None else wide
    free = (1.0 - valid) * (wide < 1).to(photo.dtype)
    plate = thin_plate(torch.where(valid > 0, photo, start), free)
    big = torch.finfo(photo.dtype).max
    known_high = torch.where(valid > 0, photo, -big)  # the valid values, for maxima
    known_low = torch.where(valid > 0, -photo, -big)  # ... and minima
    high, low = square_max(known_high, CLAMP), -square_max(known_low, CLAMP)
    near = high > -big  # some valid pixel lies within CLAMP px
    count = box_sum(valid, 2 * CLAMP + 1, padding=CLAMP)  # exact counts, no stride-1 pooling
    few = near & (count < CLAMP_KNOWN - 0.5)  # a range of one or two specks is no range
    if bool(few.any()):
        high = torch.where(few, square_max(known_high, CLAMP_WIDE), high)
        low = torch.where(few, -square_max(known_low, CLAMP_WIDE), low)
    plate = torch.where(near, torch.minimum(torch.maximum(plate, low), high), plate)
    return torch.where(free > 0, start + PLATE * (plate - start), start)


def match_edges(
    out: torch.Tensor,
    image: torch.Tensor,
    valid: torch.Tensor,
    *,
    thin: bool = True,
    whole: torch.Tensor | None = None,
    spread: torch.Tensor | None = None,
) -> torch.Tensor:
    """The network's ``out`` (N,3,H,W) fitted into ``image``: its hole pixels corrected so that
    they meet ``image`` at the hole's edge (``out`` minus the membrane of ``out - image`` over
    the ``valid`` pixels, N,1,H,W, 1 = valid), with ``spread`` (N,1,H,W, the surround's:
    :func:`engine.chroma.spread_field`) held near the photo's membrane where the surround is flat
    (see the module's docstring) and, with ``thin``, the hole's thin parts filled from ``image``
    alone (:func:`smooth_fill`, :func:`wide_parts`). Hole pixels of ``image`` are
    never read; valid pixels of the result are the input's ``out`` (the caller pastes only hole
    pixels). The membranes are solved in the holes' bounding box with a margin of ``MARGIN``
    valid pixels, not the whole image, one image at a time. ``whole`` (N,1,H,W, 1 = valid): the
    hole this one is the rest of, when an earlier crop filled part of it (a tile along a long
    stroke): the thin parts are decided on it, so that the pixels beside the earlier fill are not
    taken for a thin part's edge (a band without the network's detail at every tile seam)."""
    valid = valid.to(out.dtype)
    return _match(out, image, valid, _thin_windows(valid, whole) if thin else _windows(valid), spread)


def _windows(valid: torch.Tensor) -> list[tuple[tuple[slice, ...], None] | None]:
    """Each image's window of ``valid`` (:func:`_window`) and no thin parts."""
    return [None if (win := _window(valid, i)) is None else (win, None) for i in range(valid.shape[0])]


def _thin_windows(
    valid: torch.Tensor, whole: torch.Tensor | None
) -> list[tuple[tuple[slice, ...], torch.Tensor] | None]:
    """Each image's window of ``valid`` (:func:`_window`) and its :func:`wide_parts` (decided on
    ``whole`` where given), or None where it has no window."""
    found = []
    for i in range(valid.shape[0]):
        win = _window(valid, i)
        found.append(
            None
            if win is None
            else (win, wide_parts(valid[win] if whole is None else whole[win].to(valid.dtype)))
        )
    return found


def _match(
    out: torch.Tensor,
    image: torch.Tensor,
    valid: torch.Tensor,
    windows: list[tuple[tuple[slice, ...], torch.Tensor | None] | None],
    spread: torch.Tensor | None,
) -> torch.Tensor:
    """:func:`match_edges` in the ``windows`` found for it (``valid`` in ``out``'s dtype)."""
    fixed = out.clone()
    channels = out.shape[1]
    for found in windows:  # each image in its own window: a batch fills like single calls
        if found is None:
            continue
        win, wide = found
        v = valid[win]
        s = None if spread is None else spread[win].to(out.dtype)
        step = 1 if v.numel() > _PLANE else channels  # a large window one channel at a time (memory)
        for c in range(0, channels, step):
            part = (win[0], slice(c, c + step), *win[2:])
            fixed[part] = _matched(out[part], image[part].to(out.dtype), v, wide, s)
    return fixed


def _matched(
    out: torch.Tensor,
    image: torch.Tensor,
    valid: torch.Tensor,
    wide: torch.Tensor | None,
    spread: torch.Tensor | None = None,
) -> torch.Tensor:
    """:func:`match_edges` of one image's window (``out``, ``image`` 1,C,H,W; ``valid``
    1,1,H,W; ``wide``: :func:`wide_parts` for the thin parts, None for none; ``spread``
    1,1,H,W or None)."""
    photo = torch.where(valid > 0, image, 0.0)  # never reads a hole pixel
    error = out - photo  # membrane() reads it on the valid pixels only
    # with thin parts or a spread: both membranes in one pass, the fill's error and the photo
    both = wide is not None or spread is not None
    solved = membrane(torch.cat([error, photo], 1) if both else error, valid)
    del error
    c = out.shape[1]
    fill = out - solved[:, :c]
    if spread is not None:  # a flat surround: the fill held near the photo's membrane
        base, allowance = solved[:, c:], FLAT_GAIN * spread + FLAT_FLOOR
        fill = base + allowance * torch.tanh((fill - base) / allowance)
    if wide is not None:
        smooth = smooth_fill(photo, valid, solved[:, c:], wide)
        del solved
        fill = smooth + wide * (fill - smooth)
    return out + (fill - out) * (1.0 - valid)


def _unused(valid: torch.Tensor, windows: list[tuple[tuple[slice, ...], torch.Tensor] | None]) -> bool:
    """Whether :func:`match_edges` (with ``thin``) replaces every hole pixel of the network's
    output by the photo's own fill: every part of each image's hole (``valid``, N,1,H,W, 1 =
    valid, with its :func:`_thin_windows`) is thin, so no pixel of the network's output reaches
    the result, and the network need not run. Old scans: Find Damage's specks and scratches are
    such holes, one network pass each (1,000 specks on a 12 MP scan: 145 s, every network pass
    thrown away). False for an image that is all hole (the network's output is kept there)."""
    for i, found in enumerate(windows):
        if bool((valid[i, 0] <= 0).all()):
            return False
        if found is not None and bool((found[1][valid[found[0]] <= 0] > 0).any()):
            return False
    return True


def photo_fill(
    image: torch.Tensor, valid: torch.Tensor, whole: torch.Tensor | None = None
) -> torch.Tensor | None:
    """``match_edges(image, image, valid, thin=True, whole=whole)`` when the network's output
    would be unused (every hole part thin, :func:`_unused`: the fill is the photo's own), else
    None; the thin parts are found once (they were twice, first for the question, then for the
    fill: a tenth of the time of a dense dust's fill)."""
    valid = valid.to(image.dtype)
    windows = _thin_windows(valid, whole)
    if not _unused(valid, windows):
        return None
    return _match(image, image, valid, windows, None)


def thin_fill(
    image: torch.Tensor,
    valid: torch.Tensor,
    boxes: list[tuple[slice, slice]],
    whole: torch.Tensor | None = None,
) -> tuple[torch.Tensor, list[bool]] | None:
    """Which of the parts in ``boxes`` (slices of one image, ``image`` 1,C,H,W with its ``valid``
    1,1,H,W: a part is the hole pixels in its box) lie wholly on the hole's thin parts
    (:func:`wide_parts` 0, decided on ``whole`` where given), and the photo's own fill,
    ``match_edges(image, image, valid, thin=True, whole=whole)``, which is theirs: the network's
    output would be replaced on every one of their pixels. Other hole pixels of the fill are not
    (a wide part's, which the network fills). None when no part is thin (nothing is filled) or
    the image has no window (all hole). The thin plate solves each separate part of the window
    as its own system (:func:`thin_plate`): a speck as it would be alone. A
    region of specks used to be filled this way only when every part near it was thin too
    (:func:`photo_fill`): a speck beside a larger one ran the network for nothing."""
    valid = valid.to(image.dtype)
    windows = _thin_windows(valid, whole)
    if windows[0] is None:
        return None
    (win, wide) = windows[0]
    thick = torch.zeros(valid.shape[-2:], dtype=torch.bool, device=valid.device)
    thick[win[2:]] = (wide[0, 0] > 0) & (valid[win][0, 0] <= 0)
    thin = [not bool(thick[box].any()) for box in boxes]
    if not any(thin):
        return None
    return _match(image, image, valid, windows, None), thin


def edge_window(hole: torch.Tensor | np.ndarray) -> tuple[slice, slice] | None:
    """The part of one image that :func:`match_edges` reads and changes for its ``hole`` (bool
    HxW, True = hole): the holes' bounding box with a margin of ``MARGIN`` valid pixels, clipped
    to the image; None when there is no hole or all is hole (left as it is)."""
    h, w = hole.shape
    if not bool(hole.any()) or bool(hole.all()):
        return None
    rows, cols = hole.any(1), hole.any(0)
    if isinstance(hole, torch.Tensor):
        rows, cols = rows.nonzero()[:, 0], cols.nonzero()[:, 0]
    else:  # numpy's own: any layout, read-only too
        rows, cols = np.flatnonzero(rows), np.flatnonzero(cols)
    y0, y1 = _span(rows, h)
    x0, x1 = _span(cols, w)
    return slice(y0, y1), slice(x0, x1)


def _window(valid: torch.Tensor, i: int) -> tuple[slice, slice, slice, slice] | None:
    """Image ``i``'s window of ``valid`` (N,1,H,W): :func:`edge_window`, with the batch and
    channel slices."""
    win = edge_window(valid[i, 0] <= 0)
    return None if win is None else (slice(i, i + 1), slice(None), *win)


def _span(index: torch.Tensor | np.ndarray, size: int) -> tuple[int, int]:
    return max(0, int(index.min()) - MARGIN), min(size, int(index.max()) + 1 + MARGIN)
