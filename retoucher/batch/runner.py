"""Running a batch: :func:`run_batch` loads each photo of this rank's share, makes its hole,
fills equal-size photos together (one network batch) and writes each output, reporting each
photo as done, skipped or failed. One bad file never stops the batch; cancel stops it at the
next photo. The engine (torch) is imported here only when a batch runs.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import transparent
from ..damage import default_detector_factory, describe_detector, find_damage
from ..inpainting import CancelFn, DetectorFactory, DetectorLike, InpainterLike
from .holes import Holes
from .ledger import (
    BatchProgressFn,
    Ledger,
    check_detector_file,
    check_model_file,
    create_engine,
    reason,
    start_run,
)
from .options import BatchError, BatchOptions, BatchReport
from .planning import Job, plan_batch

if TYPE_CHECKING:  # pragma: no cover
    from engine.imageio import LoadedImage

__all__ = ["BatchProgressFn", "run_batch"]


def run_batch(
    options: BatchOptions,
    *,
    inpainter: InpainterLike | None = None,
    detector_factory: DetectorFactory | None = None,
    progress: BatchProgressFn | None = None,
    inpainter_factory: Callable[[str], InpainterLike] | None = None,
    cancel: CancelFn | None = None,
    stop: CancelFn | None = None,
    rank: int = 0,
    world_size: int = 1,
    local_rank: int | None = None,
) -> BatchReport:
    """Retouch this rank's share of the input folder; return what happened to each photo.

    ``inpainter``: a ready :class:`engine.Inpainter`; otherwise one is made when the first photo
    needs it (a finished batch loads none), by ``inpainter_factory(device)`` (the app passes its
    cached one so) or from ``options.weights``/``options.device`` (with ``cuda:LOCAL_RANK`` when
    running on CUDA under torchrun). Either fills at
    ``options.texture``, whatever strength the engine was made with (None: the engine's own,
    which for an engine made from a weight file alone is the model's own), and with the mirrored
    pass exactly when ``options.mirror`` is set. With ``options.find_damage`` the damage detector
    is made the same way by ``detector_factory`` (default: the engine's, from
    ``options.damage_weights``), so each rank has its own. ``progress(finished, total, name)``
    is called after each photo; ``cancel()`` returning True stops the batch at the next photo (or
    the next check inside a fill or a detection): finished outputs stay, and a re-run resumes.
    ``stop()`` returning True stops it before the next photo, the photos in hand (a group filled
    together) finished and written first (the command line's first Ctrl+C).

    Raises :class:`BatchError` for problems with the batch as a whole (nothing usable to do).
    """
    from engine.inpainter import InpaintCancelled

    left_out: list[Path] = []
    jobs, report = start_run(plan_batch(options, left_out), BatchReport(), rank, world_size)
    report.left_out = left_out
    holes = None
    if options.masks is not None:
        root = options.input_dir.expanduser().resolve()
        holes = Holes(options.masks, root, missing_ok=options.find_damage)  # found damage is a hole
    runner = _Runner(
        options,
        holes,
        inpainter,
        detector_factory,
        progress,
        cancel,
        stop,
        report,
        local_rank,
        inpainter_factory,
    )
    try:
        for job in runner.pending(jobs, options.overwrite, options.output_dir, runner.check_weight_files):
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
    no_mask: bool = False  # it had no mask of its own (with damage to find): listed once written
    no_damage: bool = False  # no damage was found in it: listed once written


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
    # what the app refuses to save over (Document.save_in_place_problem): said for each output
    if img.metadata.bits_per_channel_lost:
        logging.getLogger("retoucher.batch").warning(
            "%s has more than 8 bits per channel (%s); %s is written with 8",
            item.job.source,
            img.metadata.mode,
            output.name,
        )
    elif img.metadata.mode == "CMYK":  # without a profile, the engine said so as it read the file
        logging.getLogger("retoucher.batch").warning(
            "%s is CMYK; %s is written in RGB%s",
            item.job.source,
            output.name,
            " (sRGB, through its CMYK profile)" if img.metadata.icc_profile else "",
        )
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


class _Runner(Ledger):
    """One batch run: makes each photo's hole, gathers equal-size photos into groups that are
    filled together, writes the outputs, and settles each job (see :class:`Ledger`)."""

    def __init__(
        self,
        options: BatchOptions,
        holes: Holes | None,
        inpainter: InpainterLike | None,
        detector_factory: DetectorFactory | None,
        progress: BatchProgressFn | None,
        cancel: CancelFn | None,
        stop: CancelFn | None,
        report: BatchReport,
        local_rank: int | None,
        inpainter_factory: Callable[[str], InpainterLike] | None = None,
    ) -> None:
        super().__init__(report, progress, cancel, stop)
        self.options = options
        self.holes = holes
        self._inpainter = inpainter
        self._detector: DetectorLike | None = None
        self.detector_factory = detector_factory or default_detector_factory
        self._engines_default = (inpainter is None and inpainter_factory is None, detector_factory is None)
        self.inpainter_factory = inpainter_factory
        self.local_rank = local_rank
        self.group: list[_Item] = []  # equal-size photos waiting to be filled together

    # -- the engines, created when the first photo needs them (a finished batch loads neither)
    def check_weight_files(self) -> None:
        """The headers of the weight files the engine's own model and detector will load."""
        model, detector = self._engines_default
        if model:
            check_model_file(self.options.weights)
        if detector and self.options.find_damage:
            check_detector_file(self.options.damage_weights)

    @property
    def inpainter(self) -> InpainterLike:
        if self._inpainter is None:
            from engine.inpainter import Inpainter

            self._inpainter = create_engine(
                self.inpainter_factory or (lambda device: Inpainter(self.options.weights, device=device)),
                self.options.device,
                self.local_rank,
                "model",
            )
        if self.report.model is None:
            # every fill's call is given options.texture; None: the engine's own strength (an
            # engine.Inpainter's .texture; test doubles have none and add no texture)
            texture = self.options.texture
            if texture is None:
                texture = getattr(self._inpainter, "texture", None)
            self.report.model = (
                f"{self._inpainter.name} on {self._inpainter.device_name}"
                + (f", texture {texture:g}" if texture else "")
                + ("" if self.options.mirror else ", one network pass")
            )
        return self._inpainter

    @property
    def detector(self) -> DetectorLike:
        if self._detector is None:
            weights = self.options.damage_weights
            self._detector = create_engine(
                lambda device: self.detector_factory(None if weights is None else str(weights), device),
                self.options.device,
                self.local_rank,
                "damage detector",
            )
            self.report.detector = describe_detector(
                self._detector, self.options.threshold, self.options.dilate
            )
        return self._detector

    # -- each job, from its file to its output
    def load(self, job: Job) -> _Item | None:
        """The photo and its hole; None when the job is settled here (failed)."""
        from engine.imageio import load_image
        from engine.inpainter import InpaintCancelled

        try:
            image = load_image(job.source)
            hole, no_mask, no_damage = self.hole(job, image)
        except (InpaintCancelled, BatchError):
            raise
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
            self.fail(job, reason(exc))
            return None
        why = transparent.why_nothing_to_fill(hole, image.alpha)
        if why is not None:
            self.fail(job, why)
            return None
        return _Item(job, image, hole, no_mask, no_damage)

    def hole(self, job: Job, image: LoadedImage) -> tuple[np.ndarray, bool, bool]:
        """The given hole of the photo, the damage found in it (never on a fully transparent
        pixel), or the union of the two; whether it had no mask of its own in the mask folder
        (with damage to find: an empty given hole) and whether no damage was found."""
        shape = image.rgb.shape[:2]
        given = None if self.holes is None else self.holes.for_image(job, shape)
        no_mask = given is None and self.holes is not None
        no_damage = False
        hole = np.zeros(shape, bool) if given is None else given
        if self.options.find_damage:
            opts = self.options
            found = find_damage(
                self.detector,
                image.rgb,
                threshold=opts.threshold,
                dilate=opts.dilate,
                alpha=image.alpha,
                cancel=self.cancel,
            )
            no_damage = not found.any()
            hole = hole | found
        return hole, no_mask, no_damage

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
                results = transparent.fill_batch(
                    self.inpainter,
                    [g.image.rgb for g in group],
                    [g.hole for g in group],
                    [g.image.alpha for g in group],
                    texture=self.options.texture,
                    mirror=self.options.mirror,
                )
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
                result = transparent.fill(
                    self.inpainter,
                    item.image.rgb,
                    item.hole,
                    item.image.alpha,
                    cancel=self.cancel,
                    texture=self.options.texture,
                    mirror=self.options.mirror,
                )
            except (InpaintCancelled, BatchError):
                raise
            except Exception as exc:  # noqa: BLE001 - CUDA errors, out of memory...: this photo fails, the batch goes on
                self.fail(item.job, reason(exc))
                continue
            self.save(item, result)

    def save(self, item: _Item, result: np.ndarray | None) -> None:
        """Write the output (``result`` None: the photo unchanged) and settle the job."""
        try:
            write_output(item, result, self.options.quality)
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
            self.fail(item.job, f"could not write {item.job.output}: {reason(exc)}")
            return
        if result is None:
            self.report.unchanged.append(item.job.source)
        # listed only for photos written (a failed one is listed as failed alone)
        if item.no_mask:
            self.report.no_mask.append(item.job.source)
        if item.no_damage:
            self.report.no_damage.append(item.job.source)
        self.done(item.job)
