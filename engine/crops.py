"""Where to run the network on a photo larger than its working size: the crop plan.

Each separate part of the hole gets its own crop with context around it:

* a part that fits the working size (``max_side``) with some context is filled at full
  resolution, in a crop cut to the network's granularity where the photo allows;
* a long thin part (a wire, a scratch across the photo) is cut into tiles along its length, each
  filled at full resolution with context on every side;
* a large solid part is filled in one crop scaled down to the working size (uniform scale).

Every :class:`Region` fills the hole pixels inside its ``core`` that are still unfilled; regions
are processed in order, so pixels filled by an earlier region are context for a later one (a
group of specks, and a crop specks share, at its first speck's place).
Specks near each other (:func:`group_specks`) are tried as one group first: dense dust thin
everywhere is filled from the photo alone in one window for many specks instead of one each,
and the group's specks too wide for that share network crops (:func:`share_crops`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .geometry import Rect

__all__ = [
    "HolePart",
    "Region",
    "group_specks",
    "hole_components",
    "plan_regions",
    "share_crops",
    "stroke_width",
]

STROKE_TILES = 5
"""A long hole part at most ``max_side / STROKE_TILES`` wide (102 px at the working size 512) is
filled in full-resolution tiles, a wider one in one crop scaled down to the working size. Measured
on 8 val photos enlarged 4x to about 2000 px (`runs/crop-plan-val.out`; an enlarged photo favours
the scaled crop, whose downscale gives its own pixels back), hole PSNR tiles - scaled: strokes 48
px wide +1.7 dB (diagonal) / +1.9 (curved), 80 px +0.3 / +0.3, 128 px +0.1 / -0.9, 192 px -0.4 /
-1.2. (The width was the part's pixels over its longest side, 1.4x too wide for a diagonal
stroke, and the limit 64 px: a 52 px brush across a photo went from 13 tiles to one crop scaled
3.9x down, 25.5 -> 23.3 dB, streaks along the stroke.)"""


@dataclass(frozen=True)
class Region:
    """One network pass: ``crop`` is what the network sees, ``core`` (inside ``crop``) the part
    whose hole pixels it fills; ``scaled`` when the crop is larger than the working size; ``part``
    when ``core`` is one hole part's own box at full resolution (not a tile of a longer part)."""

    crop: Rect
    core: Rect
    scaled: bool = False
    part: bool = False


class HolePart(NamedTuple):
    """One connected part of a hole (see :func:`hole_components`)."""

    box: Rect
    pixels: int  # its own hole pixels (not the box's: other parts' specks in a long scratch's box)
    cells: np.ndarray  # bool, its own cells of the grid over ``box`` (the rest are other parts')


def stroke_width(hole: np.ndarray, part: HolePart, cell: int) -> float:
    """The mean width of ``part`` of ``hole`` (found on ``cell``-pixel cells), on its own pixels:
    twice its area over its edge's length (a band of width w and length L: 2wL / 2L; a disc: its
    radius). The edge's length is the geometric mean of the part's 4-neighbour edges (a slanted
    edge's staircase counts 1.4x its length at 45 degrees) and its pixels on the edge (0.7x): a
    stroke at any angle measures 0.88-0.97 of its width, a curved one too. The photo's border is
    an edge (a band along it is as wide as it is), and so is the part's box (a pixel beyond it is
    known: a hole pixel there would be in a cell joined to the part)."""
    box = part.box
    own = hole[box.slices] & np.repeat(np.repeat(part.cells, cell, 0), cell, 1)[: box.height, : box.width]
    pad = np.pad(own, 1)
    edges = int(np.count_nonzero(pad[:, 1:] != pad[:, :-1])) + int(np.count_nonzero(pad[1:] != pad[:-1]))
    inner = own & pad[:-2, 1:-1] & pad[2:, 1:-1] & pad[1:-1, :-2] & pad[1:-1, 2:]
    on_edge = int(np.count_nonzero(own & ~inner))
    return 2.0 * part.pixels / max(1.0, math.sqrt(edges * on_edge))


def hole_components(hole: np.ndarray, cell: int) -> list[HolePart]:
    """The hole's connected parts, found on a grid of ``cell``-pixel cells (parts closer than a
    cell join, which is what the crops want anyway): each part's bounding box, its own hole pixel
    count and its own cells."""
    h, w = hole.shape
    gh, gw = math.ceil(h / cell), math.ceil(w / cell)
    padded = np.zeros((gh * cell, gw * cell), dtype=bool)
    padded[:h, :w] = hole
    counts = padded.reshape(gh, cell, gw, cell).sum(axis=(1, 3))
    grid = counts > 0
    label = np.zeros(grid.shape, dtype=np.int32)  # 0: no part yet, k: the k-th part
    parts: list[HolePart] = []
    for sy, sx in zip(*np.nonzero(grid)):
        if label[sy, sx]:
            continue
        k = len(parts) + 1
        label[sy, sx] = k
        y0 = y1 = int(sy)
        x0 = x1 = int(sx)
        pixels = 0
        queue = deque([(int(sy), int(sx))])
        while queue:
            cy, cx = queue.popleft()
            pixels += int(counts[cy, cx])
            y0, y1, x0, x1 = min(y0, cy), max(y1, cy), min(x0, cx), max(x1, cx)
            for ny in (cy - 1, cy, cy + 1):
                for nx in (cx - 1, cx, cx + 1):
                    if 0 <= ny < gh and 0 <= nx < gw and grid[ny, nx] and not label[ny, nx]:
                        label[ny, nx] = k
                        queue.append((ny, nx))
        box = Rect(x0=x0 * cell, y0=y0 * cell, x1=min(w, (x1 + 1) * cell), y1=min(h, (y1 + 1) * cell))
        parts.append(HolePart(box, pixels, label[y0 : y1 + 1, x0 : x1 + 1] == k))
    return parts


def _span(lo: int, hi: int, want: int, limit: int) -> tuple[int, int]:
    """An interval of length ``want`` (at least ``hi - lo``) centred on [lo, hi), shifted to
    stay inside [0, limit)."""
    want = min(limit, max(want, hi - lo))
    a = int(round((lo + hi) / 2 - want / 2))
    a = max(0, min(a, limit - want))
    return a, a + want


def _fit_side(side: int, want: int, floor: int, max_side: int, granularity: int, limit: int) -> int:
    """Crop side for a hole of ``side`` pixels: ``want`` capped at the working size and rounded
    to the nearest multiple of the granularity (up when that would cut below ``floor``, the hole
    plus a minimal margin; never beyond the working size or the photo)."""
    g = granularity
    n = min(max(want, side), max_side)
    rounded = max(g, round(n / g) * g)
    while rounded < min(floor, max_side) and rounded + g <= max_side:
        rounded += g
    if rounded <= max_side:
        n = rounded
    return min(n, limit)


CONTEXT = 0.75
"""The context wanted round a hole part that fits the working size, as a fraction of its
longest side (plus :data:`MIN_MARGIN`)."""
MIN_MARGIN = 16
"""The least context round a hole part, px."""


def _wanted(side: int, context: float = CONTEXT, min_margin: int = MIN_MARGIN) -> int:
    """The context a hole part of ``side`` px wants round it, px."""
    return int(context * side) + min_margin


def plan_regions(
    hole: np.ndarray,
    max_side: int,
    min_side: int,
    granularity: int = 1,
    context: float = CONTEXT,
    min_margin: int = MIN_MARGIN,
) -> list[Region]:
    """The crop plan for ``hole`` (bool HxW). ``max_side``: the largest side the network sees;
    ``min_side``: the model's training resolution (a crop is at least that, where the photo
    allows); ``context``: the wanted margin around a hole part, as a fraction of its longest side.
    """
    h, w = hole.shape
    whole = Rect(x0=0, y0=0, x1=w, y1=h)
    if max(h, w) <= max_side:
        return [Region(whole, whole)]
    cell = max(4, max(h, w) // 512)
    regions: list[Region] = []
    for found in hole_components(hole, cell):
        part = found.box
        side = max(part.height, part.width)
        if side + 2 * min_margin <= max_side:
            want = max(side + 2 * _wanted(side, context, min_margin), min_side)
            crop = _cut(part, (want, want), part.grown(min_margin), max_side, granularity, h, w)
            regions.append(Region(crop, part, part=True))
            continue
        # its own pixels' width (the box's took the specks of dust around three crossing
        # scratches for a 6000x4000 solid part: one scaled crop, 7.4 GB)
        if stroke_width(hole, found, cell) <= max_side / STROKE_TILES:
            regions.extend(_tiles(hole, part, max_side, h, w))
        else:
            margin = int(context * side / 2) + min_margin
            y0, y1 = _span(part.y0, part.y1, part.height + 2 * margin, h)
            x0, x1 = _span(part.x0, part.x1, part.width + 2 * margin, w)
            regions.append(Region(Rect(x0, y0, x1, y1), part, scaled=True))
    return regions


def _tiles(hole: np.ndarray, part: Rect, max_side: int, h: int, w: int) -> list[Region]:
    """Full-resolution tiles over a long thin hole part: cores of half the working size, each
    in a crop of the working size centred on it; tiles without hole pixels are left out. A tile
    whose crop is all hole (the end of a thick stroke along a narrow photo) comes after the tiles
    nearer the photo, nearest first, so that their fills are its context: in raster order it
    went first and filled from nothing (the network's flat prior, 34 grey levels off on a grass
    strip), which the tiles after it then took as context. (The Inpainter fills such a tile with
    the smooth continuation of those fills: the network's guess from them drifted along a chain.)"""
    core = max(1, max_side // 2)
    seen: list[Region] = []
    blind: list[Region] = []
    for ty in range(part.y0, part.y1, core):
        for tx in range(part.x0, part.x1, core):
            c = Rect(x0=tx, y0=ty, x1=min(tx + core, part.x1), y1=min(ty + core, part.y1))
            if not hole[c.slices].any():
                continue
            y0, y1 = _span(c.y0, c.y1, max_side, h)
            x0, x1 = _span(c.x0, c.x1, max_side, w)
            crop = Rect(x0, y0, x1, y1)
            (blind if hole[crop.slices].all() else seen).append(Region(crop, c))
    if not seen:
        return blind
    centre = {id(r): ((r.core.y0 + r.core.y1) / 2, (r.core.x0 + r.core.x1) / 2) for r in seen + blind}

    def distance(r: Region) -> float:
        cy, cx = centre[id(r)]
        return min(math.hypot(cy - centre[id(s)][0], cx - centre[id(s)][1]) for s in seen)

    return seen + sorted(blind, key=distance)


SPECK = 64
"""A region of one hole part (``Region.part``) whose box is at most this many px on each side
is a speck: :func:`group_specks` may group it with others near it."""
GROUP_TILE = 512
"""The largest group of specks: those whose cores start in one tile of this side (on a grid
from the photo's corner); a group's window is at most about this plus a speck and a margin."""
GROUP_MOST = 256
"""At most this many specks to a group (a tile with more is split): a group's fill is one step,
which Esc does not stop, and its masks follow its specks."""
GROUP_CONTEXT = 128
"""A group of specks is told grey or colour on its window with this many px round it: about
what a speck's own crop (the model's training size, 256 px) shows round it."""
GROUP_COST = 25_000
"""What one window costs beyond its pixels, in pixels: a thin-only fill of a window of A px took
about 3.7 ms + 0.165 us x A on the 2-core development CPU (the membrane, the thin parts and the
thin plate; `seams.photo_fill`, 32 px to 512 px windows of a dusty 12 MP scan), and the region
loop adds about a millisecond a window."""


def group_specks(regions: list[Region], margin: int) -> list[tuple[Region, ...]]:
    """``regions`` (the crop plan, in order) as groups to fill together: specks (:data:`SPECK`)
    whose windows (their cores grown by ``margin`` px) cost less as one window than one each,
    counting :data:`GROUP_COST` per window and its pixels (:data:`GROUP_TILE` tiles, each as one
    group or split into quarters, whichever costs less, down to single specks), and every other
    region alone. Each group comes at its first member's place in ``regions``; order within a
    group is the plan's."""
    index = {id(r): i for i, r in enumerate(regions)}
    tiles: dict[tuple[int, int], list[Region]] = {}
    groups: list[tuple[Region, ...]] = []
    for r in regions:
        if r.part and max(r.core.width, r.core.height) <= SPECK:
            tiles.setdefault((r.core.y0 // GROUP_TILE, r.core.x0 // GROUP_TILE), []).append(r)
        else:
            groups.append((r,))
    for (ty, tx), members in tiles.items():
        groups.extend(_cheapest(members, ty * GROUP_TILE, tx * GROUP_TILE, GROUP_TILE, margin)[1])
    return sorted(groups, key=lambda g: index[id(g[0])])


def _cheapest(
    members: list[Region], y0: int, x0: int, side: int, margin: int
) -> tuple[float, list[tuple[Region, ...]]]:
    """The cheapest split of the specks ``members`` whose cores start in the tile at ``y0``,
    ``x0`` of ``side`` px: one window for all of them, or each quarter of the tile split at its
    cheapest (alone: one window each), never more than :data:`GROUP_MOST` specks in one while
    the tile can be split. Returns its cost and groups (plan order within each)."""
    if len(members) == 1:
        return _cost(members, margin), [tuple(members)]
    half = side // 2
    # more than GROUP_MOST specks: never one group while the tile can still be split
    whole = _cost(members, margin) if len(members) <= GROUP_MOST or half < SPECK else math.inf
    if half < SPECK:  # quarters smaller than a speck: the specks alone
        alone = sum(_cost([m], margin) for m in members)
        return (whole, [tuple(members)]) if whole <= alone else (alone, [(m,) for m in members])
    quarters: dict[tuple[int, int], list[Region]] = {}
    for m in members:
        quarters.setdefault(((m.core.y0 - y0) // half, (m.core.x0 - x0) // half), []).append(m)
    cost: float = 0
    split: list[tuple[Region, ...]] = []
    for (qy, qx), part in quarters.items():
        c, g = _cheapest(part, y0 + qy * half, x0 + qx * half, half, margin)
        cost += c
        split.extend(g)
    return (whole, [tuple(members)]) if whole <= cost else (cost, split)


def _cost(members: list[Region], margin: int) -> int:
    """One window for ``members``: :data:`GROUP_COST` plus its pixels (their cores' box grown
    by ``margin``)."""
    box = members[0].core
    for m in members[1:]:
        box = box.union(m.core)
    return GROUP_COST + (box.height + 2 * margin) * (box.width + 2 * margin)


def _cut(
    box: Rect, want: tuple[int, int], floor: Rect, max_side: int, granularity: int, h: int, w: int
) -> Rect:
    """A crop of a photo of ``h`` x ``w`` centred on ``box``: ``want`` (height, width) px, at
    least ``floor``'s sides (:func:`_fit_side`), inside the photo."""
    ch = _fit_side(box.height, want[0], floor.height, max_side, granularity, h)
    cw = _fit_side(box.width, want[1], floor.width, max_side, granularity, w)
    y0, y1 = _span(box.y0, box.y1, ch, h)
    x0, x1 = _span(box.x0, box.x1, cw, w)
    return Rect(x0, y0, x1, y1)


def share_crops(
    specks: Sequence[Region], height: int, width: int, max_side: int, min_side: int, granularity: int = 1
) -> list[tuple[Rect, tuple[Region, ...]]]:
    """Network crops for ``specks`` (one-part regions of :func:`plan_regions` with its default
    context, in a photo of ``height`` x ``width``) that each fill with the network: a speck's own
    crop is at least the model's training size (``min_side``) round a few dozen pixels, so
    specks near each other share one that holds the context each wants (:func:`_wanted`),
    sized and cut as a part's own crop is. Each speck in order joins the crop it grows least,
    where that adds fewer pixels than its own crop (the network's time goes with its pixels);
    else it keeps its own crop (``crop``). Each crop comes at its first speck's place."""
    shared: list[tuple[Rect, list[Region], Rect]] = []  # crop, its specks, their context's box
    for r in specks:
        need, own = _need(r), _padded(r.crop, granularity)
        best, added = None, own
        for i, (crop, _, box) in enumerate(shared):
            joined = box.union(need)
            grown = _holding(joined, height, width, max_side, min_side, granularity)
            more = None if grown is None else _padded(grown, granularity) - _padded(crop, granularity)
            if more is not None and more < added:
                best, added = (i, grown, joined), more
        if best is None:
            shared.append((r.crop, [r], need))
        else:
            i, grown, joined = best
            shared[i] = (grown, [*shared[i][1], r], joined)
    return [(crop, tuple(members)) for crop, members, _ in shared]


def _need(r: Region) -> Rect:
    """A speck's core with the context it wants round it (not clipped to the photo)."""
    return r.core.grown(_wanted(max(r.core.height, r.core.width)))


def _padded(crop: Rect, granularity: int) -> int:
    """The pixels the network sees for ``crop``: its sides padded to the granularity."""
    g = granularity
    return -(-crop.height // g) * g * (-(-crop.width // g) * g)


def _holding(
    need: Rect, height: int, width: int, max_side: int, min_side: int, granularity: int
) -> Rect | None:
    """A crop of the photo holding ``need`` (as much of it as the photo has), at least
    ``min_side``, sized as :func:`plan_regions` sizes one part's; None when it is over the
    working size."""
    need = need.clip(width, height)
    if max(need.height, need.width) > max_side:
        return None
    want = (max(need.height, min_side), max(need.width, min_side))
    return _cut(need, want, need, max_side, granularity, height, width)
