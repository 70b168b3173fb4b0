"""``retoucher-train train``: the training loop.

In the style of the torchvision reference scripts and nanoGPT: one script for one process, CPU
or GPU, and ``torchrun`` for several (DistributedDataParallel, NCCL on CUDA, gloo on CPU; rank 0
logs and saves). bf16 autocast on CUDA (nothing on CPU), channels_last, optional
``torch.compile``. Checkpoints (``RUN_DIR/ckpt.pt``) are written atomically every
``ckpt_every`` steps, at the end, on SIGINT/SIGTERM and before ``--time-limit`` runs out; with
``--resume`` a run continues exactly where its checkpoint stopped (same weights as an
uninterrupted run: the data order is a function of the seed and the step, see trainer.data).
Temporary checkpoint files left by a run killed while saving are removed when a run starts.

Run folder::

    RUN_DIR/ckpt.pt        latest checkpoint (ckpt_<step>.pt too with --keep-checkpoints)
    RUN_DIR/config.json    the run's TrainConfig
    RUN_DIR/log.jsonl      one JSON object per log/validation point
    RUN_DIR/train.log      the messages printed on the console
    RUN_DIR/tb/            TensorBoard: losses, lr, images/s, validation metrics, image grids
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import signal
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from engine.atomic import leftover_temporaries, temporary_target
from engine.unet import PConvUNet, UNetConfig
from engine.weights import load_weights

from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .config import PER_INVOCATION_FIELDS, RUNTIME_FIELDS, TrainConfig, model_config
from .data import InpaintingDataset, PreparedImages, StepBatchSampler, collate
from .distributed import DistInfo, cleanup_distributed, setup_distributed
from .ema import ModelEMA
from .inference import fill_with_model, score
from .losses import InpaintingLoss, LossWeights
from .masks import MaskFolder, MaskMixture, held_out_subset, parse_mask_mixture

__all__ = ["TrainError", "TrainResult", "train", "TrainStep", "build_loss", "data_info"]

CKPT_NAME = "ckpt.pt"


class TrainError(RuntimeError):
    """A run that cannot start or continue (bad options, diverged loss...)."""


@dataclass
class TrainResult:
    step: int
    checkpoint: Path | None
    metrics: dict[str, float] = field(default_factory=dict)
    losses: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False
    images_per_s: float = 0.0


class _Console:
    """Rank-0 messages: console (through tqdm, so bars are not broken) and RUN_DIR/train.log."""

    def __init__(self, path: Path | None, enabled: bool) -> None:
        self.path = path
        self.enabled = enabled

    def __call__(self, msg: str) -> None:
        if not self.enabled:
            return
        tqdm.write(msg)
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(time.strftime("%Y-%m-%d %H:%M:%S ") + msg + "\n")


def amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    amp = config.amp
    if amp == "auto":
        amp = "bf16" if device.type == "cuda" else "off"
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}[amp]


def param_groups(model: PConvUNet, config: TrainConfig) -> list[dict[str, Any]]:
    """Optimiser parameter groups: the U-Net at ``--lr``, the refinement head (if any) at
    ``--refine-lr-scale`` times that. The head starts at zero and its blend weights must travel
    to about 1, which Adam (steps of about the learning rate) would take ~1/lr steps to do."""
    head = [p for n, p in model.named_parameters() if p.requires_grad and n.startswith("refine.")]
    rest = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("refine.")]
    groups: list[dict[str, Any]] = [{"params": rest, "lr": config.learning_rate}]
    if head:
        scale = config.refine_lr_scale
        # AdamW's decay is lr x weight_decay: divide it back so the head decays like the rest.
        groups.append(
            {
                "params": head,
                "lr": config.learning_rate * scale,
                "weight_decay": config.weight_decay / scale,
            }
        )
    return groups


def build_loss(config: TrainConfig, device: torch.device) -> tuple[InpaintingLoss, str]:
    """The loss and a description of the VGG it uses (or why it uses none)."""
    weights = LossWeights(valid=config.valid_weight)
    if config.loss == "l1":
        loss = InpaintingLoss(None, weights=weights, mode="l1", hole_weighting=config.hole_weighting)
        return loss.to(device), "none (--loss l1)"
    from .vgg import VGGUnavailableError, load_vgg

    try:
        vgg = load_vgg()
    except VGGUnavailableError as exc:
        raise TrainError(str(exc)) from exc
    vgg = vgg.to(device)
    if config.channels_last:
        vgg = vgg.to(memory_format=torch.channels_last)
    loss = InpaintingLoss(
        vgg,
        weights=weights,
        mode="full",
        vgg_size=config.vgg_size,
        hole_weighting=config.hole_weighting,
    )
    return loss.to(device), vgg.description


def lr_factor(config: TrainConfig, step: int) -> float:
    warm = config.warmup_steps
    if warm and step < warm:
        return (step + 1) / warm
    if config.schedule == "cosine":
        progress = min(1.0, (step - warm) / max(1, config.steps - warm))
        return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return 1.0


def data_info(data_dir: str | Path, train: PreparedImages) -> dict[str, Any]:
    """What the run trained on, for checkpoints and weight-file provenance."""
    data_dir = Path(data_dir)
    info: dict[str, Any] = {"prepared": str(data_dir), "train_images": len(train)}
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


class TrainStep:
    """One optimisation step (forward, loss, backward, update); shared with the benchmark."""

    def __init__(
        self,
        model: torch.nn.Module,
        loss_fn: InpaintingLoss,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None,
        scaler: torch.amp.GradScaler,
        *,
        device: torch.device,
        autocast_dtype: torch.dtype | None,
        channels_last: bool,
        grad_clip: float = 0.0,
    ) -> None:
        self.model = model
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.scaler = scaler
        self.device = device
        self.autocast_dtype = autocast_dtype
        self.channels_last = channels_last
        self.grad_clip = grad_clip
        self.params = [p for g in optimizer.param_groups for p in g["params"]]

    def __call__(self, images: torch.Tensor, holes: torch.Tensor) -> dict[str, torch.Tensor]:
        """``images`` uint8 (N, 3, H, W), ``holes`` bool (N, 1, H, W); returns the detached
        loss terms."""
        gt = images.to(self.device, non_blocking=True).float().div_(127.5).sub_(1.0)
        mask = (~holes.to(self.device, non_blocking=True)).float()
        if self.channels_last:
            gt = gt.contiguous(memory_format=torch.channels_last)
        ctx = (
            torch.autocast(self.device.type, dtype=self.autocast_dtype)
            if self.autocast_dtype is not None
            else contextlib.nullcontext()
        )
        with ctx:
            out = self.model(gt * mask, mask)
            terms = self.loss_fn(out, gt, mask)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(terms["total"]).backward()
        if self.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler is not None:
            self.scheduler.step()
        return {k: v.detach() for k, v in terms.items()}


def _merge_resumed(saved: TrainConfig, given: TrainConfig, explicit: set[str] | None) -> TrainConfig:
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
        if name in RUNTIME_FIELDS:
            changes[name] = new
        elif new != old:
            raise TrainError(
                f"--{name.replace('_', '-')} cannot change when resuming (checkpoint has {old!r}, "
                f"given {new!r}); start a new run with --init instead"
            )
    return replace(saved, data=given.data or saved.data, out=given.out, **changes)


def _load_init(path: str) -> tuple[UNetConfig, dict[str, torch.Tensor], list[dict[str, Any]]]:
    """Model config, state dict and lineage of an --init checkpoint or weight file."""
    p = Path(path)
    if p.suffix == ".safetensors":
        model, info = load_weights(p)
        return info.config, model.state_dict(), list(info.provenance.get("recipe", []))
    ckpt = load_checkpoint(p)
    state = ckpt["ema_model"] if ckpt.get("ema_model") is not None else ckpt["model"]
    return UNetConfig.from_dict(ckpt["model_config"]), state, list(ckpt.get("lineage", []))


def _val_mask_subset(config: TrainConfig, train_masks: MaskMixture, say: _Console) -> str:
    """Validation draws folder masks from those held out of training; a folder too small to
    have any held out (a handful of files) falls back to all of them, with a warning."""
    folder = next((g for g in train_masks.generators if isinstance(g, MaskFolder)), None)
    if folder is None:
        return "holdout"  # no folder masks: the subset is not used
    subset, warning = held_out_subset(folder.directory, config.mask_holdout)
    if warning:
        say(f"warning: {warning} (validation)")
    return subset


def _fixed_val_set(
    config: TrainConfig, size: int, train_masks: MaskMixture, say: _Console
) -> tuple[np.ndarray, np.ndarray] | None:
    if not config.val_every or config.val_images <= 0:
        return None
    try:
        images = PreparedImages(config.data, "val", preload=True, limit=config.val_images)
    except ValueError:
        return None
    masks = parse_mask_mixture(
        config.mask_spec,
        config.mask_dir,
        holdout=config.mask_holdout,
        folder_subset=_val_mask_subset(config, train_masks, say),
        augment=False,
    )
    h, w = images.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    arr = np.stack([images[i][top : top + size, left : left + size] for i in range(len(images))])
    holes = np.stack(
        [masks(np.random.default_rng([config.seed, 0x7A1, i]), size, size) for i in range(len(arr))]
    )
    return arr, holes


def _image_grid(
    images: np.ndarray, holes: np.ndarray, filled_raw: np.ndarray, comps: np.ndarray
) -> np.ndarray:
    """Rows of (masked input, output, composite, ground truth), CHW uint8 for TensorBoard."""
    rows = []
    for img, hole, raw, comp in zip(images, holes, filled_raw, comps):
        masked = img.copy()
        masked[hole] = 255
        rows.append(np.concatenate([masked, raw, comp, img], axis=1))
    return np.concatenate(rows, axis=0).transpose(2, 0, 1)


def train(config: TrainConfig, explicit: set[str] | None = None) -> TrainResult:
    """Run (or resume) training as described by ``config``. Under torchrun every process calls
    this; ``explicit`` names the options given on the command line (for --resume checks)."""
    info = setup_distributed(config.device)
    try:
        return _train(config, info, explicit)
    finally:
        cleanup_distributed()


def _train(config: TrainConfig, d: DistInfo, explicit: set[str] | None) -> TrainResult:
    out = Path(config.out)
    ckpt_path = out / CKPT_NAME
    resumed: dict[str, Any] | None = None
    if ckpt_path.is_file():
        if not config.resume:
            raise TrainError(
                f"{ckpt_path} exists: pass --resume to continue that run, or choose another --out"
            )
        resumed = load_checkpoint(ckpt_path)
        config = _merge_resumed(TrainConfig.from_dict(resumed["config"]), config, explicit)
    if not config.data:
        raise TrainError("--data is required")
    if d.is_main:
        out.mkdir(parents=True, exist_ok=True)
    if d.distributed:
        dist.barrier()
    say = _Console(out / "train.log" if d.is_main else None, d.is_main)
    if d.is_main:
        removed = _remove_checkpoint_temporaries(out)
        if removed:
            say(
                f"removed {len(removed)} temporary checkpoint file(s) left by a killed run: "
                + ", ".join(p.name for p in removed)
            )
    device = d.device

    threads = config.threads or max(1, (os.cpu_count() or 1) // max(1, d.local_world_size))
    if device.type == "cpu":
        torch.set_num_threads(threads)
    else:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(config.seed)
    np.random.seed(config.seed % 2**32)

    # ---- data
    preload = {"auto": None, "yes": True, "no": False}[config.preload]
    train_images = PreparedImages(config.data, "train", preload=preload)
    size = config.crop or min(train_images.shape[:2])
    masks = parse_mask_mixture(
        config.mask_spec, config.mask_dir, holdout=config.mask_holdout, folder_subset="train"
    )
    dataset = InpaintingDataset(train_images, masks, seed=config.seed, crop=config.crop, hflip=config.hflip)

    # ---- model
    lineage: list[dict[str, Any]] = []
    init_state = None
    if resumed is not None:
        mcfg = UNetConfig.from_dict(resumed["model_config"])
        lineage = list(resumed.get("lineage", []))[:-1]
    elif config.init:
        mcfg, init_state, lineage = _load_init(config.init)
        if config.widths or config.depth:
            asked = model_config(config, size)
            if asked.widths != mcfg.widths:
                raise TrainError(
                    f"--widths/--depth ask for {asked.widths} but --init {config.init} has {mcfg.widths}"
                )
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
    if config.phase == "finetune":
        model.freeze_encoder_bn()
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(device=device, memory_format=memory_format)
    raw_model = model
    ema = ModelEMA(raw_model, config.ema) if config.ema else None

    params = param_groups(raw_model, config)
    if config.weight_decay:
        optimizer: torch.optim.Optimizer = torch.optim.AdamW(
            params, lr=config.learning_rate, weight_decay=config.weight_decay
        )
    else:
        optimizer = torch.optim.Adam(params, lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(config, s))
    adtype = amp_dtype(config, device)
    scaler = torch.amp.GradScaler(device.type, enabled=adtype == torch.float16)
    loss_fn, vgg_desc = build_loss(config, device)

    start_step = 0
    elapsed_before = 0.0
    if resumed is not None:
        raw_model.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        scheduler.load_state_dict(resumed["scheduler"])
        scaler.load_state_dict(resumed["scaler"])
        if ema is not None and resumed.get("ema_model") is not None:
            ema.model.load_state_dict(resumed["ema_model"])
            ema.updates = int(resumed["ema"]["updates"])
        set_rng_state(resumed["rng"])
        start_step = int(resumed["step"])
        elapsed_before = float(resumed.get("elapsed_s", 0.0))
        saved_world = resumed.get("data_state", {}).get("world_size", d.world_size)
        if saved_world != d.world_size:
            say(
                f"warning: the checkpoint was written by {saved_world} processes, this run has "
                f"{d.world_size}: the data order will differ from an uninterrupted run"
            )

    train_step_model: torch.nn.Module = model
    if d.distributed:
        train_step_model = DistributedDataParallel(
            train_step_model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if config.compile:  # after DDP, as PyTorch recommends (Dynamo splits the graph at its buckets)
        train_step_model = torch.compile(train_step_model)

    stop_step = config.steps
    if config.stop_after is not None:
        stop_step = min(stop_step, start_step + config.stop_after)
    sampler = StepBatchSampler(
        len(dataset),
        config.batch_size,
        seed=config.seed,
        start_step=start_step,
        stop_step=stop_step,
        rank=d.rank,
        world_size=d.world_size,
    )
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=config.workers,
        collate_fn=collate,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if config.workers > 0 else None,
        worker_init_fn=_worker_init if config.workers > 0 else None,
    )
    step_fn = TrainStep(
        train_step_model,
        loss_fn,
        optimizer,
        scheduler,
        scaler,
        device=device,
        autocast_dtype=adtype,
        channels_last=config.channels_last,
        grad_clip=config.grad_clip,
    )
    val_set = _fixed_val_set(config, size, masks, say) if d.is_main else None

    phase_entry = {
        "phase": config.phase,
        "steps": start_step,
        "lr": config.learning_rate,
        "schedule": config.schedule,
        "warmup_steps": config.warmup_steps,
        "global_batch": config.batch_size * d.world_size,
        "loss": config.loss,
        "vgg": vgg_desc if config.loss == "full" else None,
        "vgg_size": config.vgg_size,
        "hole_weighting": config.hole_weighting,
        "refine_lr_scale": config.refine_lr_scale if mcfg.refine else None,
        "loss_weights": loss_fn.weights.to_dict(),
        "masks": config.mask_spec,
        "mask_dir": config.mask_dir,
        "mask_holdout": config.mask_holdout,
        "crop": size,
        "ema": config.ema,
        "init": config.init,
        "seed": config.seed,
        "world_size": d.world_size,
        "device": str(device.type),
        "data": str(Path(config.data)),
    }
    info_data = data_info(config.data, train_images)

    writer = None
    if d.is_main:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "tb"), purge_step=start_step if resumed else None)
        (out / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n", encoding="utf-8")
        _truncate_log(out / "log.jsonl", start_step)
        n_params = raw_model.num_parameters()
        say(
            f"{'resuming at step ' + str(start_step) if resumed else 'training'}: "
            f"{mcfg.widths}{f' + refine head {mcfg.refine}' if mcfg.refine else ''}"
            f"{' (grown from --init)' if grown else ''} ({n_params / 1e6:.2f}M parameters), "
            f"phase {config.phase}, "
            f"lr {config.learning_rate:g} ({config.schedule}), batch {config.batch_size}x{d.world_size}, "
            f"steps {start_step}->{stop_step} of {config.steps}, {size}px, device {device}"
            f"{' x' + str(d.world_size) if d.distributed else ''}, amp {adtype or 'off'}, "
            f"threads {threads if device.type == 'cpu' else '-'}"
        )
        say(
            f"data: {len(train_images)} train images from {config.data} "
            f"({'in memory' if train_images.array is not None else 'read on demand'}), "
            f"masks {config.mask_spec}" + (f" from {config.mask_dir}" if config.mask_dir else "")
        )
        say(
            f"loss: {config.loss}, weights {loss_fn.weights.to_dict()}, "
            f"hole weighting {config.hole_weighting}; VGG: {vgg_desc}"
        )

    stop_requested = {"flag": False, "why": ""}

    def _on_signal(signum: int, _frame: Any) -> None:
        stop_requested["flag"] = True
        stop_requested["why"] = signal.Signals(signum).name

    old_handlers = {}
    if d.is_main and not d.distributed:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not in the main thread
                old_handlers[sig] = signal.signal(sig, _on_signal)

    result = TrainResult(step=start_step, checkpoint=None)
    last_metrics: dict[str, float] = dict(resumed.get("metrics") or {}) if resumed else {}
    last_losses: dict[str, float] = dict(resumed.get("losses") or {}) if resumed else {}
    acc: dict[str, torch.Tensor] = {}
    n_acc = 0
    step = start_step
    t_run = time.perf_counter()
    t_window = time.perf_counter()
    window_steps = 0
    paused = 0.0  # seconds of validation/checkpointing inside the current log window
    max_step_s = 0.0
    bar = tqdm(
        total=config.steps,
        initial=start_step,
        unit="step",
        dynamic_ncols=True,
        disable=not (d.is_main and config.progress),
        desc="train",
    )

    def save(step_now: int) -> Path | None:
        if not d.is_main:
            return None
        entry = dict(phase_entry, steps=step_now)
        payload = {
            "model": raw_model.state_dict(),
            "model_config": mcfg.to_dict(),
            "ema": {"decay": ema.decay, "updates": ema.updates} if ema is not None else None,
            "ema_model": ema.model.state_dict() if ema is not None else None,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "step": step_now,
            "config": config.to_dict(),
            "rng": rng_state(),
            "data_state": {
                "seed": config.seed,
                "batch_size": config.batch_size,
                "world_size": d.world_size,
                "position": step_now * config.batch_size * d.world_size,
                "epoch": sampler.epoch_of(step_now),
            },
            "lineage": lineage + [entry],
            "metrics": last_metrics,
            "losses": last_losses,
            "data_info": info_data,
            "vgg": vgg_desc,
            "elapsed_s": elapsed_before + time.perf_counter() - t_run,
        }
        path = save_checkpoint(ckpt_path, payload)
        if config.keep_checkpoints:
            save_checkpoint(out / f"ckpt_{step_now}.pt", payload)
        return path

    def validate(step_now: int) -> None:
        nonlocal last_metrics
        if val_set is None:
            return
        images, holes = val_set
        eval_model = ema.model if ema is not None else raw_model
        comps = fill_with_model(
            eval_model,
            images,
            holes,
            device=device,
            autocast_dtype=adtype,
            batch_size=max(1, config.batch_size * 2),
        )
        s = score(comps, images, holes)
        last_metrics = {k: float(np.nanmean(v)) for k, v in s.items()}
        last_metrics["step"] = step_now
        if writer is not None:
            for k in ("hole_l1", "psnr", "ssim"):
                writer.add_scalar(f"val/{k}", last_metrics[k], step_now)
        _append_log(out / "log.jsonl", {"step": step_now, "val": last_metrics})
        say(
            f"step {step_now}: val hole L1 {last_metrics['hole_l1']:.4f}, "
            f"PSNR {last_metrics['psnr']:.2f} dB, SSIM {last_metrics['ssim']:.4f}"
        )

    def grid(step_now: int) -> None:
        if writer is None or val_set is None:
            return
        images, holes = val_set[0][:4], val_set[1][:4]
        eval_model = ema.model if ema is not None else raw_model
        with torch.no_grad():
            was = eval_model.training
            eval_model.eval()
            from .inference import from_network, to_network

            x, m = to_network(images, holes, device)
            raw = from_network(eval_model(x, m))
            eval_model.train(was)
        comps = np.where(holes[..., None], raw, images)
        writer.add_image("val/input_output_composite_truth", _image_grid(images, holes, raw, comps), step_now)

    stopped_early = False
    try:
        for images, holes in loader:
            t_step = time.perf_counter()
            terms = step_fn(images, holes)
            if ema is not None:
                ema.update(raw_model)
            step += 1
            window_steps += 1
            for k, v in terms.items():
                acc[k] = acc.get(k, 0.0) + v
            n_acc += 1
            if not torch.isfinite(terms["total"]):
                raise TrainError(
                    f"the loss became {terms['total'].item()} at step {step}; lower --lr or "
                    "use --grad-clip (the last checkpoint is untouched)"
                )
            max_step_s = max(max_step_s, time.perf_counter() - t_step)
            bar.update()
            if step % config.log_every == 0 or step == stop_step:
                now = time.perf_counter()
                busy = now - t_window - paused
                rate = window_steps * config.batch_size * d.world_size / max(busy, 1e-9)
                names = sorted(acc)
                vec = torch.stack([torch.as_tensor(acc[k], device=device).float() for k in names]) / n_acc
                if d.distributed:
                    dist.all_reduce(vec)
                    vec /= d.world_size
                last_losses = {k: float(v) for k, v in zip(names, vec.tolist())}
                lr_now = scheduler.get_last_lr()[0]
                if writer is not None:
                    for k, v in last_losses.items():
                        writer.add_scalar(f"train/{k}", v, step)
                    writer.add_scalar("train/lr", lr_now, step)
                    writer.add_scalar("train/images_per_s", rate, step)
                if d.is_main:
                    _append_log(
                        out / "log.jsonl",
                        {"step": step, "train": last_losses, "lr": lr_now, "images_per_s": rate},
                    )
                bar.set_postfix(loss=f"{last_losses['total']:.4f}", img_s=f"{rate:.1f}")
                result.images_per_s = rate
                acc, n_acc = {}, 0
                t_window, window_steps, paused = time.perf_counter(), 0, 0.0
            t_pause = time.perf_counter()
            if config.val_every and (step % config.val_every == 0 or step == stop_step):
                validate(step)
            image_every = config.image_every or config.val_every
            if image_every and (step % image_every == 0 or step == stop_step):
                grid(step)
            if d.distributed and config.val_every and step % config.val_every == 0:
                dist.barrier()
            # stop early: signal, --time-limit (all ranks must agree), --stop-after
            stop_now = stop_requested["flag"]
            if config.time_limit is not None:
                spent = time.perf_counter() - t_run
                stop_now = stop_now or spent + 2 * max_step_s + 30 > config.time_limit * 60
            if d.distributed and config.time_limit is not None:
                flag = torch.tensor([float(stop_now)], device=device)
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                stop_now = bool(flag.item())
            if step % config.ckpt_every == 0 or step == stop_step or stop_now:
                result.checkpoint = save(step)
                if d.distributed:
                    dist.barrier()
            paused += time.perf_counter() - t_pause
            if stop_now and step < stop_step:
                why = stop_requested["why"] or "time limit"
                say(f"stopped at step {step} of {config.steps} ({why}); continue with --resume")
                stopped_early = True
                break
    finally:
        bar.close()
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)
        if writer is not None:
            writer.close()

    if step == start_step and d.is_main and not ckpt_path.is_file():
        result.checkpoint = save(step)
    stopped_early = stopped_early or step < config.steps
    if d.is_main:
        say(
            f"{'stopped' if stopped_early else 'finished'} at step {step}; checkpoint {ckpt_path}"
            + (
                f"; val PSNR {last_metrics['psnr']:.2f} dB, SSIM {last_metrics['ssim']:.4f}"
                if last_metrics
                else ""
            )
        )
    result.step = step
    result.metrics = last_metrics
    result.losses = last_losses
    result.stopped_early = stopped_early
    if result.checkpoint is None and ckpt_path.is_file():
        result.checkpoint = ckpt_path
    return result


def _remove_checkpoint_temporaries(out: Path) -> list[Path]:
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


def _worker_init(_worker_id: int) -> None:
    """Data-loader workers draw masks with OpenCV: one thread each, so they do not compete
    with the training threads (torch already limits itself to one thread in workers)."""
    import cv2

    cv2.setNumThreads(1)


def _append_log(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def _truncate_log(path: Path, step: int) -> None:
    """On resume, drop log lines a killed run wrote after its last checkpoint."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):
            if json.loads(line).get("step", 0) <= step:
                keep.append(line)
    path.write_text("".join(line + "\n" for line in keep), encoding="utf-8")
