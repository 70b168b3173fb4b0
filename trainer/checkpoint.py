"""Training checkpoints: everything needed to continue a run exactly, and where a run's weights
come from (a checkpoint it resumes, or ``--init``).

A checkpoint is a ``torch.save`` dict written atomically (a run killed mid-write keeps the
previous file) and read back with ``weights_only=True`` (tensors and plain Python values only;
NumPy's RNG state is stored as tensors for that reason). Its keys: ``model``, ``model_config``,
``ema`` ({decay, updates} or None) and ``ema_model`` (a plain state dict or None),
``optimizer``, ``scheduler``, ``scaler``, ``discriminator`` (trainer.adversarial's state, or
None), ``step``, ``config`` (the TrainConfig), ``rng``, ``data_state`` (where the data order
stands), ``lineage`` (one record per training phase, this one last), ``metrics`` and ``losses``
(the last logged), ``data_info``, ``vgg``, ``elapsed_s``.

* :class:`TrainState` and :class:`Checkpointer` - what a run saves, and the writing of
  ``RUN_DIR/ckpt.pt`` (and ``ckpt_<step>.pt`` with ``--keep-checkpoints``).
* :func:`open_run`, :func:`initial_model`, :func:`resume` - starting a run: the checkpoint it
  continues and its merged config, the model (fresh, from ``--init`` or resumed) and the
  restored optimiser, scheduler, scaler, EMA, RNG and data position.
* :func:`remove_temporaries` - the partial files of a run killed while saving.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from engine.atomic import atomic_path, check_writable, leftover_temporaries, lock_exclusive, temporary_target
from engine.unet import PConvUNet, UNetConfig
from engine.weights import load_weights

from .config import (
    DERIVED_FIELDS,
    PER_INVOCATION_FIELDS,
    RUNTIME_FIELDS,
    TrainConfig,
    TrainError,
    model_config,
)
from .ema import ModelEMA
from .widen import can_widen, widen

if TYPE_CHECKING:
    from .adversarial import Adversary
    from .data import PreparedImages
    from .native import NativeCrops

__all__ = [
    "CHECKPOINT_FORMAT",
    "CKPT_NAME",
    "CheckpointError",
    "Checkpointer",
    "TrainState",
    "data_info",
    "initial_model",
    "is_weight_file",
    "load_checkpoint",
    "load_init",
    "model_from_checkpoint",
    "open_run",
    "phase_entry",
    "remove_temporaries",
    "new_run_folder",
    "run_lock",
    "check_same_processes",
    "resume",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
    "write_torch_file",
]

CHECKPOINT_FORMAT = "retoucher.train-checkpoint"
CHECKPOINT_VERSION = 1
CKPT_NAME = "ckpt.pt"


class CheckpointError(ValueError):
    """Not a readable Retoucher training checkpoint."""


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": n["bit_generator"],
            "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
            "has_gauss": n["has_gauss"],
            "gauss": n["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


RUN_LOCK = ".run.lock"  # in the run folder: held by the process (rank 0) training into it


@contextlib.contextmanager
def new_run_folder(out: Path) -> Iterator[None]:
    """Make ``out`` (and its missing parents) for a run; a run that fails before it wrote anything
    there (a mistyped --data, an empty data folder) takes the folders it made away again: an empty
    run folder holding only :data:`RUN_LOCK` was left behind."""
    made = [folder for folder in (out, *out.parents) if not folder.exists()]
    out.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        for folder in made:  # the deepest first; one that holds anything else stays, with its parents
            try:
                if any(p.name != RUN_LOCK for p in folder.iterdir()) or _lock_held(folder / RUN_LOCK):
                    break  # another run took the folder meanwhile (this one was refused for it)
                (folder / RUN_LOCK).unlink(missing_ok=True)
                folder.rmdir()
            except OSError:
                break
        raise


def _lock_held(path: Path) -> bool:
    """Another process holds the run lock ``path`` (False: none, or no lock file)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        return not lock_exclusive(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out``'s :data:`RUN_LOCK` while the body runs: a second
    training into the same folder (a resubmitted job, a second terminal) is refused with a
    TrainError instead of both overwriting ``ckpt.pt`` and interleaving the log. The kernel drops
    the lock of a killed process. Where the folder cannot hold the file or the file system has no
    locks, nothing is held (as on Windows)."""
    try:
        fd = os.open(out / RUN_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield  # a read-only folder: the run's own checks say what is wrong with it
        return
    try:
        if not lock_exclusive(fd):
            raise TrainError(
                f"{out} is in use by another training run (it holds {out / RUN_LOCK}); wait for it to "
                "end or stop it, or choose another --out"
            )
        yield
    finally:
        os.close(fd)


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    path = Path(path)
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **payload}
    write_torch_file(path, payload)
    return path


def write_torch_file(path: Path, payload: dict[str, Any]) -> None:
    """``torch.save`` ``payload`` to ``path`` atomically (the file before stays whole on any
    failure). torch reports a short write (a full disk, a file size limit) as a RuntimeError
    from its C++ writer ("unexpected pos ..."): an OSError naming the file here, which the
    command line reports in one line."""
    try:
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
    except RuntimeError as exc:
        raise OSError(f"cannot write {path} (is the disk full?): {str(exc).splitlines()[0]}") from exc


_MAGIC = {
    b"\xff\xd8\xff": "a JPEG picture",
    b"\x89PNG": "a PNG picture",
}


def _kind_of(head: bytes) -> str:
    """``": it is ..."`` for a file whose first bytes say what it is, else ""."""
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            return f": it is {kind}"
    return ""


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / CKPT_NAME
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise CheckpointError(f"{path} cannot be read ({exc.strerror})") from exc
    # torch.save writes a zip archive (or, in its legacy format, a pickle, which the weights-only
    # load below reads safely); its error for anything else was "(101)"
    if head[:2] != b"PK" and head[:1] != b"\x80":
        raise CheckpointError(
            f"{path} is not a training checkpoint (not a PyTorch file{_kind_of(head)}): give a run "
            f"folder or its {CKPT_NAME}"
        )
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "weights_only" in str(exc) or "Weights only load failed" in str(exc):
            # torch's advice (load it with weights_only=False) would run whatever the file holds
            text = "it holds Python objects besides tensors and plain values, which are never loaded"
        raise CheckpointError(f"{path} is not a readable training checkpoint ({text})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a Retoucher training checkpoint")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {ckpt.get('version')}, expected {CHECKPOINT_VERSION}"
        )
    ckpt["path"] = str(path)
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any], *, ema: bool = True) -> PConvUNet:
    """The model of a checkpoint (its EMA weights when present and ``ema``), in eval mode."""
    try:
        model = PConvUNet(UNetConfig.from_dict(ckpt["model_config"]))
        state = ckpt["model"]
        if ema and ckpt.get("ema_model") is not None:
            state = ckpt["ema_model"]
        model.load_state_dict(state)
    except (KeyError, TypeError, RuntimeError) as exc:  # a foreign or damaged checkpoint's model
        where = ckpt.get("path", "the checkpoint") if isinstance(ckpt, dict) else "the checkpoint"
        raise CheckpointError(f"{where} holds no usable model ({type(exc).__name__}: {exc})") from None
    return model.eval()


# ---- what a run saves


@dataclass
class TrainState:
    """The objects whose state a checkpoint carries (besides the RNG)."""

    model: PConvUNet
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    ema: ModelEMA | None = None
    adversary: Adversary | None = None  # the discriminator of --adversarial-weight


@dataclass
class Checkpointer:
    """Writes a run's checkpoints: :attr:`state` as it is now, with the facts of the run
    (config, architecture, the phases before this one, data, VGG, number of processes)."""

    out: Path
    state: TrainState
    config: TrainConfig
    model_config: UNetConfig
    lineage: list[dict[str, Any]]  # the phases before this one
    phase: dict[str, Any]  # this phase (:func:`phase_entry`); its steps are filled in when saved
    data_info: dict[str, Any]
    vgg: str
    world_size: int
    epoch_of: Callable[[int], float]  # the data epoch at a step (StepBatchSampler.epoch_of)
    vgg_calibration: dict[str, Any] | None = None  # trainer.vgg_calibration, kept on resume
    amp: str = "off"  # the autocast this run trains with (trainer.step.AMP_NAMES), kept on resume

    def payload(
        self, step: int, *, metrics: dict[str, float], losses: dict[str, float], elapsed_s: float
    ) -> dict[str, Any]:
        s, config = self.state, self.config
        return {
            "model": s.model.state_dict(),
            "model_config": self.model_config.to_dict(),
            "ema": {"decay": s.ema.decay, "updates": s.ema.updates} if s.ema is not None else None,
            "ema_model": s.ema.model.state_dict() if s.ema is not None else None,
            "optimizer": s.optimizer.state_dict(),
            "scheduler": s.scheduler.state_dict(),
            "scaler": s.scaler.state_dict(),
            "amp": self.amp,  # what --amp was on the device
            "discriminator": s.adversary.state_dict() if s.adversary is not None else None,
            "step": step,
            "config": config.to_dict(),
            "rng": rng_state(),
            "data_state": {
                "seed": config.seed,
                "batch_size": config.batch_size,
                "world_size": self.world_size,
                "position": step * config.batch_size * self.world_size,
                "epoch": self.epoch_of(step),
            },
            "lineage": self.lineage + [dict(self.phase, steps=step)],
            "metrics": metrics,
            "losses": losses,
            "data_info": self.data_info,
            "vgg": self.vgg,
            "vgg_calibration": self.vgg_calibration,
            "elapsed_s": elapsed_s,
        }

    def save(
        self, step: int, *, metrics: dict[str, float], losses: dict[str, float], elapsed_s: float
    ) -> Path:
        """Write ``ckpt.pt`` (and ``ckpt_<step>.pt`` with ``--keep-checkpoints``)."""
        payload = self.payload(step, metrics=metrics, losses=losses, elapsed_s=elapsed_s)
        path = save_checkpoint(self.out / CKPT_NAME, payload)
        if self.config.keep_checkpoints:
            save_checkpoint(self.out / f"ckpt_{step}.pt", payload)
        return path


def phase_entry(
    config: TrainConfig,
    *,
    start_step: int,
    world_size: int,
    device: torch.device,
    crop: int,
    architecture: UNetConfig,
    loss_weights: dict[str, float],
    vgg: str,
) -> dict[str, Any]:
    """This phase's record in the checkpoint's ``lineage`` (and in exported weight files) for a
    model of ``architecture``."""
    return {
        "phase": config.phase,
        "widths": list(architecture.widths),
        "frozen_bn": config.frozen_bn,
        "steps": start_step,
        "lr": config.learning_rate,
        "schedule": config.schedule,
        "warmup_steps": config.warmup_steps,
        "global_batch": config.batch_size * world_size,
        "loss": config.loss,
        "vgg": vgg if config.loss == "full" else None,
        "vgg_size": config.vgg_size,
        "hole_weighting": config.hole_weighting,
        "refine_lr_scale": config.refine_lr_scale if architecture.refine else None,
        "loss_weights": loss_weights,
        "disc_width": config.disc_width if config.adversarial_weight else None,
        "disc_layers": config.disc_layers if config.adversarial_weight else None,
        "disc_input": config.disc_input if config.adversarial_weight else None,
        "disc_fake": config.disc_fake if config.adversarial_weight else None,
        "disc_lr": config.disc_learning_rate if config.adversarial_weight else None,
        "adversarial_warmup": config.adversarial_warmup if config.adversarial_weight else None,
        "adversarial_on": config.adversarial_on if config.adversarial_weight else None,
        "adversarial_rim": config.adversarial_rim if config.adversarial_weight else None,
        "masks": config.mask_spec,
        "mask_dir": config.mask_dir,
        "mask_holdout": config.mask_holdout,
        "crop": crop,
        "native_share": config.native_share,
        "native_min_scale": config.native_min_scale if config.native_share else None,
        "ema": config.ema,
        "init": config.init,
        "seed": config.seed,
        "world_size": world_size,
        "device": str(device.type),
        "data": str(Path(config.data)),
    }


def data_info(
    data_dir: str | Path, train: PreparedImages, native: NativeCrops | None = None
) -> dict[str, Any]:
    """What the run trained on, for checkpoints and weight-file provenance."""
    data_dir = Path(data_dir)
    info: dict[str, Any] = {"prepared": str(data_dir), "train_images": len(train)}
    if native is not None:
        info["native_photos"] = native.usable
    settings = data_dir / "prepare.json"
    if settings.is_file():
        with contextlib.suppress(OSError, ValueError):
            meta = json.loads(settings.read_text(encoding="utf-8"))
            report = meta.get("report", {})
            info.update(
                source=meta.get("settings", {}).get("source"),
                mode=meta.get("settings", {}).get("mode"),
                size=meta.get("settings", {}).get("size"),
                format=meta.get("settings", {}).get("format"),
                kept=report.get("kept"),
                splits=report.get("splits"),
            )
    info["species"] = train.species
    return info


DATA_KEYS = ("train_images", "native_photos", "size", "kept", "splits", "species")
"""What of :func:`data_info` makes the data another (the folder's path may change: moved)."""


def data_change(before: dict[str, Any], now: dict[str, Any], keys: Iterable[str]) -> str | None:
    """A resumed run may read its data from another folder (moved), but data that is not the same
    (other photos, another split or size) changes the run: the warning to log, None when the
    checkpoint's ``before`` and ``now`` agree on ``keys`` (one the checkpoint lacks is not compared)."""
    changed = [k for k in keys if k in before and before[k] != now.get(k)]
    if not changed:
        return None
    what = ", ".join(f"{k} {before[k]!r} -> {now.get(k)!r}" for k in changed)
    return f"warning: the data differs from the checkpoint's ({what}); the run goes on with it"


# ---- starting a run: resume or --init


def open_run(config: TrainConfig, explicit: set[str] | None) -> tuple[TrainConfig, dict[str, Any] | None]:
    """The run's config and the checkpoint it continues (None for a new run). An existing
    ``RUN_DIR/ckpt.pt`` needs ``--resume``; its recipe then wins over the options given, except
    the runtime ones (``explicit``: the options given on the command line)."""
    ckpt_path = Path(config.out) / CKPT_NAME
    if not ckpt_path.is_file():
        if config.resume:  # it started a new run with the default recipe, without a word
            raise TrainError(
                f"--resume: there is no {ckpt_path} to continue (another --out, or a run stopped "
                "before its first checkpoint?); start the run with its options, without --resume"
            )
        return replace(config, mask_dir=_absolute(config.mask_dir)), None
    if not config.resume:
        raise TrainError(f"{ckpt_path} exists: pass --resume to continue that run, or choose another --out")
    try:  # its next save would fail only after steps that are then lost
        check_writable(ckpt_path)
    except PermissionError as exc:
        raise TrainError(
            f"{ckpt_path} cannot be written ({exc.strerror}): the run could not save its steps"
        ) from exc
    resumed = load_checkpoint(ckpt_path)
    # this invocation's own fields are not the run's (a checkpoint of an older version may
    # hold --stop-after -1 or --time-limit 0, refused now: they are reset below anyway)
    saved = {k: v for k, v in resumed["config"].items() if k not in PER_INVOCATION_FIELDS}
    merged = _merge_resumed(TrainConfig.from_dict(saved), config, explicit, int(resumed.get("step", 0)))
    return merged, resumed


def _merge_resumed(
    saved: TrainConfig, given: TrainConfig, explicit: set[str] | None, step: int = 0
) -> TrainConfig:
    """The saved config, with the runtime fields the user gave now; the per-invocation ones
    (--stop-after, --time-limit) are reset unless given again."""
    names = (
        explicit
        if explicit is not None
        else {f for f in given.to_dict() if getattr(given, f) != getattr(saved, f)}
    )
    defaults = TrainConfig()
    changes = {f: getattr(defaults, f) for f in PER_INVOCATION_FIELDS}
    for name in sorted(names - {"data", "out"}):
        new, old = getattr(given, name), getattr(saved, name)
        if name == "steps" and saved.schedule == "cosine" and new != old and step > saved.warmup_steps:
            # the cosine's length is part of the recipe once it has begun: the rate would jump
            # and the lineage record one clean cosine over the new length (within the warm-up
            # the rates so far are the same whatever the length: a speed probe sizes it there)
            raise TrainError(
                f"--steps cannot change when resuming a run with the cosine schedule past its "
                f"warm-up (checkpoint at step {step} of {old}, given {new}): the learning rate "
                f"follows a cosine over the run's --steps; resume with --steps {old}, or continue "
                "from it as a new phase with --init"
            )
        if name in RUNTIME_FIELDS:
            changes[name] = new
        elif name == "mask_dir" and _absolute(new) == _absolute(old):
            continue  # the same folder by another path
        elif new != old and not _same_in_effect(saved, name, new):
            raise TrainError(
                f"--{name.replace('_', '-')} cannot change when resuming (checkpoint has {old!r}, "
                f"given {new!r}); start a new run with --init instead"
            )
    return replace(
        saved, data=given.data or saved.data, out=given.out, mask_dir=_absolute(saved.mask_dir), **changes
    )


def _absolute(folder: str | None) -> str | None:
    """``--mask-dir`` as the run keeps it: an absolute path (one stored as typed, relative, failed
    or read another folder's masks when the run was resumed from another working folder)."""
    return str(Path(folder).expanduser().resolve()) if folder else folder


def _same_in_effect(saved: TrainConfig, name: str, new: Any) -> bool:
    """Whether giving ``name`` the value ``new`` leaves the value in effect as ``saved`` has it
    (an option whose default derives from others, named explicitly: DERIVED_FIELDS)."""
    effective = DERIVED_FIELDS.get(name)
    if effective is None:
        return False
    return getattr(replace(saved, **{name: new}), effective) == getattr(saved, effective)


def is_weight_file(path: str | Path) -> bool:
    """Whether ``path`` names a weight file (``.safetensors``, in any case) rather than a
    training checkpoint (a ``.pt`` file or a run folder): the one rule of every command that
    takes either."""
    return Path(path).suffix.lower() == ".safetensors"


def check_weight_file_name(out: str | Path) -> None:
    """ValueError unless ``out`` names a weight file (:func:`is_weight_file`): one written under
    a checkpoint's name (``soup --out x.pt``) was read as a checkpoint by evaluate, --init and
    export, and refused there."""
    if not is_weight_file(out):
        raise ValueError(
            f"{out}: a weight file's name ends in .safetensors (every command tells weight files "
            "from training checkpoints by it)"
        )


def load_init(path: str) -> tuple[UNetConfig, dict[str, torch.Tensor], list[dict[str, Any]]]:
    """Model config, state dict and lineage of an --init checkpoint (its EMA weights when it has
    them) or weight file."""
    p = Path(path)
    if is_weight_file(p):
        model, info = load_weights(p)
        return info.config, model.state_dict(), list(info.provenance.get("recipe", []))
    ckpt = load_checkpoint(p)
    state = ckpt["ema_model"] if ckpt.get("ema_model") is not None else ckpt["model"]
    return UNetConfig.from_dict(ckpt["model_config"]), state, list(ckpt.get("lineage", []))


def initial_model(
    config: TrainConfig, size: int, resumed: dict[str, Any] | None
) -> tuple[PConvUNet, list[dict[str, Any]], bool]:
    """The model to train on ``size`` px images (on the CPU), the lineage of the phases before
    this one, and whether the ``--init`` model was grown (a refinement head, or wider levels
    with ``--widths``: :mod:`trainer.widen`). The
    architecture comes from the resumed checkpoint, else from ``--init``, else from the options;
    a resumed model's weights are loaded by :func:`resume`."""
    lineage: list[dict[str, Any]] = []
    init_state = None
    widths = None  # wider levels to grow the --init model to
    if resumed is not None:
        mcfg = UNetConfig.from_dict(resumed["model_config"])
        lineage = list(resumed.get("lineage", []))[:-1]
    elif config.init:
        mcfg, init_state, lineage = load_init(config.init)
        if config.depth is not None and config.depth != mcfg.depth:
            raise TrainError(f"--depth {config.depth} but --init {config.init} has depth {mcfg.depth}")
        if config.widths:
            why = can_widen(mcfg, tuple(config.widths))
            if why:
                raise TrainError(
                    f"--widths {','.join(map(str, config.widths))} but --init {config.init} has "
                    f"{','.join(map(str, mcfg.widths))}: it can only be widened ({why})"
                )
            widths = tuple(config.widths)
    else:
        mcfg = model_config(config, size)
    if size % mcfg.granularity:
        raise TrainError(
            f"training images of {size}px do not fit a depth-{mcfg.depth} model: sides must be "
            f"multiples of {mcfg.granularity} (use --crop or --depth)"
        )
    grown = False
    if init_state is not None and config.refine is not None and config.refine != mcfg.refine:
        if mcfg.refine:
            raise TrainError(
                f"--init {config.init} already has a refinement head of width {mcfg.refine}; "
                f"it cannot be changed to {config.refine}"
            )
        mcfg = dataclasses.replace(mcfg, refine=config.refine)
        grown = True
    model = PConvUNet(mcfg)
    if init_state is not None:
        missing, unexpected = model.load_state_dict(init_state, strict=not grown)
        if unexpected or any(not k.startswith("refine.") for k in missing):
            raise TrainError(f"--init {config.init} does not fit the model: {missing + unexpected}")
        if widths is not None and widths != mcfg.widths:
            model = widen(model, widths, seed=config.seed)
            grown = True
    if config.frozen_bn != "none":
        if resumed is None and init_state is None:
            given = "" if config.freeze_bn else " (the default of --phase finetune)"
            raise TrainError(
                f"--freeze-bn {config.frozen_bn}{given} keeps the BatchNorm layers of --init: "
                "give --init, or --freeze-bn none"
            )
        model.freeze_bn(config.frozen_bn)
    return model, lineage, grown


def resume(state: TrainState, ckpt: dict[str, Any]) -> tuple[int, float]:
    """Restore the model, optimiser, scheduler, scaler, EMA, discriminator and RNG of ``ckpt``;
    returns the step to continue from and the seconds trained before. The data position follows
    from the step (trainer.data), the same as uninterrupted (the number of processes is the
    checkpoint's: :func:`check_same_processes`)."""
    state.model.load_state_dict(ckpt["model"])
    state.optimizer.load_state_dict(ckpt["optimizer"])
    state.scheduler.load_state_dict(ckpt["scheduler"])
    state.scaler.load_state_dict(ckpt["scaler"])
    if state.ema is not None and ckpt.get("ema_model") is not None:
        state.ema.model.load_state_dict(ckpt["ema_model"])
        state.ema.updates = int(ckpt["ema"]["updates"])
    if state.adversary is not None:
        if ckpt.get("discriminator") is None:
            raise CheckpointError(f"{ckpt.get('path', 'the checkpoint')} has no discriminator to resume")
        state.adversary.load_state_dict(ckpt["discriminator"])
    set_rng_state(ckpt["rng"])
    return int(ckpt["step"]), float(ckpt.get("elapsed_s", 0.0))


def check_same_processes(ckpt: dict[str, Any], world_size: int) -> None:
    """A TrainError when ``ckpt`` was written by another number of processes: the global batch
    is part of the recipe (--batch-size cannot change either), and the checkpoint's data
    position and the recipe's record of this phase (global batch, processes) would no longer be
    true of the steps it ran (resumed by 1 process, a 2-process phase was recorded as 1 x 2)."""
    saved = ckpt.get("data_state", {})
    saved_world = int(saved.get("world_size", world_size))
    if saved_world != world_size:
        batch = saved.get("batch_size", "?")
        raise TrainError(
            f"the checkpoint was written by {saved_world} processes (batch {batch}x{saved_world}); this run has "
            f"{world_size}: resume it with {saved_world}, or continue from it as a new phase with --init"
        )


def remove_temporaries(out: Path) -> list[Path]:
    """Delete the temporaries of ckpt.pt / ckpt_<step>.pt that a run killed while saving left
    (they are as large as a checkpoint and nothing else would ever remove them)."""
    targets = [out / CKPT_NAME]
    for temp in out.glob(".ckpt_*.tmp.pt"):
        target = temporary_target(temp)
        if target is not None and re.fullmatch(r"ckpt_\d+\.pt", target.name):
            targets.append(target)
    removed = []
    for temp in leftover_temporaries(targets):
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
            removed.append(temp)
    return removed
