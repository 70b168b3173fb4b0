"""trainer.paired: the per-photo difference of two models' scores, with its bootstrap interval."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.paired import paired_difference


def test_a_lead_on_every_photo_is_told_apart_and_noise_is_not():
    rng = np.random.default_rng(1)
    base = rng.normal(20.0, 3.0, 20)  # photos differ by far more than the models do
    lead = paired_difference(base + 0.3 + rng.normal(0, 0.05, 20), base)
    assert lead.mean == pytest.approx(0.3, abs=0.03) and lead.ahead == 20 and lead.photos == 20
    assert 0 < lead.low < lead.mean < lead.high < 0.4
    noise = paired_difference(base + rng.normal(0, 0.2, 20), base)
    assert noise.low < 0 < noise.high  # within the spread: not told apart


def test_the_interval_is_the_same_every_run_and_narrows_with_more_photos():
    rng = np.random.default_rng(2)
    diff20, diff200 = rng.normal(0.1, 0.3, 20), rng.normal(0.1, 0.3, 200)
    once, again = paired_difference(diff20, np.zeros(20)), paired_difference(diff20, np.zeros(20))
    assert once == again
    more = paired_difference(diff200, np.zeros(200))
    assert (more.high - more.low) < 0.5 * (once.high - once.low)


def test_many_photos_are_resampled_in_pieces_with_the_same_statistic():
    """10,000 resamples of 5,000 photos in pieces of 200: the interval of a known mean difference
    (0.1, spread 1: standard error 0.014) where the normal approximation puts it."""
    diff = np.random.default_rng(3).normal(0.1, 1.0, 5000)
    lead = paired_difference(diff, np.zeros(5000))
    half = 1.96 * diff.std() / np.sqrt(diff.size)
    assert lead.low == pytest.approx(diff.mean() - half, abs=0.003)
    assert lead.high == pytest.approx(diff.mean() + half, abs=0.003)


def test_identical_scores_differ_by_nothing_and_the_text_says_so():
    same = paired_difference(np.array([18.0, 19.5, 21.0]), np.array([18.0, 19.5, 21.0]))
    assert (same.mean, same.low, same.high, same.ahead, same.photos) == (0.0, 0.0, 0.0, 0, 3)
    assert same.describe() == "+0.00 dB (95% interval +0.00 to +0.00; ahead on 0 of 3 photos)"


@pytest.mark.parametrize("first, second", [([1.0, 2.0], [1.0]), ([], []), ([[1.0]], [[1.0]])])
def test_scores_that_do_not_pair_are_refused(first, second):
    with pytest.raises(ValueError, match="equal, non-empty"):
        paired_difference(np.array(first), np.array(second))
