"""Is one model's fill really better than another's on the same photos and holes?

Two models scored on the same photos differ by a mean that photo-to-photo spread can swamp: over
20 photos a 0.03 dB lead is often noise. :func:`paired_difference` takes each photo's score under
both models, and gives the mean of the per-photo differences, a 95% percentile-bootstrap interval
for it (photos resampled with replacement, seeded: the same figures every run), and on how many
photos the first model is ahead. When the interval includes 0 the data do not tell the two apart.
(SciPy's ``stats.bootstrap(..., method="percentile")`` does the same; SciPy is not a dependency,
for ten lines.) With a handful of photos the interval is little more than their range: read it
over tens of photos or more.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PairedDifference", "paired_difference"]


@dataclass(frozen=True)
class PairedDifference:
    mean: float  # mean over photos of first - second
    low: float  # 95% bootstrap interval of that mean
    high: float
    ahead: int  # photos where first > second
    photos: int

    def describe(self, unit: str = "dB") -> str:
        """E.g. ``+0.03 dB (95% interval -0.02 to +0.08; ahead on 12 of 20 photos)``."""
        return (
            f"{self.mean:+.2f} {unit} (95% interval {self.low:+.2f} to {self.high:+.2f}; "
            f"ahead on {self.ahead} of {self.photos} photos)"
        )


def paired_difference(
    first: np.ndarray, second: np.ndarray, *, resamples: int = 10_000, seed: int = 0
) -> PairedDifference:
    """The mean of ``first - second`` (one score per photo each, same photos in the same
    order), with its 95% percentile-bootstrap interval and the count of photos ``first`` leads."""
    a, b = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or not a.size:
        raise ValueError(f"need two equal, non-empty lists of scores, got shapes {a.shape} and {b.shape}")
    diff = a - b
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    step = max(1, 1_000_000 // diff.size)  # resamples per draw: memory stays about 8 MB
    for start in range(0, resamples, step):
        n = min(step, resamples - start)
        means[start : start + n] = diff[rng.integers(0, diff.size, (n, diff.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return PairedDifference(
        float(diff.mean()), float(low), float(high), int((diff > 0).sum()), int(diff.size)
    )
