"""What a training run writes for people and tools, in one place: the console (through tqdm, so
progress bars are not broken) and ``RUN_DIR/train.log``, ``RUN_DIR/log.jsonl`` (one JSON object
per log or validation point), TensorBoard (``RUN_DIR/tb``), ``RUN_DIR/config.json`` and the
progress bar; and the loss terms averaged over each log window (and over all processes).

Rank 0 writes; the other ranks of a torchrun job write nothing but take part in the all-reduce
of each window's losses.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from engine.atomic import write_text_atomic

from .config import TrainConfig
from .distributed import DistInfo

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

__all__ = ["RunLogger", "append_log", "truncate_log"]

VAL_SCALARS = ("hole_l1", "psnr", "ssim")


class RunLogger:
    """The run's console, logs, TensorBoard and progress bar. ``logger(msg)`` prints a message
    (rank 0) from the start; :meth:`start` opens the rest once the run is set up."""

    def __init__(self, out: Path, dist_info: DistInfo) -> None:
        self.out = out
        self.d = dist_info
        self.is_main = dist_info.is_main
        self.writer: SummaryWriter | None = None
        self.bar: tqdm | None = None
        self.images_per_step = 0
        self.images_per_s = 0.0  # the rate of the last log window
        # the current log window
        self._sums: dict[str, torch.Tensor] = {}
        self._steps = 0
        self._t_window = time.perf_counter()
        self._paused = 0.0  # seconds of validation/checkpointing inside the window

    # ---- messages

    def __call__(self, msg: str) -> None:
        """A message on the console and in ``train.log`` (rank 0)."""
        if not self.is_main:
            return
        tqdm.write(msg)
        with open(self.out / "train.log", "a", encoding="utf-8") as fh:
            fh.write(time.strftime("%Y-%m-%d %H:%M:%S ") + msg + "\n")

    # ---- the run

    def start(self, config: TrainConfig, *, start_step: int) -> None:
        """Open TensorBoard (dropping what a killed run wrote after ``start_step``), write
        ``config.json``, cut ``log.jsonl`` back to ``start_step`` and start the progress bar."""
        self.images_per_step = config.batch_size * self.d.world_size
        if self.is_main:
            from torch.utils.tensorboard import SummaryWriter

            # what a run killed before its first checkpoint wrote goes too, as from log.jsonl;
            # the checkpoint's own step stays (a resumed run does not log it again: purged at
            # start_step, every resume lost its last train, validation and image points)
            self.writer = SummaryWriter(str(self.out / "tb"), purge_step=start_step + 1)
            write_text_atomic(self.out / "config.json", json.dumps(config.to_dict(), indent=2) + "\n")
            truncate_log(self.out / "log.jsonl", start_step)
        self.bar = tqdm(
            total=config.steps,
            initial=start_step,
            unit="step",
            dynamic_ncols=True,
            disable=not (self.is_main and config.progress),
            desc="train",
        )
        self._t_window = time.perf_counter()

    def step(self, terms: dict[str, torch.Tensor]) -> None:
        """Add one step's loss terms to the window."""
        for k, v in terms.items():
            self._sums[k] = self._sums.get(k, 0.0) + v
        self._steps += 1

    def advance(self) -> None:
        """One step done: move the progress bar."""
        if self.bar is not None:
            self.bar.update()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Time spent inside (validation, checkpoints) does not count against images/s."""
        t = time.perf_counter()
        try:
            yield
        finally:
            self._paused += time.perf_counter() - t

    @property
    def window_open(self) -> bool:
        """Steps were taken since the last :meth:`window`."""
        return self._steps > 0

    def window(self, step: int, lr: float) -> dict[str, float]:
        """Close the log window at ``step``: the mean of each loss term over its steps (and over
        all processes), logged with ``lr`` and the images/s; returns the means."""
        busy = time.perf_counter() - self._t_window - self._paused
        rate = self._steps * self.images_per_step / max(busy, 1e-9)
        names = sorted(self._sums)
        vec = (
            torch.stack([torch.as_tensor(self._sums[k], device=self.d.device).float() for k in names])
            / self._steps
        )
        if self.d.distributed:
            dist.all_reduce(vec)
            vec /= self.d.world_size
        losses = {k: float(v) for k, v in zip(names, vec.tolist())}
        if self.writer is not None:
            for k, v in losses.items():
                self.writer.add_scalar(f"train/{k}", v, step)
            self.writer.add_scalar("train/lr", lr, step)
            self.writer.add_scalar("train/images_per_s", rate, step)
        if self.is_main:
            append_log(
                self.out / "log.jsonl", {"step": step, "train": losses, "lr": lr, "images_per_s": rate}
            )
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{losses['total']:.4f}", img_s=f"{rate:.1f}")
        self.images_per_s = rate
        self._sums, self._steps = {}, 0
        self._t_window, self._paused = time.perf_counter(), 0.0
        return losses

    def validation(self, step: int, metrics: dict[str, float]) -> None:
        """Log validation metrics (``hole_l1``, ``psnr``, ``ssim``, ``step``)."""
        if self.writer is not None:
            for k in VAL_SCALARS:
                self.writer.add_scalar(f"val/{k}", metrics[k], step)
        if self.is_main:
            append_log(self.out / "log.jsonl", {"step": step, "val": metrics})
        self(
            f"step {step}: val hole L1 {metrics['hole_l1']:.4f}, "
            f"PSNR {metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.4f}"
        )

    def image_grid(self, step: int, grid: np.ndarray) -> None:
        """The validation grid (CHW uint8) in TensorBoard."""
        if self.writer is not None:
            self.writer.add_image("val/input_output_composite_truth", grid, step)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()


def append_log(path: Path, record: dict[str, Any]) -> None:
    """One JSON line at the end of ``log.jsonl``."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def truncate_log(path: Path, step: int) -> None:
    """On resume, drop log lines a killed run wrote after its last checkpoint."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):
            if json.loads(line).get("step", 0) <= step:
                keep.append(line)
    write_text_atomic(path, "".join(line + "\n" for line in keep))  # a kill here keeps the log
