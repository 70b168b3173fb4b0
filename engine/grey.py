"""A grey photo gets a grey fill.

The network was trained on colour photos and paints a faint colour into holes of a greyscale
scan (a channel spread of a few grey levels, more on a 1-bit scan; blue and teal blotches up to
24 levels across a large hole). Where the known pixels around a hole are grey, the fill is made
grey too: each hole pixel takes its luma (ITU-R 601, Pillow's ``convert("L")``, which keeps a grey
pixel's value exactly) plus the photo's tone there. "Grey" is what a person sees as a
black-and-white photo, not only R = G = B exactly: a scan read in colour has a few levels of
sensor noise in each channel, a print's paper a faint tint, and a coloured speck or date stamp
may lie in a corner (:func:`grey_tone`). A colour photo's fill is left as it is, and so is the
fill next to a coloured object in a grey photo (a red car in a grey street, a hand-tinted
detail: :data:`LOCAL`), which a scratch across it must not grey.

The Inpainter tells a grey photo on the whole photo, once a call, and gives each crop's fill its
tone: told a crop at a time, a coloured object over 1% of a crop (not of the photo) made that
crop colour, and a stroke's fill there kept the network's tint (12-13 levels 60 px from a red
disc on a 1600x1200 grey photo) up to straight edges where the crops met. A colour photo's crops
still decide one at a time (a crop of grey sky in a colour photo is filled grey). The known
pixels among :data:`_SAMPLE` drawn at random are looked at: 0.1 s for a 24-megapixel grey photo.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ENOUGH", "GREY_NOISE", "GREY_TONE", "LOCAL", "LUMA", "grey_fill", "grey_tone", "is_grey"]

#: ITU-R 601 luma weights of R, G and B (Pillow's ``convert("L")``); the fill's integer form below
#: is these in 16-bit fixed point (they sum to 65536, so a grey pixel keeps its value exactly).
LUMA = (0.299, 0.587, 0.114)
_LUMA_16 = np.array([round(w * 65536) for w in LUMA], np.uint32)

GREY_NOISE = 5
"""Grey levels a known pixel's colour may stray from the photo's tone (in 99 of 100 known pixels:
a coloured speck or stamp in the rest does not make a photo colour)."""
GREY_TONE = 12
"""The largest tint, in grey levels per channel from the luma, of a grey photo's tone (a print's
paper; a stronger cast is a colour photo's, handled by :mod:`engine.chroma`)."""
_SAMPLE = 1 << 18  # pixels looked at, at most (drawn at random): a 24-megapixel photo has 92 times as many
_FEW = 4096  # a sample with fewer known pixels than this is not used: all of them are
_QUICK = 1 << 14  # pixels of a crop above which a colour photo is told apart on a sample first
LOCAL = 12
"""A hole pixel keeps the network's fill where more than :data:`LOCAL_SHARE` of the known pixels
within this many px (a 25x25 box), and :data:`LOCAL_MIN` of them at least, stray from the tone:
it is next to something coloured."""
LOCAL_SHARE = 0.05
LOCAL_MIN = 16
"""... and at least this many of them (deep inside a hole the box holds a few known pixels, of
which one speck of dust was over 5%: tinted patches in a grey fill)."""
ENOUGH = 64
"""A hole pixel whose box holds fewer known pixels than this (over about 10 px inside a hole) is
told in the smallest box twice, four times, ... as large that holds this many."""


def _luma(rgb: np.ndarray) -> np.ndarray:
    """Luma of ``rgb`` (N x 3 uint8), rounded, as uint32."""
    return (rgb.astype(np.uint32) @ _LUMA_16 + 32768) >> 16


def is_grey(image: np.ndarray, hole: np.ndarray | None = None) -> bool:
    """Whether every known pixel of ``image`` (uint8 HxWx3; ``hole`` bool HxW, True = hole;
    None: every pixel is known) has R = G = B exactly (False when no pixel is known): a picture
    that a greyscale file holds without loss."""
    known = image.reshape(-1, 3) if hole is None else image[~hole]
    return bool(known.size) and bool(
        (known[:, 0] == known[:, 1]).all() and (known[:, 1] == known[:, 2]).all()
    )


def grey_tone(image: np.ndarray, hole: np.ndarray) -> np.ndarray | None:
    """The tone of ``image`` (uint8 HxWx3) around ``hole`` when it is a grey photo there: each
    channel's median difference from the luma over the known pixels (int, 3; zeros for R = G = B
    exactly), provided that 99% of them lie within :data:`GREY_NOISE` of it and it is no more
    than :data:`GREY_TONE` in any channel; None for a colour photo (or nothing known). Over
    :data:`_SAMPLE` pixels, the known ones among that many drawn at random (all of them where
    the draw holds fewer than ``_FEW``)."""
    if hole.size > _QUICK and _clearly_colour(image, hole):
        return None
    flat, holes = image.reshape(-1, 3), hole.reshape(-1)
    known = None
    if len(flat) > _SAMPLE:  # drawn before the known ones are gathered (a copy of them took 1.9
        # s of a 24-megapixel grey photo); at random, as in _clearly_colour: a stride lines up
        # with the columns
        at = np.sort(np.random.default_rng(0).integers(0, len(flat), _SAMPLE))
        known = flat[at][~holes[at]]
        if len(known) < _FEW:  # a hole over nearly all of a large photo: every known pixel
            known = None
    if known is None:
        known = flat[~holes]
    if not known.size:
        return None
    channels = _channel_offsets(known)
    if not any(c.any() for c in channels):  # R = G = B everywhere (a greyscale file)
        return np.zeros(3, np.int32)
    # the median and the 99th percentile from histograms of the small integer differences: the
    # same values as np.median and np.percentile on the pixels (sorting them took 19 ms of a
    # 512x512 fill, 6 with histograms)
    tone = np.array([np.round(_median(c)) for c in channels], np.int32)
    if np.abs(tone).max() > GREY_TONE:
        return None
    if _over_percentile(_stray(channels, tone), 99, GREY_NOISE):
        return None
    return tone


def _channel_offsets(rgb: np.ndarray) -> list[np.ndarray]:
    """Each channel's difference from the luma (:func:`_luma`) of ``rgb`` (N x 3 uint8), three
    int16 arrays (a channel at a time: a row-wise maximum over N x 3 took 7 ms of a 512x512
    crop)."""
    columns = [rgb[:, c].astype(np.int16) for c in range(3)]
    luma = columns[0].astype(np.uint32) * int(_LUMA_16[0])
    for c, w in zip(columns[1:], _LUMA_16[1:]):
        luma += c.astype(np.uint32) * int(w)
    luma = ((luma + 32768) >> 16).astype(np.int16)
    return [c - luma for c in columns]


def _stray(channels: list[np.ndarray], tone: np.ndarray) -> np.ndarray:
    """How far each pixel strays from ``tone``: the largest of its channels' distances from it
    (``channels``: :func:`_channel_offsets`)."""
    stray = np.abs(channels[0] - tone[0])
    for c, t in zip(channels[1:], tone[1:]):
        np.maximum(stray, np.abs(c - t), out=stray)
    return stray


def _ranked(counts: np.ndarray, ranks: list[int]) -> list[int]:
    """The values at 0-based ``ranks`` of the sorted values whose histogram is ``counts``
    (``counts[v]``: how many equal ``v``)."""
    return [int(v) for v in np.searchsorted(np.cumsum(counts), ranks, side="right")]


def _median(values: np.ndarray) -> float:
    """``np.median(values)`` of integers in [-255, 255] (exact: the two middle values' mean)."""
    n = len(values)
    low, high = _ranked(np.bincount(values + 255, minlength=511), [(n - 1) // 2, n // 2])
    return (low - 255 + high - 255) / 2


def _over_percentile(values: np.ndarray, q: float, limit: int) -> bool:
    """``np.percentile(values, q) > limit`` for non-negative integers: the percentile lies between
    the values ranked just below and above ``q``% of the way, told from a histogram; only where
    ``limit`` falls between them is numpy asked."""
    n = len(values)
    at = (n - 1) * q / 100
    below, above = _ranked(np.bincount(values), [max(int(at) - 1, 0), min(int(at) + 2, n - 1)])
    if above <= limit:
        return False
    if below > limit:
        return True
    return bool(np.percentile(values, q) > limit)


def _clearly_colour(image: np.ndarray, hole: np.ndarray, pixels: int = 4096) -> bool:
    """Whether about ``pixels`` known pixels, drawn at random, have a tone over twice
    :data:`GREY_TONE` or half of them stray from it by more than three times :data:`GREY_NOISE`
    (a grey photo has 99% within it): most colour crops are told apart here in a fraction of a
    millisecond, without gathering every known pixel."""
    flat = image.reshape(-1, 3)
    # drawn at random (a fixed seed): a stride lines up with the rows (a 4096x4096 crop's every
    # 4,096th pixel is its first column, where a coloured mark made a grey scan colour)
    at = np.random.default_rng(0).integers(0, len(flat), min(pixels, len(flat)))
    sample = flat[at[~hole.reshape(-1)[at]]]
    if len(sample) < pixels // 4:  # too few known pixels drawn to tell: the full check decides
        return False
    channels = _channel_offsets(sample)
    tone = np.array([np.median(c) for c in channels])
    if np.abs(tone).max() > 2 * GREY_TONE:  # a colour cast twice a grey photo's tint at most
        return True
    return bool(np.median(_stray(channels, tone)) > 3 * GREY_NOISE)


def grey_fill(
    fill: np.ndarray, image: np.ndarray, hole: np.ndarray, tone: np.ndarray | None = None
) -> np.ndarray:
    """``fill`` with its hole pixels turned to their luma plus the photo's tone when ``image``
    is a grey photo around the hole (:func:`grey_tone`), except next to something coloured
    (:data:`LOCAL`); otherwise ``fill`` itself. ``tone``: the whole photo's, where the caller
    found it grey (``image`` being a crop of it): used as it is, not decided again on the crop,
    whose coloured object (over 1% of the crop, not of the photo) made a crop at a time colour,
    a tint with straight edges where the crops met; None: decided on ``image``."""
    if not hole.any():
        return fill
    if tone is None:
        tone = grey_tone(image, hole)
    if tone is None:
        return fill
    grey = hole & ~_coloured_near(image, hole, tone)
    luma = _luma(fill[grey]).astype(np.int32)
    out = fill.copy()
    out[grey] = np.clip(luma[:, None] + tone, 0, 255).astype(np.uint8)
    return out


def _coloured_near(image: np.ndarray, hole: np.ndarray, tone: np.ndarray) -> np.ndarray:
    """Where (bool HxW) more than :data:`LOCAL_SHARE` of the known pixels within :data:`LOCAL`
    px (:data:`LOCAL_MIN` of them at least) stray from ``tone`` by more than :data:`GREY_NOISE`;
    and, for a hole pixel with fewer than :data:`ENOUGH` known pixels that near, the same in the
    smallest box twice, four times, ... as large that holds that many: deep inside a hole in a
    coloured object (a hand-tinted dress, a red patch; 80x80 px), the pixels over 12 px from its
    edge were greyed, a grey square with a coloured rim."""
    stray = _stray(_channel_offsets(image.reshape(-1, 3)), tone) > GREY_NOISE
    stray = stray.reshape(hole.shape) & ~hole
    if not stray.any():  # R = G = B everywhere (a greyscale file), or noise alone
        return stray
    near, known = _box_sum(stray), _box_sum(~hole)
    coloured = (near >= LOCAL_MIN) & (near > LOCAL_SHARE * known)
    few = hole & (known < ENOUGH)
    radius = LOCAL
    while few.any() and radius < max(hole.shape):
        radius *= 2
        near, known = _box_sum(stray, radius), _box_sum(~hole, radius)
        told = few & (known >= ENOUGH)
        coloured |= told & (near >= LOCAL_MIN) & (near > LOCAL_SHARE * known)
        few &= ~told
    return coloured


def _box_sum(mask: np.ndarray, radius: int = LOCAL) -> np.ndarray:
    """How many pixels of ``mask`` lie in the (2 radius + 1)-square around each pixel (a
    summed-area table; the box is cut at the picture's border)."""
    h, w = mask.shape
    table = np.zeros((h + 1, w + 1), np.int64)
    table[1:, 1:] = mask.cumsum(0, dtype=np.int64).cumsum(1)
    y0 = np.clip(np.arange(h) - radius, 0, h)[:, None]
    y1 = np.clip(np.arange(h) + radius + 1, 0, h)[:, None]
    x0 = np.clip(np.arange(w) - radius, 0, w)[None, :]
    x1 = np.clip(np.arange(w) + radius + 1, 0, w)[None, :]
    return table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]
