"""The damage detector's trainer: synthetic damage, the tolerant metrics, calibration, the
training run (resume, time budget, export) and the evaluate command."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.damage import DamageDetector, read_damage_info
from trainer.__main__ import main as train_main
from trainer.damage_eval import CLEAN_BUDGET, Counts, calibrate
from trainer.damage_synth import DamageSample, classical_detector, synthesize
from trainer.damage_train import DamageTrainConfig, DamageTrainError, train_damage


def _photo(seed: int = 0, h: int = 192, w: int = 256) -> np.ndarray:
    """Smooth colour ramps: a photo-like background with room for damage to show."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([yy, xx, (yy + xx) / 2], axis=2) * rng.uniform(80, 160, 3) + rng.uniform(40, 80, 3)
    return base.clip(0, 255).astype(np.uint8)


def test_synthesize_is_seeded_and_labels_what_it_drew() -> None:
    photo = _photo()
    a = synthesize(np.random.default_rng(5), photo)
    b = synthesize(np.random.default_rng(5), photo)
    np.testing.assert_array_equal(a.damaged, b.damaged)
    np.testing.assert_array_equal(a.label, b.label)
    assert a.damaged.dtype == np.uint8 and a.damaged.shape == photo.shape and a.label.shape == photo.shape[:2]
    labelled = np.zeros(photo.shape[:2], bool)
    for seed in range(8):
        s = synthesize(np.random.default_rng(seed), photo)
        diff = np.abs(s.damaged.astype(int) - s.clean.astype(int)).max(axis=2)
        assert s.label.any()
        np.testing.assert_array_equal(s.kinds > 0, s.label)  # every damage pixel has its kind
        # the damage is where the label says: far larger changes inside than outside
        assert diff[s.label].mean() > 4 * diff[~s.label].mean() + 5
        assert s.label.mean() < 0.3  # damage, not a wash over the whole photo
        labelled |= s.label
    assert labelled.mean() > s.label.mean()  # each seed draws different damage


def test_a_photo_under_20_px_on_a_side_is_synthesized_too() -> None:
    """A 200x6 photo (prepare keeps it) made the ageing's stripe region fail, "high - low < 0",
    at the end of a training's calibration: no detector was exported, and evaluate failed."""
    for shape in ((6, 200, 3), (33, 9, 3), (3, 3, 3)):
        photo = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
        for seed in range(40):  # enough draws to reach the stripes
            sample = synthesize(np.random.default_rng(seed), photo)
            assert sample.damaged.shape == photo.shape


def test_undamaged_samples_have_no_label_and_equal_the_clean_print() -> None:
    s = synthesize(np.random.default_rng(3), _photo(1), damage=False)
    assert not s.label.any()
    np.testing.assert_array_equal(s.damaged, s.clean)


def test_classical_detector_flags_a_thin_line_not_flat_grey() -> None:
    img = np.full((64, 64, 3), 120, np.uint8)
    assert not classical_detector(img).any()
    img[:, 30] = 250
    found = classical_detector(img)
    assert found[:, 30].all() and found.sum() == 64


def test_counts_tolerance() -> None:
    label = np.zeros((32, 32), bool)
    label[:, 10] = True
    shifted = np.roll(label, 1, axis=1)
    c = Counts()
    c.add(shifted, label, np.zeros((32, 32), bool))
    assert c.scores(0) == (0.0, 0.0, 0.0)
    assert c.scores(2) == (1.0, 1.0, 1.0)
    c2 = Counts()
    c2.add(label, label, np.ones((32, 32), bool))
    assert c2.scores(0)[2] == 1.0 and c2.clean_share == 1.0


def test_calibrate_respects_the_clean_budget() -> None:
    """A fake detector: damage pixels at 0.9, a clean textured region at 0.6 covering 2% of the
    photo. The best F1 alone would accept 0.6; the clean budget forces a threshold above it."""
    label = np.zeros((50, 100), bool)
    label[10:40, 20] = True
    busy = np.zeros((50, 100), bool)
    busy[:, 90:92] = True  # 2% of the pixels

    def prob(image: np.ndarray) -> np.ndarray:
        p = np.where(busy, 0.6, 0.01).astype(np.float32)
        if image[0, 0, 0] == 1:  # the damaged version
            p[label] = 0.9
        return p

    damaged = np.zeros((50, 100, 3), np.uint8)
    damaged[0, 0, 0] = 1
    sample = DamageSample(damaged=damaged, clean=np.zeros_like(damaged), label=label)
    threshold, figures = calibrate(prob, [sample])
    assert 0.6 < threshold <= 0.9
    assert figures["clean_flagged"] <= CLEAN_BUDGET and figures["f1_2px"] == 1.0
    assert figures["within_budget"] is True


def test_calibrate_counts_samples_made_one_at_a_time_and_keeps_none() -> None:
    """The end of a damage training held every calibration sample at once (about 8 bytes a pixel:
    2.9 GB for 120 photos of 3 MP); made one at a time, each goes once counted."""
    import gc
    import weakref

    def prob(image: np.ndarray) -> np.ndarray:
        return (image[..., 0] / 255.0).astype(np.float32)

    made = [synthesize(np.random.default_rng([5, k]), _photo(k, 64, 96)) for k in range(4)]
    alive, most = [], 0

    def one_at_a_time():
        nonlocal most
        for s in made:
            copy = DamageSample(s.damaged.copy(), s.clean.copy(), s.label.copy())
            alive.append(weakref.ref(copy.damaged.base if copy.damaged.base is not None else copy.damaged))
            gc.collect()
            most = max(most, sum(r() is not None for r in alive))
            yield copy

    assert calibrate(prob, one_at_a_time()) == calibrate(prob, made)  # the same figures
    assert most <= 2  # the one being counted and the next: none kept


def test_calibrate_says_when_no_threshold_meets_the_budget() -> None:
    label = np.zeros((20, 20), bool)
    label[5, 5] = True
    sample = DamageSample(np.zeros((20, 20, 3), np.uint8), np.zeros((20, 20, 3), np.uint8), label)
    _, figures = calibrate(lambda image: np.ones(image.shape[:2], np.float32), [sample])
    assert figures["within_budget"] is False and figures["clean_flagged"] == 1.0


def test_evaluation_grows_masks_as_the_app_does() -> None:
    """The trainer scores masks grown as retoucher's detect/batch/app grow them."""
    from retoucher.damage import DEFAULT_DILATE
    from trainer.damage_eval import GROW

    assert GROW == DEFAULT_DILATE


def test_recall_by_kind() -> None:
    label = np.zeros((20, 40), bool)
    label[:, 5] = True
    label[:, 30] = True
    kinds = np.where(label, 1, 0).astype(np.uint8)
    kinds[:, 30] = 4
    pred = np.zeros_like(label)
    pred[:, 5] = True
    c = Counts()
    c.add(pred, label, None, kinds)
    assert c.kind_recall() == {1: 1.0, 4: 0.0}


def test_evaluation_counts_the_flags_on_the_untouched_photos(prepared) -> None:
    """``untouched_flagged`` is the share flagged on the photos as they are (no ageing, no
    damage): a detector that flags exactly those images scores 1.0 there and 0 on the aged clean
    prints; one that flags nothing there scores 0."""
    from trainer.damage_data import damage_photos
    from trainer.damage_eval import evaluate_detectors
    from trainer.data import load_rgb

    as_they_are = {load_rgb(path).tobytes() for _, path in damage_photos(prepared, "val", 3)}

    def flags_untouched(im: np.ndarray) -> np.ndarray:
        return np.full(im.shape[:2], float(im.tobytes() in as_they_are), np.float32)

    rows = {r.method: r for r in evaluate_detectors(flags_untouched, 0.5, prepared, limit=3, progress=False)}
    assert rows["ours"].photos == 3
    assert rows["ours"].untouched_flagged == 1.0 and rows["ours"].clean_flagged == 0.0
    none = evaluate_detectors(lambda im: 1.0 - flags_untouched(im), 0.5, prepared, limit=3, progress=False)
    assert {r.method: r for r in none}["ours"].untouched_flagged == 0.0


def test_scene_posts_twigs_and_wires_are_drawn_as_described() -> None:
    """The hard negatives drawn into the scene: posts are opaque bars, mostly upright; twigs are
    opaque; wires run mostly across (a print's scratches mostly along the film)."""
    from trainer.damage_synth import _posts, _twigs, _wires

    green = np.zeros((240, 320, 3), np.float32)
    green[..., 1] = 200  # no scene colour (wood, bark, metal, paint) is near it
    upright = twigs_seen = 0
    for seed in range(12):
        posts = _posts(np.random.default_rng(seed), green.copy())
        changed = np.abs(posts - green).max(axis=2) > 60  # opaque: far from what it covers
        assert changed.any()
        rows, cols = np.nonzero(changed)
        upright += np.ptp(rows) > np.ptp(cols)
        twigs = _twigs(np.random.default_rng(seed), green.copy())
        twigs_seen += (np.abs(twigs - green).max(axis=2) > 60).any()
    assert upright >= 6  # most posts stand upright (several posts in one crop spread sideways)
    assert twigs_seen >= 9  # a twig may grow out of the crop at once
    across = 0
    for seed in range(20):
        wires = np.abs(_wires(np.random.default_rng(seed), green.copy()) - green).max(axis=2) > 30
        rows, cols = np.nonzero(wires)
        across += rows.size > 0 and np.ptp(cols) > 2 * np.ptp(rows)
    assert across >= 12


def _config(prepared, out, **kw) -> DamageTrainConfig:
    base = dict(
        data=str(prepared),
        out=str(out),
        steps=4,
        batch_size=2,
        crop=32,
        width=2,
        workers=0,
        log_every=2,
        ckpt_every=2,
        calibration_photos=2,
    )
    return DamageTrainConfig(**{**base, **kw})


def test_train_exports_a_loadable_calibrated_detector(prepared, tmp_path) -> None:
    out = tmp_path / "run"
    weights = train_damage(_config(prepared, out)).weights
    info = read_damage_info(weights)
    assert info.provenance["steps"] == 4 and 0 < info.threshold < 1
    assert info.provenance["calibration"]["split"] == "train"
    det = DamageDetector(weights, device="cpu")
    result = det(_photo())
    assert result.probability.shape == (192, 256)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2, 4] and all(np.isfinite(r["bce"]) for r in log)


def test_resume_continues_exactly(prepared, tmp_path) -> None:
    """4 steps at once equal a run stopped after 1 step (time budget) and resumed: same weights.
    No warm-up, so the cosine schedule over the 4 steps matters."""
    torch.use_deterministic_algorithms(True)
    try:
        straight = train_damage(_config(prepared, tmp_path / "a", warmup=0)).weights
        assert not train_damage(_config(prepared, tmp_path / "b", warmup=0, minutes=0.0)).finished
        resumed = train_damage(_config(prepared, tmp_path / "b", warmup=0)).weights
    finally:
        torch.use_deterministic_algorithms(False)
    sa, _ = DamageDetector(straight, device="cpu").model.state_dict(), None
    sb = DamageDetector(resumed, device="cpu").model.state_dict()
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k])
    assert read_damage_info(resumed).provenance["steps"] == 4


def test_time_budget_stops_with_checkpoint_and_export(prepared, tmp_path) -> None:
    out = tmp_path / "run"
    run = train_damage(_config(prepared, out, steps=1000, minutes=0.0))
    assert run.step == 1 and not run.finished
    assert read_damage_info(run.weights).provenance["steps"] == 1
    ckpt = torch.load(out / "ckpt.pt", weights_only=True)
    assert ckpt["step"] == 1
    assert "budget is spent" in (out / "train.log").read_text()


def test_resume_names_what_it_ignores_and_a_changed_schedule(prepared, tmp_path) -> None:
    out = tmp_path / "run"
    train_damage(_config(prepared, out, steps=2))
    train_damage(_config(prepared, out, steps=3, lr=0.5))
    log = (out / "train.log").read_text()
    assert "ignored --lr" in log
    assert "schedule's length changes from 2 to 3" in log
    assert torch.load(out / "ckpt.pt", weights_only=True)["config"]["lr"] != 0.5


@pytest.mark.parametrize(
    "bad", [dict(crop=30), dict(steps=0), dict(batch_size=0), dict(width=0), dict(lr=0.0), dict(minutes=-1.0)]
)
def test_config_is_checked_up_front(prepared, tmp_path, bad) -> None:
    with pytest.raises(ValueError):
        _config(prepared, tmp_path / "run", **bad)


def test_a_foreign_checkpoint_is_refused(prepared, tmp_path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    torch.save({"format": "something else"}, out / "ckpt.pt")
    with pytest.raises(DamageTrainError, match="not a damage-detector training checkpoint"):
        train_damage(_config(prepared, out))


def test_init_from_weights(prepared, tmp_path) -> None:
    first = train_damage(_config(prepared, tmp_path / "a", steps=2)).weights
    second = train_damage(_config(prepared, tmp_path / "b", steps=2, init=str(first))).weights
    assert read_damage_info(second).provenance["init"] == str(first)


def test_evaluate_command_prints_both_detectors(prepared, tmp_path, capsys) -> None:
    weights = train_damage(_config(prepared, tmp_path / "run", steps=2)).weights
    report = tmp_path / "eval.json"
    rc = train_main(
        [
            "damage",
            "evaluate",
            "--data",
            str(prepared),
            "--weights",
            str(weights),
            "--limit",
            "3",
            "--device",
            "cpu",
        ]
        + ["--json", str(report)]
    )
    assert rc == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "| ours |" in out and "classical" in out
    assert "damage evaluate" in captured.err  # its progress bar
    rows = json.loads(report.read_text())["rows"]
    methods = [r["method"] for r in rows]
    assert methods[2:] == ["ours", "ours, grown 2 px"] and rows[0]["photos"] == 3
    assert rows[3]["clean_flagged"] >= rows[2]["clean_flagged"]  # growing never flags fewer
    assert (
        rc == 0 and train_main(["damage", "evaluate", "--data", str(prepared), "--weights", str(report)]) == 2
    )
    capsys.readouterr()
    quiet = ["damage", "evaluate", "--data", str(prepared), "--weights", str(weights), "--limit", "2"]
    assert train_main([*quiet, "--device", "cpu", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "| ours |" in captured.out and "damage evaluate" not in captured.err


def test_resume_from_the_command_line_keeps_the_schedule(prepared, tmp_path) -> None:
    """Options left out on a resume keep the run's values (no default --steps sneaks in). A run
    that --minutes stopped before its --steps exits with status 3 (exported, not done: as the
    inpainting trainer's --time-limit), the resumed run that ends its schedule with 0."""
    out = tmp_path / "run"
    common = ["damage", "train", "--data", str(prepared), "--out", str(out), "--crop", "32", "--width", "2"]
    common += ["--batch-size", "2", "--workers", "0", "--calibration-photos", "2", "--log-every", "1"]
    assert train_main([*common, "--steps", "3", "--minutes", "0"]) == 3
    assert (
        torch.load(out / "ckpt.pt", weights_only=True)["step"] == 1 and (out / "damage.safetensors").is_file()
    )
    assert train_main(["damage", "train", "--data", str(prepared), "--out", str(out), "--workers", "0"]) == 0
    ckpt = torch.load(out / "ckpt.pt", weights_only=True)
    assert ckpt["step"] == 3 and ckpt["config"]["steps"] == 3
    assert "schedule's length changes" not in (out / "train.log").read_text()
    assert train_main(["damage", "train", "--data", str(prepared), "--out", str(out), "--crop", "30"]) == 2


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_mid_step_stops_after_the_step_with_a_checkpoint_and_resumes_exactly(
    prepared, tmp_path, monkeypatch, sig
) -> None:
    """Ctrl-C was a KeyboardInterrupt wherever it landed: during the optimiser's step the
    checkpoint said step 2 with AdamW's state of 3 updates (the resumed run made one more than
    asked, other weights); SIGTERM saved nothing and killed the run. Both stop after the step
    now, checkpointed and logged, and the resumed run ends as an uninterrupted one."""
    import os
    import signal

    import trainer.damage_train as dt

    torch.use_deterministic_algorithms(True)
    try:
        straight = train_damage(_config(prepared, tmp_path / "a", warmup=0, steps=5, log_every=4)).weights
        real_loss = dt._loss
        calls = []

        def signalling(logits, label):
            calls.append(1)
            if len(calls) == 3:  # in the third step, before its update
                os.kill(os.getpid(), getattr(signal, sig))
            return real_loss(logits, label)

        monkeypatch.setattr(dt, "_loss", signalling)
        out = tmp_path / "b"
        with pytest.raises(KeyboardInterrupt):
            train_damage(_config(prepared, out, warmup=0, steps=5, log_every=4))
        ckpt = torch.load(out / "ckpt.pt", weights_only=True)
        assert ckpt["step"] == 3 and all(s["step"] == 3 for s in ckpt["optimizer"]["state"].values())
        assert f"stopped by {sig} at step 3" in (out / "train.log").read_text()
        log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
        assert [r["step"] for r in log] == [3]  # the window of steps 1-3 is kept, not dropped
        monkeypatch.setattr(dt, "_loss", real_loss)
        resumed = train_damage(_config(prepared, out, warmup=0, steps=5, log_every=4)).weights
    finally:
        torch.use_deterministic_algorithms(False)
    sa = DamageDetector(straight, device="cpu").model.state_dict()
    sb = DamageDetector(resumed, device="cpu").model.state_dict()
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0)


def test_a_fresh_run_drops_the_log_and_temporaries_a_killed_one_left(prepared, tmp_path) -> None:
    """Killed before its first checkpoint, a run left its log lines (and, killed while saving, a
    temporary as large as a checkpoint): the next run logged its steps after them again."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "log.jsonl").write_text('{"step": 2, "bce": 1.0}\n{"step": 4, "bce": 0.9}\n')
    temp = out / ".ckpt.abcd1234.tmp.pt"
    temp.write_bytes(b"half a checkpoint")
    train_damage(_config(prepared, out, steps=2))
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2] and log[0]["bce"] != 1.0
    assert not temp.exists() and f"removed {temp.name}" in (out / "train.log").read_text()


@pytest.mark.parametrize("short", [1023, 1000, 1024])
def test_a_crop_of_a_photo_at_or_just_under_the_crop_size(short) -> None:
    """A photo whose short side is at most 0.1% under the crop was left unscaled, and the crop's
    position then had no room (a ValueError ended the training run)."""
    from trainer.damage_data import random_crop

    photo = np.zeros((short, 1500, 3), np.uint8)
    for seed in range(5):
        assert random_crop(np.random.default_rng(seed), photo, 1024).shape == (1024, 1024, 3)


def test_damage_evaluate_checks_its_json_path_before_the_work(prepared, tmp_path, capsys) -> None:
    """--json naming a folder (or a read-only file) ran the whole evaluation, then ended in a
    traceback with the figures lost."""
    import time

    start = time.perf_counter()
    rc = train_main(
        ["damage", "evaluate", "--data", str(prepared), "--json", str(tmp_path), "--device", "cpu"]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "is a folder" in err and "Traceback" not in err
    assert f"({tmp_path / 'damage.json'})" in err  # a JSON file's name, not eval.md
    assert time.perf_counter() - start < 30  # refused before the detector ran over the photos


def test_damage_evaluate_refuses_a_negative_limit(prepared) -> None:
    from trainer.damage_eval import evaluate_detectors

    with pytest.raises(ValueError, match="--limit must be at least 0"):
        evaluate_detectors(lambda im: np.zeros(im.shape[:2], np.float32), 0.5, prepared, limit=-3)


def test_a_resumed_run_keeps_the_checkpoints_step_in_tensorboard(prepared, tmp_path) -> None:
    """As the inpainting trainer's: TensorBoard's purge began at the checkpoint's step, which the
    resumed run does not log again (log.jsonl kept it)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    train_damage(_config(prepared, out, steps=2))
    train_damage(_config(prepared, out, steps=4))
    events = EventAccumulator(str(out / "tb"))
    events.Reload()
    assert [e.step for e in events.Scalars("train/bce")] == [2, 4]


def test_a_copied_run_resumes_in_its_own_folder(prepared, tmp_path) -> None:
    """A run copied to another folder and resumed there wrote its checkpoint, weights and logs
    into the original's folder (the one its checkpoint named) and left the copy as it was; a
    run moved away failed on the missing folder. A checkpoint with a key of another version's
    config ended in a TypeError traceback."""
    import shutil

    first, copy = tmp_path / "a", tmp_path / "b"
    train_damage(_config(prepared, first, steps=2))
    before = (first / "log.jsonl").read_text()
    shutil.copytree(first, copy)
    train_damage(_config(prepared, copy, steps=4))
    assert (first / "log.jsonl").read_text() == before
    assert [json.loads(line)["step"] for line in (copy / "log.jsonl").read_text().splitlines()] == [2, 4]
    assert torch.load(copy / "ckpt.pt", weights_only=True)["step"] == 4
    moved = tmp_path / "c"
    first.rename(moved)
    train_damage(_config(prepared, moved, steps=4))
    ckpt = torch.load(moved / "ckpt.pt", weights_only=True)
    ckpt["config"]["from_a_later_version"] = 1
    torch.save(ckpt, moved / "ckpt.pt")
    train_damage(_config(prepared, moved, steps=5))
    assert torch.load(moved / "ckpt.pt", weights_only=True)["step"] == 5


def test_resuming_on_other_photos_says_so_and_a_moved_folder_does_not(prepared, tmp_path) -> None:
    """A run resumed with another or a re-prepared --data trained on the other photos without a
    word (the checkpoint kept no record of its photos)."""
    import shutil

    from trainer.prepare import PrepareConfig, prepare

    out = tmp_path / "run"
    train_damage(_config(prepared, out, steps=2))
    moved = tmp_path / "moved"
    shutil.copytree(prepared, moved)
    train_damage(_config(moved, out, steps=3))
    assert "data differs" not in (out / "train.log").read_text()
    other = tmp_path / "other"  # the same photos split with another seed
    prepare(
        PrepareConfig(
            out=other, images_dir=prepared.parent / "photos", size=64, workers=1, progress=False, seed=5
        )
    )
    train_damage(_config(other, out, steps=4))
    log = (out / "train.log").read_text()
    assert "warning: the data differs from the checkpoint's (photos " in log
    assert torch.load(out / "ckpt.pt", weights_only=True)["step"] == 4


def test_init_from_a_detector_of_another_width_records_the_width_that_trained(prepared, tmp_path) -> None:
    """--init FILE --width 4 trained FILE's width-2 network, but the exported file's recipe said
    width 4."""
    weights = train_damage(_config(prepared, tmp_path / "a", steps=1)).weights
    tuned = train_damage(_config(prepared, tmp_path / "b", steps=1, init=str(weights), width=4)).weights
    info = read_damage_info(tuned)
    assert info.config.width == 2 and info.provenance["recipe"]["width"] == 2
    assert "is a width-2 detector: --width 4 is ignored" in (tmp_path / "b" / "train.log").read_text()


def test_a_second_damage_training_into_a_folder_in_use_is_refused(prepared, tmp_path, capsys) -> None:
    """The run folder's lock (the inpainting trainer's): a second run into it is refused in one
    line, exit status 2, and the first one's files are left alone."""
    import fcntl
    import os

    from trainer.__main__ import main

    out = tmp_path / "run"
    out.mkdir()
    fd = os.open(out / ".run.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a run in another process holds it (flock: per open file)
        args = [
            "damage",
            "train",
            "--data",
            str(prepared),
            "--out",
            str(out),
            "--steps",
            "2",
            "--workers",
            "0",
        ]
        assert main(args) == 2
        assert "is in use by another training run" in capsys.readouterr().err
        assert sorted(p.name for p in out.iterdir()) == [".run.lock"]
    finally:
        os.close(fd)


def test_a_signal_in_the_last_step_still_exports(prepared, tmp_path, monkeypatch) -> None:
    """The run is done after its last step: a Ctrl-C landing in it stopped without the export
    (exit 130), which only a second run then wrote."""
    import os
    import signal

    import trainer.damage_train as dt

    real_loss = dt._loss
    calls = []

    def signalling(logits, label):
        calls.append(1)
        if len(calls) == 2:  # the second and last step
            os.kill(os.getpid(), signal.SIGINT)
        return real_loss(logits, label)

    monkeypatch.setattr(dt, "_loss", signalling)
    weights = train_damage(_config(prepared, tmp_path / "run", steps=2)).weights
    assert read_damage_info(weights).provenance["steps"] == 2


def test_a_ctrl_c_during_the_calibration_says_so_and_the_same_command_finishes(
    prepared, tmp_path, monkeypatch, capsys
) -> None:
    """Ctrl-C while the finished run calibrated and exported: exit 130 and not a line, on the
    screen or in train.log."""
    import trainer.damage_train as dt

    out = tmp_path / "run"
    real = dt.export_detector

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(dt, "export_detector", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_damage(_config(prepared, out))
    said = "interrupted while calibrating and exporting after step 4: the checkpoint is kept"
    assert said in capsys.readouterr().out and said in (out / "train.log").read_text()
    monkeypatch.setattr(dt, "export_detector", real)
    run = train_damage(_config(prepared, out))  # the same command: resumes at its end, exports
    assert run.weights.is_file() and run.finished


@pytest.mark.parametrize("trainer", ["inpainting", "damage"])
def test_a_run_refused_for_its_data_leaves_no_empty_run_folder(prepared, tmp_path, capsys, trainer) -> None:
    """A mistyped --data (or one not prepared) left the --out folder made for the run, empty but
    for its lock, with any parents it made; a folder that was there stays, and so does one the
    run wrote in."""
    not_prepared = tmp_path / "photos"
    not_prepared.mkdir()
    command = ["train"] if trainer == "inpainting" else ["damage", "train"]

    def run(out) -> int:
        return train_main([*command, "--data", str(not_prepared), "--out", str(out), "--steps", "2"])

    assert run(tmp_path / "runs" / "deep" / "first") == 2
    assert "not a prepared data folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]
    (tmp_path / "there").mkdir()
    assert run(tmp_path / "there" / "run") == 2
    assert (tmp_path / "there").is_dir() and not (tmp_path / "there" / "run").exists()


def test_a_short_damage_run_reaches_its_learning_rate_and_decays() -> None:
    """A run shorter than the 200-step warm-up never reached --lr nor decayed; a long one is as
    before (the published detector's 4,000 steps)."""
    from trainer.damage_train import _lr, with_warmup

    short = with_warmup(DamageTrainConfig(data="d", out="o", steps=100, lr=1e-3))
    rates = [_lr(short, s) for s in range(100)]
    assert max(rates) == pytest.approx(1e-3) and rates[-1] < 0.1 * 1e-3
    assert rates.index(max(rates)) == 9  # a tenth of the run
    long = with_warmup(DamageTrainConfig(data="d", out="o", steps=4000, lr=1e-3))
    assert _lr(long, 0) == pytest.approx(1e-3 / 200) and _lr(long, 199) == pytest.approx(1e-3)


def test_a_resumed_damage_run_keeps_the_warm_up_it_started_with(prepared, tmp_path) -> None:
    """The warm-up followed --steps, which a resume may change: a 1000-step run resumed at 150
    with --steps 4000 dropped from 0.99 x lr to 0.76 x lr and warmed up again."""
    out = tmp_path / "run"
    train_damage(_config(prepared, out, steps=2, warmup=200))
    assert torch.load(out / "ckpt.pt", weights_only=True)["config"]["warmup"] == 0  # a tenth of 2
    train_damage(_config(prepared, out, steps=40, warmup=200))
    assert torch.load(out / "ckpt.pt", weights_only=True)["config"]["warmup"] == 0
