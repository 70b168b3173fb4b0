"""retoucher detect: masks of the photo's size, white = damage, dilate, resume, bad files, exit
statuses, atomic writes, ranks, cancel; the fake detector's probability is the red channel, so
the expected mask is exact."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.damage import DamageDetector
from engine.distributed import device_for_rank
from engine.imageio import load_image
from retoucher import __main__ as cli
from retoucher.batch import DetectOptions, plan_detect, run_detect
from retoucher.batch.detect_cli import main as detect_main
from retoucher.damage import DEFAULT_DILATE, find_damage
from tests.engine.test_imageio import _png_header_only as png_header_only
from tests.retoucher.damage_fakes import FakeDetector, FakeFactory, disc_around, red_probability

ORIENTATION = 0x0112


def photo(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def read_mask(path: Path) -> np.ndarray:
    """The mask file as it is: 8-bit grey, only 0 and 255."""
    with Image.open(path) as im:
        assert im.mode == "L" and im.format == "PNG", (im.mode, im.format)
        a = np.asarray(im)
    assert set(np.unique(a)) <= {0, 255}
    return a == 255


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    """in/: RGB, grey, RGBA, 16-bit grey, palette, CMYK JPEG, an EXIF-rotated JPEG (stored
    40 wide x 24 high, shown 24 x 40), a corrupt JPEG, a truncated PNG and a text file."""
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(photo(30, 40, 1)).save(src / "rgb.png")
    Image.fromarray(photo(30, 40, 2)[:, :, 0], "L").save(src / "grey.png")
    rgba = np.dstack([photo(20, 20, 3), np.full((20, 20), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(src / "rgba.png")
    deep = np.random.default_rng(4).integers(0, 65536, (16, 24), dtype=np.uint16)
    Image.fromarray(deep).save(src / "deep16.png")
    Image.fromarray(photo(18, 18, 5)).convert("P", palette=Image.Palette.ADAPTIVE).save(src / "palette.png")
    Image.fromarray(photo(24, 32, 6)).convert("CMYK").save(src / "cmyk.jpg", quality=95)
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # shown turned 90 degrees clockwise
    Image.fromarray(photo(24, 40, 7)).save(src / "rotated.jpg", quality=95, exif=exif.tobytes())
    (src / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 4)
    Image.fromarray(photo(64, 64, 8)).save(src / "whole.png")
    data = (src / "whole.png").read_bytes()
    (src / "truncated.png").write_bytes(data[: len(data) // 2])
    (src / "whole.png").unlink()
    (src / "notes.txt").write_text("not a photo")
    return src


GOOD = ["cmyk", "deep16", "grey", "palette", "rgb", "rgba", "rotated"]


def test_masks_are_white_where_the_probability_reaches_the_threshold(photos, tmp_path, capsys):
    masks = tmp_path / "masks"
    factory = FakeFactory()
    rc = detect_main(
        [str(photos), str(masks), "--threshold", "0.6", "--dilate", "0"], detector_factory=factory
    )
    out = capsys.readouterr().out
    assert rc == 1  # the corrupt and the truncated photo failed, the others are written
    assert sorted(p.name for p in masks.iterdir()) == [f"{n}.png" for n in GOOD]
    flagged = pixels = 0
    for name in GOOD:
        rgb = load_image(next(photos.glob(f"{name}.*"))).rgb  # converted and upright
        mask = read_mask(masks / f"{name}.png")
        assert mask.shape == rgb.shape[:2], name
        np.testing.assert_array_equal(mask, red_probability(rgb) >= 0.6, err_msg=name)
        flagged, pixels = flagged + int(mask.sum()), pixels + mask.size
    assert read_mask(masks / "rotated.png").shape == (40, 24)  # after the EXIF orientation
    # One detector for the run: the bundled one, on the device "auto" chose.
    assert factory.calls == [(None, str(device_for_rank("auto", None)))]
    assert f"photos 9: masks written 7, skipped 0, failed 2; {100 * flagged / pixels:.2f}% of" in out
    assert "damage detector: fake-detector (threshold 0.60, dilate 0 px)" in out
    failed = [line for line in out.splitlines() if "FAILED" in line]
    assert (
        len(failed) == 2
        and any("corrupt.jpg" in f for f in failed)
        and any("truncated.png" in f for f in failed)
    )


def test_default_threshold_is_the_detectors_and_dilate_grows_by_a_disc(tmp_path):
    src, masks = tmp_path / "in", tmp_path / "masks"
    src.mkdir()
    rgb = np.zeros((40, 50, 3), np.uint8)
    rgb[10, 12, 0] = 200  # probability 0.78: above the detector's threshold 0.7
    rgb[30, 40, 0] = 160  # 0.63: below it
    Image.fromarray(rgb).save(src / "p.png")
    factory = FakeFactory(FakeDetector(threshold=0.7))

    assert detect_main([str(src), str(masks), "--dilate", "0"], detector_factory=factory) == 0
    expected = np.zeros((40, 50), bool)
    expected[10, 12] = True
    np.testing.assert_array_equal(read_mask(masks / "p.png"), expected)

    assert detect_main([str(src), str(masks), "--dilate", "4", "--overwrite"], detector_factory=factory) == 0
    np.testing.assert_array_equal(read_mask(masks / "p.png"), disc_around((40, 50), expected, 4))

    assert detect_main([str(src), str(masks), "--overwrite"], detector_factory=factory) == 0  # defaults
    np.testing.assert_array_equal(read_mask(masks / "p.png"), disc_around((40, 50), expected, DEFAULT_DILATE))

    both = expected.copy()
    both[30, 40] = True
    assert (
        detect_main([str(src), str(masks), "--threshold", "0.6", "--overwrite"], detector_factory=factory)
        == 0
    )
    np.testing.assert_array_equal(read_mask(masks / "p.png"), disc_around((40, 50), both, DEFAULT_DILATE))


def test_rerun_skips_existing_masks_and_overwrite_redoes_them(photos, tmp_path, capsys):
    masks = tmp_path / "masks"
    args = [str(photos), str(masks)]
    assert detect_main(args, detector_factory=FakeFactory()) == 1
    stamps = {p.name: p.stat().st_mtime_ns for p in masks.iterdir()}
    (masks / "grey.png").unlink()  # as if the first run had been killed before it
    capsys.readouterr()
    factory = FakeFactory()
    assert detect_main(args, detector_factory=factory) == 1
    assert "masks written 1, skipped 6, failed 2" in capsys.readouterr().out
    assert factory.detector.seen == [(30, 40, 3)]  # only grey.png was looked at again
    assert {p.name: p.stat().st_mtime_ns for p in masks.iterdir() if p.name != "grey.png"} == {
        k: v for k, v in stamps.items() if k != "grey.png"
    }
    (photos / "corrupt.jpg").unlink()
    (photos / "truncated.png").unlink()
    idle = FakeFactory()
    capsys.readouterr()
    assert detect_main(args, detector_factory=idle) == 0
    assert idle.calls == []  # nothing to do: no detector is loaded
    # and nothing measured: no share of flagged pixels claimed ("no pixels flagged" before)
    said = capsys.readouterr().out
    assert "masks written 0, skipped 7, failed 0\n" in said and "flagged" not in said
    assert detect_main([*args, "--overwrite"], detector_factory=FakeFactory()) == 0
    assert "masks written 7, skipped 0, failed 0" in capsys.readouterr().out


def test_tiny_and_large_photos_with_a_real_detector(tmp_path, tiny_damage_weights):
    """A 1x1 photo and a 1500x1100 one, through the command and the engine's detector from a
    weight file; the masks are what the detector finds (tiling itself: tests/engine)."""
    src, masks = tmp_path / "in", tmp_path / "masks"
    src.mkdir()
    images = {"dot": photo(1, 1, 0), "large": photo(1500, 1100, 1)}
    for name, rgb in images.items():
        Image.fromarray(rgb).save(src / f"{name}.png")
    rc = cli.main(
        ["detect", str(src), str(masks), "--weights", str(tiny_damage_weights), "--device", "cpu"]
        + ["--threshold", "0.45", "--no-progress"]
    )
    assert rc == 0
    detector = DamageDetector(tiny_damage_weights, device="cpu")
    for name, rgb in images.items():
        mask = read_mask(masks / f"{name}.png")
        assert mask.shape == rgb.shape[:2]
        np.testing.assert_array_equal(mask, find_damage(detector, rgb, threshold=0.45), err_msg=name)


def test_an_oversized_photo_is_reported_and_skipped_and_the_others_are_written(tmp_path, capsys):
    """A decompression bomb (a 900-megapixel header) is refused before decoding and reported; the
    detector never sees it, and the photos beside it get their masks."""
    src, masks = tmp_path / "in", tmp_path / "masks"
    src.mkdir()
    Image.fromarray(photo(20, 30, 1)).save(src / "a.png")
    png_header_only(src / "bomb.png", 30_000, 30_000)  # no pixel data behind the header
    Image.fromarray(photo(16, 12, 2)).save(src / "c.png")
    factory = FakeFactory()
    assert detect_main([str(src), str(masks)], detector_factory=factory) == 1
    out = capsys.readouterr().out
    assert sorted(p.name for p in masks.iterdir()) == ["a.png", "c.png"]
    assert factory.detector.seen == [(20, 30, 3), (16, 12, 3)]
    assert "photos 3: masks written 2, skipped 0, failed 1" in out
    failed = [line for line in out.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and "bomb.png" in failed[0] and "30000x30000" in failed[0]
    assert "decompression bombs" in failed[0]


def test_fully_transparent_pixels_are_never_marked(tmp_path):
    """An RGBA photo with a transparent band whose RGB looks like damage to the detector: the
    band stays black in the mask, and what is found beside it does not grow into it."""
    src, masks = tmp_path / "in", tmp_path / "masks"
    src.mkdir()
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[:, :10, 0] = 255  # arbitrary colour under alpha 0: probability 1 for the fake detector
    rgb[5, 10, 0] = 255  # damage right beside the band, in the photo
    alpha = np.full((20, 30), 255, np.uint8)
    alpha[:, :10] = 0
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(src / "cutout.png")
    assert detect_main([str(src), str(masks), "--dilate", "2"], detector_factory=FakeFactory()) == 0
    spot = np.zeros((20, 30), bool)
    spot[5, 10] = True
    expected = disc_around((20, 30), spot, 2)
    expected[:, :10] = False
    np.testing.assert_array_equal(read_mask(masks / "cutout.png"), expected)


def test_two_photos_with_one_stem_and_recursive_layout(tmp_path, capsys):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(photo(8, 8, 0)).save(src / "x.jpg")
    Image.fromarray(photo(8, 8, 1)).save(src / "x.png")
    Image.fromarray(photo(8, 8, 2)).save(src / "sub" / "y.png")
    masks = src / "masks"  # inside the photo folder: never read as photos
    assert detect_main([str(src), str(masks)], detector_factory=FakeFactory()) == 1
    out = capsys.readouterr().out
    assert "x.png: its output" in out and "already the output of x.jpg; rename one of them" in out
    assert sorted(p.relative_to(masks).as_posix() for p in masks.rglob("*.png")) == ["x.png"]
    assert detect_main([str(src), str(masks), "--recursive"], detector_factory=FakeFactory()) == 1
    assert sorted(p.relative_to(masks).as_posix() for p in masks.rglob("*.png")) == ["sub/y.png", "x.png"]
    assert "photos 3: masks written 1, skipped 1, failed 1" in capsys.readouterr().out


def test_an_interrupted_save_leaves_no_half_written_mask_and_a_rerun_resumes(
    photos, tmp_path, monkeypatch, capsys
):
    masks = tmp_path / "masks"
    masks.mkdir()
    stale = masks / ".rgb.k3x_9qaz.tmp.png"  # what a SIGKILL mid-save leaves behind
    stale.write_bytes(b"half a png")
    real_save = Image.Image.save
    saves: list[int] = []

    def save_then_die(self, fp, *args, **kwargs):
        saves.append(1)
        if len(saves) == 3:  # the third mask: half written, then Ctrl+C
            Path(fp).write_bytes(b"\x89PNG\r\n\x1a\n half")
            raise KeyboardInterrupt
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save_then_die)
    assert detect_main([str(photos), str(masks)], detector_factory=FakeFactory()) == 130
    assert "interrupted" in capsys.readouterr().err
    assert not stale.exists()
    assert sorted(p.name for p in masks.iterdir()) == ["cmyk.png", "deep16.png"]  # complete ones only
    for p in masks.iterdir():
        read_mask(p)
    monkeypatch.setattr(Image.Image, "save", real_save)
    assert detect_main([str(photos), str(masks)], detector_factory=FakeFactory()) == 1
    assert "masks written 5, skipped 2, failed 2" in capsys.readouterr().out
    assert sorted(p.name for p in masks.iterdir()) == [f"{n}.png" for n in GOOD]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--threshold", "0"], "threshold must lie in (0, 1]"),
        (["--threshold", "1.01"], "threshold must lie in (0, 1]"),
        (["--threshold", "high"], "invalid float value"),
        (["--dilate", "-2"], "radius is a whole number of pixels from 0 to 500"),
        (["--dilate", "1.5"], "invalid int value"),
        (["--device", "tpu"], "device must be auto, cpu, cuda or cuda:N"),
        (["--rank-timeout", "0"], "rank-timeout"),
        (["--masks", "m"], "unrecognized arguments"),
    ],
)
def test_usage_errors_exit_2(photos, tmp_path, capsys, extra, message):
    out = tmp_path / "masks"
    assert detect_main([str(photos), str(out), *extra], detector_factory=FakeFactory()) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: retoucher detect") and message in err
    assert not out.exists()


def test_folder_and_detector_errors_exit_2(photos, tmp_path, capsys, monkeypatch):
    assert cli.main(["detect", str(tmp_path / "nope"), str(tmp_path / "m")]) == 2
    assert "photo folder not found" in capsys.readouterr().err
    assert cli.main(["detect", str(photos), str(photos)]) == 2
    assert "the mask folder must differ from the photo folder" in capsys.readouterr().err
    assert (
        cli.main(["detect", str(photos), str(tmp_path / "m"), "--weights", str(tmp_path / "no.safetensors")])
        == 2
    )
    assert "no.safetensors" in capsys.readouterr().err
    empty = tmp_path / "resources"
    (empty / "weights").mkdir(parents=True)
    monkeypatch.setenv("RETOUCHER_RESOURCES", str(empty))
    assert cli.main(["detect", str(photos), str(tmp_path / "m"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "the bundled damage detector is missing" in err and "damage.safetensors" in err
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


def test_no_photos_is_said(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    assert detect_main([str(tmp_path / "in"), str(tmp_path / "m")], detector_factory=FakeFactory()) == 0
    assert "no photos found in" in capsys.readouterr().err


def test_ranks_share_the_photos_and_cancel_stops_at_the_next_photo(photos, tmp_path):
    opts = DetectOptions(photos, tmp_path / "masks")
    r0 = run_detect(opts, detector=FakeDetector(), rank=0, world_size=2)
    r1 = run_detect(opts, detector=FakeDetector(), rank=1, world_size=2)
    seen0 = set(r0.done) | {p for p, _ in r0.failed}
    seen1 = set(r1.done) | {p for p, _ in r1.failed}
    assert seen0 and seen1 and not seen0 & seen1
    assert seen0 | seen1 == {j.source for j in plan_detect(opts)}

    again = tmp_path / "again"
    calls: list[tuple[int, int, str]] = []
    report = run_detect(
        DetectOptions(photos, again),
        detector=FakeDetector(),
        progress=lambda *a: calls.append(a),
        cancel=lambda: len(calls) >= 2,
    )
    assert report.cancelled and len(calls) == 2 and "cancelled with 7 not processed" in report.summary()
    assert len(list(again.iterdir())) == len(report.done)


def test_the_console_command_in_a_subprocess(tmp_path, tiny_damage_weights):
    src, masks = tmp_path / "in", tmp_path / "masks"
    src.mkdir()
    Image.fromarray(photo(40, 56, 3)).save(src / "a.png")
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    proc = subprocess.run(
        [sys.executable, "-m", "retoucher", "detect", str(src), str(masks)]
        + ["--weights", str(tiny_damage_weights), "--device", "cpu", "--no-progress"],
        capture_output=True,
        text=True,
        env={**env, "PYTHONWARNINGS": "ignore"},
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 0, proc.stderr
    assert "photos 1: masks written 1, skipped 0, failed 0;" in proc.stdout
    assert "damage detector: tiny-damage on CPU (threshold 0.50, dilate 2 px)" in proc.stdout
    assert "finding damage" not in proc.stderr  # --no-progress: no bar
    assert read_mask(masks / "a.png").shape == (40, 56)


def test_photos_in_formats_not_looked_at_are_named_in_the_summary(photos, tmp_path, capsys):
    """As retoucher batch: HEIC and camera RAW files are counted in the summary, not passed over
    in silence (no mask is written for them); the text file stays unmentioned."""
    (photos / "IMG_3.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(20))
    (photos / "IMG_3.dng").write_bytes(b"II*\x00")
    masks = tmp_path / "masks"
    detect_main([str(photos), str(masks), "--dilate", "0"], detector_factory=FakeFactory())
    out = capsys.readouterr().out
    assert "left out 2 photo(s) in formats Retoucher does not retouch (HEIC 1, camera RAW 1)" in out
    assert not list(masks.glob("IMG_3*"))
