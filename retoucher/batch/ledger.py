"""What every folder command (``retoucher batch``, ``retoucher detect``) does around its work on
each photo: take this rank's share of the plan, remove the temporary files a killed run left next
to its outputs, settle each job in the report (done, skipped because its output exists, failed
with a reason) and tick the progress, stop at the next photo when cancelled, find an output
folder it cannot write to before any photo is worked on, create the engine
(inpainter, detector) on this rank's device with a clear error, and say why a photo failed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from ..inpainting import CancelFn
from .options import BatchError, BatchReport
from .planning import Job

__all__ = [
    "BatchProgressFn",
    "Ledger",
    "check_detector_file",
    "check_model_file",
    "check_writable",
    "create_engine",
    "reason",
    "start_run",
]

BatchProgressFn = Callable[[int, int, str], None]
"""``progress(finished, total, name)``: called after each photo of this rank."""

R = TypeVar("R", bound=BatchReport)
E = TypeVar("E")


def check_writable(folder: Path) -> None:
    """Create ``folder`` if needed and write a temporary file in it; BatchError saying why when
    that fails. The file has no name where the OS allows (Linux's O_TMPFILE) or is removed at
    once, so a run killed in that instant leaves nothing behind."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".retoucher-write-check.") as fh:
            fh.write(b"0")
    except OSError as exc:
        raise BatchError(f"cannot write to the output folder {folder}: {exc.strerror or exc}") from None


def start_run(jobs: Sequence[Job], report: R, rank: int, world_size: int) -> tuple[list[Job], R]:
    """This rank's share of ``jobs`` (every ``world_size``-th of the sorted plan) and ``report``
    set up for it; the temporaries of its outputs that a killed run left are removed."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise BatchError(f"rank {rank} is not within a world of size {world_size}")
    mine = list(jobs[rank::world_size])
    report.total, report.rank, report.world_size = len(mine), rank, world_size
    _remove_leftover_temporaries(mine, report)
    return mine, report


class Ledger:
    """Settles the jobs of one run in its report and calls ``progress`` after each."""

    def __init__(
        self,
        report: BatchReport,
        progress: BatchProgressFn | None,
        cancel: CancelFn | None,
        stop: CancelFn | None = None,
    ) -> None:
        self.report = report
        self.progress = progress
        self.cancel = cancel
        self.stop = stop
        self.finished = 0

    def pending(
        self,
        jobs: Sequence[Job],
        overwrite: bool,
        output_dir: Path | None = None,
        before_work: Callable[[], None] | None = None,
    ) -> Iterator[Job]:
        """The jobs that need work, in order; the others are settled on the way (failed with
        the error known from planning, skipped when their output exists and not ``overwrite``).
        Raises :class:`engine.inpainter.InpaintCancelled` before the next job once ``cancel()``
        returns True; ends (the report cancelled) before it once ``stop()`` does (what is in
        hand is finished first); raises :class:`BatchError` before the first job that needs work when the
        ``output_dir`` (default: that job's folder) cannot be written to (not after a model has
        worked on every photo; a sub-folder that cannot be written fails its own photos).
        ``before_work()`` is called there first (the weight files' check: before the output
        folder is made)."""
        from engine.inpainter import InpaintCancelled

        checked = False
        for job in jobs:
            if self.cancel is not None and self.cancel():
                raise InpaintCancelled()
            if self.stop is not None and self.stop():
                self.report.cancelled = True
                return
            if job.error:
                self.fail(job, job.error)
            elif job.output.is_file() and not overwrite:
                self.skip(job)
            else:
                if not checked:
                    if before_work is not None:
                        before_work()
                    check_writable(job.output.parent if output_dir is None else Path(output_dir).expanduser())
                    checked = True
                yield job

    def done(self, job: Job) -> None:
        self.report.done.append(job.source)
        self.report.outputs[job.source] = job.output
        self._tick(job)

    def skip(self, job: Job) -> None:
        self.report.skipped.append(job.source)
        self._tick(job)

    def fail(self, job: Job, why: str) -> None:
        self.report.failed.append((job.source, why))
        self._tick(job)

    def _tick(self, job: Job) -> None:
        self.finished += 1
        if self.progress is not None:
            self.progress(self.finished, self.report.total, job.relative.as_posix())


def create_engine(make: Callable[[str], E], device: str, local_rank: int | None, what: str) -> E:
    """``make(device)`` on this rank's device (``cuda:LOCAL_RANK`` under torchrun on CUDA);
    a bad device, weight file or creation failure becomes a :class:`BatchError` naming ``what``."""
    from engine.distributed import device_for_rank
    from engine.weights import WeightsError

    try:
        dev = str(device_for_rank(device, local_rank))
    except ValueError as exc:
        raise BatchError(str(exc)) from exc
    try:
        return make(dev)
    except WeightsError as exc:
        raise BatchError(str(exc)) from exc
    except Exception as exc:
        raise BatchError(f"could not create the {what} on {dev}: {reason(exc)}") from exc


def check_model_file(weights: Path | str | None) -> None:
    """The header of the weight file the engine's own model loads for ``weights`` (None: the
    bundled one), read before any work: a missing, broken or wrong-kind file is a
    :class:`BatchError` (it stopped the batch only after the output folder was made)."""
    from engine.weights import model_weights_path, read_weights_info

    _header_read(lambda: read_weights_info(model_weights_path(weights)))


def check_detector_file(weights: Path | str | None) -> None:
    """:func:`check_model_file` for the engine's own damage detector."""
    from engine.damage import damage_weights_path, read_damage_info

    _header_read(lambda: read_damage_info(damage_weights_path(weights)))


def _header_read(read: Callable[[], object]) -> None:
    from engine.weights import WeightsError

    try:
        read()
    except WeightsError as exc:
        raise BatchError(str(exc)) from exc


def reason(exc: BaseException) -> str:
    """Why a photo failed, in a line: the message of a ValueError/OSError (they name the file and
    the problem), else the exception's type and message."""
    msg = str(exc) or type(exc).__name__
    if isinstance(exc, (ValueError, OSError)):
        return msg
    return f"{type(exc).__name__}: {msg}"


def _remove_leftover_temporaries(jobs: Sequence[Job], report: BatchReport) -> None:
    """A run killed mid-save (SIGKILL, power cut) leaves ``.<stem>.XXXXXXXX.tmp<suffix>`` next
    to the output it was writing. Remove those of this rank's own outputs (files of exactly that
    pattern only, and none that a running batch into the same folder still writes: its writer
    holds a lock on it), so that no other rank's or program's file in progress is touched."""
    from engine.atomic import leftover_temporaries

    for tmp in leftover_temporaries(job.output for job in jobs if not job.error):
        try:
            tmp.unlink()
        except OSError:
            continue
        report.removed_temporaries.append(tmp)
