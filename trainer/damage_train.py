"""``retoucher-train damage train``: train the damage detector on synthetic damage.

Read top to bottom: :func:`train_damage` opens the run folder (resuming its checkpoint when one
is there), builds the data and the model (fresh, or ``--init`` from a detector weight file),
runs the steps, checkpoints every ``ckpt_every`` steps and at the end, then calibrates the
threshold on train photos with fresh damage and exports ``RUN_DIR/damage.safetensors``.

A run stops at ``steps`` or after ``minutes`` of training, whichever comes first (a session has
a time limit: the run always ends with a checkpoint and an export). ``RUN_DIR/ckpt.pt`` holds
everything to continue exactly (model, optimiser, step, config); ``train.log``, ``log.jsonl``
and TensorBoard (``RUN_DIR/tb``) hold the losses and batch F1 as the inpainting trainer's do.

Loss: binary cross-entropy plus soft Dice (damage is a few percent of the pixels; Dice keeps
the thin lines from being drowned by the background).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from engine.atomic import write_text_atomic
from engine.damage import DamageDetector, DamageNet, DamageNetConfig, load_damage_weights, save_damage_weights
from engine.stop_request import StopRequest

from .checkpoint import data_change, new_run_folder, remove_temporaries, run_lock, write_torch_file
from .damage_data import DamageDataset, collate_damage, damage_photos
from .damage_eval import calibrate
from .damage_synth import synthesize
from .data import StepBatchSampler, load_rgb, worker_init
from .runlog import append_log, truncate_log

__all__ = ["DamageRun", "DamageTrainConfig", "DamageTrainError", "train_damage"]

CKPT_FORMAT = "retoucher.damage-train"
CKPT_VERSION = 1


class DamageTrainError(ValueError):
    pass


@dataclass(frozen=True)
class DamageTrainConfig:
    data: str
    out: str
    steps: int = 20000
    minutes: float | None = None
    batch_size: int = 16
    crop: int = 256
    lr: float = 2e-3
    warmup: int = 200
    width: int = 16
    seed: int = 0
    workers: int = 1
    log_every: int = 50
    ckpt_every: int = 500
    init: str | None = None
    calibration_photos: int = 120

    def __post_init__(self) -> None:
        g = DamageNetConfig(width=max(1, self.width)).granularity
        checks = [
            (self.steps >= 1, f"--steps must be at least 1, got {self.steps}"),
            (self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}"),
            (self.width >= 1, f"--width must be at least 1, got {self.width}"),
            (
                self.crop >= g and self.crop % g == 0,
                f"--crop must be a positive multiple of {g}, got {self.crop}",
            ),
            (self.lr > 0, f"--lr must be positive, got {self.lr}"),
            (self.warmup >= 0 and self.workers >= 0, "--warmup and --workers must not be negative"),
            (self.log_every >= 1 and self.ckpt_every >= 1, "--log-every and --ckpt-every must be at least 1"),
            (
                self.minutes is None or self.minutes >= 0,
                f"--minutes must not be negative, got {self.minutes}",
            ),
            (self.calibration_photos >= 1, "--calibration-photos must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


def _loss(logits: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    bce = F.binary_cross_entropy_with_logits(logits, label)
    p = torch.sigmoid(logits)
    inter = (p * label).sum()
    dice = 1 - (2 * inter + 1) / (p.sum() + label.sum() + 1)
    with torch.no_grad():
        pred = p >= 0.5
        tp = (pred & (label > 0.5)).sum().item()
        prec = tp / max(1, pred.sum().item())
        rec = tp / max(1, (label > 0.5).sum().item())
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return bce + dice, {"bce": bce.item(), "dice": dice.item(), "batch_f1": f1}


def _lr(config: DamageTrainConfig, step: int) -> float:
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    t = min(1.0, (step - config.warmup) / max(1, config.steps - config.warmup))
    return config.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))


def with_warmup(config: DamageTrainConfig) -> DamageTrainConfig:
    """A new run's warm-up: at most a tenth of its steps (a run shorter than the 200 steps never
    reached --lr nor decayed; the published detector's 4,000 steps are as before). Kept in the
    recipe, so a run resumed, with another --steps too, follows the same warm-up."""
    return dataclasses.replace(config, warmup=min(config.warmup, config.steps // 10))


RUN_KEYS = ("steps", "minutes", "workers")
"""What a resumed run may change: its schedule's length (``--steps``), this invocation's time
budget and data workers; the recipe is kept."""


def _open(
    config: DamageTrainConfig, explicit: set[str] | None
) -> tuple[DamageTrainConfig, dict[str, Any] | None]:
    """The config to run with and the checkpoint to resume (None: a new run). ``explicit``: the
    options the user gave (None: all of ``config``'s fields count as given)."""
    out = Path(config.out)
    ckpt_path = out / "ckpt.pt"
    if not ckpt_path.is_file():
        out.mkdir(parents=True, exist_ok=True)
        return config, None
    try:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch.load raises many kinds for a damaged file
        raise DamageTrainError(f"{ckpt_path} is not a readable checkpoint ({exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CKPT_FORMAT or ckpt.get("version") != CKPT_VERSION:
        raise DamageTrainError(f"{ckpt_path} is not a damage-detector training checkpoint")
    try:  # a key of another version's config is left out (a traceback of TypeError before)
        known = {f.name for f in dataclasses.fields(DamageTrainConfig)}
        saved = DamageTrainConfig(**{k: v for k, v in dict(ckpt["config"]).items() if k in known})
    except (KeyError, TypeError, ValueError) as exc:
        raise DamageTrainError(f"{ckpt_path} holds no usable training config ({exc})") from None
    given = {f.name for f in dataclasses.fields(config)} - {"data", "out"} if explicit is None else explicit
    ignored = sorted(k for k in given - set(RUN_KEYS) if getattr(config, k) != getattr(saved, k))
    if ignored:
        names = ", ".join("--" + k.replace("_", "-") for k in ignored)
        _log(out, f"resuming {ckpt_path} at step {ckpt['step']}: the run keeps its recipe; ignored {names}")
    # --minutes and --workers belong to this invocation; --steps to the run unless given again;
    # the run folder is the one given (a copy of a run resumed wrote into the original's), and
    # so is the data, which may have moved
    changes = {
        "minutes": config.minutes,
        "workers": config.workers,
        "out": config.out,
        "data": config.data or saved.data,
    }
    if "steps" in given:
        changes["steps"] = config.steps
    if changes.get("steps", saved.steps) != saved.steps:
        _log(
            out,
            f"the schedule's length changes from {saved.steps} to {changes['steps']} steps: the learning "
            f"rate follows the new cosine from step {ckpt['step']} (to continue a finished run from its "
            "weights with a fresh schedule, use --init instead)",
        )
    return dataclasses.replace(saved, **changes), ckpt


PHOTO_KEYS = ("train_photos", "photos")


def _photos_info(photos: list[Path]) -> dict[str, Any]:
    """What the run trains on, for its checkpoint: how many photos and a hash of which (each by its
    folder and name, so that a source tree moved as a whole is the same data)."""
    names = sorted(f"{p.parent.name}/{p.name}" for p in photos)
    digest = hashlib.sha256("\n".join(names).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return {"train_photos": len(photos), "photos": digest}


def _save(
    path: Path,
    model: DamageNet,
    opt: torch.optim.Optimizer,
    step: int,
    config: DamageTrainConfig,
    data_info: dict[str, Any],
) -> None:
    payload = {
        "format": CKPT_FORMAT,
        "version": CKPT_VERSION,
        "step": step,
        "config": dataclasses.asdict(config),
        "data_info": data_info,
        "model_config": json.loads(model.config.to_json()),
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
    }
    write_torch_file(path, payload)


def _log(out: Path, msg: str) -> None:
    tqdm.write(msg)
    with open(out / "train.log", "a", encoding="utf-8") as fh:
        fh.write(msg + "\n")


def export_detector(model: DamageNet, config: DamageTrainConfig, step: int, path: Path) -> dict[str, Any]:
    """Calibrate the threshold on train photos with fresh damage and write the weight file."""
    model.eval()
    det = DamageDetector.from_model(model)
    rng_seed = config.seed + 7919
    samples = (  # one at a time: a list held them all (8 bytes a pixel)
        synthesize(np.random.default_rng([rng_seed, image_id]), load_rgb(p))
        for image_id, p in damage_photos(config.data, "train", config.calibration_photos)
    )
    threshold, figures = calibrate(det.probability, samples)
    provenance = {
        "threshold": threshold,
        "calibration": {"split": "train", "seed": rng_seed, **figures},
        "steps": step,
        "data": str(config.data),
        "recipe": {
            k: v for k, v in dataclasses.asdict(config).items() if k not in ("data", "out", "workers", "init")
        },
        "init": config.init,
        "trained": time.strftime("%Y-%m-%d"),
    }
    save_damage_weights(path, model, provenance, name=f"damage-{step}")
    return provenance


class DamageRun(NamedTuple):
    """What :func:`train_damage` made: the exported ``weights``, the ``step`` the run reached and
    whether that is the end of its schedule (False: ``minutes`` stopped it first; the same
    command resumes it)."""

    weights: Path
    step: int
    finished: bool


def train_damage(config: DamageTrainConfig, explicit: set[str] | None = None) -> DamageRun:
    """Train (or resume), checkpoint, calibrate and export (also when ``minutes`` stops the run
    before its steps). ``explicit``: the options given on the command line; a resumed run takes
    only ``steps``, ``minutes`` and ``workers`` of them (None: every field of ``config`` counts as
    given)."""
    out = Path(config.out)
    # a new folder is taken away again if the run fails before writing in it; one training at a
    # time in a run folder
    with new_run_folder(out), run_lock(out):
        return _train_damage(config, explicit)


def _train_damage(config: DamageTrainConfig, explicit: set[str] | None) -> DamageRun:
    config, ckpt = _open(config, explicit)
    if ckpt is None:  # a new run's recipe records the warm-up it takes
        config = with_warmup(config)
    out = Path(config.out)
    photos = [p for _, p in damage_photos(config.data, "train")]
    if not photos:
        raise DamageTrainError(f"no train photos under {config.data}; run 'retoucher-train prepare' first")

    for temp in remove_temporaries(out):  # a run killed while it saved
        _log(out, f"removed {temp.name}, left by a run killed while it saved")
    data_info = _photos_info(photos)
    if ckpt is not None:  # a re-prepared or another --data: other photos, without a word before
        changed = data_change(ckpt.get("data_info") or {}, data_info, PHOTO_KEYS)
        if changed:
            _log(out, changed)
    if ckpt is not None:
        model = DamageNet(DamageNetConfig(**ckpt["model_config"]))
        model.load_state_dict(ckpt["model"])
        start = int(ckpt["step"])
    elif config.init:
        model, _ = load_damage_weights(config.init)
        start = 0
        width = model.config.width
        if width != config.width:  # the file's architecture wins: the recipe says what trained
            if explicit is None or "width" in explicit:
                _log(
                    out,
                    f"--init {config.init} is a width-{width} detector: --width {config.width} is ignored",
                )
            config = dataclasses.replace(config, width=width)
    else:
        torch.manual_seed(config.seed)
        model = DamageNet(DamageNetConfig(width=config.width))
        start = 0
    # what a killed run logged after its checkpoint (all of it, with no checkpoint) goes
    truncate_log(out / "log.jsonl", start)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4)
    if ckpt is not None:
        opt.load_state_dict(ckpt["optimizer"])
    write_text_atomic(out / "config.json", json.dumps(dataclasses.asdict(config), indent=2) + "\n")
    _log(
        out,
        f"damage detector: {len(photos)} train photos, {sum(p.numel() for p in model.parameters())} "
        f"parameters, steps {start} -> {config.steps}"
        + (f" (at most {config.minutes} min)" if config.minutes else ""),
    )

    sampler = StepBatchSampler(
        len(photos), config.batch_size, seed=config.seed, start_step=start, stop_step=config.steps
    )
    loader = DataLoader(
        DamageDataset(photos, config.crop, config.seed),
        batch_sampler=sampler,
        num_workers=config.workers,
        collate_fn=collate_damage,
        worker_init_fn=worker_init if config.workers else None,  # the signals are the trainer's
        multiprocessing_context="spawn" if config.workers else None,
        persistent_workers=False,
    )
    from torch.utils.tensorboard import SummaryWriter

    # the checkpoint's own step stays (not logged again; what a killed run wrote after it goes)
    writer = SummaryWriter(str(out / "tb"), purge_step=start + 1)
    t0 = time.monotonic()
    step = start
    window: dict[str, list[float]] = {}
    t_window = time.monotonic()
    bar = tqdm(total=config.steps, initial=start, desc="damage train", unit="step", dynamic_ncols=True)
    with StopRequest() as stop:  # Ctrl-C and SIGTERM: stop after a whole step, with a checkpoint
        try:
            for images, labels in loader:
                for group in opt.param_groups:
                    group["lr"] = _lr(config, step)
                x = images.float().div_(127.5).sub_(1.0).contiguous(memory_format=torch.channels_last)
                loss, terms = _loss(model(x), labels)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                bar.update(1)
                for k, v in terms.items():
                    window.setdefault(k, []).append(v)
                out_of_time = config.minutes is not None and time.monotonic() - t0 > 60 * config.minutes
                stopping = stop.requested or out_of_time  # the steps since the last record: logged
                if step % config.log_every == 0 or step == config.steps or stopping:
                    record = {
                        "step": step,
                        "lr": _lr(config, step - 1),
                        **{k: float(np.mean(v)) for k, v in window.items()},
                        "s_per_step": (time.monotonic() - t_window) / len(window["bce"]),
                    }
                    window, t_window = {}, time.monotonic()
                    append_log(out / "log.jsonl", record)
                    for k, v in record.items():
                        if k != "step":
                            writer.add_scalar(f"train/{k}", v, step)
                    _log(
                        out,
                        " ".join(
                            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items()
                        ),
                    )
                if stop.requested:
                    break
                if step % config.ckpt_every == 0 and not out_of_time and step < config.steps:
                    _save(out / "ckpt.pt", model, opt, step, config, data_info)
                if out_of_time:
                    _log(
                        out,
                        f"stopping at step {step} of {config.steps}: the {config.minutes}-minute budget is spent "
                        f"(learning rate {_lr(config, step):.3g}: the schedule did not finish)",
                    )
                    break
        finally:
            bar.close()
            writer.close()
    _save(out / "ckpt.pt", model, opt, step, config, data_info)
    if stop.requested and step < config.steps:  # in the last step: the run is done, exported
        _log(out, f"stopped by {stop.why} at step {step}: checkpoint saved; run the same command to resume")
        raise KeyboardInterrupt
    weights = out / "damage.safetensors"
    try:
        provenance = export_detector(model, config, step, weights)
    except KeyboardInterrupt:  # after the steps (no StopRequest any more): it exited without a line
        _log(
            out,
            f"interrupted while calibrating and exporting after step {step}: the checkpoint is kept; "
            "run the same command to finish",
        )
        raise
    _log(
        out,
        f"exported {weights}: threshold {provenance['threshold']:.3f}, calibration {provenance['calibration']}",
    )
    return DamageRun(weights, step, step >= config.steps)
