"""Running a batch: :func:`run_batch` loads each photo of this rank's share, makes its hole,
fills equal-size photos together (one network batch) and writes each output, reporting each
photo as done, skipped or failed. One bad file never stops the batch; cancel stops it at the
next photo. The engine (torch) is imported here only when a batch runs.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..inpainting import CancelFn, InpainterLike
from .holes import Holes
from .options import BatchError, BatchOptions, BatchReport
from .planning import Job, plan_batch

if TYPE_CHECKING:  # pragma: no cover
    from engine.imageio import LoadedImage

__all__ = ["BatchProgressFn", "run_batch"]

BatchProgressFn = Callable[[int, int, str], None]
"""``progress(finished, total, name)``: called after each photo of this rank."""


def run_batch(
    options: BatchOptions,
    *,
    inpainter: InpainterLike | None = None,
    progress: BatchProgressFn | None = None,
    cancel: CancelFn | None = None,
    rank: int = 0,
    world_size: int = 1,
    local_rank: int | None = None,
) -> BatchReport:
    """Retouch this rank's share of the input folder; return what happened to each photo.

    ``inpainter``: a ready :class:`engine.Inpainter` (the app passes its own); otherwise one is
    made from ``options.weights``/``options.device`` when the first photo needs it (with
    ``cuda:LOCAL_RANK`` when running on CUDA under torchrun). ``progress(finished, total, name)``
    is called after each photo; ``cancel()`` returning True stops the batch at the next photo (or
    the next check inside a fill): finished outputs stay, and a re-run resumes.

    Raises :class:`BatchError` for problems with the batch as a whole (nothing usable to do).
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise BatchError(f"rank {rank} is not within a world of size {world_size}")
    from engine.inpainter import InpaintCancelled

    jobs = plan_batch(options)[rank::world_size]
    report = BatchReport(total=len(jobs), rank=rank, world_size=world_size)
    _remove_leftover_temporaries(jobs, report)
    holes = Holes(options.masks, options.input_dir.expanduser().resolve())
    runner = _Runner(options, holes, inpainter, progress, cancel, report, local_rank)
    try:
        for job in jobs:
            if cancel is not None and cancel():
                raise InpaintCancelled()
            item = runner.load(job)
            if item is not None:
                runner.add(item)
        runner.flush()
    except InpaintCancelled:
        report.cancelled = True
    return report


@dataclass
class _Item:
    """A photo loaded and its hole, waiting to be filled and written."""

    job: Job
    image: LoadedImage
    hole: np.ndarray


def write_output(item: _Item, result: np.ndarray | None, quality: int | None) -> None:
    """Write the output of ``item`` (atomically); raise whatever writing it raises.

    ``result``: the filled picture, saved with the input's alpha and metadata (EXIF, ICC
    profile, DPI, XMP; a JPEG written from a JPEG keeps the original's quantisation, and the
    exact coefficients of every block without a changed pixel, unless ``quality`` is given:
    see :func:`engine.imageio.save_image`, which logs why when it cannot). ``None``: nothing was filled, the output is the photo: in the input's
    format its bytes are copied (no re-encoding, so no JPEG generation loss), in another format
    it is saved like a result. The one place that calls :func:`engine.imageio.save_image`.
    """
    from engine.atomic import atomic_path
    from engine.formats import DEFAULT_QUALITY, format_for_suffix, normalise_format
    from engine.imageio import save_image
    from engine.jpeg_blocks import changed_pixels

    img, output = item.image, item.job.output
    in_format = img.metadata.format
    out_format = format_for_suffix(output.suffix)
    if result is None and in_format and normalise_format(in_format) == out_format:
        with atomic_path(output) as tmp:
            shutil.copyfile(item.job.source, tmp)
        return
    rgb = img.rgb if result is None else result
    source = img.source if out_format == "JPEG" else None
    save_image(
        output,
        rgb,
        alpha=img.alpha,
        metadata=img.metadata,
        quality=DEFAULT_QUALITY if quality is None else quality,
        keep_jpeg_compression=quality is None,  # no --quality: a JPEG keeps its compression
        source=source,
        changed=None if source is None else changed_pixels(rgb, img.rgb),
    )


class _Runner:
    """One batch run: settles each job (done, skipped, failed) in the report, ticks progress,
    and gathers equal-size photos into groups that are filled together."""

    def __init__(
        self,
        options: BatchOptions,
        holes: Holes,
        inpainter: InpainterLike | None,
        progress: BatchProgressFn | None,
        cancel: CancelFn | None,
        report: BatchReport,
        local_rank: int | None,
    ) -> None:
        self.options = options
        self.holes = holes
        self._inpainter = inpainter
        self.progress = progress
        self.cancel = cancel
        self.report = report
        self.local_rank = local_rank
        self.finished = 0
        self.group: list[_Item] = []  # equal-size photos waiting to be filled together

    # -- the model, created when the first photo needs it (a finished batch never loads it)
    @property
    def inpainter(self) -> InpainterLike:
        if self._inpainter is None:
            from engine.inpainter import Inpainter
            from engine.weights import WeightsError

            device = _resolve_device(self.options.device, self.local_rank)
            try:
                self._inpainter = Inpainter(self.options.weights, device=device)
            except WeightsError as exc:
                raise BatchError(str(exc)) from exc
            except Exception as exc:
                raise BatchError(f"could not create the model on {device}: {_reason(exc)}") from exc
        if self.report.model is None:
            self.report.model = f"{self._inpainter.name} on {self._inpainter.device_name}"
        return self._inpainter

    # -- each job, from its file to its output
    def load(self, job: Job) -> _Item | None:
        """The photo and its hole; None when the job is settled here (skipped or failed)."""
        from engine.imageio import load_image
        from engine.inpainter import NothingToFillError

        if job.error:
            self.fail(job, job.error)
            return None
        if job.output.exists() and not self.options.overwrite:
            self.skip(job)
            return None
        try:
            image = load_image(job.source)
            hole = self.holes.for_image(job, image.rgb.shape[:2])
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
            self.fail(job, _reason(exc))
            return None
        if hole.all():
            self.fail(job, str(NothingToFillError()))
            return None
        return _Item(job, image, hole)

    def add(self, item: _Item) -> None:
        """Write the photo unchanged if its hole is empty; otherwise queue it for filling, in
        one network batch with the queued photos of its size when it fits the model whole."""
        if not item.hole.any():  # nothing to fill: the output is the photo
            self.save(item, None)
            return
        inp = self.inpainter
        shape = item.image.rgb.shape
        same = not self.group or self.group[0].image.rgb.shape == shape
        # getattr with defaults: max_side and batch_size are optional in InpainterLike (test
        # doubles lack them); without them every photo is filled on its own.
        small = max(shape[:2]) <= getattr(inp, "max_side", 0)
        if not (same and small):
            self.flush()
        self.group.append(item)
        if not small or len(self.group) >= getattr(inp, "batch_size", 1):
            self.flush()

    def flush(self) -> None:
        """Fill and write the queued photos."""
        self.fill(self.group)
        self.group.clear()

    def fill(self, group: list[_Item]) -> None:
        """Fill a group of equal-size photos (one network batch when there are several)."""
        from engine.inpainter import InpaintCancelled

        if not group:
            return
        if len(group) > 1:
            try:
                results = self.inpainter.inpaint_batch([g.image.rgb for g in group], [g.hole for g in group])
            except BatchError:
                raise
            except Exception:  # noqa: BLE001 - retry one by one so only the culprit fails
                results = None
            if results is not None:
                for item, result in zip(group, results):
                    self.save(item, result)
                return
        for n, item in enumerate(group):
            if n and self.cancel is not None and self.cancel():
                raise InpaintCancelled()
            try:
                result = self.inpainter(item.image.rgb, item.hole, cancel=self.cancel)
            except (InpaintCancelled, BatchError):
                raise
            except Exception as exc:  # noqa: BLE001 - CUDA errors, out of memory...: this photo fails, the batch goes on
                self.fail(item.job, _reason(exc))
                continue
            self.save(item, result)

    def save(self, item: _Item, result: np.ndarray | None) -> None:
        """Write the output (``result`` None: the photo unchanged) and settle the job."""
        try:
            write_output(item, result, self.options.quality)
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
            self.fail(item.job, f"could not write {item.job.output}: {_reason(exc)}")
            return
        self.done(item.job)

    # -- settling a job in the report
    def done(self, job: Job) -> None:
        self.report.done.append(job.source)
        self.report.outputs[job.source] = job.output
        self._tick(job)

    def skip(self, job: Job) -> None:
        self.report.skipped.append(job.source)
        self._tick(job)

    def fail(self, job: Job, reason: str) -> None:
        self.report.failed.append((job.source, reason))
        self._tick(job)

    def _tick(self, job: Job) -> None:
        self.finished += 1
        if self.progress is not None:
            self.progress(self.finished, self.report.total, job.relative.as_posix())


def _resolve_device(device: str, local_rank: int | None) -> str:
    from engine.distributed import device_for_rank

    try:
        return str(device_for_rank(device, local_rank))
    except ValueError as exc:
        raise BatchError(str(exc)) from exc


def _reason(exc: BaseException) -> str:
    msg = str(exc) or type(exc).__name__
    if isinstance(exc, (ValueError, OSError)):
        return msg
    return f"{type(exc).__name__}: {msg}"


def _remove_leftover_temporaries(jobs: Sequence[Job], report: BatchReport) -> None:
    """A run killed mid-save (SIGKILL, power cut) leaves ``.<stem>.XXXXXXXX.tmp<suffix>`` next
    to the output it was writing. Remove those of this rank's own outputs (files of exactly that
    pattern only), so that no other rank's or program's file in progress is touched."""
    from engine.atomic import leftover_temporaries

    for tmp in leftover_temporaries(job.output for job in jobs if not job.error):
        try:
            tmp.unlink()
        except OSError:
            continue
        report.removed_temporaries.append(tmp)
