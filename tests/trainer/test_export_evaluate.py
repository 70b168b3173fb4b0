"""export -> engine round trip with provenance; evaluate's table, JSON and grid."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from engine.convert import composite
from engine.weights import load_weights, read_weights_info
from trainer.__main__ import main
from trainer.checkpoint import load_checkpoint, model_from_checkpoint
from trainer.evaluate import BANDS, EvalConfig, evaluate, opencv_inpaint, ratio_band
from trainer.export import export


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    m = torch.ones(2, 1, 64, 64)
    m[:, :, 16:40, 20:44] = 0
    return x * m, m


def test_export_round_trip_gives_the_same_outputs(trained_run, tmp_path):
    ckpt = load_checkpoint(trained_run / "ckpt.pt")
    expected_model = model_from_checkpoint(ckpt)  # EMA weights: the run used --ema
    path, prov = export(trained_run / "ckpt.pt", tmp_path / "model.safetensors", name="birds")
    model, info = load_weights(path)
    x, m = _inputs()
    with torch.no_grad():
        assert torch.equal(model(x, m), expected_model(x, m))
    assert info.name == "birds" and info.config.widths == (8, 16, 16, 16)
    assert info.provenance["steps"] == 3 and info.provenance["weights"] == "EMA"
    assert info.provenance["classes"] == ["class_0", "class_1"]
    assert info.provenance["data"]["train_images"] == 14
    assert info.provenance["recipe"][0]["loss"] == "l1"
    assert info.provenance["metrics"]["validation"]["step"] == 3
    assert set(info.provenance["losses"]) >= {"hole", "valid", "tv", "total"}

    raw, _ = export(trained_run, tmp_path / "raw.safetensors", ema=False)
    raw_model, _ = load_weights(raw)
    with torch.no_grad():
        ref = model_from_checkpoint(ckpt, ema=False)
        assert torch.equal(raw_model(x, m), ref(x, m))


def test_export_half_is_close_and_small(trained_run, tmp_path):
    full, _ = export(trained_run, tmp_path / "f.safetensors")
    half, _ = export(trained_run, tmp_path / "h.safetensors", half=True)
    assert read_weights_info(half).dtype == "float16"
    assert half.stat().st_size < 0.7 * full.stat().st_size
    a, _ = load_weights(full)
    b, _ = load_weights(half)
    x, m = _inputs(1)
    with torch.no_grad():
        assert torch.allclose(a(x, m), b(x, m), atol=5e-2)


def test_export_from_a_weight_file_replaces_only_the_test_table(trained_run, tmp_path, capsys):
    """A shipped file whose checkpoint is gone gets a new test table (a re-stamp): the same
    tensors, name, dtype and provenance, only metrics.test replaced."""
    from safetensors.torch import load_file

    old_table = {"model": "birds", "split": "test", "mirror": True, "rows": [{"task": "center", "psnr": 1.0}]}
    new_table = {"model": "birds", "split": "test", "mirror": True, "rows": [{"task": "center", "psnr": 2.0}]}
    (tmp_path / "old.json").write_text(json.dumps(old_table))
    (tmp_path / "new.json").write_text(json.dumps(new_table))
    shipped, _ = export(
        trained_run,
        tmp_path / "shipped.safetensors",
        half=True,
        name="birds",
        evaluation=tmp_path / "old.json",
    )
    out = tmp_path / "restamped.safetensors"
    assert main(["export", str(shipped), str(out), "--evaluation", str(tmp_path / "new.json")]) == 0
    assert "fp16" in capsys.readouterr().out
    a, b = read_weights_info(shipped), read_weights_info(out)
    assert b.name == "birds" and b.dtype == "float16" and b.config == a.config
    assert b.provenance["metrics"]["test"] == new_table
    assert {k: v for k, v in b.provenance.items() if k != "metrics"} == {
        k: v for k, v in a.provenance.items() if k != "metrics"
    }
    assert b.provenance["metrics"]["validation"] == a.provenance["metrics"]["validation"]
    before, after = load_file(str(shipped)), load_file(str(out))
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    # A weight file has no raw/EMA choice; a val table is refused as for checkpoints.
    with pytest.raises(ValueError, match="--no-ema"):
        export(shipped, tmp_path / "x.safetensors", ema=False)
    (tmp_path / "val.json").write_text(json.dumps({**new_table, "split": "val"}))
    with pytest.raises(ValueError, match="val split"):
        export(shipped, tmp_path / "x.safetensors", evaluation=tmp_path / "val.json")
    assert not (tmp_path / "x.safetensors").exists()


def test_export_names_the_texture_strength_the_evaluation_measured(trained_run, tmp_path, capsys):
    """--texture S names the model's own strength in the file; a weight file keeps its own; an
    evaluation run at another strength than the file would name is refused (the app fills at
    the file's strength, so the published figures must be of it)."""
    at = {"model": "birds", "split": "test", "mirror": True, "texture_strength": 0.25, "rows": []}
    (tmp_path / "at25.json").write_text(json.dumps(at))
    (tmp_path / "at0.json").write_text(json.dumps({**at, "texture_strength": 0.0}))
    (tmp_path / "old.json").write_text(json.dumps({k: v for k, v in at.items() if k != "texture_strength"}))
    shipped = tmp_path / "shipped.safetensors"
    argv = ["export", str(trained_run), str(shipped), "--texture", "0.25", "--evaluation"]
    assert main([*argv, str(tmp_path / "at25.json")]) == 0
    assert "texture 0.25" in capsys.readouterr().out
    assert read_weights_info(shipped).texture == 0.25
    assert read_weights_info(export(trained_run, tmp_path / "none.safetensors")[0]).texture == 0.0
    for table, file_says in (("at0.json", "0.25"), ("old.json", "0.25")):  # old: measured at 0
        assert main([*argv, str(tmp_path / table)]) == 2
        assert f"would name {file_says}: give --texture 0" in capsys.readouterr().err
    with pytest.raises(ValueError, match="at texture strength 0.25 but the file would name 0"):
        export(trained_run, tmp_path / "x.safetensors", evaluation=tmp_path / "at25.json")
    # a re-stamp keeps the file's strength (and checks the new table against it); --texture 0 unnames it
    kept, _ = export(shipped, tmp_path / "kept.safetensors", evaluation=tmp_path / "at25.json")
    assert read_weights_info(kept).texture == 0.25
    with pytest.raises(ValueError, match="give --texture 0"):
        export(shipped, tmp_path / "x.safetensors", evaluation=tmp_path / "at0.json")
    off, _ = export(shipped, tmp_path / "off.safetensors", texture=0.0, evaluation=tmp_path / "at0.json")
    assert read_weights_info(off).texture == 0.0
    assert main(["export", str(trained_run), str(tmp_path / "x.safetensors"), "--texture", "9"]) == 2
    assert "texture must be a number from 0 to 4" in capsys.readouterr().err
    (tmp_path / "odd.json").write_text(json.dumps({**at, "texture_strength": None}))
    assert (
        main(
            [
                "export",
                str(trained_run),
                str(tmp_path / "x.safetensors"),
                "--evaluation",
                str(tmp_path / "odd.json"),
            ]
        )
        == 2
    )
    assert "odd.json: its texture_strength is unusable" in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists()
    for not_a_table in ("[]", '"text"'):  # an AttributeError's traceback before
        (tmp_path / "odd.json").write_text(not_a_table)
        capsys.readouterr()
        assert main([*argv, str(tmp_path / "odd.json")]) == 2
        assert "is not an evaluation table" in capsys.readouterr().err


def test_export_cli_and_bad_checkpoint(trained_run, tmp_path, capsys):
    assert main(["export", str(trained_run / "ckpt.pt"), str(tmp_path / "o.safetensors"), "--half"]) == 0
    assert "fp16" in capsys.readouterr().out
    bogus = tmp_path / "bogus.pt"
    bogus.write_bytes(b"not a checkpoint")
    assert main(["export", str(bogus), str(tmp_path / "x.safetensors")]) == 2
    assert "bogus.pt" in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists()
    # a photo given by mistake: said so, not "(101)" or torch's advice to load it unsafely
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "photo.pt", format="JPEG")
    assert main(["export", str(tmp_path / "photo.pt"), str(tmp_path / "x.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "not a training checkpoint (not a PyTorch file: it is a JPEG picture)" in err
    assert "weights_only" not in err and err.count("\n") == 1
    legacy = tmp_path / "legacy.pt"  # torch's older format, a pickle: read as safely as a zip
    torch.save(
        torch.load(trained_run / "ckpt.pt", weights_only=True), legacy, _use_new_zipfile_serialization=False
    )
    assert legacy.read_bytes()[:1] == b"\x80"
    assert main(["export", str(legacy), str(tmp_path / "legacy.safetensors")]) == 0
    capsys.readouterr()
    from fractions import Fraction  # any class: a weights-only load refuses it

    torch.save({"thing": Fraction(1, 3)}, tmp_path / "objects.pt")
    assert main(["export", str(tmp_path / "objects.pt"), str(tmp_path / "x.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "holds Python objects besides tensors" in err and "weights_only" not in err


def test_ratio_bands_follow_nvidias_blocks():
    assert ratio_band(0.0) is None
    assert ratio_band(0.05) == 0 and ratio_band(0.1) == 0 and ratio_band(0.1001) == 1
    assert ratio_band(0.6) == 5 and ratio_band(0.75) == len(BANDS) - 1


def test_opencv_baselines_change_only_the_hole():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    hole = np.zeros((32, 32), bool)
    hole[10:20, 12:22] = True
    for method in ("telea", "ns"):
        out = opencv_inpaint(img, hole, method)
        assert np.array_equal(out[~hole], img[~hole])
        assert not np.array_equal(out[hole], img[hole])


@pytest.mark.parametrize("method", ["telea", "ns"])
def test_opencv_baselines_never_read_the_truth_in_a_hole_on_the_border(method):
    """cv2.inpaint reads the image's outer frame even where the mask says hole: a hole along the
    border got the truth there. What is under the hole must not change the fill."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    hole = np.zeros((40, 40), bool)
    hole[:, :12] = True  # the whole left side, its frame included
    other = img.copy()
    other[hole] = 255 - img[hole]
    a, b = opencv_inpaint(img, hole, method), opencv_inpaint(other, hole, method)
    assert np.array_equal(a, composite(img, b, hole))


@pytest.mark.slow
def test_evaluate_writes_a_table_with_three_methods(trained_run, prepared, mask_dir, tmp_path):
    export(trained_run, tmp_path / "m.safetensors", name="tiny-test")
    cfg = EvalConfig(
        data=str(prepared),
        weights=str(tmp_path / "m.safetensors"),
        task="both",
        mask_dir=str(mask_dir),
        mask_holdout=0.0,
        out=str(tmp_path / "eval.md"),
        progress=False,
        grid_rows=4,
    )
    report = evaluate(cfg)
    md = (tmp_path / "eval.md").read_text()
    assert md == report.markdown
    for label in ("OpenCV Telea", "OpenCV Navier-Stokes", "Retoucher U-Net"):
        assert md.count(label) >= 2  # centre table and irregular table
    assert "Centre hole (16x16 on 64x64)" in md
    data = json.loads((tmp_path / "eval.json").read_text())
    rows = data["rows"]
    assert {r["method"] for r in rows} == {"telea", "ns", "ours"}
    centre = [r for r in rows if r["task"] == "center"]
    assert len(centre) == 3 and all(r["images"] == 6 for r in centre)
    bands = {r["band"] for r in rows if r["task"] == "irregular"}
    assert "all" in bands and bands - {"all"} <= {"0-10%", "10-20%", "20-30%", "30-40%", "40-50%", "50-60%"}
    assert len(bands) >= 4
    for r in rows:
        assert 0 <= r["hole_l1"] < 1 and 0 < r["ssim"] <= 1 and r["psnr"] > 0
    assert "psnr_gain_db" in data["vs_navier_stokes"]["center"]
    with Image.open(report.grid) as grid:
        assert grid.size[0] > 5 * 64 and grid.size[1] > 4 * 64
    # the test metrics can go into the weight file's provenance
    path, prov = export(trained_run, tmp_path / "with-eval.safetensors", evaluation=tmp_path / "eval.json")
    assert read_weights_info(path).provenance["metrics"]["test"]["rows"] == rows


def test_evaluate_uses_all_masks_when_none_is_held_out(trained_run, prepared, make_masks, tmp_path):
    masks = make_masks(tmp_path / "few", count=2, size=64)
    cfg = EvalConfig(
        data=str(prepared),
        weights=str(trained_run / "ckpt.pt"),
        task="irregular",
        mask_dir=str(masks),
        mask_holdout=0.2,
        out=str(tmp_path / "eval.md"),
        progress=False,
        grid_rows=0,
        limit=2,
    )
    logged: list[str] = []
    report = evaluate(cfg, log=logged.append)
    assert any(r.band == "all" and r.images > 0 for r in report.rows)
    assert "none of the 2 masks" in report.markdown and "all files" in report.markdown
    assert any("none of the 2 masks" in line for line in logged)


def test_evaluate_accepts_a_checkpoint_and_needs_masks_for_irregular(trained_run, prepared, tmp_path, capsys):
    rc = main(
        [
            "evaluate",
            "--data",
            str(prepared),
            "--weights",
            str(trained_run / "ckpt.pt"),
            "--task",
            "center",
            "--limit",
            "3",
            "--out",
            str(tmp_path / "e.md"),
            "--grid-rows",
            "0",
            "--no-progress",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "| OpenCV Navier-Stokes | 3 |" in out and "Retoucher U-Net" in out
    rc = main(
        [
            "evaluate",
            "--data",
            str(prepared),
            "--weights",
            str(trained_run / "ckpt.pt"),
            "--task",
            "irregular",
            "--out",
            str(tmp_path / "f.md"),
        ]
    )
    assert rc == 2 and "--mask-dir" in capsys.readouterr().err


def test_evaluate_on_the_val_split_is_labelled_and_stays_out_of_weight_files(
    trained_run, prepared, tmp_path, capsys
):
    rc = main(
        [
            "evaluate",
            "--data",
            str(prepared),
            "--weights",
            str(trained_run / "ckpt.pt"),
            "--task",
            "center",
            "--split",
            "val",
            "--out",
            str(tmp_path / "val.md"),
            "--grid-rows",
            "0",
            "--no-progress",
        ]
    )
    assert rc == 0
    data = json.loads((tmp_path / "val.json").read_text())
    assert data["split"] == "val" and data["val_images"] == 4 and "test_images" not in data
    assert all(r["images"] == 4 for r in data["rows"])  # the fixture's 4 val images, not its 6 test ones
    assert (tmp_path / "val.md").read_text().startswith(
        "## Evaluation of"
    ) and "Val split of" in capsys.readouterr().out
    rc = main(
        [
            "export",
            str(trained_run),
            str(tmp_path / "w.safetensors"),
            "--evaluation",
            str(tmp_path / "val.json"),
        ]
    )
    assert rc == 2 and "val split" in capsys.readouterr().err
    assert not (tmp_path / "w.safetensors").exists()


def test_export_stamps_a_test_table_only_on_the_weights_it_measured(
    trained_run, prepared, tiny_weights, tmp_path
):
    """export --evaluation checked the table's split, mirrored pass and strength but not whose it
    was: run A's table went into run B's weight file without a word. evaluate writes the weights'
    fingerprint (at half precision: a checkpoint's EMA weights and their --half export are one
    network); export refuses another model's table."""
    from trainer.export import weights_fingerprint

    common = dict(data=str(prepared), task="center", progress=False, grid_rows=0, limit=2)
    table = evaluate(EvalConfig(weights=str(trained_run), out=str(tmp_path / "a.md"), **common))
    stamped = json.loads((tmp_path / "a.json").read_text())
    assert stamped["weights"] == table.weights and len(table.weights) == 32
    path, _ = export(trained_run, tmp_path / "a.safetensors", half=True, evaluation=tmp_path / "a.json")
    again = evaluate(EvalConfig(weights=str(path), out=str(tmp_path / "a16.md"), **common))
    assert again.weights == table.weights  # the file the app loads: the same fingerprint
    export(path, tmp_path / "restamped.safetensors")  # its own table stays true of it
    with pytest.raises(ValueError, match="measured other weights"):
        export(tiny_weights, tmp_path / "b.safetensors", evaluation=tmp_path / "a.json")
    assert not (tmp_path / "b.safetensors").exists()
    from engine.weights import load_weights

    assert weights_fingerprint(load_weights(tiny_weights)[0]) != table.weights


def test_export_refuses_a_name_that_is_no_weight_file(trained_run, tmp_path):
    """export wrote safetensors as my-model.pt; evaluate, --init and soup then read it as a
    checkpoint and failed with torch.load's message."""
    for name in ("my-model.pt", "my-model"):
        with pytest.raises(ValueError, match="ends in .safetensors"):
            export(trained_run, tmp_path / name)
        assert not (tmp_path / name).exists()
    assert export(trained_run, tmp_path / "my-model.SAFETENSORS")[0].is_file()


def test_compare_puts_more_models_on_the_same_images_and_holes(
    trained_run, prepared, mask_dir, tiny_weights, tmp_path
):
    """A compared model scores in a shared run exactly what it scores on its own."""
    export(trained_run, tmp_path / "m.safetensors", name="tiny-test")
    common = dict(
        data=str(prepared), task="both", mask_dir=str(mask_dir), mask_holdout=0.0, progress=False, grid_rows=0
    )
    shared = evaluate(
        EvalConfig(
            weights=str(tmp_path / "m.safetensors"),
            compare=(str(tiny_weights),),
            out=str(tmp_path / "shared.md"),
            **common,
        )
    )
    alone = evaluate(EvalConfig(weights=str(tiny_weights), out=str(tmp_path / "alone.md"), **common))
    key = lambda r: (r.task, r.band)  # noqa: E731
    cmp1 = {key(r): r for r in shared.rows if r.method == "cmp1"}
    own = {key(r): r for r in alone.rows if r.method == "ours"}
    assert cmp1.keys() == own.keys() and len(cmp1) >= 3
    for k, r in own.items():
        assert (cmp1[k].hole_l1, cmp1[k].psnr, cmp1[k].ssim) == pytest.approx((r.hole_l1, r.psnr, r.ssim))
    baselines = {(r.method, *key(r)): r.psnr for r in shared.rows if r.method in ("telea", "ns")}
    assert baselines == {(r.method, *key(r)): r.psnr for r in alone.rows if r.method in ("telea", "ns")}
    assert shared.comparisons["center/cmp1"] == pytest.approx(alone.comparisons["center"])
    data = json.loads((tmp_path / "shared.json").read_text())
    assert data["compared"] == {"cmp1": "tiny-random"}
    md = shared.markdown
    assert "| Retoucher U-Net |" in md and "| tiny-random |" in md  # a compared model by its name
    assert md.startswith("## Evaluation of tiny-test, tiny-random")
    assert "tiny-random vs Navier-Stokes (centre hole)" in md


def test_evaluate_limits_below_their_range_are_refused(prepared, tiny_weights, tmp_path, capsys):
    """--limit 0 or -1 and --photos-limit -1 evaluated the whole split without a word."""
    base = [
        "evaluate",
        "--data",
        str(prepared),
        "--weights",
        str(tiny_weights),
        "--out",
        str(tmp_path / "e.md"),
    ]
    for extra, says in (
        (["--limit", "0"], "--limit must be at least 1"),
        (["--limit", "-1"], "--limit must be at least 1"),
        (["--task", "photos", "--photos-limit", "-1"], "--photos-limit must be at least 0"),
    ):
        assert main([*base, *extra]) == 2
        assert says in capsys.readouterr().err
    assert not (tmp_path / "e.md").exists()


def test_a_report_that_cannot_be_written_is_refused_before_the_evaluation(
    prepared, tiny_weights, tmp_path, capsys, monkeypatch
):
    """--out naming a folder (``--out runs/birds-ft``) or a read-only file ran the whole
    evaluation and then lost its figures in a traceback."""
    import trainer.evaluate as ev

    monkeypatch.setattr(ev, "_load_inpainter", lambda *a: pytest.fail("the evaluation started"))
    folder = tmp_path / "runs" / "birds-ft"
    folder.mkdir(parents=True)
    kept = tmp_path / "kept.md"
    kept.write_text("mine")
    kept.chmod(0o444)
    base = ["evaluate", "--data", str(prepared), "--weights", str(tiny_weights), "--task", "center", "--out"]
    for out, says in ((folder, "is a folder; name the report's file"), (kept, "the file is read-only")):
        assert main([*base, str(out)]) == 2
        assert says in capsys.readouterr().err
    assert kept.read_text() == "mine" and not any(folder.iterdir())


def test_two_models_of_one_name_are_told_apart_by_their_file(prepared, tiny_weights, tmp_path):
    """The name is inside the file (renaming the file changed nothing, as the old refusal advised):
    a compared model named as another one gets its --compare position and file name."""
    other = tmp_path / "other.safetensors"
    other.write_bytes(tiny_weights.read_bytes())
    report = evaluate(
        EvalConfig(
            data=str(prepared),
            weights=str(tiny_weights),
            compare=(str(other),),
            task="center",
            out=str(tmp_path / "e.md"),
            progress=False,
        )
    )
    assert report.compared == {"cmp1": "tiny-random (--compare 1: other.safetensors)"}
    assert report.markdown.startswith("## Evaluation of tiny-random, tiny-random (--compare 1: other")


def test_evaluate_fills_with_the_mirrored_pass_unless_told_not_to(prepared, tiny_weights, tmp_path):
    """By default ours fills as the app does (the mirrored second pass); --no-mirror (mirror=False)
    fills in one pass, another fill of the (not mirror-symmetric) tiny model, and the report
    says which in its text and its JSON."""
    runs = {}
    for mirror in (True, False):
        out = tmp_path / f"m{mirror}.md"
        cfg = EvalConfig(
            data=str(prepared), weights=str(tiny_weights), task="center", out=str(out), progress=False,
            grid_rows=0, mirror=mirror,
        )  # fmt: skip
        runs[mirror] = (evaluate(cfg), json.loads(out.with_suffix(".json").read_text()))
    (both, both_json), (one, one_json) = runs[True], runs[False]
    assert both_json["mirror"] is True and one_json["mirror"] is False
    assert "mirror image" in both.markdown and "One network pass per fill." in one.markdown
    ours = {m: next(r for r in runs[m][0].rows if r.method == "ours") for m in runs}
    assert ours[True].psnr != pytest.approx(ours[False].psnr, abs=1e-6)
    ns = {m: next(r for r in runs[m][0].rows if r.method == "ns").psnr for m in runs}
    assert ns[True] == ns[False]  # the same images and holes
    assert EvalConfig(data="d", weights="w").mirror is True  # the default, as the app fills


def test_evaluate_refuses_a_holdout_larger_than_the_models_training_held_out(prepared, mask_dir, tmp_path):
    """Hold-outs are nested: a model trained with --mask-holdout 0.1 trained on part of the 20%
    that evaluate holds out by default, so the irregular task would score it on training masks."""
    from engine.unet import PConvUNet, UNetConfig
    from engine.weights import save_weights

    recipe = [{"mask_dir": str(mask_dir), "masks": "center:0.5,folder:0.5", "mask_holdout": 0.1}]
    config = UNetConfig(widths=(8, 16, 16, 16), kernels=(7, 5, 3, 3), image_size=64)
    weights = save_weights(tmp_path / "m.safetensors", PConvUNet(config).eval(), {"recipe": recipe})
    common = dict(
        data=str(prepared), weights=str(weights), task="irregular", mask_dir=str(mask_dir),
        out=str(tmp_path / "e.md"), progress=False, grid_rows=0, limit=1,
    )  # fmt: skip
    with pytest.raises(ValueError, match="trained with --mask-holdout 0.1"):
        evaluate(EvalConfig(mask_holdout=0.2, **common))
    assert evaluate(EvalConfig(mask_holdout=0.1, **common)).rows
    # a compared model of the same name (another folder's m.safetensors, trained on no mask
    # folder) took the first one's place in the check, which then passed
    (tmp_path / "other").mkdir()
    twin = save_weights(tmp_path / "other" / "m.safetensors", PConvUNet(config).eval(), {"recipe": []})
    with pytest.raises(ValueError, match="trained with --mask-holdout 0.1"):
        evaluate(EvalConfig(mask_holdout=0.2, compare=[str(twin)], **common))


def test_a_weight_files_test_table_stays_true_of_it(trained_run, tmp_path):
    """The table stamped in a weight file is what the app's fills measured: a re-stamp naming
    another strength without a new table is refused, and so is a table measured without the
    mirrored pass the app fills with, or a JSON that is no evaluate table at all."""
    table = {"model": "t", "split": "test", "rows": [], "texture_strength": 0.5, "mirror": True}
    (tmp_path / "t.json").write_text(json.dumps(table))
    shipped, _ = export(trained_run, tmp_path / "s.safetensors", texture=0.5, evaluation=tmp_path / "t.json")
    with pytest.raises(
        ValueError, match="test table ran the model at texture strength 0.5 but the file would name 1"
    ):
        export(shipped, tmp_path / "s1.safetensors", texture=1.0)
    assert not (tmp_path / "s1.safetensors").exists()
    (tmp_path / "one.json").write_text(json.dumps({**table, "mirror": False}))
    with pytest.raises(ValueError, match="without the mirrored pass"):
        export(trained_run, tmp_path / "m.safetensors", texture=0.5, evaluation=tmp_path / "one.json")
    (tmp_path / "foreign.json").write_text(json.dumps({"settings": {"size": 64}}))
    with pytest.raises(ValueError, match="has no split, rows"):
        export(trained_run, tmp_path / "f.safetensors", evaluation=tmp_path / "foreign.json")


def test_raw_weights_do_not_carry_the_ema_models_validation(trained_run, tmp_path):
    _, raw = export(trained_run, tmp_path / "raw.safetensors", ema=False)
    _, ema = export(trained_run, tmp_path / "ema.safetensors")
    assert raw["weights"] == "raw" and raw["metrics"] == {}
    assert ema["weights"] == "EMA" and ema["metrics"]["validation"]


def test_a_tensor_beyond_fp16_is_refused_not_written_as_infinity(trained_run, tmp_path):
    from engine.weights import WeightsError, load_weights, save_weights

    model, _ = load_weights(export(trained_run, tmp_path / "a.safetensors")[0])
    next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)).running_var[0] = 1e5
    with pytest.raises(WeightsError, match="does not fit fp16"):
        save_weights(tmp_path / "h.safetensors", model, half=True)
    assert not (tmp_path / "h.safetensors").exists()
    save_weights(tmp_path / "f.safetensors", model)  # fp32 holds it


def test_a_checkpoint_without_a_usable_model_is_a_clear_error(trained_run, tmp_path, capsys):
    ckpt = torch.load(trained_run / "ckpt.pt", weights_only=False)
    ckpt["ema_model"] = {k: v for k, v in ckpt["ema_model"].items() if "decoder" not in k}
    torch.save(ckpt, tmp_path / "bad.pt")
    assert main(["export", str(tmp_path / "bad.pt"), str(tmp_path / "x.safetensors")]) == 2
    assert "holds no usable model" in capsys.readouterr().err


def test_an_old_one_pass_table_or_raw_weights_with_the_emas_table_are_refused(trained_run, tmp_path):
    """A table that names no mirrored pass is from before it (one pass); evaluate scores a
    checkpoint's EMA weights, so its table is not the raw weights'."""
    old = {"model": "t", "split": "test", "rows": []}
    (tmp_path / "old.json").write_text(json.dumps(old))
    with pytest.raises(ValueError, match="without the mirrored pass"):
        export(trained_run, tmp_path / "a.safetensors", evaluation=tmp_path / "old.json")
    (tmp_path / "now.json").write_text(json.dumps({**old, "mirror": True}))
    with pytest.raises(ValueError, match="--no-ema"):
        export(trained_run, tmp_path / "b.safetensors", ema=False, evaluation=tmp_path / "now.json")
    export(trained_run, tmp_path / "c.safetensors", evaluation=tmp_path / "now.json")


def test_data_loader_workers_leave_the_groups_signals_to_the_trainer():
    """A SIGTERM to the process group (a device call's, a job's) must reach the main process
    alone, which checkpoints after its step; a worker killed by it made the step raise."""
    import subprocess
    import sys

    code = (
        "import signal; from trainer.data import worker_init; worker_init(0); "
        "print(signal.getsignal(signal.SIGTERM) is signal.SIG_IGN, signal.getsignal(signal.SIGINT) is signal.SIG_IGN)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True"]
