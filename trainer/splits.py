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


def stable_split(
    groups: Mapping[Hashable, Sequence[int]],
    seed: int,
    keys: Mapping[int, str],
    previous: Mapping[str, str] | None = None,
    names: Sequence[str] = ("train", "val", "test"),
    ratios: Sequence[float] = (6, 2, 2),
) -> dict[int, str]:
    """Assign every id to a part for photos known by name (``keys``: id -> its path in a folder),
    keeping the part ``previous`` gave each name (the last split of the same folder with the same
    seed), so that no photo ever moves between train, val and test when photos are added or
    removed. The others, in the order of a hash of (seed, name), each go to the part furthest
    below its share of the group (:func:`split_counts`): a new group is split exactly as the
    counts say, a grown one as near to them as keeping the old parts allows. (Ids that are
    positions in a folder listing, shuffled, moved 11 of 20 photos when one was added: a test
    photo then trained.)"""
    if len(names) != len(ratios):
        raise ValueError("names and ratios must have the same length")
    previous = previous or {}
    assignment: dict[int, str] = {}
    for ids in groups.values():
        target = dict(zip(names, split_counts(len(ids), ratios)))
        have = dict.fromkeys(names, 0)
        fresh = []
        for i in ids:
            part = previous.get(keys[i])
            if part in have:
                assignment[i] = part
                have[part] += 1
            else:
                fresh.append(i)
        fresh.sort(key=lambda i: hashlib.sha256(f"{seed}\0{keys[i]}".encode()).digest())
        for i in fresh:
            part = max(names, key=lambda n: target[n] - have[n])  # the first of equals: train
            assignment[i] = part
            have[part] += 1
    return assignment
