"""Native-resolution crops (``--native-share``): which samples, from which photos, at which scale;
a share of 0 leaves every sample as it was; the dataset pickles small for spawned workers."""

from __future__ import annotations

import dataclasses
import hashlib
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from trainer.config import TrainConfig
from trainer.data import InpaintingDataset, PreparedImages, StepBatchSampler, collate, sample_rng
from trainer.manifest import read_manifest
from trainer.masks import CentreHole, parse_mask_mixture
from trainer.native import NativeCrops, takes_native

CROP = 64
SIZES = [(200, 150), (120, 100)]  # (width, height) of the photos of class_0 and class_1


@pytest.fixture(scope="module")
def native_data(tmp_path_factory):
    """A prepared 64 px folder whose source photos (PNG) say where each pixel came from: red =
    x, green = y, blue = which photo (5 + 12 k)."""
    from trainer.prepare import PrepareConfig, prepare

    base = tmp_path_factory.mktemp("native")
    k = 0
    for c, (w, h) in enumerate(SIZES):
        folder = base / "photos" / f"class_{c}"
        folder.mkdir(parents=True)
        for i in range(10):
            img = np.empty((h, w, 3), np.uint8)
            img[..., 0] = np.arange(w)[None, :]
            img[..., 1] = np.arange(h)[:, None]
            img[..., 2] = 5 + 12 * k
            Image.fromarray(img).save(folder / f"p{i:02d}.png")
            k += 1
    out = base / "data"
    prepare(PrepareConfig(out=out, images_dir=base / "photos", size=CROP, workers=1, progress=False))
    return out


def _blue_of(path) -> int:
    with Image.open(path) as im:
        return int(np.asarray(im)[0, 0, 2])


def _train_ids(data) -> list[int]:
    return [r.image_id for r in read_manifest(data, "train")]


def _dataset(data, share: float, *, min_scale: float = 0.5, hflip: bool = False, masks=None):
    images = PreparedImages(data, "train")
    native = NativeCrops.for_split(data, _train_ids(data), crop=CROP, share=share, min_scale=min_scale)
    return InpaintingDataset(images, masks or CentreHole(), seed=4, crop=CROP, hflip=hflip, native=native)


def test_the_share_is_spread_evenly_over_positions_and_batches():
    assert not any(takes_native(p, 0.0) for p in range(1000))
    assert all(takes_native(p, 1.0) for p in range(1000))
    half = [takes_native(p, 0.5) for p in range(400)]
    assert all(sum(half[b : b + 4]) == 2 for b in range(0, 400, 4))  # half of every batch of 4
    third = [takes_native(p, 0.3) for p in range(1000)]
    assert sum(third) == 300
    assert all(2 <= sum(third[b : b + 10]) <= 4 for b in range(0, 990))  # any 10 in a row: 3 +- 1


def test_the_source_is_the_train_splits_photos_without_those_too_small(native_data):
    rows = read_manifest(native_data, "train")
    native = NativeCrops.for_split(native_data, _train_ids(native_data), crop=CROP, share=0.5)
    root = native_data.parent / "photos"
    assert native.paths == [root / r.source for r in rows]
    assert native.usable == len(rows) == 12 and not any(native.left_out.values())
    # 100 px photos cannot give a 110 px crop without upscaling: left out
    big = NativeCrops.for_split(native_data, _train_ids(native_data), crop=110, share=0.5)
    assert big.left_out == {"smaller than the crop": 6, "missing or unreadable": 0}
    assert all(p is None or Image.open(p).height == 150 for p in big.paths) and big.usable == 6
    # the val and test photos are not train photos: none of them is a source
    others = [r.image_id for r in read_manifest(native_data) if r.split != "train"]
    assert NativeCrops.for_split(native_data, others, crop=CROP, share=0.5).usable == 0
    with pytest.raises(ValueError, match="share"):
        NativeCrops([], CROP, 1.5)
    with pytest.raises(ValueError, match="scale"):
        NativeCrops([], CROP, 0.5, min_scale=0.0)


def test_native_crops_are_seeded_right_sized_from_train_photos_and_never_upscaled(native_data):
    ds = _dataset(native_data, 1.0)
    train_blue = {_blue_of(p) for p in ds.native.paths}
    slopes, blues = [], set()
    for position in range(60):
        img, hole = ds[(position % len(ds), position)]
        again, _ = ds[(position % len(ds), position)]
        assert img.dtype == torch.uint8 and img.shape == (3, CROP, CROP) and hole.shape == (1, CROP, CROP)
        assert torch.equal(img, again)
        x, y, b = img.numpy().astype(float)
        blues |= set(np.unique(b).astype(int).tolist())
        # red = x and green = y of the photo: their step per crop pixel is 1 / scale, alike
        sx, sy = (x[:, -1] - x[:, 0]).mean() / (CROP - 1), (y[-1] - y[0]).mean() / (CROP - 1)
        assert sx == pytest.approx(sy, abs=0.05)
        slopes.append(sx)
    assert blues <= train_blue and len(blues) > 5
    assert min(slopes) >= 0.99  # never upscaled
    assert max(slopes) <= 1 / 0.5 + 0.05 and max(slopes) > 1.4  # scaled down, at most by 0.5
    assert min(slopes) < 1.1  # and at native resolution or nearly


def test_at_scale_one_a_crop_is_a_window_of_the_photo(native_data):
    native = NativeCrops.for_split(native_data, _train_ids(native_data), crop=CROP, share=1, min_scale=1)
    for index in range(len(native.paths)):
        crop = native(sample_rng(0, index), index)
        with Image.open(native.paths[index]) as im:
            photo = np.asarray(im.convert("RGB"))
        top, left = int(crop[0, 0, 1]), int(crop[0, 0, 0])
        assert np.array_equal(crop, photo[top : top + CROP, left : left + CROP])


def test_mixed_batches_take_the_share_and_the_squares_stay_as_they_were(native_data):
    mixed, squares = _dataset(native_data, 0.5, hflip=True), _dataset(native_data, 0.0, hflip=True)
    sampler = StepBatchSampler(len(mixed), 4, seed=1, stop_step=6)
    for keys in sampler:
        images, holes = collate([mixed[k] for k in keys])
        assert images.shape == (4, 3, CROP, CROP) and holes.shape == (4, 1, CROP, CROP)
        same = [torch.equal(images[j], squares[k][0]) for j, k in enumerate(keys)]
        assert same == [not takes_native(p, 0.5) for _, p in keys]
        assert sum(same) == 2


def test_a_left_out_photos_native_samples_take_another_usable_photo(native_data):
    ds, squares = _dataset(native_data, 1.0), _dataset(native_data, 0.0)
    kept = [p if i % 2 == 0 else None for i, p in enumerate(ds.native.paths)]
    ds.native = dataclasses.replace(ds.native, paths=kept)
    assert ds.native.usable == 6
    usable_blue = {_blue_of(p) for p in kept if p is not None}
    blues = set()
    for position in range(24):
        index = 2 * (position % 6) + 1  # left out
        img, _ = ds[(index, position)]
        assert torch.equal(img, ds[(index, position)][0])
        assert not torch.equal(img, squares[(index, position)][0])  # still a native crop
        blues |= set(np.unique(img[2].numpy()).tolist())
    assert blues <= usable_blue and len(blues) > 2
    ds.native = dataclasses.replace(ds.native, paths=[None] * len(kept))
    with pytest.raises(ValueError, match="none of the 12 source photos"):
        ds[(0, 0)]


class _Arrays:
    """Stands in for PreparedImages: images made by a generator, no JPEG decoder involved."""

    def __init__(self) -> None:
        self.array = np.random.default_rng(0).integers(0, 256, (5, 40, 48, 3), dtype=np.uint8)
        self.shape = self.array.shape[1:]

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.array[i]


# sha1 of the samples below, computed with the trainer before native crops existed
TODAYS_SAMPLES = "da8c31a7185444d4164aa43f345cb0c8e13a089a"


def test_share_zero_gives_exactly_the_samples_of_before(native_data):
    masks = parse_mask_mixture("center:1,rects:1")
    plain = InpaintingDataset(_Arrays(), masks, seed=3, crop=32)
    digest = hashlib.sha1()
    for p in range(40):
        img, hole = plain[(p % 5, p)]
        digest.update(img.numpy().tobytes() + hole.numpy().tobytes())
    assert digest.hexdigest() == TODAYS_SAMPLES
    # a native source with share 0 draws nothing: the same samples
    with_native = _dataset(native_data, 0.0, hflip=True, masks=masks)
    without = InpaintingDataset(PreparedImages(native_data, "train"), masks, seed=4, crop=CROP)
    for p in range(30):
        a, b = with_native[(p % 12, p)], without[(p % 12, p)]
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_the_dataset_pickles_without_the_decoded_images(native_data):
    images = PreparedImages(native_data, "train", preload=True)
    native = NativeCrops.for_split(native_data, _train_ids(native_data), crop=CROP, share=0.5)
    ds = InpaintingDataset(images, parse_mask_mixture("brush:1,blobs:1"), seed=2, crop=CROP, native=native)
    blob = pickle.dumps(ds)
    assert len(blob) < images.array.nbytes / 4
    copy = pickle.loads(blob)
    assert copy.images.array is None and ds.images.array is not None
    for p in range(8):
        a, b = ds[(p, p)], copy[(p, p)]
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_config_and_command_line():
    for bad in (dict(native_share=-0.1), dict(native_share=1.5), dict(native_min_scale=0.0)):
        with pytest.raises(ValueError, match="--native"):
            TrainConfig(**bad)
    with pytest.raises(ValueError, match="--native-min-scale"):
        TrainConfig(native_min_scale=1.2)
    assert TrainConfig().native_share == 0.0  # off by default
    from trainer.__main__ import build_parser

    args = build_parser().parse_args(
        ["train", "--data", "d", "--out", "o", "--native-share", "0.5", "--native-min-scale", "0.7"]
    )
    assert (args.native_share, args.native_min_scale) == (0.5, 0.7)
