"""Mask generators: shapes, hole ratios, determinism, folders with hold-out, mixtures."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from trainer.app_masks import SCRATCH_WIDTHS, draw_paths, scratch_paths, stroke_paths
from trainer.masks import (
    BRUSH_WIDTHS,
    TRAIN_BLOB_AREA,
    BrushStrokes,
    CentreHole,
    MaskFolder,
    MaskMixture,
    ObjectBlobs,
    RandomRectangles,
    RandomStrokes,
    Scratches,
    held_out_subset,
    hole_ratio,
    is_held_out,
    parse_mask_mixture,
)


def test_centre_hole_is_the_seeds_64px_square():
    m = CentreHole()(None, 256, 256)
    assert m.dtype == bool and m.shape == (256, 256)
    ys, xs = np.nonzero(m)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (96, 159, 96, 159)
    assert m.sum() == 64 * 64


@pytest.mark.parametrize("gen", [RandomRectangles(), RandomStrokes()], ids=["rects", "strokes"])
def test_random_generators_shapes_ratios_and_determinism(gen):
    ratios = []
    for seed in range(30):
        a = gen(np.random.default_rng(seed), 96, 128)
        b = gen(np.random.default_rng(seed), 96, 128)
        assert a.dtype == bool and a.shape == (96, 128)
        assert np.array_equal(a, b)
        ratios.append(hole_ratio(a))
    assert min(ratios) > 0.0 and max(ratios) < 0.7
    assert len({round(r, 6) for r in ratios}) > 20  # different seeds, different masks


def test_rectangles_are_axis_aligned_boxes():
    gen = RandomRectangles(max_count=1)
    m = gen(np.random.default_rng(0), 100, 100)
    ys, xs = np.nonzero(m)
    box = m[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    assert box.all()
    assert 10 <= box.shape[0] <= 50 and 10 <= box.shape[1] <= 50


def _write_masks(root, n=20, size=64):
    root.mkdir()
    for i in range(n):
        m = np.zeros((size, size), np.uint8)
        m[: 3 + i * 2, :] = 255  # more hole rows for later files
        Image.fromarray(m).save(root / f"{i:05d}.png")
    return root


def test_mask_folder_reads_white_as_hole_and_resizes(tmp_path):
    folder = MaskFolder(_write_masks(tmp_path / "m"), augment=False)
    m = folder.load(0, 32, 32)
    assert m.shape == (32, 32) and m.dtype == bool
    assert m[:1].all() and not m[3:].any()
    a = folder(np.random.default_rng(1), 32, 32)
    assert any(np.array_equal(a, folder.load(i, 32, 32)) for i in range(len(folder)))


def test_a_mask_folder_with_a_file_that_is_not_an_image_is_refused_before_any_run(tmp_path):
    """A file drawn only when its turn came ended a training run hours in, without a checkpoint."""
    folder = _write_masks(tmp_path / "m")
    (folder / "notes.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="1 file.* not readable images: notes.png"):
        MaskFolder(folder)
    # a truncated PNG opens (its header is whole) and failed only when drawn, in a worker
    (folder / "notes.png").unlink()
    whole = sorted(folder.iterdir())[0]
    (folder / "cut.png").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ValueError, match="1 file.* not readable images: cut.png"):
        MaskFolder(folder)
    (folder / "cut.png").unlink()
    # a PNG whose checksum is wrong over intact data decodes, and is kept
    data = bytearray(sorted(folder.glob("*.png"))[0].read_bytes())
    at = data.find(b"IDAT")
    length = int.from_bytes(data[at - 4 : at], "big")
    data[at + 4 + length] ^= 0xFF  # the chunk's CRC
    (folder / "badcrc.png").write_bytes(bytes(data))
    assert len(MaskFolder(folder)) == len(list(folder.iterdir()))
    for suffix in ("jpg", "bmp", "tif"):  # other formats are decoded to be checked
        whole = folder / f"whole.{suffix}"
        Image.open(sorted(folder.glob("*.png"))[0]).save(whole)
        assert len(MaskFolder(folder)) == len(list(folder.iterdir()))
        (folder / f"cut.{suffix}").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
        with pytest.raises(ValueError, match=f"not readable images: cut.{suffix}"):
            MaskFolder(folder)
        (folder / f"cut.{suffix}").unlink()


def test_mask_folder_augmentation_is_seeded(tmp_path):
    folder = MaskFolder(_write_masks(tmp_path / "m"), augment=True)
    a = folder(np.random.default_rng(7), 48, 48)
    b = folder(np.random.default_rng(7), 48, 48)
    assert a.shape == (48, 48) and np.array_equal(a, b)
    outs = {folder(np.random.default_rng(s), 48, 48).tobytes() for s in range(10)}
    assert len(outs) == 10


def test_mask_folder_holdout_subsets_are_disjoint(tmp_path):
    root = _write_masks(tmp_path / "m", n=60)
    train = MaskFolder(root, subset="train", holdout=0.25)
    held = MaskFolder(root, subset="holdout", holdout=0.25)
    every = MaskFolder(root, subset="all")
    assert set(train.files).isdisjoint(held.files)
    assert set(train.files) | set(held.files) == set(every.files)
    assert 5 <= len(held) <= 25
    assert all(is_held_out(p.name, 0.25) for p in held.files)  # the subsets follow the file names
    assert not any(is_held_out(p.name, 0.25) for p in train.files)
    with pytest.raises(ValueError, match="no mask images"):
        MaskFolder(root, subset="holdout", holdout=0.0)


def test_held_out_subset_falls_back_to_all_with_a_warning(tmp_path):
    big = _write_masks(tmp_path / "big", n=60)
    assert held_out_subset(big, 0.25) == ("holdout", None)
    assert held_out_subset(big, 0.0) == ("all", None)
    small = _write_masks(tmp_path / "small", n=2)
    assert not any(is_held_out(p.name, 0.2) for p in MaskFolder(small).files)
    subset, warning = held_out_subset(small, 0.2)
    assert subset == "all" and "none of the 2 masks" in warning


def test_mixture_spec_weights_are_respected(tmp_path):
    mix = parse_mask_mixture("center:0.4,strokes:0.3,folder:0.3", _write_masks(tmp_path / "m"))
    assert mix.names == ["center", "strokes", "folder"]
    assert np.allclose(mix.probabilities, [0.4, 0.3, 0.3])
    centre = CentreHole()(None, 64, 64)
    rng = np.random.default_rng(0)
    n_centre = sum(np.array_equal(mix(rng, 64, 64), centre) for _ in range(400))
    assert 120 <= n_centre <= 200  # ~160 expected
    a = [mix(np.random.default_rng(s), 64, 64) for s in range(5)]
    b = [mix(np.random.default_rng(s), 64, 64) for s in range(5)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_mixture_spec_errors():
    with pytest.raises(ValueError, match="unknown mask kind"):
        parse_mask_mixture("centre:1,bogus:1")
    with pytest.raises(ValueError, match="--mask-dir"):
        parse_mask_mixture("folder:1")
    with pytest.raises(ValueError, match="weight"):
        parse_mask_mixture("center:abc")
    with pytest.raises(ValueError):
        MaskMixture([CentreHole()], [0.0])
    assert parse_mask_mixture("rects").names == ["rects"]


@pytest.mark.parametrize(
    "gen, paths, widths",
    [(BrushStrokes(), stroke_paths, BRUSH_WIDTHS), (Scratches(), scratch_paths, SCRATCH_WIDTHS)],
    ids=["brush", "scratches"],
)
def test_brush_and_scratch_widths_are_pixels_of_the_crop(gen, paths, widths):
    """Drawn with the app-like shapes, of the training widths, the same in pixels at any crop
    size (the network sees the app's photos at full resolution); seeded."""
    seen = []
    for seed in range(40):
        small = paths(np.random.default_rng(seed), 64, 64, widths)
        large = paths(np.random.default_rng(seed), 512, 384, widths)
        assert [p.width for p in small] == [p.width for p in large]  # not scaled with the crop
        assert all(widths[0] <= p.width <= widths[1] for p in small)
        seen += [p.width for p in small]
        mask = gen(np.random.default_rng(seed), 64, 64)
        assert mask.dtype == bool and mask.shape == (64, 64) and mask.any()
        assert np.array_equal(mask, draw_paths(64, 64, small))
        assert np.array_equal(mask, gen(np.random.default_rng(seed), 64, 64))
    assert min(seen) <= widths[0] + 1 and max(seen) >= widths[1] - 1  # the whole range occurs


def test_blobs_cover_the_training_share_of_the_crop():
    areas = []
    for seed in range(20):
        for h, w in ((64, 64), (256, 256), (96, 160)):
            m = ObjectBlobs()(np.random.default_rng(seed), h, w)
            assert np.array_equal(m, ObjectBlobs()(np.random.default_rng(seed), h, w))
            areas.append(hole_ratio(m))
    assert 0.98 * TRAIN_BLOB_AREA[0] <= min(areas) and max(areas) <= 1.02 * TRAIN_BLOB_AREA[1]
    assert min(areas) < 0.08 and max(areas) > 0.25


def test_mixture_spec_takes_the_app_like_kinds():
    mix = parse_mask_mixture("center:0.1,rects:0.1,strokes:0.1,brush:0.3,scratch:0.2,blob:0.2")
    assert mix.names == ["center", "rects", "strokes", "brush", "scratches", "blobs"]
    assert [type(g) for g in mix.generators[3:]] == [BrushStrokes, Scratches, ObjectBlobs]
    a = [mix(np.random.default_rng(s), 48, 64) for s in range(10)]
    assert all(np.array_equal(x, mix(np.random.default_rng(s), 48, 64)) for s, x in enumerate(a))


def test_an_augmented_folder_mask_always_has_a_hole(tmp_path):
    """A mask whose hole is a speck in a corner: most rotations and crops lose it; the draw
    tries again, and falls back to the plain mask, rather than hand the loss an empty hole."""
    root = tmp_path / "m"
    root.mkdir()
    m = np.zeros((64, 64), np.uint8)
    m[:2, :2] = 255
    Image.fromarray(m).save(root / "corner.png")
    folder = MaskFolder(root, augment=True)
    rng = np.random.default_rng(0)
    draws = [folder(rng, 32, 32) for _ in range(200)]
    assert all(d.any() for d in draws)
    assert len({d.tobytes() for d in draws}) > 1  # still augmented where a hole survives


@pytest.mark.parametrize("spec", ["center:nan,rects:1", "center:inf,rects:1"])
def test_a_mixture_weight_that_is_not_a_number_is_refused_when_parsed(tmp_path, spec):
    with pytest.raises(ValueError, match="mask weights"):
        parse_mask_mixture(spec, None)


def test_trained_holdout_is_the_smallest_of_the_stages_that_drew_folder_masks():
    from trainer.masks import trained_holdout

    stage = {"mask_dir": "masks", "masks": "center:0.3,folder:0.7", "mask_holdout": 0.2}
    assert trained_holdout([stage]) == 0.2
    assert trained_holdout([stage, {**stage, "masks": "irregular:1", "mask_holdout": 0.1}]) == 0.1  # alias
    assert trained_holdout([stage, {**stage, "masks": "center:1,folder:0", "mask_holdout": 0.0}]) == 0.2
    assert trained_holdout([{**stage, "mask_dir": None}]) is None  # no folder: nothing to leak
    assert trained_holdout(None) is None and trained_holdout("garbage") is None


def test_trained_holdout_looks_into_a_soups_ingredients():
    from trainer.masks import trained_holdout

    parent = {"mask_dir": "masks", "masks": "folder:1", "mask_holdout": 0.2}
    tuned = {"mask_dir": "masks", "masks": "folder:1", "mask_holdout": 0.05}
    soup = [parent, {"phase": "soup", "soup": [{"recipe": [parent]}, {"recipe": [parent, tuned]}]}]
    assert trained_holdout(soup) == 0.05
