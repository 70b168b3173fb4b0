"""The photo's fine texture carried into the fill: structure from the network, texture from the
hole's surroundings.

The network's fill is close to the average of what could be under the hole: the right colours
and shapes, but smoother than the photo (measured on the val photos, its gradients in the hole
are about a third of the photo's). In a grainy scan or over grass, gravel or foliage a smooth
fill reads as a soft patch. Following the structure + texture split of Bertalmio et al. 2003
("Simultaneous structure and texture image inpainting"), and what a retoucher's healing brush
does by hand, the fill keeps the network's structure and gets the photo's texture synthesised
from around the hole:

* **texture** is the photo minus its Gaussian blur (sigma :data:`SIGMA`): grain and fine detail;
* **donors** are the valid pixels within :data:`REACH` px of the hole whose blur reads no hole
  pixel and no hidden one (no photo: a transparent part continued smoothly by the caller; nor
  an earlier crop's fill of the same hole, unless there is nothing else around);
* **synthesis**: the hole's box is tiled with :data:`PATCH` px patches at half-patch stride;
  each takes the donor patch, among :data:`CANDIDATES` drawn at random, whose blurred content
  is nearest the fill's blurred content there (sum of squared differences on a 4x4 grid of the
  patch: the sky's grain for sky, the grass's for grass, and a patch crossed by an edge only
  where the fill has that edge too), a donor with less texture than its place expects counting
  as that much colour off (:data:`LEVEL_WEIGHT`: a clean donor of the right colour diluted a
  grainy side). Each patch's texture is clipped per channel to :data:`CLIP`
  of its own robust standard deviations (from the median absolute deviation), so an edge that
  still crosses a donor patch (a minority of its pixels) does not come in as an outline; then
  scaled down (never up) to the texture level around its place: the mean absolute texture of
  the known pixels near it (a Gaussian of :data:`LEVEL_REACH` px), and deeper inside a hole the
  membrane of those levels, each side's carried in from its own edge (a grainy side's grain no
  longer reaches a clean side of the same colour). A sharp donor does not bring grain into a
  blurred background next to it (out-of-focus foliage beside the sharp branch the donor came
  from). The
  patches are overlap-added with a Hann window and divided by the root of the summed squared
  window, which keeps the donors' variance (the patches are independent) with no seam between
  patches;
* ``strength`` times that texture is added to the hole's wide parts, up to their edge; its thin
  parts (at most 10-11 px across, :func:`engine.seams.wide_parts`, the same ramp) get none: the
  photo's own edge fills them (:func:`engine.seams.smooth_fill`), and grain there measured worse
  (val photos, thin scratches 23.62 dB with none, 23.24 with strength 0.5). A wide part's rim
  took the thin parts' ramp too (``wide_parts`` without ``rim``), and every wide hole in a grainy
  photo had a band 4 px wide along its edge with no grain (a grain of 5.9 levels: 2.3, 1.8, 3.1,
  4.5 over those pixels at strength 1): its rim gets the texture now. On 200 val photos, paired
  (``runs/s42/ab-val.md``): texture 0.40 -> 0.42 on the strokes and 0.37 -> 0.38 on the objects,
  hole PSNR -0.01 dB on each (95% interval -0.02 to -0.01); the rim's fill, the photo's own
  edge, stays (the network's fill there measured -0.06 and -0.03 dB).

Deterministic: the same inputs and ``seed`` give the same result. Cost: blurs and gathers over
the hole's box grown by :data:`MARGIN` px, dilations as box counts on a summed-area table. On
the 2-core development CPU, for a 512x512 crop: about 40 ms for a 40 px stroke 300 px long
(``benchmarks/inference.py``: the Inpainter call 154 ms without, 196 ms with strength 0.5),
14-42 ms for other strokes and a 130x140 px blob, 87 ms for a hole whose box is the whole crop
(it was 140-155 ms over the whole crop with max-pool dilations).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .gaussian import gaussian_blur
from .seams import membrane, wide_parts
from .texture_strength import check_texture

__all__ = ["add_texture", "check_mask"]

SIGMA = 1.5  # the blur that separates structure from texture, px
REACH = 48  # donors lie at most this far from the hole, px (chessboard distance)
PATCH = 16  # synthesis patch side, px (stride half of it)
CANDIDATES = 8  # donor patches drawn per target patch; the nearest in blurred content is used
CLIP = 2.5  # a donor patch's texture clipped to this many of its robust standard deviations
LEVEL_REACH = 8  # the texture level expected in the hole: from known pixels this near (Gaussian sigma), px
LEVEL_POOL = 4  # ... measured on a grid this many px coarser
LEVEL_WEIGHT = 1.0  # a level of texture a donor lacks costs this many levels of colour off
CHUNK = 4096  # target patches synthesised at a time (their gathers: about 20 KB a patch)
# the texture is made from the hole's box grown by this much: every donor and every pixel its
# blur reads (the texture level is measured from the known pixels of this window)
MARGIN = REACH + 2 * math.ceil(3 * SIGMA) + 1


def add_texture(
    fill: np.ndarray,
    image: np.ndarray,
    hole: np.ndarray,
    strength: float = 1.0,
    *,
    seed: int = 0,
    hidden: np.ndarray | None = None,
    whole: np.ndarray | None = None,
) -> np.ndarray:
    """``fill`` (uint8 HxWx3, the network's result for this image) with the photo's texture
    added on the ``hole`` pixels (bool HxW); every other pixel is ``fill``'s. ``image``'s hole
    pixels are never read, nor its ``hidden`` ones (bool HxW: no photo, a transparent part
    continued smoothly by the caller, which as donors gave the fill no grain beside it).
    ``whole`` (bool HxW): the hole this one is the rest of, when an earlier crop filled part of
    it: that fill is no donor, and the thin parts (which get no texture) are decided on it.
    Returns ``fill`` itself when there is nothing to add (no strength, no hole, no donor patch
    around it). ValueError for a strength that is not a number from 0 to
    :data:`~engine.texture_strength.MAX_TEXTURE` (NaN turned the hole black)."""
    strength = check_texture(strength)
    check_mask(hidden, hole, "hidden")
    check_mask(whole, hole, "whole")
    if strength <= 0 or not hole.any():
        return fill
    box = _window(hole)
    # writable copies where needed: a read-only array (a fill resized by Pillow) makes torch warn
    x = torch.from_numpy(np.require(image[box], requirements=["C", "W"])).permute(2, 0, 1).float()
    f = torch.from_numpy(np.require(fill[box], requirements=["C", "W"])).permute(2, 0, 1).float()
    h_mask = torch.from_numpy(np.require(hole[box], dtype=bool, requirements=["C", "W"]))
    no_photo = hidden
    if whole is not None:  # an earlier crop's fill is no photo either
        no_photo = whole & ~hole if no_photo is None else no_photo | (whole & ~hole)

    def window(m: np.ndarray | None) -> torch.Tensor | None:
        return (
            None if m is None else torch.from_numpy(np.require(m[box], dtype=bool, requirements=["C", "W"]))
        )

    wide = _wide(h_mask, window(whole))
    if not bool((wide[h_mask] > 0).any()):
        return fill  # thin everywhere (dust, scratches): no texture (it was found out twice a speck)
    tex = texture_for(f, x, h_mask, seed=seed, hidden=window(no_photo), whole=window(whole), wide=wide)
    gain = strength
    if tex is None and whole is not None:
        # nothing but earlier fills around (a tile whose crop was all hole): their grain, which
        # came from the photo, rather than none; where no photo pixel is in view, added as it is,
        # since it holds the strength already (scaled by it again, a chain of such tiles along a
        # narrow photo raised it to the strength's power tile after tile: saturated noise at
        # strength 2, a fading grain below 1)
        tex = texture_for(f, x, h_mask, seed=seed, hidden=window(hidden), whole=window(whole), wide=wide)
        no_donor = window(no_photo)
        if not bool((~h_mask & ~no_donor).any()):
            gain = 1.0
    if tex is None:
        return fill
    out = fill.copy()
    added = (f + gain * tex).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    out[box] = np.where(hole[box][..., None], added, fill[box])
    return out


def check_mask(mask: object, hole: np.ndarray, name: str, what: str = "") -> np.ndarray | None:
    """``mask`` when it is None or a bool array the size of ``hole``, else ValueError (``what``
    prefixes the message): a uint8 alpha passed as ``hidden`` by mistake would read as its
    opposite."""
    if mask is None:
        return None
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != hole.shape:
        raise ValueError(f"{what}{name} must be a bool HxW array the size of the hole mask")
    return mask


def _window(hole: np.ndarray) -> tuple[slice, slice]:
    """The part of the image the texture is made from: the ``hole``'s box grown by
    :data:`MARGIN` px (clipped to the image), its top-left corner on the :data:`LEVEL_POOL` grid
    of the image so that the texture level is pooled over the same cells whatever the window."""
    rows, cols = np.flatnonzero(hole.any(1)), np.flatnonzero(hole.any(0))
    y0 = max(0, int(rows[0]) - MARGIN) // LEVEL_POOL * LEVEL_POOL
    x0 = max(0, int(cols[0]) - MARGIN) // LEVEL_POOL * LEVEL_POOL
    return slice(y0, int(rows[-1]) + 1 + MARGIN), slice(x0, int(cols[-1]) + 1 + MARGIN)


def _wide(hole: torch.Tensor, whole: torch.Tensor | None) -> torch.Tensor:
    """(H,W): 0 on the thin parts of ``whole`` (else ``hole``), 1 on the wide ones and their rims
    (:func:`wide_parts` with ``rim``)."""
    return wide_parts((~(hole if whole is None else whole)).float()[None, None], rim=True)[0, 0]


def texture_for(
    fill: torch.Tensor,
    image: torch.Tensor,
    hole: torch.Tensor,
    *,
    seed: int = 0,
    patch: int = PATCH,
    hidden: torch.Tensor | None = None,
    whole: torch.Tensor | None = None,
    wide: torch.Tensor | None = None,
) -> torch.Tensor | None:
    """The synthesised texture (3,H,W) float for the hole (bool H,W) of ``image`` (3,H,W, 0-255;
    hole pixels never read, ``hidden`` ones never a donor nor part of the texture level), guided
    by ``fill``'s blurred content; zero outside the hole's patches and on its thin parts. None
    when no donor patch fits around the hole, or the hole is thin everywhere. The thin parts are those of ``whole`` (bool H,W,
    the hole this one is the rest of) when given."""
    h, w = hole.shape
    if wide is None:
        wide = _wide(hole, whole)
    if not bool((wide[hole] > 0).any()):
        return None  # thin everywhere (dust, scratches): no texture anywhere, nothing to find
    r = math.ceil(3 * SIGMA)
    unknown = hole if hidden is None else hole | hidden
    photo = torch.where(unknown, 0.0, image)
    touched = _dilate(unknown, r)  # the blur of these pixels reads a hole (or hidden) pixel
    donor = ~touched & _dilate(hole, REACH + r)
    while True:
        if min(h, w) >= patch:
            fits = ~_dilate(~donor, patch - 1, anchor_start=True)[: h - patch + 1, : w - patch + 1]
            sources = torch.nonzero(fits)
            if len(sources):
                break
        if patch <= 4:
            return None
        patch //= 2
    low = _blur(photo)
    texture = photo - low
    guide = _blur(torch.where(hole, fill, image))

    # target patches: the hole's box at half-patch stride, those that touch a hole pixel
    half = patch // 2
    ys, xs = torch.nonzero(hole.any(1))[:, 0], torch.nonzero(hole.any(0))[:, 0]
    ty = torch.arange(int(ys[0]) - half, int(ys[-1]) + 1, half)
    tx = torch.arange(int(xs[0]) - half, int(xs[-1]) + 1, half)
    ty, tx = torch.meshgrid(ty, tx, indexing="ij")
    ty, tx = ty.flatten(), tx.flatten()
    pad = F.pad(hole.to(torch.int32), (patch, patch, patch, patch))  # counts: exact past 2**24 pixels
    integral = F.pad(pad.cumsum(0, dtype=torch.int32).cumsum(1, dtype=torch.int32), (1, 0, 1, 0))
    y0, x0 = ty + patch, tx + patch
    covered = (
        integral[y0 + patch, x0 + patch]
        - integral[y0, x0 + patch]
        - integral[y0 + patch, x0]
        + integral[y0, x0]
    )
    keep = covered > 0
    ty, tx = ty[keep], tx[keep]

    gen = torch.Generator().manual_seed(seed)
    pick = torch.randint(len(sources), (len(ty), CANDIDATES), generator=gen)
    here = _level_around(texture, ~touched)  # the texture level expected around each place
    # each donor patch's own level (the mean over it, by its top-left corner): separable means
    owned = F.avg_pool2d(F.avg_pool2d(texture.abs().mean(0)[None, None], (1, patch), 1), (patch, 1), 1)[0, 0]
    d = torch.arange(patch)
    window = torch.sin(math.pi * (d + 0.5) / patch).pow(2)
    window = window[:, None] * window[None, :]
    width = w + 2 * patch
    total = torch.zeros(3, (h + 2 * patch) * width)
    weight = torch.zeros((h + 2 * patch) * width)
    # the target patches a chunk at a time, in order (the same sums): their candidates, gathers
    # and index tables took about 200 bytes a pixel of the hole's box at once (1.1 GB for a blob
    # over 3 of a 6 MP photo's megapixels)
    for first in range(0, len(ty), CHUNK):
        part = slice(first, first + CHUNK)
        patches, where = _patches(
            texture, low, guide, here, owned, sources[pick[part]], ty[part], tx[part], patch, window
        )
        total.index_add_(1, where, patches.reshape(3, -1))
        weight.index_add_(0, where, window.pow(2).expand(len(where) // patch**2, patch, patch).flatten())
    total = total.view(3, h + 2 * patch, width)[:, patch : patch + h, patch : patch + w]
    weight = weight.view(h + 2 * patch, width)[patch : patch + h, patch : patch + w]
    return torch.where(weight > 0, total / weight.clamp(min=1e-12).sqrt(), 0.0) * wide


def _patches(
    texture: torch.Tensor,
    low: torch.Tensor,
    guide: torch.Tensor,
    here: torch.Tensor,
    owned: torch.Tensor,
    candidates: torch.Tensor,
    ty: torch.Tensor,
    tx: torch.Tensor,
    patch: int,
    window: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The windowed texture patches (3, B, patch, patch) for the target patches at ``ty``, ``tx``
    (B; top-left corners in the image) from their ``candidates`` (B, K, 2: donor top-left
    corners), and where their pixels go in the padded flat image (B * patch * patch).
    ``owned``: each donor patch's texture level (its mean absolute texture, the mean over
    channels) by its top-left corner."""
    h, w = guide.shape[1:]
    half = patch // 2
    sy, sx = candidates[..., 0], candidates[..., 1]  # (B, K)
    # the blurred content of each candidate and of the fill there, on a 4x4 grid of the patch
    g = torch.arange(patch // 8, patch, max(1, patch // 4))
    source_low = low[:, (sy[..., None] + g)[..., :, None], (sx[..., None] + g)[..., None, :]]  # (3,B,K,4,4)
    gy, gx = (ty[:, None] + g).clamp(0, h - 1), (tx[:, None] + g).clamp(0, w - 1)
    target_low = guide[:, gy[:, :, None], gx[:, None, :]][:, :, None]  # (3, B, 1, 4, 4)
    cost = (source_low - target_low).pow(2).sum((0, 3, 4))  # (B, K)
    # a donor with less texture than its place expects (it is never scaled up): each level
    # missing costs as much as a level of colour off on every term of the colour distance
    cy = ((ty + half) // LEVEL_POOL).clamp(0, here.shape[0] - 1)
    cx = ((tx + half) // LEVEL_POOL).clamp(0, here.shape[1] - 1)
    missing = (here[cy, cx][:, None] - owned[sy, sx]).clamp(min=0.0)
    terms = 3 * g.numel() ** 2  # the colour distance's
    best = (cost + LEVEL_WEIGHT * terms * missing.pow(2)).argmin(1)
    rows = torch.arange(len(ty))
    sy, sx = sy[rows, best], sx[rows, best]

    d = torch.arange(patch)
    patches = texture[:, (sy[:, None] + d)[:, :, None], (sx[:, None] + d)[:, None, :]]  # (3, B, P, P)
    # each patch clipped to CLIP robust standard deviations of its own texture, per channel
    spread = 1.4826 * patches.flatten(2).abs().median(dim=2).values[..., None, None]
    patches = torch.maximum(torch.minimum(patches, CLIP * spread), -CLIP * spread)
    # each patch brought down to the texture level around its place (never up)
    own = patches.abs().mean((0, 2, 3))
    patches = patches * (here[cy, cx] / own.clamp(min=1e-6)).clamp(max=1.0)[None, :, None, None]
    width = w + 2 * patch
    where = ((ty[:, None] + patch + d)[:, :, None] * width + (tx[:, None] + patch + d)[:, None, :]).flatten()
    return patches * window, where


def _level_around(texture: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """The texture level expected at each place (mean absolute texture, the mean over channels),
    from the ``known`` pixels near it (those whose texture reads no hole pixel), on a grid
    :data:`LEVEL_POOL` times coarser than the image: a normalised Gaussian average over the
    known pixels at :data:`LEVEL_REACH` px where enough of them lie that near, and farther
    inside a hole the membrane of those levels (:func:`engine.seams.membrane`): each side's
    level carried in from its own edge. (A Gaussian four times as wide, then the mean over the
    whole window, carried a grainy half's grain into the clean half of a hole across both: grain
    of 1.0-1.4 levels where the photo has none, at strength 1.)"""
    k = LEVEL_POOL
    energy = F.avg_pool2d((texture.abs().mean(0) * known)[None, None], k, ceil_mode=True)[0]
    weight = F.avg_pool2d(known.float()[None, None], k, ceil_mode=True)[0]
    num, den = _blur(energy, LEVEL_REACH / k)[0], _blur(weight, LEVEL_REACH / k)[0]
    near = den > 0.05
    if not bool(near.any()):  # no known pixel near anything: the mean over all of them
        return (energy.sum() / weight.sum().clamp(min=1e-6)).expand_as(num).clone()
    level = torch.where(near, num / den.clamp(min=1e-6), 0.0)
    return membrane(level[None, None], near.float()[None, None])[0, 0]


def _dilate(mask: torch.Tensor, radius: int, *, anchor_start: bool = False) -> torch.Tensor:
    """``mask`` (bool H,W) grown by ``radius`` px (a square). With ``anchor_start`` the square
    is ``radius + 1`` px with the pixel at its top-left corner (a patch's footprint); outside the
    image counts as False. A box count on the summed-area table: its cost does not grow with the
    radius (a max-pool's does)."""
    before, after = (0, radius) if anchor_start else (radius, radius)
    side = before + after + 1
    h, w = mask.shape
    m = F.pad(mask.to(torch.int32), (before, after, before, after))
    table = F.pad(m.cumsum(0, dtype=torch.int32).cumsum(1, dtype=torch.int32), (1, 0, 1, 0))
    count = table[side:, side:] - table[:h, side:] - table[side:, :w] + table[:h, :w]
    return count > 0


def _blur(x: torch.Tensor, sigma: float = SIGMA) -> torch.Tensor:
    """Gaussian blur of (C,H,W), borders replicated."""
    return gaussian_blur(x[None], sigma)[0]
