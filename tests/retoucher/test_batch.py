"""retoucher batch: the CLI end to end, masks, formats, resume, exit codes, ranks, cancel."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from engine import Inpainter
from engine.imageio import load_image, save_mask
from retoucher import __main__ as cli
from retoucher import transparent
from retoucher.batch import (
    BatchError,
    BatchOptions,
    MaskSpec,
    plan_batch,
    rank_from_env,
    run_batch,
)
from retoucher.batch.planning import is_within
from tests.engine.jpeg_photos import scan_damaged

MAKE = 0x010F
SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def photo(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (h + w)], -1)
    return np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)


def centre_hole(h: int, w: int, size: int) -> np.ndarray:
    hole = np.zeros((h, w), bool)
    y0, x0 = (h - size) // 2, (w - size) // 2
    hole[y0 : y0 + size, x0 : x0 + size] = True
    return hole


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """in/: two RGB PNGs, a JPEG with EXIF+ICC, a grayscale PNG, an RGBA PNG, a corrupt file,
    a text file (ignored) and sub/c.png (only with --recursive)."""
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(photo(64, 80, 1)).save(src / "a.png")
    Image.fromarray(photo(64, 80, 2)).save(src / "b.png")
    exif = Image.Exif()
    exif[MAKE] = "BatchCam"
    Image.fromarray(photo(64, 64, 3)).save(
        src / "j.jpg", quality=95, exif=exif.tobytes(), icc_profile=SRGB_ICC
    )
    Image.fromarray(photo(64, 64, 4)[:, :, 0], "L").save(src / "gray.png")
    rgba = np.dstack([photo(64, 64, 5), np.tile(np.arange(64, dtype=np.uint8) * 4, (64, 1))])
    Image.fromarray(rgba, "RGBA").save(src / "rgba.png")
    (src / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a complete jpeg" * 3)
    (src / "notes.txt").write_text("not a photo")
    Image.fromarray(photo(48, 48, 6)).save(src / "sub" / "c.png")
    return src


def hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): sha(p) for p in sorted(root.rglob("*")) if p.is_file()}


def run_cli(*args: object) -> int:
    return cli.main([str(a) for a in args])


def test_center_hole_end_to_end(folder, tmp_path, tiny_weights, capsys):
    out = tmp_path / "out"
    before = hashes(folder)
    rc = run_cli("batch", folder, out, "--center-hole", 16, "--weights", tiny_weights, "--device", "cpu")
    captured = capsys.readouterr()
    assert rc == 1  # bad.jpg failed
    assert "done 5, skipped 0, failed 1" in captured.out
    assert "model: tiny-random on CPU" in captured.out  # the summary names the model that filled
    assert "bad.jpg" in captured.out
    assert hashes(folder) == before, "inputs must never change"
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "gray.png", "j.jpg", "rgba.png"]

    for name, (h, w) in {
        "a.png": (64, 80),
        "b.png": (64, 80),
        "gray.png": (64, 64),
        "rgba.png": (64, 64),
    }.items():
        inp, res = load_image(folder / name), load_image(out / name)
        hole = centre_hole(h, w, 16)
        assert res.rgb.shape == (h, w, 3)
        np.testing.assert_array_equal(res.rgb[~hole], inp.rgb[~hole])  # lossless: bit-identical
        assert (res.rgb[hole] != inp.rgb[hole]).any(), f"{name}: the hole was not filled"
    np.testing.assert_array_equal(load_image(out / "rgba.png").alpha, load_image(folder / "rgba.png").alpha)
    assert load_image(out / "gray.png").metadata.mode == "L"  # filled in grey, written greyscale

    jpg = load_image(out / "j.jpg")
    assert jpg.metadata.format == "JPEG" and jpg.metadata.icc_profile == SRGB_ICC
    ex = Image.Exif()
    ex.load(jpg.metadata.exif)
    assert ex.get(MAKE) == "BatchCam"


def test_batch_output_matches_the_inpainter(folder, tmp_path, tiny_weights):
    """Grouped (inpaint_batch) and single fills both give what the Inpainter gives per photo."""
    out = tmp_path / "out"
    inp = Inpainter(tiny_weights, device="cpu")
    report = run_batch(BatchOptions(folder, out, MaskSpec("center", 16), format="png"), inpainter=inp)
    assert len(report.done) == 5 and len(report.failed) == 1
    for name in ("a", "b", "gray", "rgba", "j"):
        src = load_image(next(folder.glob(f"{name}.*")))
        expected = inp(src.rgb, centre_hole(*src.rgb.shape[:2], 16))
        got = load_image(out / f"{name}.png").rgb
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


def _centre_hole_cli(folder, out, weights, capsys, *extra):
    """``retoucher batch`` of ``folder`` into ``out`` with a 24 px centre hole as PNG (bad.jpg
    fails: exit status 1); its printed output."""
    common = ("--center-hole", 24, "--weights", weights, "--device", "cpu", "--format", "png")
    assert run_cli("batch", folder, out, *common, *extra) == 1  # bad.jpg
    return capsys.readouterr().out


def test_texture_reaches_the_inpainter_and_the_summary(folder, tmp_path, tiny_weights, capsys):
    """--texture S fills as Inpainter(..., texture=S) does (the photos' grain comes into the
    hole) and the summary says so; without it the engine's default (no texture) fills."""
    plain, textured = tmp_path / "plain", tmp_path / "textured"
    assert "model: tiny-random on CPU\n" in _centre_hole_cli(folder, plain, tiny_weights, capsys)
    said = _centre_hole_cli(folder, textured, tiny_weights, capsys, "--texture", "1")
    assert "model: tiny-random on CPU, texture 1\n" in said
    src = load_image(folder / "a.png").rgb
    hole = centre_hole(*src.shape[:2], 24)
    want = Inpainter(tiny_weights, device="cpu", texture=1.0)(src, hole)
    got, without = load_image(textured / "a.png").rgb, load_image(plain / "a.png").rgb
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    assert np.array_equal(got[~hole], src[~hole])
    grain = [np.abs(np.diff(r[hole].reshape(24, 24, 3).astype(float), axis=1)).mean() for r in (without, got)]
    assert grain[1] > grain[0] + 2.0, grain


def test_the_mirrored_pass_is_the_default_and_no_mirror_fills_in_one_pass(
    folder, tmp_path, tiny_weights, capsys
):
    """By default (and with --mirror) the batch fills as Inpainter(..., mirror=True) does;
    --no-mirror as mirror=False (a fill of its own: the tiny model is not mirror-symmetric), and
    the summary says so."""
    mirrored, explicit, one = tmp_path / "mirrored", tmp_path / "explicit", tmp_path / "one"
    assert "model: tiny-random on CPU\n" in _centre_hole_cli(folder, mirrored, tiny_weights, capsys)
    assert "model: tiny-random on CPU\n" in _centre_hole_cli(
        folder, explicit, tiny_weights, capsys, "--mirror"
    )
    said = _centre_hole_cli(folder, one, tiny_weights, capsys, "--no-mirror")
    assert "model: tiny-random on CPU, one network pass\n" in said
    src = load_image(folder / "a.png").rgb
    hole = centre_hole(*src.shape[:2], 24)
    for out, mirror in ((mirrored, True), (explicit, True), (one, False)):
        want = Inpainter(tiny_weights, device="cpu", mirror=mirror)(src, hole)
        got = load_image(out / "a.png").rgb
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1, out
        assert np.array_equal(got[~hole], src[~hole])
    both, single = load_image(mirrored / "a.png").rgb, load_image(one / "a.png").rgb
    assert np.abs(both[hole].astype(int) - single[hole].astype(int)).mean() > 1


def test_without_texture_the_batch_fills_at_the_models_own(
    folder, tmp_path, tiny_weights, tiny_textured_weights, capsys
):
    """A weight file that names its strength (the bundled model does) fills at it when --texture
    is not given, and says so; --texture 0 turns it off."""
    own, off = tmp_path / "own", tmp_path / "off"
    said = _centre_hole_cli(folder, own, tiny_textured_weights, capsys)
    assert "model: tiny-textured on CPU, texture 1\n" in said
    said = _centre_hole_cli(folder, off, tiny_textured_weights, capsys, "--texture", "0")
    assert "model: tiny-textured on CPU\n" in said
    src = load_image(folder / "a.png").rgb
    hole = centre_hole(*src.shape[:2], 24)
    for result, strength in ((own, 1.0), (off, 0.0)):  # the file holds tiny_weights' tensors
        want = Inpainter(tiny_weights, device="cpu", texture=strength)(src, hole)
        got = load_image(result / "a.png").rgb
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1, strength
    assert not np.array_equal(load_image(own / "a.png").rgb, load_image(off / "a.png").rgb)
    # the app's dialog passes its loaded engine and, with "the model's own", no strength
    given = tmp_path / "given"
    engine = Inpainter(tiny_textured_weights, device="cpu")
    report = run_batch(BatchOptions(folder, given, MaskSpec("center", 24), format="png"), inpainter=engine)
    assert report.model == "tiny-textured on CPU, texture 1"
    assert np.array_equal(load_image(given / "a.png").rgb, load_image(own / "a.png").rgb)


@pytest.mark.parametrize("batch_size", [1, 8])  # single calls, network batches of equal sizes
def test_a_given_engine_fills_at_the_options_texture(folder, tmp_path, tiny_weights, batch_size):
    """The batch (the app's dialog passes its loaded engine) fills at BatchOptions.texture,
    grouped and single fills alike, whatever strength the engine was made with."""
    out = tmp_path / "out"
    engine = Inpainter(tiny_weights, device="cpu", batch_size=batch_size)  # made without texture
    report = run_batch(
        BatchOptions(folder, out, MaskSpec("center", 24), format="png", texture=1.0), inpainter=engine
    )
    assert len(report.done) == 5 and report.model == "tiny-random on CPU, texture 1"
    want = Inpainter(tiny_weights, device="cpu", texture=1.0)
    for name in ("a", "b", "gray", "rgba", "j"):
        src = load_image(next(folder.glob(f"{name}.*")))
        # as the batch fills: from the visible pixels, no grain from the transparent ones
        expected = transparent.fill(want, src.rgb, centre_hole(*src.rgb.shape[:2], 24), src.alpha)
        got = load_image(out / f"{name}.png").rgb
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1, name


def test_masks_dir_missing_mask_and_rescaled_mask(folder, tmp_path, tiny_weights):
    masks = tmp_path / "masks"
    masks.mkdir()
    hole_a = np.zeros((64, 80), bool)
    hole_a[5:20, 30:60] = True
    save_mask(masks / "a.png", hole_a)
    hole_b = np.zeros((64, 80), bool)
    hole_b[40:60, 2:12] = True
    save_mask(masks / "b_mask.png", hole_b)  # the <stem>_mask.png spelling
    small = np.zeros((32, 32), bool)
    small[8:16, 8:16] = True
    save_mask(masks / "gray.png", small)  # another size: scaled (nearest) to 64x64
    Image.fromarray(np.full((64, 64), 200, np.uint8), "L").save(masks / "j.png")
    # no mask for rgba.png

    out = tmp_path / "out"
    report = run_batch(
        BatchOptions(folder, out, MaskSpec("dir", masks)), inpainter=Inpainter(tiny_weights, device="cpu")
    )
    failed = {p.name: reason for p, reason in report.failed}
    assert set(failed) == {"bad.jpg", "rgba.png", "j.jpg"}
    assert "no mask" in failed["rgba.png"] and "rgba_mask.png" in failed["rgba.png"]
    assert "whole image" in failed["j.jpg"]  # a mask brighter than 127 everywhere
    assert sorted(p.name for p in report.done) == ["a.png", "b.png", "gray.png"]

    big = np.zeros((64, 64), bool)
    big[16:32, 16:32] = True
    for name, hole in (("a.png", hole_a), ("b.png", hole_b), ("gray.png", big)):
        inp, res = load_image(folder / name).rgb, load_image(out / name).rgb
        np.testing.assert_array_equal(res[~hole], inp[~hole])
        assert (res[hole] != inp[hole]).any()


def test_mask_file_rect_and_formats(folder, tmp_path, tiny_weights, capsys):
    mask = tmp_path / "one.png"
    m = np.zeros((16, 16), bool)
    m[:4, :4] = True
    save_mask(mask, m)
    out1 = tmp_path / "o1"
    assert run_cli("batch", folder, out1, "--mask", mask, "--weights", tiny_weights, "--format", "jpg") == 1
    # The square mask fits the square photos; the 80x64 ones are refused, not stretched.
    assert sorted(p.name for p in out1.iterdir()) == ["gray.jpg", "j.jpg", "rgba.jpg"]
    assert "the mask is 16x16 pixels (width x height) but the photo is 80x64" in capsys.readouterr().out
    with Image.open(out1 / "rgba.jpg") as im:
        assert im.format == "JPEG" and im.mode == "RGB"

    out2 = tmp_path / "o2"
    # A rectangle running off the image is clipped to it.
    rc = run_cli("batch", folder, out2, "--rect", "70,50,40,40", "--weights", tiny_weights, "--format", "png")
    assert rc == 1
    hole = np.zeros((64, 80), bool)
    hole[50:, 70:] = True
    a_in, a_out = load_image(folder / "a.png").rgb, load_image(out2 / "a.png").rgb
    np.testing.assert_array_equal(a_out[~hole], a_in[~hole])
    assert (a_out[hole] != a_in[hole]).any()
    out = capsys.readouterr().out
    # Starts outside the 64x64 photos: those fail with a reason, the 80-wide ones are done.
    assert "starts outside the 64x64 image" in out
    assert sorted(p.name for p in out2.iterdir()) == ["a.png", "b.png"]


def test_rerun_skips_and_overwrite_redoes(folder, tmp_path, tiny_weights, capsys):
    out = tmp_path / "out"
    args = ["batch", folder, out, "--center-hole", "8x12", "--weights", tiny_weights]
    assert run_cli(*args) == 1
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    (out / "b.png").unlink()  # as if the first run had been killed before b.png
    capsys.readouterr()
    assert run_cli(*args) == 1
    assert "done 1, skipped 4, failed 1" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != "b.png"} == {
        k: v for k, v in stamps.items() if k != "b.png"
    }
    assert (out / "b.png").is_file()
    assert run_cli(*args, "--overwrite") == 1
    assert "done 5, skipped 0, failed 1" in capsys.readouterr().out
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_exit_code_zero_and_recursive_layout(folder, tmp_path, tiny_weights, capsys):
    (folder / "bad.jpg").unlink()
    out = tmp_path / "out"
    assert run_cli("batch", folder, out, "--center-hole", 8, "--weights", tiny_weights, "--recursive") == 0
    assert (out / "sub" / "c.png").is_file()
    assert "failed 0" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "no hole given: use --masks, --mask, --rect, --center-hole and/or --find-damage"),
        (["--center-hole", "8", "--threshold", "0.5"], "go with --find-damage"),
        (["--center-hole", "8", "--dilate", "3"], "go with --find-damage"),
        (["--find-damage", "--threshold", "0"], "threshold must lie in (0, 1]"),
        (["--find-damage", "--threshold", "1.5"], "threshold must lie in (0, 1]"),
        (["--find-damage", "--threshold", "nan"], "threshold must lie in (0, 1]"),
        (["--find-damage", "--dilate", "-1"], "radius is a whole number of pixels from 0 to 500"),
        (["--find-damage", "--damage-weights", "missing.safetensors"], "not found"),
        (
            [
                "--rect",
                "1,2,3",
            ],
            "X,Y,W,H",
        ),
        (["--center-hole", "8", "--rect", "1,2,3,4"], "not allowed with"),
        (["--rect", "-1,2,3,4"], "X and Y must be >= 0"),  # not argparse's "expected one argument"
        (["--center-hole", "-3x4"], "hole size"),
        (["--center-hole", "-3"], "hole size"),
        (["--center-hole", "8", "--quality", "0"], "quality"),
        (["--center-hole", "8", "--device", "tpu"], "device"),
        (["--center-hole", "8", "--texture", "5"], "texture must be a number from 0 to 4"),
        (["--center-hole", "8", "--texture", "nan"], "texture must be a number from 0 to 4"),
        (["--center-hole", "8", "--texture", "some"], "invalid float value"),
        (["--center-hole", "8", "--format", "gif"], "invalid choice"),
        (["--center-hole", "8", "--weights", "missing.safetensors"], "not found"),
        (["--mask", "missing.png"], "mask file not found"),
        (["--masks", "missing_dir"], "mask folder not found"),
    ],
)
def test_usage_errors_exit_2(folder, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    assert run_cli("batch", folder, out, *extra) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() or list(out.iterdir()) == []


def test_folder_errors_exit_2(folder, tmp_path, capsys, tiny_weights):
    assert run_cli("batch", tmp_path / "nope", tmp_path / "out", "--center-hole", 8) == 2
    assert "input folder not found" in capsys.readouterr().err
    assert run_cli("batch", folder, folder, "--center-hole", 8) == 2
    assert "must differ" in capsys.readouterr().err


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the message when CUDA is absent")
def test_cuda_requested_without_gpu_is_a_clear_usage_error(folder, tmp_path, tiny_weights, capsys):
    assert (
        run_cli(
            "batch", folder, tmp_path / "o", "--center-hole", 8, "--weights", tiny_weights, "--device", "cuda"
        )
        == 2
    )
    assert "cuda" in capsys.readouterr().err.lower()


def test_missing_gpu_and_too_many_ranks_are_clear_usage_errors(
    folder, tmp_path, tiny_weights, monkeypatch, capsys
):
    """cuda:N that does not exist, or more torchrun ranks on a node than GPUs: exit 2 with a
    message, not a CUDA traceback. (Simulated: a machine with one GPU.)"""
    import engine.distributed as ed

    monkeypatch.setattr(ed.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(ed.torch.cuda, "device_count", lambda: 1)
    assert str(ed.device_for_rank("cuda", 0)) == "cuda:0"
    assert str(ed.device_for_rank("auto", None)) == "cuda:0"
    assert str(ed.device_for_rank("cpu", 3)) == "cpu"
    with pytest.raises(
        ValueError, match=r"cuda:1 does not exist: this machine has 1 CUDA GPU \(cuda:0..cuda:0\)"
    ):
        ed.device_for_rank("cuda:1", 0)
    with pytest.raises(ValueError, match="torchrun started 2 ranks on this node; use --nproc_per_node=1"):
        ed.device_for_rank("auto", 1, environ={"LOCAL_WORLD_SIZE": "2"})

    args = ["batch", folder, tmp_path / "o", "--center-hole", 8, "--weights", tiny_weights]
    assert run_cli(*args, "--device", "cuda:1") == 2
    err = capsys.readouterr().err
    assert "cuda:1 does not exist" in err and "Traceback" not in err

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert run_cli(*args) == 2
    assert "[rank 1/2] error: rank with LOCAL_RANK=1 needs cuda:1" in capsys.readouterr().err


def test_model_creation_failure_is_a_clear_usage_error(folder, tmp_path, tiny_weights, monkeypatch, capsys):
    import engine.inpainter

    def broken(self, *args, **kwargs):
        raise RuntimeError("CUDA error: out of memory")

    monkeypatch.setattr(engine.inpainter.Inpainter, "__init__", broken)
    rc = run_cli(
        "batch", folder, tmp_path / "o", "--center-hole", 8, "--weights", tiny_weights, "--device", "cpu"
    )
    assert rc == 2
    assert (
        "could not create the model on cpu: RuntimeError: CUDA error: out of memory"
        in capsys.readouterr().err
    )


def test_ranks_that_cannot_meet_give_up_after_the_timeout(tmp_path, tiny_weights, monkeypatch, capsys):
    """Rank 0 of 2 whose partner never comes: it waits --rank-timeout, says so, and exits with
    its own status instead of hanging."""
    import socket

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(photo(32, 32, 0)).save(src / "p.png")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for k, v in {
        "WORLD_SIZE": "2",
        "RANK": "0",
        "LOCAL_RANK": "0",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }.items():
        monkeypatch.setenv(k, v)
    rc = run_cli(
        "batch",
        src,
        tmp_path / "out",
        "--center-hole",
        8,
        "--weights",
        tiny_weights,
        "--device",
        "cpu",
        "--rank-timeout",
        "0.02",
    )
    assert rc == 0 and (tmp_path / "out" / "p.png").is_file()
    err = capsys.readouterr().err
    assert "could not meet the other 1 rank(s) within 1.2 s" in err and "this rank's photos only" in err


def test_output_inside_input_is_not_reingested(folder, tiny_weights, capsys):
    out = folder / "results"
    args = ["batch", folder, out, "--center-hole", 8, "--weights", tiny_weights, "--recursive"]
    assert run_cli(*args) == 1
    capsys.readouterr()
    assert run_cli(*args) == 1
    # Second run: the 6 photos (5 good + sub/c.png) skipped, bad.jpg fails again, no results/*.
    out_text = capsys.readouterr().out
    assert "done 0, skipped 6, failed 1 (of 7)" in out_text
    assert "model:" not in out_text  # nothing was filled, so no model was loaded or named
    assert not (out / "results").exists()


def test_masks_next_to_photos_are_not_photos(tmp_path, tiny_weights):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(photo(32, 32, 0)).save(src / "p.png")
    hole = np.zeros((32, 32), bool)
    hole[4:10, 4:10] = True
    save_mask(src / "p_mask.png", hole)
    jobs = plan_batch(BatchOptions(src, tmp_path / "out", MaskSpec("dir", src)))
    assert [j.source.name for j in jobs] == ["p.png"]
    report = run_batch(
        BatchOptions(src, tmp_path / "out", MaskSpec("dir", src)),
        inpainter=Inpainter(tiny_weights, device="cpu"),
    )
    assert [p.name for p in report.done] == ["p.png"] and not report.failed


def test_masks_among_photos_only_mask_names_and_never_a_photo(tmp_path):
    """--masks INPUT_DIR --recursive: the top-level photo x.png is not the mask of sub/x.jpg (it
    stays a photo); only <stem>_mask.png names are masks, with a top-level fallback for a stem
    no top-level photo has (x_mask.png is x.png's, never sub/x.jpg's too)."""
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for name in ("x.png", "sub/x.jpg", "y.png", "sub/y.jpg", "sub/z.jpg", "sub/w.jpg"):
        Image.fromarray(photo(16, 16, 0)).save(src / name)
    for name in ("x_mask.png", "sub/z_mask.png", "w_mask.png"):
        save_mask(src / name, centre_hole(16, 16, 4))
    jobs = plan_batch(BatchOptions(src, tmp_path / "out", MaskSpec("dir", src), recursive=True))
    masks = {j.relative.as_posix(): j.mask and j.mask.relative_to(src).as_posix() for j in jobs}
    assert masks == {
        "x.png": "x_mask.png",
        "sub/x.jpg": None,  # the top-level x_mask.png is x.png's
        "y.png": None,
        "sub/y.jpg": None,  # never the photo y.png
        "sub/z.jpg": "sub/z_mask.png",
        "sub/w.jpg": "w_mask.png",  # top-level fallback, _mask names only
    }

    # A separate mask folder: <stem>.png next to the photo's sub-folder, but not from the top.
    masks_dir = tmp_path / "masks"
    (masks_dir / "sub").mkdir(parents=True)
    for name in ("y.png", "sub/x.png"):
        save_mask(masks_dir / name, centre_hole(16, 16, 4))
    jobs = plan_batch(BatchOptions(src, tmp_path / "out", MaskSpec("dir", masks_dir), recursive=True))
    masks = {j.relative.as_posix(): j.mask and j.mask.relative_to(masks_dir).as_posix() for j in jobs}
    assert masks["y.png"] == "y.png" and masks["sub/x.jpg"] == "sub/x.png"
    assert masks["sub/y.jpg"] is None
    assert "x_mask.png" in masks and "sub/z_mask.png" in masks  # photos, with another mask folder


def test_photos_sharing_a_name_never_take_each_others_mask(tmp_path, tiny_weights):
    """retoucher detect writes masks/a.png for a.jpg (the first) and refuses a.png's; a batch
    with that mask folder gave a.png a.jpg's damage mask and reported it done. Now the first
    photo keeps the mask file and each other photo that finds the same file fails with a reason;
    masks of their own (a_mask.png beside the photos) are theirs."""
    src, masks_dir = tmp_path / "in", tmp_path / "masks"
    src.mkdir()
    masks_dir.mkdir()
    for name in ("a.jpg", "a.png", "a.webp", "b.jpg"):
        Image.fromarray(photo(16, 16, 0)).save(src / name)
    for name in ("a.png", "b.png"):
        save_mask(masks_dir / name, centre_hole(16, 16, 4))
    jobs = plan_batch(BatchOptions(src, tmp_path / "out", MaskSpec("dir", masks_dir)))
    by_name = {j.relative.as_posix(): j for j in jobs}
    assert by_name["a.jpg"].mask == masks_dir / "a.png" and by_name["a.jpg"].error is None
    for later in ("a.png", "a.webp"):
        assert "is also the mask of a.jpg" in by_name[later].error
    assert by_name["b.jpg"].error is None

    # The batch runs the first and reports the others failed, writing nothing for them.
    inp = Inpainter(tiny_weights, device="cpu")
    report = run_batch(BatchOptions(src, tmp_path / "out", MaskSpec("dir", masks_dir)), inpainter=inp)
    assert [p.name for p, _ in report.failed] == ["a.png", "a.webp"] and (
        tmp_path / "out" / "a.jpg"
    ).is_file()
    assert not (tmp_path / "out" / "a.png").exists() and not (tmp_path / "out" / "a.webp").exists()

    # photos of different sub-folders sharing the top-level x_mask.png (the fallback) still may
    (src / "roll1").mkdir()
    (src / "roll2").mkdir()
    for name in ("roll1/x.jpg", "roll2/x.jpg"):
        Image.fromarray(photo(16, 16, 0)).save(src / name)
    save_mask(masks_dir / "x_mask.png", centre_hole(16, 16, 4))
    jobs = plan_batch(BatchOptions(src, tmp_path / "o2", MaskSpec("dir", masks_dir), recursive=True))
    by_name = {j.relative.as_posix(): j for j in jobs}
    for name in ("roll1/x.jpg", "roll2/x.jpg"):
        assert by_name[name].mask == masks_dir / "x_mask.png" and by_name[name].error is None


def test_a_16_bit_photo_written_with_8_bits_is_said_so(tmp_path, tiny_weights, caplog):
    """A 16-bit RGB scan came out an 8-bit file without a word (the app refuses to save over one);
    each such output is now named in a warning. An 8-bit photo gets none, and a 16-bit photo with
    nothing to fill is copied byte for byte (16 bits kept), without one."""
    import cv2

    src, masks_dir = tmp_path / "in", tmp_path / "masks"
    src.mkdir()
    masks_dir.mkdir()
    deep = np.zeros((16, 16, 3), np.uint16) + np.arange(16, dtype=np.uint16)[:, None, None] * 4000
    for name in ("deep.png", "untouched.png"):
        assert cv2.imwrite(str(src / name), deep)
    Image.fromarray(photo(16, 16, 0)).save(src / "plain.png")
    save_mask(masks_dir / "deep.png", centre_hole(16, 16, 4))
    save_mask(masks_dir / "plain.png", centre_hole(16, 16, 4))
    save_mask(masks_dir / "untouched.png", np.zeros((16, 16), bool))
    inp = Inpainter(tiny_weights, device="cpu")
    with caplog.at_level("WARNING", logger="retoucher.batch"):
        report = run_batch(BatchOptions(src, tmp_path / "out", MaskSpec("dir", masks_dir)), inpainter=inp)
    assert len(report.done) == 3
    said = [r.getMessage() for r in caplog.records if "8 bits per channel" in r.getMessage()]
    assert len(said) == 1 and "deep.png" in said[0] and "RGB;16" in said[0]
    assert load_image(tmp_path / "out" / "untouched.png").metadata.mode == "RGB;16"


def test_a_cmyk_photo_written_in_rgb_is_said_so(tmp_path, tiny_weights, caplog):
    """A CMYK print file came out an RGB file without a word (the app refuses to save over one;
    without a profile Pillow's plain conversion, whose colours may be off, was not told either)."""
    src, masks_dir = tmp_path / "in", tmp_path / "masks"
    src.mkdir()
    masks_dir.mkdir()
    Image.fromarray(photo(16, 16, 0)).convert("CMYK").save(src / "print.tif")
    Image.fromarray(photo(16, 16, 1)).save(src / "plain.png")
    for name in ("print.tif", "plain.png"):
        save_mask(masks_dir / name.replace(".tif", ".png"), centre_hole(16, 16, 4))
    with caplog.at_level("WARNING"):
        report = run_batch(
            BatchOptions(src, tmp_path / "out", MaskSpec("dir", masks_dir)),
            inpainter=Inpainter(tiny_weights, device="cpu"),
        )
    assert len(report.done) == 2
    said = [r.getMessage() for r in caplog.records if "CMYK" in r.getMessage()]
    assert len(said) == 2 and all("print.tif" in m for m in said)
    assert (
        "print.tif is written in RGB" in said[1] and "colours may be off" in said[0]
    )  # the engine's, on reading


@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
def test_recursive_listing_follows_linked_folders_once_and_names_a_file_given_as_folder(tmp_path):
    """--recursive skipped linked sub-folders without a word (linked files were read). A link to
    a folder elsewhere is followed; a link back up the tree (a loop), a link to a folder of the
    tree itself and a second link to a folder already listed add nothing. A photo given where
    the input folder goes is named as a file, not 'not found'."""
    src, elsewhere = tmp_path / "in", tmp_path / "elsewhere"
    (src / "real").mkdir(parents=True)
    elsewhere.mkdir()
    for name in ("in/top.png", "in/real/r.png", "elsewhere/e.png"):
        Image.fromarray(photo(8, 8, 0)).save(tmp_path / name)
    (src / "linked").symlink_to(elsewhere)
    (src / "linked_again").symlink_to(elsewhere)
    (src / "loop").symlink_to(src)
    (src / "real_again").symlink_to(src / "real")
    jobs = plan_batch(BatchOptions(src, tmp_path / "out", MaskSpec("center", 4), recursive=True))
    assert [j.relative.as_posix() for j in jobs] == ["linked/e.png", "real/r.png", "top.png"]
    flat = plan_batch(BatchOptions(src, tmp_path / "out", MaskSpec("center", 4)))
    assert [j.relative.as_posix() for j in flat] == ["top.png"]
    with pytest.raises(BatchError, match="is a file, not a folder"):
        plan_batch(BatchOptions(src / "top.png", tmp_path / "out", MaskSpec("center", 4)))


@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
def test_an_output_that_links_to_an_input_is_never_written_through(tmp_path):
    """Saves write through links (a photo opened by one is saved where it is); an output that is
    a link to an input photo or a mask (a folder of links made as a view) would have overwritten
    that input with --overwrite."""
    src, out, masks_dir = tmp_path / "in", tmp_path / "out", tmp_path / "masks"
    for d in (src, out, masks_dir):
        d.mkdir()
    for name in ("x.png", "y.png"):
        Image.fromarray(photo(16, 16, 0)).save(src / name)
        save_mask(masks_dir / name, centre_hole(16, 16, 4))
    (out / "x.png").symlink_to(src / "x.png")
    (out / "y.png").symlink_to(masks_dir / "y.png")
    jobs = plan_batch(BatchOptions(src, out, MaskSpec("dir", masks_dir), overwrite=True))
    errors = {j.relative.as_posix(): j.error for j in jobs}
    assert "would overwrite an input photo" in errors["x.png"]
    assert "would overwrite a mask" in errors["y.png"]
    # a link to a file elsewhere would have that file written over
    elsewhere = tmp_path / "elsewhere.png"
    Image.fromarray(photo(16, 16, 0)).save(elsewhere)
    (out / "x.png").unlink()
    (out / "x.png").symlink_to(elsewhere)
    jobs = plan_batch(BatchOptions(src, out, MaskSpec("dir", masks_dir), overwrite=True))
    assert "is a link to" in {j.relative.as_posix(): j.error for j in jobs}["x.png"]


def test_a_mask_is_never_an_output_nor_a_photo(tmp_path):
    """The mask folder as the output folder is refused (by any name); an output that would land
    on a mask file is that photo's error (--overwrite would have written over the mask); a --mask
    file kept among the photos is not retouched as a photo."""
    src, out = tmp_path / "in", tmp_path / "out"
    (src / "m").mkdir(parents=True)
    (out / "m" / "sub").mkdir(parents=True)
    for name in ("a.jpg", "m/a.jpg"):
        Image.fromarray(photo(16, 16, 0)).save(src / name)
    save_mask(out / "m" / "a.png", centre_hole(16, 16, 4))
    for same in (out / "m", out / "m" / "sub" / ".."):
        with pytest.raises(BatchError, match="differ from the mask folder"):
            plan_batch(BatchOptions(src, same, MaskSpec("dir", out / "m"), format="png"))
    jobs = plan_batch(BatchOptions(src, out, MaskSpec("dir", out / "m"), format="png", recursive=True))
    errors = {j.relative.as_posix(): j.error for j in jobs}
    assert errors["a.jpg"] is None and "would overwrite a mask" in errors["m/a.jpg"]

    save_mask(src / "scratch.png", centre_hole(16, 16, 4))
    jobs = plan_batch(BatchOptions(src, tmp_path / "o2", MaskSpec("file", src / "scratch.png")))
    assert [j.source.name for j in jobs] == ["a.jpg"]  # not scratch.png


def test_empty_mask_copies_and_jpeg_keeps_its_quantisation(tmp_path, tiny_weights):
    """An empty mask gives the input's bytes (no JPEG generation loss) when the format stays, a
    saved picture otherwise; a filled JPEG keeps the input's quantisation and DPI unless
    --quality is given."""
    src, masks = tmp_path / "in", tmp_path / "masks"
    src.mkdir()
    masks.mkdir()
    Image.fromarray(photo(32, 48, 1)).save(src / "q.jpg", quality=70, dpi=(200, 200))
    Image.fromarray(photo(32, 48, 2)).save(src / "e.jpg", quality=80)
    save_mask(masks / "q.png", centre_hole(32, 48, 8))
    save_mask(masks / "e.png", np.zeros((32, 48), bool))
    inp = Inpainter(tiny_weights, device="cpu")
    with Image.open(src / "q.jpg") as im:
        tables_70 = im.quantization

    out = tmp_path / "out"
    report = run_batch(BatchOptions(src, out, MaskSpec("dir", masks)), inpainter=inp)
    assert sorted(p.name for p in report.done) == ["e.jpg", "q.jpg"]
    assert sha(out / "e.jpg") == sha(src / "e.jpg")
    with Image.open(out / "q.jpg") as im:
        assert im.quantization == tables_70 and im.info["dpi"] == (200, 200)

    out95 = tmp_path / "out95"
    run_batch(BatchOptions(src, out95, MaskSpec("dir", masks), quality=95), inpainter=inp)
    with Image.open(out95 / "q.jpg") as im:
        assert im.quantization != tables_70 and im.info["dpi"] == (200, 200)
    assert sha(out95 / "e.jpg") == sha(src / "e.jpg")

    png = tmp_path / "png"
    run_batch(BatchOptions(src, png, MaskSpec("dir", masks), format="png"), inpainter=inp)
    np.testing.assert_array_equal(load_image(png / "e.png").rgb, load_image(src / "e.jpg").rgb)


def test_two_inputs_one_output_is_reported_not_overwritten(tmp_path, tiny_weights):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(photo(32, 32, 0)).save(src / "x.jpg")
    Image.fromarray(photo(32, 32, 1)).save(src / "x.png")
    out = tmp_path / "out"
    report = run_batch(
        BatchOptions(src, out, MaskSpec("center", 8), format="png"),
        inpainter=Inpainter(tiny_weights, device="cpu"),
    )
    assert [p.name for p in report.done] == ["x.jpg"]
    assert [(p.name, "already the output of x.jpg" in r) for p, r in report.failed] == [("x.png", True)]
    assert [p.name for p in out.iterdir()] == ["x.png"]


def test_outputs_that_differ_in_case_only_collide(tmp_path):
    """x.jpg and X.png both to PNG: x.png and X.png are one file on macOS and Windows, so the
    second is reported (Linux too: a batch plans the same wherever it runs)."""
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(photo(16, 16, 0)).save(src / "x.jpg")
    Image.fromarray(photo(16, 16, 1)).save(src / "X.png")
    jobs = plan_batch(BatchOptions(src, tmp_path / "out", MaskSpec("center", 4), format="png"))
    errors = {j.source.name: j.error for j in jobs}
    assert errors["X.png"] is None and "already the output of X.png" in errors["x.jpg"]
    # lower case, not case folding: NTFS keeps Straße and Strasse apart
    for name in ("Straße.png", "Strasse.png"):
        Image.fromarray(photo(16, 16, 2)).save(src / name)
    jobs = plan_batch(BatchOptions(src, tmp_path / "out", MaskSpec("center", 4), format="png"))
    assert {j.source.name: j.error for j in jobs}["Straße.png"] is None
    assert {j.source.name: j.error for j in jobs}["Strasse.png"] is None


def test_rank_sharding_covers_disjoint_halves(folder, tmp_path, tiny_weights, monkeypatch, capsys):
    out = tmp_path / "out"
    opts = BatchOptions(folder, out, MaskSpec("center", 8), recursive=True)
    inp = Inpainter(tiny_weights, device="cpu")
    r0 = run_batch(opts, inpainter=inp, rank=0, world_size=2)
    r1 = run_batch(opts, inpainter=inp, rank=1, world_size=2)
    seen0 = set(r0.done) | {p for p, _ in r0.failed}
    seen1 = set(r1.done) | {p for p, _ in r1.failed}
    assert seen0 and seen1 and not seen0 & seen1
    assert seen0 | seen1 == {j.source for j in plan_batch(opts)}
    assert (r0.total, r1.total) == (4, 3)

    # The CLI reads torchrun's variables: rank 1 of 2 does only its share.
    out2 = tmp_path / "out2"
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    rc = run_cli(
        "batch", folder, out2, "--center-hole", 8, "--weights", tiny_weights, "--recursive", "--device", "cpu"
    )
    assert rc == (1 if any(p.name == "bad.jpg" for p in seen1) else 0)
    captured = capsys.readouterr()
    assert "[rank 1/2]" in captured.out
    # Without torchrun's MASTER_ADDR the ranks cannot meet: said, and this rank's status is used.
    assert "MASTER_ADDR" in captured.err and "this rank's photos only" in captured.err
    written = {p.relative_to(out2).as_posix() for p in out2.rglob("*") if p.is_file()}
    assert written == {r1.outputs[p].relative_to(out).as_posix() for p in r1.done}


def test_torchrun_ranks_all_finish_and_exit_with_the_batch_status(tmp_path, tiny_weights):
    """Two CPU ranks under torchrun: rank 0 has a bad file and is done early, rank 1 is slow.
    Rank 0 must not exit 1 alone (torchrun would stop rank 1 mid-work): both outputs are written
    and every rank exits 1."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "a0.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")  # rank 0
    Image.fromarray(photo(48, 48, 1)).save(src / "a1.png")  # rank 1
    Image.fromarray(photo(48, 48, 2)).save(src / "a2.png")  # rank 0
    hook = tmp_path / "hook"
    hook.mkdir()
    # Fault injection, so the test does not depend on machine speed: rank 1 saves slowly.
    (hook / "sitecustomize.py").write_text(
        "import os\n"
        "if os.environ.get('RANK') == '1':\n"
        "    import time, engine.imageio as io\n"
        "    real = io.save_image\n"
        "    def slow(*args, **kwargs):\n"
        "        time.sleep(2)\n"
        "        return real(*args, **kwargs)\n"
        "    io.save_image = slow\n"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    }
    env["PYTHONPATH"] = os.pathsep.join([str(hook), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONWARNINGS"] = "ignore"
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "retoucher",
            "batch",
            str(src),
            str(out),
            "--center-hole",
            "8",
            "--weights",
            str(tiny_weights),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a1.png", "a2.png"], proc.stdout + proc.stderr
    assert "[rank 1/2] done 1, skipped 0, failed 0 (of 1)" in proc.stdout
    assert "all 2 ranks: done 2, skipped 0, failed 1 (of 3)" in proc.stdout


def test_rank_from_env():
    assert rank_from_env({}) == (0, 1, None)
    assert rank_from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == (3, 4, 1)
    assert rank_from_env({"RANK": "1", "WORLD_SIZE": "2"}) == (1, 2, 1)  # one node: LOCAL_RANK = RANK
    with pytest.raises(BatchError, match="RANK=4 is not within WORLD_SIZE=4"):
        rank_from_env({"RANK": "4", "WORLD_SIZE": "4"})
    with pytest.raises(BatchError, match="RANK must be an integer, got 'x'"):
        rank_from_env({"RANK": "x"})


def test_bad_torchrun_variable_is_a_usage_error(folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "two")
    assert run_cli("batch", folder, tmp_path / "out", "--center-hole", 8) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: retoucher batch")
    assert "retoucher batch: error: the environment variable WORLD_SIZE must be an integer, got 'two'" in err
    assert not (tmp_path / "out").exists()


def test_cancel_stops_and_rerun_resumes(folder, tmp_path, tiny_weights):
    out = tmp_path / "out"
    opts = BatchOptions(folder, out, MaskSpec("center", 8))
    inp = Inpainter(tiny_weights, device="cpu")
    calls: list[tuple[int, int, str]] = []
    report = run_batch(
        opts, inpainter=inp, progress=lambda *a: calls.append(a), cancel=lambda: len(calls) >= 2
    )
    assert report.cancelled and not report.ok
    processed = len(report.done) + len(report.failed) + len(report.skipped)
    # Stops at the next photo (photos already filled together in one network batch are saved).
    assert 2 <= processed < report.total == 6
    assert report.not_processed == report.total - processed
    assert [c[0] for c in calls] == list(range(1, processed + 1)) and all(c[1] == 6 for c in calls)
    assert sorted(p.name for p in out.iterdir()) == sorted(report.outputs[p].name for p in report.done)

    calls.clear()
    again = run_batch(opts, inpainter=inp, progress=lambda *a: calls.append(a))
    assert not again.cancelled
    assert set(again.skipped) == set(report.done)
    assert len(again.done) + len(again.skipped) == 5
    assert [c[0] for c in calls] == list(range(1, 7))


def test_progress_names_each_photo(folder, tmp_path, tiny_weights):
    calls = []
    run_batch(
        BatchOptions(folder, tmp_path / "out", MaskSpec("rect", (0, 0, 8, 8)), recursive=True),
        inpainter=Inpainter(tiny_weights, device="cpu"),
        progress=lambda *a: calls.append(a),
    )
    assert sorted(c[2] for c in calls) == sorted(
        ["a.png", "b.png", "bad.jpg", "gray.png", "j.jpg", "rgba.png", "sub/c.png"]
    )
    assert [c[0] for c in calls] == list(range(1, 8))


def test_mask_spec_and_options_validation(tmp_path):
    assert MaskSpec("rect", "1,2,3,4").value == (1, 2, 3, 4)
    assert MaskSpec("center", "32").value == (32, 32)
    assert MaskSpec("center", (40, 20)).value == (40, 20)
    with pytest.raises(ValueError):
        MaskSpec("blob", 1)
    with pytest.raises(ValueError, match="format"):
        BatchOptions(tmp_path, tmp_path / "o", MaskSpec("center", 8), format="gif")


# --- the retoucher command -------------------------------------------------------------------


def test_version_and_help(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("retoucher ")
    assert cli.main(["--help"]) == 0
    assert "retoucher batch" in capsys.readouterr().out
    assert cli.main(["batch", "--help"]) == 0
    assert "--center-hole" in capsys.readouterr().out
    assert cli.main(["a.jpg", "b.jpg"]) == 2


def test_photo_argument_opens_the_app(monkeypatch):
    opened = []
    fake = types.ModuleType("retoucher.qt.app")
    fake.run_app = lambda photo: opened.append(photo) or 0
    monkeypatch.setitem(sys.modules, "retoucher.qt.app", fake)
    assert cli.main(["holiday.jpg"]) == 0
    assert cli.main([]) == 0
    assert opened == ["holiday.jpg", None]


def test_console_entry_in_a_subprocess_without_torch_in_retoucher(folder, tmp_path, tiny_weights):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("WORLD_SIZE", None)
    env.pop("RANK", None)
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, retoucher.batch, retoucher.__main__; print('torch' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert probe.stdout.strip() == "False", "importing the CLI must not import torch"

    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "retoucher",
            "batch",
            str(folder),
            str(out),
            "--center-hole",
            "8",
            "--weights",
            str(tiny_weights),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert "done 5, skipped 0, failed 1" in proc.stdout
    assert len(list(out.iterdir())) == 5


@pytest.mark.skipif(sys.platform == "win32", reason="file names that are not UTF-8: POSIX only")
def test_a_file_name_that_is_not_utf8_is_named_in_the_summary(tmp_path, tiny_weights):
    """Under a UTF-8 locale Python's stdout is strict: the summary naming a Latin-1 file name
    that failed raised UnicodeEncodeError at the end of the batch (exit status 1 from the
    traceback, the summary lost). It is printed escaped now."""
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(photo(16, 16, 0)).save(src / "good.png")
    with open(os.fsencode(src) + b"/caf\xe9.jpg", "wb") as f:
        f.write(b"not a jpeg")
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONIOENCODING": "utf-8:strict"}
    env.pop("WORLD_SIZE", None)
    env.pop("RANK", None)
    proc = subprocess.run(
        [sys.executable, "-m", "retoucher", "batch", str(src), str(tmp_path / "out"), "--rect", "2,2,4,4"]
        + ["--weights", str(tiny_weights), "--device", "cpu", "--no-progress"],
        capture_output=True,
        env=env,
        timeout=120,
    )
    stdout = proc.stdout.decode("utf-8")
    assert b"Traceback" not in proc.stderr, proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 1 and "done 1, skipped 0, failed 1" in stdout
    assert "caf\\udce9.jpg" in stdout  # named, escaped


def test_leftover_temporaries_of_own_outputs_are_removed(folder, tmp_path, tiny_weights):
    """A run killed by SIGKILL mid-save leaves .<stem>.XXXXXXXX.tmp<suffix>; the next run removes
    those of its outputs, and nothing else."""
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".a.k3x_9qaz.tmp.png"
    stale.write_bytes(b"half a png")
    keep = [out / ".zzz.k3x_9qaz.tmp.png", out / ".a.k3x.tmp.png", out / "a.k3x_9qaz.tmp.png.txt"]
    for p in keep:
        p.write_bytes(b"not ours")
    report = run_batch(
        BatchOptions(folder, out, MaskSpec("center", 8)), inpainter=Inpainter(tiny_weights, device="cpu")
    )
    assert report.removed_temporaries == [stale] and not stale.exists()
    assert all(p.read_bytes() == b"not ours" for p in keep)
    assert (out / "a.png").is_file()


def test_cli_prints_the_engines_warnings_on_lines_of_their_own(tmp_path, tiny_weights):
    """A JPEG that has to be re-encoded whole (here: progressive), a file of several pages and a
    JPEG with damaged data are each said on stderr once, as a line of its own named like the
    command's other messages, not glued to the progress bar."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    Image.fromarray(photo(64, 64, 7)).save(src / "prog.jpg", quality=90, progressive=True)
    pages = [Image.fromarray(photo(64, 64, k)) for k in (8, 9)]  # a Python warning: first page only
    pages[0].save(src / "pages.tif", save_all=True, append_images=pages[1:])
    Image.fromarray(photo(64, 64, 10)).save(src / "damaged.jpg", quality=90)
    (src / "damaged.jpg").write_bytes(scan_damaged((src / "damaged.jpg").read_bytes(), at=0.5))
    proc = subprocess.run(
        [sys.executable, "-m", "retoucher", "batch", str(src), str(out), "--rect", "8,8,16,16"]
        + ["--weights", str(tiny_weights), "--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.replace("\r", "\n").splitlines()
    said = [line for line in lines if "re-encoded" in line]
    assert len(said) == 1, proc.stderr
    assert said[0].startswith("retoucher batch: WARNING: ") and "progressive" in said[0]
    said = [line for line in lines if "holds 2 pages" in line]
    assert len(said) == 1 and said[0].startswith("retoucher batch: WARNING: "), proc.stderr
    assert "pages.tif holds 2 pages" in said[0] and "MultiPageWarning" not in proc.stderr
    said = [line for line in lines if "compressed data is damaged" in line]  # filled all the same
    assert len(said) == 1 and said[0].startswith("retoucher batch: WARNING: "), proc.stderr
    assert "damaged.jpg" in said[0] and (out / "damaged.jpg").is_file()


def test_an_output_folder_it_cannot_write_to_stops_the_batch_before_any_photo(folder, tmp_path, monkeypatch):
    """Found before the model works on any photo, not reported photo by photo afterwards; a
    batch with nothing left to do never asks."""
    import retoucher.batch.ledger as ledger

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    class NeverCalled:
        name, device_name = "never", "CPU"

        def __call__(self, *args, **kwargs):
            raise AssertionError("the model ran although the output folder cannot be written")

        inpaint_batch = __call__

    monkeypatch.setattr(ledger.tempfile, "TemporaryFile", refuse)
    out = tmp_path / "out"
    options = BatchOptions(folder, out, MaskSpec("center", 16), format="png")
    with pytest.raises(BatchError, match=f"cannot write to the output folder {out}: Permission denied"):
        run_batch(options, inpainter=NeverCalled())
    assert not any(out.iterdir())  # no output, no temporary left by the check

    class Grey(NeverCalled):
        def __call__(self, image, hole, **kwargs):
            out = image.copy()
            out[hole] = 128
            return out

        def inpaint_batch(self, images, holes, **kwargs):
            return [self(i, h) for i, h in zip(images, holes)]

    monkeypatch.undo()
    seen = []
    real = ledger.tempfile.TemporaryFile

    def listing(*args, **kwargs):  # what a run killed during the check would leave behind
        fh = real(*args, **kwargs)
        seen.append(sorted(p.name for p in out.iterdir()))
        return fh

    monkeypatch.setattr(ledger.tempfile, "TemporaryFile", listing)
    assert len(run_batch(options, inpainter=Grey()).done) == 5
    if os.name == "posix":  # unnamed (O_TMPFILE) or already unlinked while it is open
        assert seen == [[]]
    monkeypatch.undo()
    monkeypatch.setattr(ledger.tempfile, "TemporaryFile", refuse)
    done = tmp_path / "done"  # a finished batch re-run: every output exists, nothing to write
    done.mkdir()
    for name in ("a.png", "b.png"):
        (done / name).write_bytes((folder / name).read_bytes())
    finished = BatchOptions(done, out, MaskSpec("center", 16), format="png")
    assert len(run_batch(finished, inpainter=NeverCalled()).skipped) == 2
    empty = tmp_path / "empty"
    empty.mkdir()  # nothing to write: no check, no error
    report = run_batch(
        BatchOptions(empty, tmp_path / "out2", MaskSpec("center", 16)), inpainter=NeverCalled()
    )
    assert report.total == 0 and not (tmp_path / "out2").exists()


def test_one_folder_by_two_paths_is_refused_as_output(tmp_path, monkeypatch):
    """An output folder that is the input folder by another path (a second mount of it: its
    path resolves elsewhere) listed every photo as done ("skipped"), and with --overwrite wrote
    the fills over the originals. Folders and files are compared as what they are (device and
    inode), not by their paths. (The mount itself needs privileges: a real one below when this
    machine allows it, else the identity the file system would give.)"""
    import retoucher.batch.planning as planning

    src, alias, out = tmp_path / "in", tmp_path / "alias", tmp_path / "out"
    for d in (src / "sub", alias, out / "sub"):
        d.mkdir(parents=True)
    for name in ("a.png", "sub/b.png"):
        Image.fromarray(photo(16, 16, 0)).save(src / name)
    real_identity = planning._identity
    mounts = {alias: src, out / "sub": src / "sub"}  # each as a bind mount of the other would make it

    def mounted(path):
        path = Path(path)
        for at, folder in mounts.items():
            if is_within(path, at):
                return real_identity(folder / path.relative_to(at))
        return real_identity(path)

    monkeypatch.setattr(planning, "_identity", mounted)
    with pytest.raises(BatchError, match="must differ from the input folder"):
        plan_batch(BatchOptions(src, alias, MaskSpec("center", 4), overwrite=True))
    # a sub-folder of the output folder that is one of the input folder: its photos fail
    jobs = plan_batch(BatchOptions(src, out, MaskSpec("center", 4), overwrite=True, recursive=True))
    errors = {j.relative.as_posix(): j.error for j in jobs}
    assert errors["a.png"] is None and "would overwrite an input photo" in errors["sub/b.png"]


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.geteuid() != 0, reason="bind mounts")
def test_a_bind_mount_of_the_input_folder_is_refused_as_output(tmp_path):
    src, alias = tmp_path / "in", tmp_path / "alias"
    src.mkdir()
    alias.mkdir()
    Image.fromarray(photo(16, 16, 0)).save(src / "a.png")
    if subprocess.run(["mount", "--bind", str(src), str(alias)], capture_output=True).returncode:
        pytest.skip("mount --bind is not allowed here")
    try:
        assert alias.resolve() != src.resolve() and (alias / "a.png").is_file()
        with pytest.raises(BatchError, match="must differ from the input folder"):
            plan_batch(BatchOptions(src, alias, MaskSpec("center", 4), overwrite=True))
    finally:
        subprocess.run(["umount", str(alias)], check=True)


@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
def test_recursive_listing_never_enters_the_output_or_mask_folder_nor_climbs_out(tmp_path):
    """A linked sub-folder that leads to the output folder listed the last run's outputs as
    photos (they failed as "would overwrite an input", and the outputs nested deeper each run),
    one to the mask folder listed the masks as photos, and one to a folder holding the input
    folder listed the folders beside it."""
    src, out, masks_dir = tmp_path / "in", tmp_path / "out", tmp_path / "masks"
    for d in (src, out, masks_dir, tmp_path / "beside"):
        d.mkdir()
    Image.fromarray(photo(16, 16, 0)).save(src / "a.png")
    Image.fromarray(photo(16, 16, 1)).save(out / "a.png")  # the last run's output
    Image.fromarray(photo(16, 16, 2)).save(tmp_path / "beside" / "b.png")
    save_mask(masks_dir / "a.png", centre_hole(16, 16, 4))
    (src / "results").symlink_to(out)
    (src / "masks").symlink_to(masks_dir)
    (src / "up").symlink_to(tmp_path)
    jobs = plan_batch(BatchOptions(src, out, MaskSpec("dir", masks_dir), recursive=True))
    assert [(j.relative.as_posix(), j.error) for j in jobs] == [("a.png", None)]
    assert jobs[0].mask == masks_dir / "a.png"


def test_a_name_too_long_for_the_file_system_fails_its_photo_alone(tmp_path):
    """A photo with a 255-byte name (the most a name may have) made a mask name and an output
    name longer than that: pathlib's checks raised (Errno 36) and the whole batch stopped with a
    traceback, the next run too."""
    src, masks_dir = tmp_path / "in", tmp_path / "masks"
    src.mkdir()
    masks_dir.mkdir()
    long = "x" * 251 + ".png"  # 255 bytes
    for name in (long, "short.png"):
        Image.fromarray(photo(16, 16, 0)).save(src / name)
    save_mask(masks_dir / "short.png", centre_hole(16, 16, 4))
    jobs = plan_batch(BatchOptions(src, tmp_path / "out", MaskSpec("dir", masks_dir)))
    assert {j.source.name: j.mask for j in jobs} == {long: None, "short.png": masks_dir / "short.png"}
    (tmp_path / "out").mkdir()  # (a first run fails that photo as it writes; a second one planned)
    jobs = plan_batch(BatchOptions(src, tmp_path / "out", MaskSpec("center", 4), format="webp"))
    errors = {j.source.name: j.error for j in jobs}
    assert "too long" in errors[long] and errors["short.png"] is None


def test_an_output_that_is_a_folder_fails_its_photo(tmp_path, tiny_weights):
    """An output path taken by a folder counted as a finished output ("skipped", nothing
    written)."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    (out / "a.png").mkdir(parents=True)
    Image.fromarray(photo(16, 16, 0)).save(src / "a.png")
    report = run_batch(
        BatchOptions(src, out, MaskSpec("center", 4)), inpainter=Inpainter(tiny_weights, device="cpu")
    )
    assert not report.skipped and [(p.name, "is a folder" in why) for p, why in report.failed] == [
        ("a.png", True)
    ]


def test_mask_names_among_the_photos_are_never_photos_and_match_in_any_case(tmp_path):
    """With the masks next to the photos, a mask whose photo was deleted was listed as a photo
    (it failed, or with --find-damage was "retouched" into the output), and IMG_2_MASK.png
    counted as a mask name but was never found as IMG_2.jpg's mask."""
    src = tmp_path / "in"
    src.mkdir()
    for name in ("IMG_1.jpg", "IMG_2.jpg"):
        Image.fromarray(photo(16, 16, 0)).save(src / name)
    for name in ("IMG_2_MASK.png", "IMG_3_mask.png"):  # IMG_3's photo is gone
        save_mask(src / name, centre_hole(16, 16, 4))
    jobs = plan_batch(BatchOptions(src, tmp_path / "out", MaskSpec("dir", src)))
    assert {j.source.name: j.mask and j.mask.name for j in jobs} == {
        "IMG_1.jpg": None,
        "IMG_2.jpg": "IMG_2_MASK.png",
    }
    # a separate mask folder: any case too, its own name first
    masks_dir = tmp_path / "masks"
    masks_dir.mkdir()
    save_mask(masks_dir / "IMG_1.PNG", centre_hole(16, 16, 4))
    save_mask(masks_dir / "img_2_mask.png", centre_hole(16, 16, 4))
    jobs = plan_batch(BatchOptions(src, tmp_path / "out", MaskSpec("dir", masks_dir)))
    masks = {j.source.name: j.mask and j.mask.name for j in jobs}
    assert masks["IMG_1.jpg"] == "IMG_1.PNG" and masks["IMG_2.jpg"] == "img_2_mask.png"
    assert masks["IMG_3_mask.png"] is None  # with another mask folder, a photo like any other


def test_a_mask_file_given_with_a_tilde_is_the_home_folder_s(tmp_path, monkeypatch, tiny_weights):
    """``--mask=~/m.png`` (the shell leaves that "~") passed the planning's check, which expanded
    it, and then stopped the batch: the mask was read from "~/m.png" itself."""
    monkeypatch.setenv("HOME", str(tmp_path))
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(photo(16, 16, 0)).save(src / "a.png")
    save_mask(tmp_path / "m.png", centre_hole(16, 16, 4))
    assert MaskSpec("file", "~/m.png").value == tmp_path / "m.png"
    report = run_batch(
        BatchOptions(src, tmp_path / "out", MaskSpec("file", "~/m.png")),
        inpainter=Inpainter(tiny_weights, device="cpu"),
    )
    assert [p.name for p in report.done] == ["a.png"] and not report.failed


def test_ctrl_c_stops_after_the_photo_in_hand_with_the_summary_and_a_second_one_at_once(
    tmp_path, tiny_weights, monkeypatch, capsys
):
    """Ctrl+C ended a batch with one line: the failures so far (and what was done) were not
    listed, so a re-run repeated them to find out. The first SIGINT now stops the batch before
    the next photo, those in hand finished (not thrown away half-filled), with its summary (exit
    130); a second one stops at once, and one while the summary prints gives no traceback."""
    import signal

    from retoucher.batch import runner
    from retoucher.batch.cli import main

    src = tmp_path / "in"
    src.mkdir()
    (src / "a_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not a picture")
    for i in range(8):
        Image.fromarray(photo(24 + 2 * i, 20, i)).save(src / f"p{i}.png")  # sizes differ: one fill each
    written = []
    write = runner.write_output

    def interrupted_after_two(item, result, quality):
        write(item, result, quality)
        written.append(item.job.output)
        if len(written) == 2:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(runner, "write_output", interrupted_after_two)
    argv = [str(src), str(tmp_path / "out"), "--center-hole", "8", "--weights", str(tiny_weights)]
    assert main(argv + ["--device", "cpu", "--no-progress"]) == 130
    out, err = capsys.readouterr()
    # the photo loaded when the second was written (the next group's) is finished too
    assert "done 3, skipped 0, failed 1, cancelled with 5 not processed (of 9)" in out
    assert "FAILED" in out and "a_broken.png" in out
    assert "stopping" in err and "interrupted" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in written)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored

    def interrupted_twice(item, result, quality):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(runner, "write_output", interrupted_twice)
    assert main(argv + ["--device", "cpu", "--no-progress"]) == 130
    out, err = capsys.readouterr()
    assert "done" not in out and "interrupted" in err

    from retoucher.batch.options import BatchReport

    summary = BatchReport.summary

    def interrupted_while_printed(report):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        return summary(report)

    monkeypatch.setattr(runner, "write_output", write)
    monkeypatch.setattr(BatchReport, "summary", interrupted_while_printed)
    assert main(argv + ["--device", "cpu", "--no-progress", "--overwrite"]) == 130


def test_a_bad_weight_file_stops_the_batch_before_the_output_folder_is_made(tmp_path, tiny_weights, capsys):
    """A missing or broken --weights (or --damage-weights, or detect's --weights) stopped the
    batch only when the first photo needed the model: after the output folder was made."""
    from retoucher.batch.cli import main as batch
    from retoucher.batch.detect_cli import main as detect

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(photo(24, 20, 0)).save(src / "p.png")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a weight file" * 4)
    runs = [
        (batch, ["--center-hole", "8", "--weights", str(broken)], "not a readable safetensors file"),
        (batch, ["--center-hole", "8", "--weights", str(tmp_path / "gone.safetensors")], "not found"),
        (batch, ["--center-hole", "8", "--weights", str(tiny_weights), "--find-damage",
                 "--damage-weights", str(tiny_weights)], "not a Retoucher damage detector"),
        (detect, ["--weights", str(tiny_weights)], "not a Retoucher damage detector"),
    ]  # fmt: skip
    for i, (main, args, said) in enumerate(runs):
        out = tmp_path / f"out{i}"
        assert main([str(src), str(out), "--device", "cpu", "--no-progress", *args]) == 2
        assert said in capsys.readouterr().err and not out.exists(), args


def test_a_usage_error_is_one_line_when_stderr_is_no_terminal(tmp_path):
    """Into a log or a pipe: "retouching: 0photo [00:00, ?photo/s]retoucher batch: error: ...",
    then the bar drawn again (the bar was open when the error was printed)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "retoucher",
            "batch",
            str(tmp_path / "nope"),
            str(tmp_path / "out"),
            "--rect",
            "1,1,5,5",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr == f"retoucher batch: error: input folder not found: {tmp_path / 'nope'}\n"


def test_photos_in_formats_not_retouched_are_named_in_the_summary(folder, tmp_path, tiny_weights, capsys):
    """A phone's HEIC photos, camera RAW files beside their JPEGs or a GIF were passed over
    without a word ("done 1, failed 0 (of 1)" for a folder of four photos; a folder of HEIC
    photos: "no photos found"): the summary counts them by format and says what to do. Other
    files (a text file, an XMP sidecar) are no photos and stay unmentioned; exit status 0."""
    src = tmp_path / "mixed"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(photo(48, 64, 7)).save(src / "a.jpg")
    Image.fromarray(photo(48, 64, 8)).save(src / "b.gif")
    (src / "IMG_1.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(20))
    (src / "IMG_1.CR2").write_bytes(b"II*\x00")
    (src / "sub" / "d.nef").write_bytes(b"raw")
    (src / "a.xmp").write_text("<x/>")
    (src / "notes.txt").write_text("not a photo")
    report = run_batch(BatchOptions(src, tmp_path / "out", MaskSpec("center", 8), weights=tiny_weights))
    assert [p.name for p in report.done] == ["a.jpg"]
    assert [p.relative_to(src).as_posix() for p in report.left_out] == ["IMG_1.CR2", "IMG_1.HEIC", "b.gif"]
    line = report.summary().splitlines()[-1]
    assert line.startswith("left out 3 photo(s) in formats Retoucher does not retouch")
    assert "camera RAW 1" in line and "HEIC 1" in line and "GIF 1" in line and "JPEG, PNG or TIFF" in line
    assert (
        run_cli("batch", src, tmp_path / "out2", "--center-hole", 8, "--weights", tiny_weights, "--recursive")
        == 0
    )
    assert "left out 4 photo(s)" in capsys.readouterr().out  # sub/d.nef too
    only = tmp_path / "phone"
    only.mkdir()
    (only / "IMG_2.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(20))
    assert run_cli("batch", only, tmp_path / "out3", "--center-hole", 8, "--weights", tiny_weights) == 0
    said = capsys.readouterr()
    assert "left out 1 photo(s)" in said.out and "HEIC 1" in said.out and "no photos found" in said.err
    assert not (tmp_path / "out" / "b.gif").exists() and not (tmp_path / "out" / "b.png").exists()
