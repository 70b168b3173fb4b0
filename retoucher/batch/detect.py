"""Finding damage in a folder: :func:`run_detect` writes, for every photo of ``input_dir``, the
mask of the damage found in it as ``output_dir/<sub-folder>/<stem>.png`` (8-bit grey, white =
damage, the size of the photo as displayed: after its EXIF orientation), ready for
``retoucher batch --masks`` or for review in the app.

The rules are the batch's (:mod:`.planning`, :mod:`.ledger`): the same photos are found (suffixes,
hidden files, ``recursive``, an output folder inside the input folder never listed), two photos
that would write the same mask (``x.jpg`` and ``x.png``) make the second one fail with a reason,
masks are written atomically, a mask that exists is skipped unless ``overwrite``, one bad file
never stops the run, and under torchrun each rank takes its share and its own detector. The mask
is :func:`retoucher.damage.find_damage`'s, the app's code path (so a fully transparent pixel of
an RGBA photo is never marked).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..damage import DEFAULT_DILATE, check_threshold, default_detector_factory, describe_detector, find_damage
from ..inpainting import CancelFn, DetectorFactory, DetectorLike
from ..mask_ops import check_radius
from .ledger import BatchProgressFn, Ledger, check_detector_file, create_engine, reason, start_run
from .options import BatchError, BatchReport, check_device
from .planning import Job, list_images, plan_outputs, resolve_folders

__all__ = ["DetectOptions", "DetectReport", "plan_detect", "run_detect"]


@dataclass
class DetectOptions:
    """``input_dir``: the photos; ``output_dir``: where the masks go; ``threshold`` (None: the
    detector's calibrated one) and ``dilate`` (pixels) as in :func:`retoucher.damage.find_damage`;
    ``weights``: the detector (None: the bundled one)."""

    input_dir: Path
    output_dir: Path
    threshold: float | None = None
    dilate: int = DEFAULT_DILATE
    weights: Path | None = None
    device: str = "auto"
    overwrite: bool = False
    recursive: bool = False

    def __post_init__(self) -> None:
        self.input_dir = Path(self.input_dir)
        self.output_dir = Path(self.output_dir)
        if self.threshold is not None:
            self.threshold = check_threshold(self.threshold)
        self.dilate = check_radius(self.dilate)
        if self.weights is not None:
            self.weights = Path(self.weights)
        check_device(self.device)


@dataclass
class DetectReport(BatchReport):
    """A :class:`BatchReport` (``done``: masks written) with the pixels flagged as damage in
    the masks written, and all their pixels."""

    flagged: int = 0
    pixels: int = 0

    def counts(self) -> list[int]:
        return [*super().counts(), self.flagged, self.pixels]

    def headline(self, counts: list[int] | None = None) -> str:
        done, skipped, failed, total, flagged, pixels = counts or self.counts()
        # a re-run that skipped every mask measured nothing: "no pixels flagged" said otherwise
        share = f"; {100 * flagged / pixels:.2f}% of their pixels flagged" if pixels else ""
        stop = (
            f", cancelled with {self.not_processed} not processed"
            if counts is None and self.cancelled
            else ""
        )
        return f"photos {total}: masks written {done}, skipped {skipped}, failed {failed}{stop}{share}"


def plan_detect(options: DetectOptions, left_out: list[Path] | None = None) -> list[Job]:
    """Every photo of the run (all ranks), sorted, with its mask's path; collisions marked.
    ``left_out``: the photos in formats that are not looked at are added to it
    (:func:`~.planning.list_images`). Raises :class:`BatchError` for unusable folders."""
    src, dst, exclude = resolve_folders(
        options.input_dir, options.output_dir, inputs="photo folder", outputs="mask folder"
    )
    files = list_images(src, options.recursive, exclude, left_out)
    return plan_outputs(src, dst, files, lambda f: ".png")


def run_detect(
    options: DetectOptions,
    *,
    detector: DetectorLike | None = None,
    detector_factory: DetectorFactory | None = None,
    progress: BatchProgressFn | None = None,
    cancel: CancelFn | None = None,
    stop: CancelFn | None = None,
    rank: int = 0,
    world_size: int = 1,
    local_rank: int | None = None,
) -> DetectReport:
    """Write the damage mask of each photo of this rank's share; return what happened to each.

    ``detector``: a ready one; otherwise ``detector_factory`` (default: the engine's) makes one
    from ``options.weights`` on ``options.device`` (``cuda:LOCAL_RANK`` under torchrun) when
    the first photo needs it. ``progress``, ``cancel`` and ``stop`` as in
    :func:`~.runner.run_batch`.
    Raises :class:`BatchError` for problems with the run as a whole (folders, detector).
    """
    from engine.imageio import load_image, save_mask
    from engine.inpainter import InpaintCancelled

    left_out: list[Path] = []
    jobs, report = start_run(plan_detect(options, left_out), DetectReport(), rank, world_size)
    report.left_out = left_out
    ledger = Ledger(report, progress, cancel, stop)
    factory = detector_factory or default_detector_factory

    def make(device: str) -> DetectorLike:
        return factory(None if options.weights is None else str(options.weights), device)

    def check_weights() -> None:  # the engine's own detector's file, before the output folder
        if detector is None and detector_factory is None:
            check_detector_file(options.weights)

    try:
        for job in ledger.pending(jobs, options.overwrite, options.output_dir, check_weights):
            if detector is None:
                detector = create_engine(make, options.device, local_rank, "damage detector")
            if report.detector is None:
                report.detector = describe_detector(detector, options.threshold, options.dilate)
            try:
                photo = load_image(job.source)
                mask = find_damage(
                    detector,
                    photo.rgb,
                    threshold=options.threshold,
                    dilate=options.dilate,
                    alpha=photo.alpha,
                    cancel=cancel,
                )
            except (InpaintCancelled, BatchError):
                raise
            except Exception as exc:  # noqa: BLE001 - one bad file never stops the run
                ledger.fail(job, reason(exc))
                continue
            try:
                save_mask(job.output, mask)
            except Exception as exc:  # noqa: BLE001 - a full disk, a read-only folder: say so, go on
                ledger.fail(job, f"could not write {job.output}: {reason(exc)}")
                continue
            report.flagged += int(mask.sum())
            report.pixels += mask.size
            ledger.done(job)
    except InpaintCancelled:
        report.cancelled = True
    return report
