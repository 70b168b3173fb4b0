"""Folder retouching: fill the same kind of hole in every photo of a folder.

Shared by the command line (``retoucher batch INPUT_DIR OUTPUT_DIR ...``, see :func:`main`) and
the desktop app's batch dialog (:func:`run_batch` with progress and cancel callbacks).

Guarantees: inputs are only read; each output is written atomically (a temporary file renamed into
place), so an output that exists is complete and a re-run skips it unless ``overwrite`` is set
(a batch killed half-way resumes where it stopped, and removes the temporary file a hard kill
left next to one of its outputs); one bad file is reported and never stops the
batch; two inputs that would write the same output are reported instead of overwriting each
other. Under ``torchrun --nproc_per_node=N`` every rank takes every N-th file of the sorted list
(``RANK``/``WORLD_SIZE``) and its own GPU (``LOCAL_RANK``); at the end the ranks meet
(:mod:`engine.distributed`, gloo on the CPU) and all exit with the status of the whole batch, so
that a rank with a failed photo does not make torchrun stop the ranks still working.

This module never imports torch; the engine is imported when a batch actually runs.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from engine.imageio import LoadedImage
    from engine.inpainter import Inpainter

__all__ = [
    "BatchError",
    "MaskSpec",
    "BatchOptions",
    "BatchReport",
    "run_batch",
    "plan_batch",
    "parse_rect",
    "parse_size",
    "rank_from_env",
    "build_parser",
    "main",
    "OUTPUT_FORMATS",
]

ProgressFn = Callable[[int, int, str], None]
CancelFn = Callable[[], bool]

OUTPUT_FORMATS = ("same", "png", "jpg", "tif", "webp")
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class BatchError(ValueError):
    """A problem with the batch as a whole (bad folders, mask file, weights, device): nothing
    was processed."""


# ---------------------------------------------------------------------------------------------
# options


def parse_rect(text: str) -> tuple[int, int, int, int]:
    """``"X,Y,W,H"`` -> (x, y, w, h) with x, y >= 0 and w, h > 0."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        x, y, w, h = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"rectangle must be X,Y,W,H (four integers), got {text!r}") from None
    if x < 0 or y < 0 or w <= 0 or h <= 0:
        raise ValueError(f"rectangle {text!r}: X and Y must be >= 0, W and H > 0")
    return x, y, w, h


def parse_size(text: str | int) -> tuple[int, int]:
    """``"64"`` -> (64, 64); ``"96x64"`` (width x height) -> (96, 64)."""
    if isinstance(text, int):
        w = h = text
    else:
        m = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", str(text))
        if not m:
            raise ValueError(f"hole size must be SIZE or WxH in pixels, got {text!r}")
        w = int(m.group(1))
        h = int(m.group(2)) if m.group(2) else w
    if w <= 0 or h <= 0:
        raise ValueError(f"hole size must be positive, got {text!r}")
    return int(w), int(h)


@dataclass(frozen=True)
class MaskSpec:
    """Where the hole of each photo comes from.

    ``dir``: a folder of PNG masks named like the photos (``<stem>.png`` or ``<stem>_mask.png``
    in the same sub-folder as the photo; ``<stem>_mask.png`` at the folder's top), white = hole;
    when the mask folder is the input folder (masks next to the photos), only ``_mask`` names;
    ``file``: one mask for every photo; ``rect``: ``(x, y, w, h)`` in pixels; ``center``: a
    centred hole of ``size`` pixels (an int, or ``(w, h)``). Masks of another size than the photo
    are scaled (nearest neighbour) and thresholded at 127.
    """

    kind: Literal["dir", "file", "rect", "center"]
    value: Any

    def __post_init__(self) -> None:
        if self.kind in ("dir", "file"):
            object.__setattr__(self, "value", Path(self.value))
        elif self.kind == "rect":
            v = (
                parse_rect(self.value)
                if isinstance(self.value, str)
                else parse_rect(",".join(str(int(c)) for c in self.value))
            )
            object.__setattr__(self, "value", v)
        elif self.kind == "center":
            v = (
                parse_size(self.value)
                if isinstance(self.value, (str, int))
                else parse_size("x".join(str(int(c)) for c in self.value))
            )
            object.__setattr__(self, "value", v)
        else:
            raise ValueError(f"unknown mask kind {self.kind!r}; use dir, file, rect or center")

    def describe(self) -> str:
        if self.kind == "dir":
            return f"masks from {self.value}"
        if self.kind == "file":
            return f"mask {self.value}"
        if self.kind == "rect":
            return "rectangle x={} y={} w={} h={}".format(*self.value)
        return "centred hole {}x{}".format(*self.value)


@dataclass
class BatchOptions:
    input_dir: Path
    output_dir: Path
    masks: MaskSpec
    weights: Path | None = None
    device: str = "auto"
    format: str = "same"  # same | png | jpg | tif | webp
    overwrite: bool = False
    recursive: bool = False
    quality: int | None = None  # None: a JPEG input's own quantisation for JPEG output, else 95

    def __post_init__(self) -> None:
        self.input_dir = Path(self.input_dir)
        self.output_dir = Path(self.output_dir)
        if self.weights is not None:
            self.weights = Path(self.weights)
        fmt = str(self.format).lower().lstrip(".")
        if fmt not in OUTPUT_FORMATS and fmt not in ("jpeg", "tiff"):
            raise ValueError(f"output format must be one of {', '.join(OUTPUT_FORMATS)}, got {self.format!r}")
        self.format = fmt
        if not _DEVICE_RE.match(str(self.device)):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.quality is not None and (not isinstance(self.quality, int) or not 1 <= self.quality <= 100):
            raise ValueError(f"quality must be an integer from 1 to 100, got {self.quality!r}")


@dataclass
class BatchReport:
    """What happened to each input photo (paths are the inputs)."""

    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)  # output already there
    failed: list[tuple[Path, str]] = field(default_factory=list)
    total: int = 0  # files assigned to this rank
    cancelled: bool = False
    outputs: dict[Path, Path] = field(default_factory=dict)  # input -> output written
    removed_temporaries: list[Path] = field(default_factory=list)  # left by a killed run
    rank: int = 0
    world_size: int = 1
    model: str | None = None  # "NAME on DEVICE" of the model that filled; None if none was needed

    @property
    def ok(self) -> bool:
        return not self.failed and not self.cancelled

    @property
    def not_processed(self) -> int:
        return self.total - len(self.done) - len(self.skipped) - len(self.failed)

    def summary(self) -> str:
        prefix = f"[rank {self.rank}/{self.world_size}] " if self.world_size > 1 else ""
        parts = [f"done {len(self.done)}", f"skipped {len(self.skipped)}", f"failed {len(self.failed)}"]
        if self.cancelled:
            parts.append(f"cancelled with {self.not_processed} not processed")
        lines = [prefix + ", ".join(parts) + f" (of {self.total})"]
        if self.model is not None:
            lines.append(f"{prefix}model: {self.model}")
        lines += [f"{prefix}  FAILED {path}: {reason}" for path, reason in self.failed]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# planning


@dataclass
class Job:
    source: Path
    relative: Path
    output: Path
    error: str | None = None  # known before loading (e.g. an output collision)
    mask: Path | None = None  # with MaskSpec("dir"): the mask file found for it


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def _list_images(root: Path, recursive: bool, exclude: Sequence[Path]) -> list[Path]:
    from engine.formats import IMAGE_SUFFIXES

    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        # Hidden folders and files are skipped: among them our own temporary files (".name.*").
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not d.startswith(".") and not any((here / d).resolve() == ex for ex in exclude)
        )
        for name in filenames:
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                found.append(here / name)
        if not recursive:
            break
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _is_mask_name(name: str) -> bool:
    return name.lower().endswith("_mask.png")


def _mask_candidates(masks_dir: Path, relative: Path, mask_names_only: bool) -> list[Path]:
    """Where the mask of the photo ``relative`` may be, in order of preference: ``<stem>.png``
    (unless ``mask_names_only``) or ``<stem>_mask.png`` in the photo's sub-folder of
    ``masks_dir``, then ``<stem>_mask.png`` at its top (never a plain ``<stem>.png`` there: in
    a recursive batch that could be another photo's mask, or another photo)."""
    stem = relative.stem
    mask_names = [f"{stem}_mask.png", f"{stem}_mask.PNG"]
    here = ([] if mask_names_only else [f"{stem}.png", f"{stem}.PNG"]) + mask_names
    found = [masks_dir / relative.parent / n for n in here]
    if relative.parent != Path("."):
        found += [masks_dir / n for n in mask_names]
    return found


def _assign_masks(files: list[Path], src: Path, masks_dir: Path) -> dict[Path, Path | None]:
    """The mask file of each photo; files used as masks are not photos (not in the result).

    When the mask folder is the input folder (or contains it), masks live among the photos, and
    only ``<stem>_mask.png`` names count as masks: ``x.png`` is a photo, never the mask of
    ``x.jpg``. A file listed as a photo is never used as a mask unless it has a ``_mask`` name.
    """
    mask_names_only = _is_within(src, masks_dir)
    listed = set(files)
    chosen: dict[Path, Path | None] = {}
    for f in files:
        chosen[f] = None
        for cand in _mask_candidates(masks_dir, f.relative_to(src), mask_names_only):
            if cand == f or (cand in listed and not _is_mask_name(cand.name)):
                continue
            if cand.is_file():
                chosen[f] = cand
                break
    used = {m for m in chosen.values() if m is not None}
    return {f: m for f, m in chosen.items() if f not in used}


def _output_suffix(source: Path, fmt: str) -> str:
    from engine.formats import suffix_for_format

    return source.suffix if fmt == "same" else suffix_for_format(fmt)


def _validate_folders(options: BatchOptions) -> tuple[Path, Path, list[Path]]:
    src = options.input_dir.expanduser().resolve()
    dst = options.output_dir.expanduser().resolve()
    if not src.is_dir():
        raise BatchError(f"input folder not found: {options.input_dir}")
    if dst.exists() and not dst.is_dir():
        raise BatchError(f"output path exists and is not a folder: {options.output_dir}")
    if dst == src:
        raise BatchError(
            f"the output folder must differ from the input folder ({options.output_dir}): "
            "Retoucher never overwrites its inputs"
        )
    exclude = [dst] if _is_within(dst, src) else []
    spec = options.masks
    if spec.kind == "dir":
        mdir = spec.value.expanduser().resolve()
        if not mdir.is_dir():
            raise BatchError(f"mask folder not found: {spec.value}")
        if _is_within(mdir, src) and mdir != src:
            exclude.append(mdir)
    elif spec.kind == "file" and not spec.value.expanduser().is_file():
        raise BatchError(f"mask file not found: {spec.value}")
    return src, dst, exclude


def plan_batch(options: BatchOptions) -> list[Job]:
    """Every input of the batch (all ranks), sorted, with its output path; collisions marked.

    Raises :class:`BatchError` for unusable folders.
    """
    src, dst, exclude = _validate_folders(options)
    files = _list_images(src, options.recursive, exclude)
    spec = options.masks
    masks: dict[Path, Path | None] = {}
    if spec.kind == "dir":
        # Masks kept next to the photos (photo.jpg + photo_mask.png) are not photos to retouch.
        masks = _assign_masks(files, src, spec.value.expanduser().resolve())
        files = [f for f in files if f in masks]
    jobs: list[Job] = []
    owner: dict[Path, Path] = {}
    inputs = set(files)
    for f in files:
        rel = f.relative_to(src)
        out = dst / rel.parent / (rel.stem + _output_suffix(f, options.format))
        job = Job(source=f, relative=rel, output=out, mask=masks.get(f))
        if out in inputs:
            job.error = f"its output {out} would overwrite an input photo"
        else:
            key = Path(os.path.normcase(str(out)))
            if key in owner:
                job.error = (
                    f"its output {out} is already the output of {owner[key].relative_to(src)}; "
                    "rename one of them (or keep --format same)"
                )
            else:
                owner[key] = f
        jobs.append(job)
    return jobs


# ---------------------------------------------------------------------------------------------
# masks


class _Holes:
    """Makes the hole for a photo of a given size according to the :class:`MaskSpec`."""

    def __init__(self, spec: MaskSpec, input_root: Path) -> None:
        from engine.imageio import ImageReadError, load_mask

        self.spec = spec
        self.input_root = input_root
        self._load_mask = load_mask
        self._cache: dict[tuple[int, int], np.ndarray] = {}
        if spec.kind == "file":
            try:
                self._file_mask = load_mask(spec.value)
            except ImageReadError as exc:
                raise BatchError(f"the mask file cannot be used: {exc}") from exc
            if not self._file_mask.any():
                raise BatchError(f"the mask file {spec.value} has no hole (no pixel brighter than 127)")

    def for_image(self, job: Job, shape: tuple[int, int]) -> np.ndarray:
        h, w = shape
        kind = self.spec.kind
        if kind == "dir":
            if job.mask is not None:
                return self._load_mask(job.mask, (h, w))
            stem = job.relative.stem
            among_photos = _is_within(self.input_root, self.spec.value.expanduser().resolve())
            looked_for = f"{stem}_mask.png" if among_photos else f"{stem}.png and {stem}_mask.png"
            raise FileNotFoundError(f"no mask for it in {self.spec.value} (looked for {looked_for})")
        if kind == "file":
            if (h, w) not in self._cache:
                m = self._file_mask
                if m.shape != (h, w):
                    m = self._load_mask(self.spec.value, (h, w))
                self._cache[(h, w)] = m
            return self._cache[(h, w)]
        if kind == "rect":
            x, y, rw, rh = self.spec.value
            if x >= w or y >= h:
                raise ValueError(f"the rectangle x={x} y={y} starts outside the {w}x{h} image")
            hole = np.zeros((h, w), dtype=bool)
            hole[y : min(h, y + rh), x : min(w, x + rw)] = True
            return hole
        cw, ch = self.spec.value
        if cw > w or ch > h:
            raise ValueError(f"the centred hole {cw}x{ch} does not fit in the {w}x{h} image")
        hole = np.zeros((h, w), dtype=bool)
        y0, x0 = (h - ch) // 2, (w - cw) // 2
        hole[y0 : y0 + ch, x0 : x0 + cw] = True
        return hole


# ---------------------------------------------------------------------------------------------
# running


def _resolve_device(device: str, local_rank: int | None) -> str:
    from engine.distributed import device_for_rank

    try:
        return str(device_for_rank(device, local_rank))
    except ValueError as exc:
        raise BatchError(str(exc)) from exc


@dataclass
class _Item:
    job: Job
    image: LoadedImage
    hole: np.ndarray


class _Runner:
    def __init__(
        self,
        options: BatchOptions,
        inpainter: Inpainter | None,
        progress: ProgressFn | None,
        cancel: CancelFn | None,
        report: BatchReport,
        local_rank: int | None,
    ) -> None:
        self.options = options
        self._inpainter = inpainter
        self.progress = progress
        self.cancel = cancel
        self.report = report
        self.local_rank = local_rank
        self.finished = 0

    # -- the model, created when the first photo needs it (a finished batch never loads it)
    @property
    def inpainter(self) -> Inpainter:
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

    def _tick(self, job: Job) -> None:
        self.finished += 1
        if self.progress is not None:
            self.progress(self.finished, self.report.total, job.relative.as_posix())

    def fail(self, job: Job, reason: str) -> None:
        self.report.failed.append((job.source, reason))
        self._tick(job)

    def skip(self, job: Job) -> None:
        self.report.skipped.append(job.source)
        self._tick(job)

    def save(self, item: _Item, result: np.ndarray) -> None:
        from engine.formats import format_for_suffix, is_jpeg
        from engine.imageio import save_image

        img = item.image
        out_format = format_for_suffix(item.job.output.suffix)
        keep_jpeg = self.options.quality is None and out_format == "JPEG" and is_jpeg(img.format)
        try:
            save_image(
                item.job.output,
                result,
                alpha=img.alpha,
                exif=img.exif,
                icc_profile=img.icc_profile,
                quality=95 if self.options.quality is None else self.options.quality,
                jpeg_tables=img.jpeg_tables if keep_jpeg else None,
                dpi=img.dpi,
                xmp=img.xmp,
            )
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
            self.fail(item.job, f"could not write {item.job.output}: {_reason(exc)}")
            return
        self.done(item.job)

    def keep_unchanged(self, item: _Item) -> None:
        """Nothing to fill: the output is the photo. Same format: the input's bytes, copied
        (atomically; no re-encoding, so no JPEG generation loss). Another format: saved."""
        from engine.atomic import atomic_path
        from engine.formats import format_for_suffix, is_jpeg

        out_format = format_for_suffix(item.job.output.suffix)
        same = item.image.format == out_format or (out_format == "JPEG" and is_jpeg(item.image.format))
        if not same:
            self.save(item, item.image.rgb)
            return
        try:
            with atomic_path(item.job.output) as tmp:
                shutil.copyfile(item.job.source, tmp)
        except Exception as exc:  # noqa: BLE001
            self.fail(item.job, f"could not write {item.job.output}: {_reason(exc)}")
            return
        self.done(item.job)

    def done(self, job: Job) -> None:
        self.report.done.append(job.source)
        self.report.outputs[job.source] = job.output
        self._tick(job)

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
            except Exception as exc:  # noqa: BLE001
                self.fail(item.job, _reason(exc))
                continue
            self.save(item, result)


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


def run_batch(
    options: BatchOptions,
    *,
    inpainter: Inpainter | None = None,
    progress: ProgressFn | None = None,
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
    from engine.imageio import load_image
    from engine.inpainter import InpaintCancelled, NothingToFillError

    jobs = plan_batch(options)[rank::world_size]
    report = BatchReport(total=len(jobs), rank=rank, world_size=world_size)
    _remove_leftover_temporaries(jobs, report)
    holes = _Holes(options.masks, options.input_dir.expanduser().resolve())
    runner = _Runner(options, inpainter, progress, cancel, report, local_rank)
    group: list[_Item] = []

    def flush() -> None:
        runner.fill(group)
        group.clear()

    try:
        for job in jobs:
            if cancel is not None and cancel():
                raise InpaintCancelled()
            if job.error:
                runner.fail(job, job.error)
                continue
            if job.output.exists() and not options.overwrite:
                runner.skip(job)
                continue
            try:
                image = load_image(job.source)
                hole = holes.for_image(job, image.rgb.shape[:2])
            except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
                runner.fail(job, _reason(exc))
                continue
            if hole.all():
                runner.fail(job, str(NothingToFillError()))
                continue
            item = _Item(job, image, hole)
            if not hole.any():  # nothing to fill: the output is the photo
                runner.keep_unchanged(item)
                continue
            inp = runner.inpainter
            same = not group or group[0].image.rgb.shape == image.rgb.shape
            small = max(image.rgb.shape[:2]) <= getattr(inp, "max_side", 0)
            if not (same and small):
                flush()
            group.append(item)
            if not small or len(group) >= getattr(inp, "batch_size", 1):
                flush()
        flush()
    except InpaintCancelled:
        report.cancelled = True
    return report


# ---------------------------------------------------------------------------------------------
# command line


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)


def build_parser(prog: str = "retoucher batch") -> argparse.ArgumentParser:
    p = _Parser(
        prog=prog,
        description=(
            "Fill a hole in every photo of INPUT_DIR and write the results to OUTPUT_DIR "
            "(same file names). Inputs are never modified; finished outputs are skipped on a "
            "re-run unless --overwrite. Exit status: 0 all good, 1 some photos failed, "
            "2 usage error. Runs under 'torchrun --nproc_per_node=N' too (each rank takes its "
            "share of the files; all ranks exit with the status of the whole batch)."
        ),
    )
    p.add_argument("input_dir", metavar="INPUT_DIR", type=Path, help="folder of photos")
    p.add_argument("output_dir", metavar="OUTPUT_DIR", type=Path, help="where the results go")
    m = p.add_argument_group("hole (exactly one)").add_mutually_exclusive_group(required=True)
    m.add_argument(
        "--masks",
        metavar="DIR",
        type=Path,
        help="folder of PNG masks named <stem>.png or <stem>_mask.png, white = hole "
        "(only <stem>_mask.png when DIR is INPUT_DIR: masks next to the photos)",
    )
    m.add_argument("--mask", metavar="FILE", type=Path, help="one mask for every photo")
    m.add_argument("--rect", metavar="X,Y,W,H", help="a rectangular hole, in pixels")
    m.add_argument("--center-hole", metavar="SIZE", help="a centred square hole of SIZE (or WxH) pixels")
    p.add_argument(
        "--weights",
        metavar="PATH",
        type=Path,
        help="model weights (.safetensors); default: the bundled model",
    )
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument(
        "--format", default="same", choices=OUTPUT_FORMATS, help="output format (default: same as the input)"
    )
    p.add_argument(
        "--quality",
        type=int,
        default=None,
        help="JPEG/WebP quality 1-100 (default: a JPEG written from a JPEG keeps the "
        "original's quantisation, anything else 95)",
    )
    p.add_argument("--overwrite", action="store_true", help="redo photos whose output exists")
    p.add_argument(
        "--recursive", action="store_true", help="include sub-folders (outputs keep the sub-folder layout)"
    )
    p.add_argument(
        "--rank-timeout",
        metavar="MINUTES",
        type=float,
        default=60.0,
        help="under torchrun: how long a rank that has finished its share waits for the "
        "others, to exit with the status of the whole batch (default 60)",
    )
    return p


def _mask_spec(args: argparse.Namespace) -> MaskSpec:
    if args.masks is not None:
        return MaskSpec("dir", args.masks)
    if args.mask is not None:
        return MaskSpec("file", args.mask)
    if args.rect is not None:
        return MaskSpec("rect", args.rect)
    return MaskSpec("center", args.center_hole)


def rank_from_env(environ: os._Environ[str] | dict[str, str] | None = None) -> tuple[int, int, int | None]:
    """(rank, world_size, local_rank) as torchrun sets them; (0, 1, None) otherwise."""
    env = os.environ if environ is None else environ
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local = env.get("LOCAL_RANK")
        local_rank = int(local) if local not in (None, "") else None
    except ValueError as exc:
        raise BatchError(f"RANK/WORLD_SIZE/LOCAL_RANK must be integers ({exc})") from exc
    if world < 1 or not 0 <= rank < world:
        raise BatchError(f"RANK={rank} is not within WORLD_SIZE={world}")
    if local_rank is None and world > 1:
        local_rank = rank
    return rank, world, local_rank


def main(argv: Sequence[str] | None = None, *, prog: str = "retoucher batch") -> int:
    """``retoucher batch`` command line; returns the exit status."""
    parser = build_parser(prog)
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        options = BatchOptions(
            input_dir=args.input_dir,
            output_dir=args.output_dir,
            masks=_mask_spec(args),
            weights=args.weights,
            device=args.device,
            format=args.format,
            overwrite=args.overwrite,
            recursive=args.recursive,
            quality=args.quality,
        )
        rank, world, local_rank = rank_from_env()
        if not args.rank_timeout > 0:
            raise ValueError(f"--rank-timeout must be a positive number of minutes, got {args.rank_timeout}")
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except (_UsageError, ValueError) as exc:
        parser.print_usage(sys.stderr)
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    from tqdm import tqdm

    # Started before the work (model loading included), so its rate is photos per second of the
    # whole run; a bar started at the first finished photo showed thousands of photos/s.
    bar = tqdm(total=None, unit="photo", desc="retouching", disable=rank != 0, dynamic_ncols=True)

    def progress(finished: int, total: int, name: str) -> None:
        bar.total = total
        bar.set_postfix_str(name[-40:], refresh=False)
        bar.update(finished - bar.n)

    who = f"[rank {rank}/{world}] " if world > 1 else ""
    try:
        report = run_batch(options, progress=progress, rank=rank, world_size=world, local_rank=local_rank)
    except BatchError as exc:
        print(f"{prog}: {who}error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"\n{prog}: {who}interrupted; finished outputs are kept, a re-run resumes", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        bar.close()
    print(report.summary(), flush=True)
    counts = [len(report.done), len(report.skipped), len(report.failed), report.total]
    if world > 1:
        counts = _combine_ranks(counts, args.rank_timeout * 60, prog, who, rank, world)
    if counts[3] == 0 and rank == 0:
        print(
            f"{prog}: no photos found in {options.input_dir}"
            + ("" if options.recursive else " (use --recursive for sub-folders)"),
            file=sys.stderr,
        )
    return EXIT_OK if not counts[2] else EXIT_FAILED


def _combine_ranks(
    counts: list[int], timeout_s: float, prog: str, who: str, rank: int, world: int
) -> list[int]:
    """Sum the ranks' counts so that every rank exits with the status of the whole batch
    (torchrun stops all ranks when one exits non-zero: a rank with a failed photo must not stop
    the others before they finish). If the ranks cannot meet, this rank's own counts."""
    from engine.distributed import RankMeetingError, joined_ranks

    try:
        with joined_ranks(timeout_s) as group:
            total = group.sum(counts)
            if rank == 0:
                print(
                    "all {} ranks: done {}, skipped {}, failed {} (of {})".format(world, *total), flush=True
                )
            group.barrier()  # nobody exits (and gets the others stopped) before that line is out
        return total
    except RankMeetingError as exc:
        print(f"{prog}: {who}warning: {exc}; the exit status covers this rank's photos only", file=sys.stderr)
        return counts
