"""``retoucher-train train``: the training loop.

In the style of the torchvision reference scripts and nanoGPT: one script for one process, CPU
or GPU, and ``torchrun`` for several (DistributedDataParallel, NCCL on CUDA, gloo on CPU; rank 0
logs and saves). bf16 autocast on CUDA (nothing on CPU), channels_last, optional
``torch.compile``. Checkpoints (``RUN_DIR/ckpt.pt``) are written atomically every
``ckpt_every`` steps, at the end, on SIGINT/SIGTERM (under torchrun too) and before ``--time-limit``
runs out; with
``--resume`` a run continues exactly where its checkpoint stopped (same weights as an
uninterrupted run: the data order is a function of the seed and the step, see trainer.data).
Temporary checkpoint files left by a run killed while saving are removed when a run starts.

Reads top to bottom: :func:`_train` sets up (run folder, data, model, optimiser), :func:`_loop`
runs the steps, :func:`_finish` ends. The pieces live in their own modules: the step, loss and
optimiser in :mod:`trainer.step`, checkpoints and resuming in :mod:`trainer.checkpoint`,
validation in :mod:`trainer.validation`, console/log/TensorBoard output in :mod:`trainer.runlog`.

Run folder::

    RUN_DIR/ckpt.pt        latest checkpoint (ckpt_<step>.pt too with --keep-checkpoints)
    RUN_DIR/config.json    the run's TrainConfig
    RUN_DIR/log.jsonl      one JSON object per log/validation point
    RUN_DIR/train.log      the messages printed on the console
    RUN_DIR/tb/            TensorBoard: losses, lr, images/s, validation metrics, image grids
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from engine.stop_request import StopRequest

from .adversarial import Adversary, PatchDiscriminator
from .checkpoint import (
    CKPT_NAME,
    DATA_KEYS,
    Checkpointer,
    TrainState,
    check_same_processes,
    data_change,
    data_info,
    initial_model,
    new_run_folder,
    open_run,
    phase_entry,
    remove_temporaries,
    resume,
    run_lock,
)
from .config import TrainConfig, TrainError
from .data import InpaintingDataset, PreparedImages, StepBatchSampler, collate, worker_init
from .distributed import DistInfo, cleanup_distributed, setup_distributed
from .ema import ModelEMA
from .losses import describe_balance
from .masks import MaskMixture, parse_mask_mixture
from .native import NativeCrops
from .runlog import RunLogger
from .step import AMP_NAMES, TrainStep, amp_dtype, build_loss, build_optimizer, cuda_speed_switches
from .validation import Validator
from .vgg_calibration import VGGCalibration

__all__ = ["TrainError", "TrainResult", "TrainStep", "train", "training_data"]


@dataclass
class TrainResult:
    step: int
    checkpoint: Path | None
    metrics: dict[str, float] = field(default_factory=dict)
    losses: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False
    images_per_s: float = 0.0


def train(config: TrainConfig, explicit: set[str] | None = None) -> TrainResult:
    """Run (or resume) training as described by ``config``. Under torchrun every process calls
    this; ``explicit`` names the options given on the command line (for --resume checks)."""
    info = setup_distributed(config.device)
    try:
        with contextlib.ExitStack() as held:
            return _train(config, info, explicit, held)
    finally:
        cleanup_distributed()


@dataclass
class _Run:
    """A set-up run: what :func:`_loop` and :func:`_finish` work with."""

    config: TrainConfig
    d: DistInfo
    log: RunLogger
    state: TrainState
    step_fn: TrainStep
    loader: DataLoader
    validator: Validator | None
    checkpointer: Checkpointer
    start_step: int
    stop_step: int
    elapsed_before: float  # seconds trained by the invocations before this one
    metrics: dict[str, float]  # the last validation
    losses: dict[str, float]  # the last log window
    judged: Callable[[int], torch.Tensor | None]  # step -> the samples the discriminator judges
    t_start: float = field(default_factory=time.perf_counter)

    def save(self, step: int) -> Path | None:
        """Checkpoint (rank 0; None elsewhere)."""
        if not self.d.is_main:
            return None
        elapsed = self.elapsed_before + time.perf_counter() - self.t_start
        return self.checkpointer.save(step, metrics=self.metrics, losses=self.losses, elapsed_s=elapsed)


def _train(
    config: TrainConfig, d: DistInfo, explicit: set[str] | None, held: contextlib.ExitStack
) -> TrainResult:
    # ---- the run folder (one training at a time in it): a new run, or the checkpoint it resumes
    out = Path(config.out)
    if d.is_main and out.is_dir():
        held.enter_context(run_lock(out))
    config, resumed = open_run(config, explicit)
    if resumed is not None:
        check_same_processes(resumed, d.world_size)
    if explicit is not None:
        config.check_named(explicit)
    if not config.data:
        raise TrainError("--data is required")
    if d.is_main and not out.is_dir():
        held.enter_context(new_run_folder(out))  # taken away again if the run fails before writing
        held.enter_context(run_lock(out))
    if d.distributed:
        dist.barrier()
    log = RunLogger(out, d)
    if d.is_main and (removed := remove_temporaries(out)):
        log(
            f"removed {len(removed)} temporary checkpoint file(s) left by a killed run: "
            + ", ".join(p.name for p in removed)
        )
    device = d.device
    threads = _set_up_torch(config, d)

    # ---- data
    train_images, native, masks, dataset = training_data(config)
    size = dataset.crop

    # ---- model
    model, lineage, grown = initial_model(config, size, resumed)
    mcfg = model.config
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(device=device, memory_format=memory_format)
    ema = ModelEMA(model, config.ema) if config.ema else None

    # ---- optimiser, loss; the state of a resumed run
    optimizer, scheduler = build_optimizer(model, config)
    # a resumed run keeps its precision; before 2026-12-07 checkpoints did not say it: "auto"
    # was then bf16 on any GPU, none on the CPU
    kept = None if resumed is None else resumed.get("amp", "bf16" if device.type == "cuda" else "off")
    adtype = amp_dtype(config, device, kept)
    scaler = torch.amp.GradScaler(device.type, enabled=adtype == torch.float16)
    stored = (resumed or {}).get("vgg_calibration")
    loss_fn, vgg_desc = build_loss(
        config, device, calibration=VGGCalibration.from_dict(stored) if stored else None
    )
    adversary = _adversary(config, d, adtype) if config.adversarial_weight else None
    state = TrainState(model, optimizer, scheduler, scaler, ema, adversary)
    start_step, elapsed_before = (0, 0.0) if resumed is None else resume(state, resumed)

    # ---- the step, the data order, validation, checkpoints, logs
    stop_step = (
        config.steps if config.stop_after is None else min(config.steps, start_step + config.stop_after)
    )
    loader, sampler = _data_loader(dataset, config, d, start_step, stop_step)
    step_fn = TrainStep(
        _wrap(model, config, d),
        loss_fn,
        optimizer,
        scheduler,
        scaler,
        device=device,
        autocast_dtype=adtype,
        channels_last=config.channels_last,
        grad_clip=config.grad_clip,
        adversary=adversary,
    )
    validator = None
    if d.is_main:
        validator = Validator.for_run(config, size, masks, log, device=device, autocast_dtype=adtype)
    phase = phase_entry(
        config,
        start_step=start_step,
        world_size=d.world_size,
        device=device,
        crop=size,
        architecture=mcfg,
        loss_weights=loss_fn.weights.to_dict(),
        vgg=vgg_desc,
    )
    info = data_info(config.data, train_images, native)
    if resumed is not None and d.is_main:
        changed = data_change(resumed.get("data_info") or {}, info, DATA_KEYS)
        if changed:
            log(changed)
    calibration = loss_fn.vgg_calibration
    checkpointer = Checkpointer(
        out,
        state,
        config,
        mcfg,
        lineage,
        phase,
        info,
        vgg_desc,
        d.world_size,
        sampler.epoch_of,
        vgg_calibration=calibration.to_dict() if calibration is not None else None,
        amp=AMP_NAMES[adtype],
    )
    previous = resumed or {}
    run = _Run(
        config=config,
        d=d,
        log=log,
        state=state,
        step_fn=step_fn,
        loader=loader,
        validator=validator,
        checkpointer=checkpointer,
        start_step=start_step,
        stop_step=stop_step,
        elapsed_before=elapsed_before,
        metrics=dict(previous.get("metrics") or {}),
        losses=dict(previous.get("losses") or {}),
        judged=_judged(config, dataset, sampler),
    )
    _announce(run, resumed=resumed is not None, grown=grown, size=size, threads=threads, images=train_images)
    if native is not None:
        log(native.describe())
    # After the opening lines, as before the split: the bar draws below them, and the run's clock
    # and the first log window start with the first step.
    log.start(config, start_step=start_step)
    run.t_start = time.perf_counter()
    # ---- the loop, and the end
    return _finish(run, *_loop(run))


def _loop(run: _Run) -> tuple[int, bool, TrainResult]:
    """Train from ``run.start_step`` to ``run.stop_step`` (or an early stop); returns the step
    reached, whether it stopped early, and the result so far."""
    config, d, log, state = run.config, run.d, run.log, run.state
    result = TrainResult(step=run.start_step, checkpoint=None)
    step, max_step_s = run.start_step, 0.0
    batches = iter(run.loader)
    with (
        StopRequest() as stop,
        contextlib.closing(log),
        _workers_shut_down(batches),
    ):
        for images, holes in batches:
            t_step = time.perf_counter()
            terms = run.step_fn(images, holes, step=step, judged=run.judged(step))
            if state.ema is not None:
                state.ema.update(state.model)
            step += 1
            log.step(terms)
            if not torch.isfinite(terms["total"]):
                raise TrainError(
                    f"the loss became {terms['total'].item()} at step {step}; lower --lr or "
                    "use --grad-clip (the last checkpoint is untouched)"
                )
            max_step_s = max(max_step_s, time.perf_counter() - t_step)
            log.advance()
            if step % config.log_every == 0 or step == run.stop_step:
                run.losses = log.window(step, state.scheduler.get_last_lr()[0])
                result.images_per_s = log.images_per_s
                mixed = any(term in run.losses for term in ("perceptual", "adversarial", "hole_mse"))
                if mixed and _balance_due(run, step):
                    log(f"step {step}: {describe_balance(run.losses, run.step_fn.weights_at(step - 1))}")
            with log.paused():
                try:
                    _validate(run, step)
                except Exception:
                    # out of memory on the GPU, a full disk for TensorBoard...: the steps since
                    # the last checkpoint are kept (the previous validation's metrics with them)
                    if d.is_main:
                        result.checkpoint = run.save(step)
                        log(f"validation failed at step {step}; the steps so far are in {result.checkpoint}")
                    raise
                # stop early: a signal, --time-limit, --stop-after; under torchrun all ranks
                # agree (a signal reaches each rank, torchrun's forwarded or the terminal's
                # Ctrl-C, maybe not in the same step): one scalar all-reduce a step
                stop_now, why = stop.requested, stop.why
                if config.time_limit is not None and not stop_now:
                    spent = time.perf_counter() - run.t_start
                    stop_now = spent + 2 * max_step_s + 30 > config.time_limit * 60
                    why = "time limit"
                if d.distributed:
                    flag = torch.tensor([float(stop_now)], device=d.device)
                    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                    why = why if stop_now else "another rank's signal or time limit"
                    stop_now = bool(flag.item())
                if stop_now and log.window_open:  # the steps since the last record: logged too
                    run.losses = log.window(step, state.scheduler.get_last_lr()[0])
                if step % config.ckpt_every == 0 or step == run.stop_step or stop_now:
                    result.checkpoint = run.save(step)
                    if d.distributed:
                        dist.barrier()
            if stop_now and step < run.stop_step:
                log(f"stopped at step {step} of {config.steps} ({why}); continue with --resume")
                return step, True, result
    return step, False, result


def _balance_due(run: _Run, step: int) -> bool:
    """The weighted balance of the loss terms goes to the console and train.log with the first
    log window and then with each validation (it is in log.jsonl and TensorBoard every window)."""
    every = run.config.val_every or 10 * run.config.log_every
    first = step - run.start_step <= run.config.log_every
    return first or step % every == 0


def _validate(run: _Run, step: int) -> None:
    """Validation metrics and TensorBoard grids when they are due (rank 0; the other ranks wait
    at a barrier)."""
    config = run.config
    model = run.state.ema.model if run.state.ema is not None else run.state.model
    at_end = step == run.stop_step
    if run.validator is not None and config.val_every and (step % config.val_every == 0 or at_end):
        run.metrics = run.validator.metrics(model)
        run.metrics["step"] = step
        run.log.validation(step, run.metrics)
    image_every = config.image_every or config.val_every
    if run.validator is not None and image_every and (step % image_every == 0 or at_end):
        run.log.image_grid(step, run.validator.grid(model))
    if run.d.distributed and config.val_every and step % config.val_every == 0:
        dist.barrier()


def _finish(run: _Run, step: int, stopped_early: bool, result: TrainResult) -> TrainResult:
    """A checkpoint if none was written (``--steps`` already reached), the last message, the
    result."""
    ckpt_path = Path(run.config.out) / CKPT_NAME
    if step == run.start_step and run.d.is_main and not ckpt_path.is_file():
        result.checkpoint = run.save(step)
    stopped_early = stopped_early or step < run.config.steps
    if run.d.is_main:
        last = run.metrics
        run.log(
            f"{'stopped' if stopped_early else 'finished'} at step {step}; checkpoint {ckpt_path}"
            + (f"; val PSNR {last['psnr']:.2f} dB, SSIM {last['ssim']:.4f}" if last else "")
        )
    result.step = step
    result.metrics = run.metrics
    result.losses = run.losses
    result.stopped_early = stopped_early
    if result.checkpoint is None and ckpt_path.is_file():
        result.checkpoint = ckpt_path
    return result


_BN_STATE = {"none": "learns", "encoder": "frozen in the encoder", "all": "frozen"}


def _announce(
    run: _Run, *, resumed: bool, grown: bool, size: int, threads: int, images: PreparedImages
) -> None:
    """The run's first messages: model and optimisation, data, loss."""
    config, d, log, model = run.config, run.d, run.log, run.state.model
    mcfg, device, adtype = model.config, d.device, run.step_fn.autocast_dtype
    loss_fn, vgg = run.step_fn.loss_fn, run.checkpointer.vgg
    log(
        f"{'resuming at step ' + str(run.start_step) if resumed else 'training'}: "
        f"{mcfg.widths}{f' + refine head {mcfg.refine}' if mcfg.refine else ''}"
        f"{' (grown from --init)' if grown else ''} ({model.num_parameters() / 1e6:.2f}M parameters), "
        f"phase {config.phase} (BatchNorm {_BN_STATE[config.frozen_bn]}), "
        f"lr {config.learning_rate:g} ({config.schedule}), batch {config.batch_size}x{d.world_size}, "
        f"steps {run.start_step}->{run.stop_step} of {config.steps}, {size}px, device {device}"
        f"{' x' + str(d.world_size) if d.distributed else ''}, amp {adtype or 'off'}, "
        f"threads {threads if device.type == 'cpu' else '-'}"
    )
    log(
        f"data: {len(images)} train images from {config.data} "
        f"({'in memory' if images.array is not None else 'read on demand'}"
        f"{f' by {config.workers} worker process(es)' if config.workers else ''}), "
        f"masks {config.mask_spec}" + (f" from {config.mask_dir}" if config.mask_dir else "")
    )
    adversary = run.state.adversary
    # its terms only: it listed the perceptual and style weights an l1 run never uses, and the
    # terms weighted 0
    unused = ("perceptual", "style") if config.loss == "l1" else ()
    weights = {k: v for k, v in loss_fn.weights.to_dict().items() if v and k not in unused}
    log(
        f"loss: {config.loss}, weights {weights}, "
        f"hole weighting {config.hole_weighting}; VGG: {vgg}"
        + (f"; {adversary.describe()}" if adversary is not None else "")
    )
    if adtype == torch.bfloat16:
        from engine.inpainter import bf16_supported

        native = bf16_supported(device)
        if not native and device.type == "cpu":
            log(
                "warning: this CPU has no native bf16 (no AVX512-BF16/AMX): --amp bf16 is emulated "
                "and several times slower than fp32 here; drop --amp"
            )
        elif not native:
            log(
                f"warning: {device} has no native bf16 convolutions (compute capability below 8.0): "
                "--amp bf16 is emulated or fails here; use --amp fp16 (or auto, which picks it)"
            )


def training_data(
    config: TrainConfig,
) -> tuple[PreparedImages, NativeCrops | None, MaskMixture, InpaintingDataset]:
    """The train split, the native crops (``--native-share``), the mask mixture, the dataset.
    With worker processes the main process does not decode the split: the workers read it."""
    preload = False if config.workers > 0 else {"auto": None, "yes": True, "no": False}[config.preload]
    train_images = PreparedImages(config.data, "train", preload=preload)
    masks = parse_mask_mixture(
        config.mask_spec, config.mask_dir, holdout=config.mask_holdout, folder_subset="train"
    )
    crop = config.crop or min(train_images.shape[:2])
    native = None
    if config.native_share > 0:
        native = NativeCrops.for_split(
            config.data,
            [r.image_id for r in train_images.rows],
            crop=crop,
            share=config.native_share,
            min_scale=config.native_min_scale,
        )
        if not native.usable:
            raise TrainError(
                f"--native-share {config.native_share:g}: none of the {len(native.paths)} train "
                f"source photos of {config.data} can give a {crop} px crop ({native.left_out})"
            )
    dataset = InpaintingDataset(
        train_images, masks, seed=config.seed, crop=crop, hflip=config.hflip, native=native
    )
    return train_images, native, masks, dataset


def _adversary(config: TrainConfig, d: DistInfo, adtype: torch.dtype | None) -> Adversary:
    """The discriminator of ``--adversarial-weight`` (trainer.adversarial), on the run's device
    and, under torchrun, in its own DistributedDataParallel."""
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    disc = PatchDiscriminator(config.disc_width, config.disc_layers, config.disc_input).to(
        device=d.device, memory_format=memory_format
    )
    return Adversary(
        _wrap(disc, config, d),
        lr=config.disc_learning_rate,
        autocast_dtype=adtype,
        device_type=d.device.type,
        warmup=config.adversarial_warmup,
        on=config.adversarial_on,
        fake=config.disc_fake,
        rim=config.adversarial_rim,
    )


def _judged(
    config: TrainConfig, dataset: InpaintingDataset, sampler: StepBatchSampler
) -> Callable[[int], torch.Tensor | None]:
    """``step -> judged``: with ``--adversarial-on native`` which samples of the step's batch
    are native crops (the ones the adversarial game is played on), from the same keys the
    loader gives the dataset; otherwise None (all of them)."""
    if not config.adversarial_weight or config.adversarial_on == "all":
        return lambda step: None
    return lambda step: torch.tensor([dataset.is_native(key) for key in sampler.keys(step)])


def _wrap(model: torch.nn.Module, config: TrainConfig, d: DistInfo) -> torch.nn.Module:
    """The model the step runs: DistributedDataParallel under torchrun, ``torch.compile`` with
    ``--compile`` (after DDP, as PyTorch recommends: Dynamo splits the graph at its buckets)."""
    if d.distributed:
        model = DistributedDataParallel(
            model, device_ids=[d.device.index] if d.device.type == "cuda" else None
        )
    if config.compile:
        model = torch.compile(model)  # type: ignore[assignment]
    return model


def _data_loader(
    dataset: InpaintingDataset, config: TrainConfig, d: DistInfo, start_step: int, stop_step: int
) -> tuple[DataLoader, StepBatchSampler]:
    """This rank's batches of steps ``start_step .. stop_step - 1`` (trainer.data) and their sampler."""
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
        pin_memory=d.device.type == "cuda",
        prefetch_factor=4 if config.workers > 0 else None,
        worker_init_fn=worker_init if config.workers > 0 else None,
        # Spawned, not forked: a fork copies the state of the parent's threads (torch, OpenMP,
        # OpenCV pools) without the threads, and a worker forked after they ran can wait forever
        # on a lock they held. The samples do not depend on how the workers start.
        multiprocessing_context="spawn" if config.workers > 0 else None,
    )
    return loader, sampler


def _set_up_torch(config: TrainConfig, d: DistInfo) -> int:
    """CPU threads (returned) or the CUDA speed switches, and the seeds."""
    threads = config.threads or max(1, (os.cpu_count() or 1) // max(1, d.local_world_size))
    if d.device.type == "cpu":
        torch.set_num_threads(threads)
    else:
        cuda_speed_switches()
    torch.manual_seed(config.seed)
    np.random.seed(config.seed % 2**32)
    return threads


@contextlib.contextmanager
def _workers_shut_down(batches: Any) -> Any:
    """The data loader's workers stopped on the way out of the loop, an error's way too: they
    ignore SIGTERM (below), so the interpreter's exit, which terminates and joins the workers
    of a loader iterator still alive (an error's traceback holds it), waited for ever; a bad
    mask found by a worker hung the run (and a torchrun job) after printing its error."""
    try:
        yield
    finally:
        shut_down = getattr(batches, "_shutdown_workers", None)  # single-process: none
        if shut_down is not None:
            shut_down()
