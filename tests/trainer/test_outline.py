"""The outline figure (:mod:`trainer.outline`): lines along the hole's edge raise it, the truth
gives 1, a blur does not raise it, and across / along follow the edge's direction."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from trainer.outline import RIM, rim_line_score


def _photo(seed: int = 0, size: int = 160) -> np.ndarray:
    """Isotropic detail: noise blurred by 1.5 px around mid-grey, a little colour."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.normal(0.0, 1.0, (size, size, 3)), (0, 0), 1.5)
    return np.clip(128 + 40 * noise / noise.std(), 0, 255).astype(np.uint8)


def _blob(size: int = 160) -> np.ndarray:
    """An irregular brushed shape away from the borders."""
    hole = np.zeros((size, size), np.uint8)
    pts = np.array([[40, 50], [95, 35], [125, 70], [110, 120], [60, 125], [35, 90]], np.int32)
    cv2.fillPoly(hole, [pts], 1)
    return hole.astype(bool)


def _depth(hole: np.ndarray) -> np.ndarray:
    return cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def _ratio(result: np.ndarray, original: np.ndarray, hole: np.ndarray) -> float:
    return rim_line_score(result, hole) / rim_line_score(original, hole, reference=True)


def test_the_truth_scores_one_and_an_outline_raises_it():
    image, hole = _photo(), _blob()
    outlined = image.copy()
    line = hole & (_depth(hole) >= 2) & (_depth(hole) < 3.5)  # a dark line 2-3 px inside the edge
    outlined[line] = (outlined[line] * 0.6).astype(np.uint8)
    assert _ratio(outlined, image, hole) > 1.5


def test_a_step_where_the_fill_meets_the_photo_raises_it():
    image, hole = _photo(), _blob()
    off = image.copy()
    off[hole] = np.clip(off[hole].astype(int) + 50, 0, 255).astype(np.uint8)  # off-colour fill
    assert _ratio(off, image, hole) > 1.25


def test_detail_in_every_direction_is_not_an_outline():
    """The same change of the rim, spread over every direction, leaves the figure near 1; laid
    along the edge it raises it, the more the darker the line."""
    image, hole = _photo(), _blob()
    line = hole & (_depth(hole) >= 2) & (_depth(hole) < 3.5)
    ratios = {}
    for factor in (0.85, 0.6):
        outlined = image.copy()
        outlined[line] = (outlined[line] * factor).astype(np.uint8)
        ratios[factor] = _ratio(outlined, image, hole)
    grain = image.astype(int) + np.random.default_rng(1).normal(0, 6, image.shape).round().astype(int)
    noisy = np.where(hole[..., None], np.clip(grain, 0, 255), image).astype(np.uint8)
    assert 0.85 < _ratio(noisy, image, hole) < 1.15
    assert 1.2 < ratios[0.85] < ratios[0.6]


def test_across_and_along_follow_the_edge():
    """A hole across the whole width has a horizontal edge: stripes that run along it (brightness
    changing with the row) score high, stripes that cross it (changing with the column) low."""
    y = np.mgrid[0:120, 0:120][0]
    grain = np.random.default_rng(2).normal(0, 2, (120, 120, 3))  # so that neither way is empty
    along = np.clip(128 + 60 * np.sin(y * 2 * np.pi / 7)[..., None] + grain, 0, 255).astype(np.uint8)
    across = np.ascontiguousarray(along.transpose(1, 0, 2))
    hole = np.zeros((120, 120), bool)
    hole[40:80] = True
    assert rim_line_score(along, hole) > 20
    assert rim_line_score(across, hole) < 0.05
    # the same at 45 degrees, where the mixed derivative carries half of each
    d = np.mgrid[0:160, 0:160].sum(0)  # x + y: constant along the diagonal edges below
    grain = np.random.default_rng(4).normal(0, 2, (160, 160, 3))
    diagonal = np.clip(128 + 60 * np.sin(d * 2 * np.pi / 9)[..., None] + grain, 0, 255).astype(np.uint8)
    band = (d >= 140) & (d < 180)
    crossing = np.ascontiguousarray(np.fliplr(diagonal))  # stripes at 90 degrees to the band
    assert rim_line_score(diagonal, band) > 20
    assert rim_line_score(crossing, band) < 0.1
    # rotating photo and hole together leaves the score as it was: the frame is the edge's own
    blob, image = _blob(), _photo(3)
    turned = rim_line_score(np.ascontiguousarray(np.rot90(image)), np.ascontiguousarray(np.rot90(blob)))
    assert turned == pytest.approx(rim_line_score(image, blob), rel=1e-6)


def test_only_the_rim_counts():
    """Changing the fill deeper than the rim (plus the blur and the stencils' reach) changes
    nothing; changing it on the rim does."""
    image, hole = _photo(), _blob()
    base = rim_line_score(image, hole)
    deep = image.copy()
    inner = _depth(hole) > RIM + 6
    assert inner.any()
    deep[inner] = 0
    assert rim_line_score(deep, hole) == pytest.approx(base, rel=1e-9)
    outside = image.copy()
    outside[~hole] = 255 - outside[~hole]
    assert rim_line_score(outside, hole) != pytest.approx(base, rel=1e-3)  # the photo next to the rim


def test_the_photo_beyond_the_holes_reach_does_not_count():
    """Only a box around the hole is read: a photo grown by 60 px of anything on every side,
    the hole where it was, scores the same."""
    image, hole = _photo(), _blob()
    rng = np.random.default_rng(7)
    big = rng.integers(0, 256, (280, 280, 3), dtype=np.uint8)
    big[60:220, 60:220] = image
    big_hole = np.zeros((280, 280), bool)
    big_hole[60:220, 60:220] = hole
    assert rim_line_score(big, big_hole) == rim_line_score(image, hole)


def test_lines_along_a_thin_scratch_read_as_lines_along_it():
    """A 3 px scratch is all rim, and its middle row is as near both sides (no edge direction,
    left out): its two outer rows still read lines along it as such."""
    y = np.mgrid[0:80, 0:80][0]
    grain = np.random.default_rng(5).normal(0, 2, (80, 80, 3))
    along = np.clip(128 + 60 * np.sin(y * 2 * np.pi / 4)[..., None] + grain, 0, 255).astype(np.uint8)
    scratch = np.zeros((80, 80), bool)
    scratch[39:42, 10:70] = True
    across_only = np.ascontiguousarray(along.transpose(1, 0, 2))
    assert rim_line_score(along, scratch) > 5 * rim_line_score(across_only, scratch)


def test_empty_flat_and_wrong_size_input():
    image, hole = _photo(), _blob()
    assert np.isnan(rim_line_score(image, np.zeros_like(hole)))
    flat = np.full_like(image, 90)
    assert np.isnan(rim_line_score(flat, hole, reference=True))  # no ratio can be taken to it
    assert rim_line_score(flat, hole) == pytest.approx(0.0, abs=1e-9)  # no lines: scored, not left out
    with pytest.raises(ValueError, match="does not match"):
        rim_line_score(image, hole[:-1])
    # a hole against the photo's border, and a thin scratch, give finite scores
    edge = np.zeros_like(hole)
    edge[:30, 20:60] = True
    scratch = np.zeros_like(hole)
    cv2.line(scratch.view(np.uint8), (10, 20), (150, 140), 1, 3)
    for h in (edge, scratch):
        assert np.isfinite(rim_line_score(image, h))
