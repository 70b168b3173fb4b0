"""Reproducible train/val/test splits, stratified by group (species)."""

from __future__ import annotations

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
) -> dict[int, str]:
    """Assign every id to a part, shuffling each group with a generator seeded by ``(seed,
    group)``: the result depends only on the seed and on each group's own ids, not on the order
    of the input or on the other groups."""
    if len(names) != len(ratios):
        raise ValueError("names and ratios must have the same length")
    assignment: dict[int, str] = {}
    for group, ids in groups.items():
        ordered = sorted(ids)
        rng = np.random.default_rng([seed, zlib.crc32(str(group).encode("utf-8"))])
        order = rng.permutation(len(ordered))
        start = 0
        for name, count in zip(names, split_counts(len(ordered), ratios)):
            for k in order[start : start + count]:
                assignment[ordered[k]] = name
            start += count
    return assignment
