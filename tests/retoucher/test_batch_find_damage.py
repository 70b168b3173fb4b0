"""retoucher batch --find-damage: alone, together with a given hole (the union is filled), a
photo without damage (written unchanged), the detector per run and per rank, usage errors, and
the command end to end with the real engines from tiny weight files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.damage import DamageDetector
from engine.imageio import load_image, save_mask
from retoucher import __main__ as cli
from retoucher.batch import BatchOptions, MaskSpec, run_batch
from retoucher.batch.cli import main as batch_main
from retoucher.damage import DEFAULT_DILATE, find_damage
from tests.retoucher.damage_fakes import FakeFactory, RecordingFill, disc_around


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dark_photo_with_spots(h: int, w: int, spots: list[tuple[int, int]], seed: int) -> np.ndarray:
    """Red below 100 everywhere (probability < 0.4 for the fake detector) but at ``spots``."""
    rgb = np.random.default_rng(seed).integers(0, 100, (h, w, 3), dtype=np.uint8)
    for y, x in spots:
        rgb[y, x, 0] = 250
    return rgb


def spots_mask(shape: tuple[int, int], spots: list[tuple[int, int]]) -> np.ndarray:
    m = np.zeros(shape, bool)
    for y, x in spots:
        m[y, x] = True
    return m


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """in/: a.png with two spots, b.png with one, clean.png without any."""
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(dark_photo_with_spots(32, 40, [(5, 6), (20, 30)], 1)).save(src / "a.png")
    Image.fromarray(dark_photo_with_spots(32, 40, [(16, 16)], 2)).save(src / "b.png")
    Image.fromarray(dark_photo_with_spots(24, 24, [], 3)).save(src / "clean.png")
    return src


SPOTS = {"a.png": [(5, 6), (20, 30)], "b.png": [(16, 16)]}


def filled_holes(fill: RecordingFill) -> list[np.ndarray]:
    return sorted(fill.holes, key=lambda h: int(h.sum()))


def test_find_damage_alone_fills_what_is_found_and_copies_a_clean_photo(folder, tmp_path):
    out, fill, factory = tmp_path / "out", RecordingFill(), FakeFactory()
    report = run_batch(
        BatchOptions(folder, out, find_damage=True, dilate=3), inpainter=fill, detector_factory=factory
    )
    assert report.ok and sorted(p.name for p in report.done) == ["a.png", "b.png", "clean.png"]
    expected = {n: disc_around((32, 40), spots_mask((32, 40), s), 3) for n, s in SPOTS.items()}
    assert len(fill.holes) == 2
    got = filled_holes(fill)
    np.testing.assert_array_equal(got[0], expected["b.png"])
    np.testing.assert_array_equal(got[1], expected["a.png"])
    for name, hole in expected.items():
        res, src = load_image(out / name).rgb, load_image(folder / name).rgb
        np.testing.assert_array_equal(res[~hole], src[~hole])
        assert (res[hole] == (255, 0, 255)).all()
    # Nothing found and no other hole: the photo is written as it was (its bytes), not a failure.
    assert sha(out / "clean.png") == sha(folder / "clean.png")
    assert [p.name for p in report.no_damage] == ["clean.png"]
    assert [p.name for p in report.unchanged] == ["clean.png"]
    summary = report.summary()
    assert "no damage found in 1 photo(s)" in summary
    assert "1 photo(s) had nothing to fill: written unchanged" in summary
    assert "damage detector: fake-detector (threshold 0.50, dilate 3 px)" in summary
    assert len(factory.calls) == 1


def test_find_damage_with_a_mask_folder_fills_the_union(folder, tmp_path):
    masks = tmp_path / "masks"
    masks.mkdir()
    given = {"a.png": np.zeros((32, 40), bool), "b.png": np.zeros((32, 40), bool)}
    given["a.png"][0:4, 0:8] = True
    given["b.png"][28:32, 30:40] = True
    for name, m in given.items():
        save_mask(masks / name, m)
    save_mask(masks / "clean.png", np.zeros((24, 24), bool))  # an empty mask, no damage
    out, fill = tmp_path / "out", RecordingFill()
    report = run_batch(
        BatchOptions(folder, out, MaskSpec("dir", masks), find_damage=True, threshold=0.9),
        inpainter=fill,
        detector_factory=FakeFactory(),
    )
    assert report.ok
    union = {
        n: given[n] | disc_around((32, 40), spots_mask((32, 40), s), DEFAULT_DILATE) for n, s in SPOTS.items()
    }
    got = filled_holes(fill)
    np.testing.assert_array_equal(got[0], union["b.png"])
    np.testing.assert_array_equal(got[1], union["a.png"])
    assert [p.name for p in report.unchanged] == ["clean.png"]


def test_a_given_rect_is_filled_where_no_damage_is_found(folder, tmp_path):
    out, fill = tmp_path / "out", RecordingFill()
    report = run_batch(
        BatchOptions(folder, out, MaskSpec("rect", "0,0,4,4"), find_damage=True, dilate=0),
        inpainter=fill,
        detector_factory=FakeFactory(),
    )
    assert report.ok and [p.name for p in report.no_damage] == ["clean.png"] and report.unchanged == []
    clean_hole = next(h for h in fill.holes if h.shape == (24, 24))
    expected = np.zeros((24, 24), bool)
    expected[:4, :4] = True
    np.testing.assert_array_equal(clean_hole, expected)


def test_each_rank_makes_its_own_detector_on_its_device(folder, tmp_path):
    factories = [FakeFactory(), FakeFactory()]
    opts = BatchOptions(
        folder, tmp_path / "out", find_damage=True, device="cpu", damage_weights=tmp_path / "d.st"
    )
    for rank, factory in enumerate(factories):
        run_batch(
            opts,
            inpainter=RecordingFill(),
            detector_factory=factory,
            rank=rank,
            world_size=2,
            local_rank=rank,
        )
    assert [f.calls for f in factories] == [[(str(tmp_path / "d.st"), "cpu")]] * 2
    assert len(factories[0].detector.seen) + len(factories[1].detector.seen) == 3


def test_no_detector_is_loaded_when_every_output_exists(folder, tmp_path):
    out = tmp_path / "out"
    run_batch(
        BatchOptions(folder, out, find_damage=True), inpainter=RecordingFill(), detector_factory=FakeFactory()
    )
    idle = FakeFactory()
    report = run_batch(
        BatchOptions(folder, out, find_damage=True), inpainter=RecordingFill(), detector_factory=idle
    )
    assert len(report.skipped) == 3 and idle.calls == [] and report.detector is None


def test_find_damage_needs_nothing_else_but_some_hole_source(folder, tmp_path, capsys):
    with pytest.raises(ValueError, match="no hole given"):
        BatchOptions(folder, tmp_path / "out")
    assert cli.main(["batch", str(folder), str(tmp_path / "out")]) == 2
    assert "no hole given" in capsys.readouterr().err


def test_missing_bundled_detector_is_a_clear_usage_error(folder, tmp_path, tiny_weights, monkeypatch, capsys):
    empty = tmp_path / "resources"
    (empty / "weights").mkdir(parents=True)
    monkeypatch.setenv("RETOUCHER_RESOURCES", str(empty))
    rc = cli.main(
        ["batch", str(folder), str(tmp_path / "out"), "--find-damage", "--weights", str(tiny_weights)]
        + ["--device", "cpu", "--no-progress"]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "the bundled damage detector is missing" in err and "damage.safetensors" in err


def test_the_command_with_the_real_engines(folder, tmp_path, tiny_weights, tiny_damage_weights, capsys):
    """--find-damage combined with --center-hole, the tiny random model and detector: exactly the
    pixels of the union (the centre hole and what the detector finds, grown by 1) change."""
    detector = DamageDetector(tiny_damage_weights, device="cpu")
    # A threshold at which the random detector flags a few percent of a.png.
    t = round(float(np.quantile(detector.probability(load_image(folder / "a.png").rgb), 0.97)), 4)
    out = tmp_path / "out"
    rc = batch_main(
        [str(folder), str(out), "--find-damage", "--center-hole", "6", "--threshold", str(t), "--dilate", "1"]
        + ["--weights", str(tiny_weights), "--damage-weights", str(tiny_damage_weights), "--device", "cpu"]
    )
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "done 3, skipped 0, failed 0 (of 3)" in text
    assert f"damage detector: tiny-damage on CPU (threshold {t:.2f}, dilate 1 px)" in text
    for name in ("a.png", "b.png", "clean.png"):
        src = load_image(folder / name).rgb
        h, w = src.shape[:2]
        hole = find_damage(detector, src, threshold=t, dilate=1)
        hole[(h - 6) // 2 : (h - 6) // 2 + 6, (w - 6) // 2 : (w - 6) // 2 + 6] = True
        assert hole.mean() < 0.5, name
        res = load_image(out / name).rgb
        np.testing.assert_array_equal(res[~hole], src[~hole], err_msg=name)
        assert (res[hole] != src[hole]).any(), name


def test_with_find_damage_a_photo_without_its_own_mask_gets_only_the_damage_found(folder, tmp_path):
    """--masks DIR --find-damage: b.png and clean.png have no mask in DIR. b.png is filled where
    damage is found, clean.png (nothing found either) is written unchanged; the summary says so.
    Without --find-damage the old rule stays: a photo without a mask fails."""
    masks = tmp_path / "masks"
    masks.mkdir()
    given = np.zeros((32, 40), bool)
    given[0:4, 0:8] = True
    save_mask(masks / "a.png", given)
    out, fill = tmp_path / "out", RecordingFill()
    report = run_batch(
        BatchOptions(folder, out, MaskSpec("dir", masks), find_damage=True, dilate=0),
        inpainter=fill,
        detector_factory=FakeFactory(),
    )
    assert report.ok and sorted(p.name for p in report.done) == ["a.png", "b.png", "clean.png"]
    assert sorted(p.name for p in report.no_mask) == ["b.png", "clean.png"]
    got = filled_holes(fill)
    np.testing.assert_array_equal(got[0], spots_mask((32, 40), SPOTS["b.png"]))
    np.testing.assert_array_equal(got[1], given | spots_mask((32, 40), SPOTS["a.png"]))
    assert [p.name for p in report.unchanged] == ["clean.png"]
    assert sha(out / "clean.png") == sha(folder / "clean.png")
    assert "no mask of their own for 2 photo(s): only the damage found in them was filled" in report.summary()

    strict = run_batch(
        BatchOptions(folder, tmp_path / "strict", MaskSpec("dir", masks)), inpainter=RecordingFill()
    )
    assert [p.name for p in strict.done] == ["a.png"] and strict.no_mask == []
    assert sorted((p.name, "no mask for it" in why) for p, why in strict.failed) == [
        ("b.png", True),
        ("clean.png", True),
    ]


def test_fully_transparent_pixels_are_not_filled_as_damage(tmp_path):
    """An RGBA photo whose transparent half has bright (\"damaged\") RGB: only the spot in the
    opaque half is filled; the transparent half is never part of the hole."""
    src = tmp_path / "in"
    src.mkdir()
    rgb = dark_photo_with_spots(20, 30, [(10, 20)], 4)
    rgb[:, :12, 0] = 255  # what a transparent area holds is arbitrary: here it looks like damage
    alpha = np.full((20, 30), 255, np.uint8)
    alpha[:, :12] = 0
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(src / "cutout.png")
    fill = RecordingFill()
    report = run_batch(
        BatchOptions(src, tmp_path / "out", find_damage=True, dilate=1),
        inpainter=fill,
        detector_factory=FakeFactory(),
    )
    assert report.ok and len(fill.holes) == 1
    np.testing.assert_array_equal(fill.holes[0], disc_around((20, 30), spots_mask((20, 30), [(10, 20)]), 1))
    written = np.asarray(Image.open(tmp_path / "out" / "cutout.png"))
    assert written.shape == (20, 30, 4) and (written[:, :, 3] == alpha).all()


class FailingFill(RecordingFill):
    """Fails every fill, as a GPU out of memory would."""

    def __call__(self, image, hole, **kw):
        raise RuntimeError("CUDA error: out of memory")


def test_a_photo_whose_fill_fails_is_listed_as_failed_only(folder, tmp_path):
    """b.png (no mask of its own, damage found) fails in the fill: listed as failed, not also
    among those whose damage alone was filled; clean.png (nothing found) is written unchanged."""
    masks = tmp_path / "masks"
    masks.mkdir()
    report = run_batch(
        BatchOptions(folder, tmp_path / "out", MaskSpec("dir", masks), find_damage=True, dilate=0),
        inpainter=FailingFill(),
        detector_factory=FakeFactory(),
    )
    assert sorted(p.name for p, _ in report.failed) == ["a.png", "b.png"]
    assert [p.name for p in report.no_mask] == ["clean.png"]
    assert [p.name for p in report.no_damage] == ["clean.png"]


def test_a_photo_that_fails_is_listed_as_failed_only(folder, tmp_path):
    """clean.png's given mask holds every pixel (nothing to fill from): it fails, and the
    summary's "no damage found" count leaves it out (it counted it among the photos done)."""
    masks = tmp_path / "masks"
    masks.mkdir()
    save_mask(masks / "clean.png", np.ones((24, 24), bool))
    report = run_batch(
        BatchOptions(folder, tmp_path / "out", MaskSpec("dir", masks), find_damage=True, dilate=0),
        inpainter=RecordingFill(),
        detector_factory=FakeFactory(),
    )
    assert [p.name for p, _ in report.failed] == ["clean.png"]
    assert sorted(p.name for p in report.no_mask) == ["a.png", "b.png"]
    assert report.no_damage == []
    assert "no damage found" not in report.summary()
