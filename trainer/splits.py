"""Reproducible train/val/test splits, stratified by group (species)."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Hashable, Mapping, Sequence

import numpy as np

__all__ = ["stratified_split", "split_counts"]


def split_counts(n: int, ratios: Sequence[float]) -> list[int]:
    """How many of ``n`` items go to each part: rounded shares, the remainder to the last part,
    and never an empty first part when ``n > 0`` (a species with one photo trains on it)."""
    total = float(sum(ratios))
    counts = [int(round(n * r / total)) for r in ratios[:-1]]
    while sum(counts) > n:  # rounding up twice can overshoot for tiny n
        counts[counts.index(max(counts))] -= 1
    counts.append(n - sum(counts))
    if n > 0 and counts[0] == 0:
        j = max(range(1, len(counts)), key=lambda i: counts[i])
        counts[j] -= 1
        counts[0] += 1
    return counts


def stratified_split(
    groups: Mapping[Hashable, Sequence[int]],
    seed: int,
    names: Sequence[str] = ("train", "val", "test"),
    ratios: Sequence[float] = (6, 2, 2),
    *,
    keys: Mapping[int, str] | None = None,
) -> dict[int, str]:
    """Assign every id to a part, shuffling each group with a generator seeded by ``(seed,
    group)``: the result depends only on the seed and on each group's own ids, not on the order
    of the input or on the other groups.

    ``keys``: a stable name for each id (its photo's path in the source folder). Each group is
    then ordered by a hash of (seed, name) instead, so that a photo added to or removed from a
    group moves only the photos at the parts' boundaries (one or two), not the whole group: ids
    that are positions in a folder listing shift when a photo is added, and the shuffle of the
    shifted ids moved 12 of 20 photos between train, val and test (a test photo then trained)."""
    if len(names) != len(ratios):
        raise ValueError("names and ratios must have the same length")
    assignment: dict[int, str] = {}
    for group, ids in groups.items():
        ordered = sorted(ids)
        if keys is None:
            rng = np.random.default_rng([seed, zlib.crc32(str(group).encode("utf-8"))])
            ordered = [ordered[k] for k in rng.permutation(len(ordered))]
        else:
            ordered.sort(key=lambda i: hashlib.sha256(f"{seed}\0{keys[i]}".encode()).digest())
        start = 0
        for name, count in zip(names, split_counts(len(ordered), ratios)):
            for i in ordered[start : start + count]:
                assignment[i] = name
            start += count
    return assignment
