"""The data order is a function of (seed, step); ranks get disjoint shards; samples are seeded."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainer.data import InpaintingDataset, PreparedImages, StepBatchSampler
from trainer.masks import RandomStrokes


def test_every_image_once_per_epoch():
    s = StepBatchSampler(10, 5, seed=3, stop_step=4)
    batches = list(s)
    epoch0 = [i for b in batches[:2] for i, _ in b]
    epoch1 = [i for b in batches[2:] for i, _ in b]
    assert sorted(epoch0) == list(range(10)) and sorted(epoch1) == list(range(10))
    assert epoch0 != epoch1  # reshuffled


def test_resuming_at_a_step_replays_the_same_batches():
    full = list(StepBatchSampler(7, 3, seed=1, stop_step=9))
    tail = list(StepBatchSampler(7, 3, seed=1, start_step=4, stop_step=9))
    assert tail == full[4:]
    assert list(StepBatchSampler(7, 3, seed=2, stop_step=9)) != full


def test_ranks_read_disjoint_shards_of_the_global_batch():
    single = StepBatchSampler(12, 4, seed=0, stop_step=3)
    r0 = StepBatchSampler(12, 2, seed=0, stop_step=3, rank=0, world_size=2)
    r1 = StepBatchSampler(12, 2, seed=0, stop_step=3, rank=1, world_size=2)
    for a, b, whole in zip(r0, r1, single):
        assert set(a).isdisjoint(b)
        assert a + b == whole  # same global order as one process with the global batch


def test_dataset_samples_are_a_function_of_the_key(prepared):
    images = PreparedImages(prepared, "train")
    ds = InpaintingDataset(images, RandomStrokes(), seed=0, crop=48)
    img1, hole1 = ds[(2, 17)]
    img2, hole2 = ds[(2, 17)]
    assert img1.dtype == torch.uint8 and img1.shape == (3, 48, 48)
    assert hole1.dtype == torch.bool and hole1.shape == (1, 48, 48)
    assert torch.equal(img1, img2) and torch.equal(hole1, hole2)
    _, hole3 = ds[(2, 18)]
    assert not torch.equal(hole1, hole3)


def test_prepared_images_preload_and_on_demand_agree(prepared):
    a = PreparedImages(prepared, "train", preload=True)
    b = PreparedImages(prepared, "train", preload=False)
    assert a.array is not None and b.array is None
    assert len(a) == len(b) == 14
    assert all(np.array_equal(a[i], b[i]) for i in range(len(a)))
    assert a.species == ["class_0", "class_1"]
    few = PreparedImages(prepared, "train", limit=3)
    assert len(few) == 3
    with pytest.raises(ValueError):
        PreparedImages(prepared, "nonsense")
