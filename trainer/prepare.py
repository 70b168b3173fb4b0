"""``retoucher-train prepare``: turn CUB-200-2011 (or any folder of photos) into a small set of
square training images with a manifest and a stratified 6:2:2 split.

Output folder::

    DATA_DIR/images/<species>/<name>.jpg   the square crops, --size pixels (JPEG q95 or PNG)
    DATA_DIR/manifest.csv                  one row per kept photo (see trainer.manifest)
    DATA_DIR/prepare.json                  the settings and the report of the last run

Photos are decoded, cropped and encoded by worker processes. Re-running with the same settings
reuses the crops already written (only the manifest and split are rebuilt), so it is cheap and
gives identical files; changing --size/--format/--quality rewrites them. A run with new settings
first marks prepare.json as in progress (no settings), so a run killed half-way never has its
mix of old and new files reused; each reused file's header (format, size, JPEG tables) is
checked as well. Missing photos (a
partial copy of CUB) are counted and reported once; unreadable photos are skipped with their
reason; the inputs are never modified.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import multiprocessing
import os
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from PIL import Image, ImageOps
from tqdm import tqdm

from engine.atomic import atomic_path, write_text_atomic
from engine.formats import IMAGE_SUFFIXES
from engine.imageio import rgb_of

from .cub import bird_square, centre_square, read_cub
from .manifest import (
    MANIFEST_NAME,
    SETTINGS_NAME,
    ManifestRow,
    read_manifest,
    read_prepare_state,
    write_manifest,
)
from .splits import stable_split, stratified_split

__all__ = ["PrepareConfig", "PrepareReport", "PrepareError", "prepare", "IMAGE_SUFFIXES"]

FINGERPRINTS_NAME = "sources.json"  # each square's file -> its source's bytes' hash when written
FORMATS = {"jpeg": ".jpg", "png": ".png"}


class PrepareError(ValueError):
    """Bad arguments for prepare (missing source, output inside the source...)."""


@dataclass
class PrepareConfig:
    out: Path
    cub: Path | None = None  # an official CUB-200-2011 folder...
    images_dir: Path | None = None  # ...or any folder of photos (centre square crops)
    size: int = 256
    seed: int = 0
    format: str = "jpeg"  # "jpeg" or "png"
    quality: int = 95  # JPEG quality
    workers: int = 0  # 0 = one per CPU core; 1 = no worker processes
    progress: bool = True

    def image_settings(self) -> dict:
        """What the written files depend on (the seed only changes the split)."""
        return {
            "source": str(Path(self.cub or self.images_dir or "").resolve()),
            "mode": "cub" if self.cub else "folder",
            "size": self.size,
            "format": self.format,
            "quality": self.quality if self.format == "jpeg" else None,
        }


@dataclass
class PrepareReport:
    source: str
    mode: str
    listed: int = 0
    present: int = 0
    missing: int = 0
    missing_examples: list[str] = field(default_factory=list)
    kept: int = 0
    discarded: int = 0
    corrupt: list[tuple[str, str]] = field(default_factory=list)
    converted_to_rgb: dict[str, int] = field(default_factory=dict)
    upscaled: int = 0
    written: int = 0
    reused: int = 0
    removed_stale: int = 0
    species: int = 0
    splits: dict[str, int] = field(default_factory=dict)
    seed: int = 0
    format: str = "jpeg"
    size: int = 256
    bytes: int = 0
    seconds: float = 0.0

    def summary(self, out: Path) -> str:
        what = "CUB-200-2011 metadata" if self.mode == "cub" else "folder of photos"
        lines = [f"Prepared {out} from {self.source} ({what}):"]
        if self.mode == "cub":
            line = f"  listed {self.listed} photos: {self.present} present"
            if self.missing:
                line += (
                    f", {self.missing} missing from this copy (skipped; e.g. "
                    f"{', '.join(self.missing_examples[:2])})"
                )
            lines.append(line)
        else:
            lines.append(f"  found {self.present} photos")
        why = (
            "the bird's box does not fit in a square inside the photo"
            if self.mode == "cub"
            else "empty image"
        )
        lines.append(f"  kept {self.kept}, discarded {self.discarded} ({why}), corrupt {len(self.corrupt)}")
        for source, reason in self.corrupt:
            lines.append(f"    corrupt: {source}: {reason}")
        if self.converted_to_rgb:
            modes = ", ".join(f"{n} from {m}" for m, n in sorted(self.converted_to_rgb.items()))
            lines.append(f"  converted to RGB: {modes}")  # "1 1" read like a typo for a 1-bit photo
        if self.upscaled:
            lines.append(f"  {self.upscaled} crops were smaller than {self.size} px and were upscaled")
        parts = ", ".join(f"{k} {v}" for k, v in self.splits.items())
        lines.append(f"  split (seed {self.seed}, 6:2:2 within each of {self.species} species): {parts}")
        lines.append(
            f"  {self.written} files written, {self.reused} reused"
            + (f", {self.removed_stale} stale removed" if self.removed_stale else "")
            + f"; {self.kept} {self.format.upper()} files of {self.size}x{self.size}, "
            f"{self.bytes / 1e6:.1f} MB; {self.seconds:.1f} s"
        )
        return "\n".join(lines)


@dataclass(frozen=True)
class _Job:
    key: int
    source: str
    out: str
    bbox: tuple[float, float, float, float] | None
    size: int
    format: str
    quality: int
    exif_transpose: bool
    # the source's when its square was last written with these settings (None: write it anew)
    fingerprint: str | None = None


@dataclass(frozen=True)
class _Result:
    key: int
    status: str  # "kept" | "discarded" | "corrupt" | "unwritten" (the square could not be written)
    reason: str = ""
    errno: int | None = None  # "unwritten": the OSError, for the run to stop with
    width: int = 0
    height: int = 0
    mode: str = ""
    crop: tuple[int, int, int] | None = None
    written: bool = False
    fingerprint: str = ""  # of the source file's bytes, and the crop


def _crop_for(job: _Job, width: int, height: int) -> tuple[int, int, int] | None:
    if width < 1 or height < 1:
        return None
    if job.bbox is not None:
        return bird_square(job.bbox, width, height)
    return centre_square(width, height)


@functools.cache
def _jpeg_tables(quality: int) -> dict:
    """The quantisation tables Pillow writes for ``quality`` (how a reused file's quality is told)."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="JPEG", quality=quality, optimize=True)
    buf.seek(0)
    with Image.open(buf) as img:
        return img.quantization


def _reusable(job: _Job, fingerprint: str) -> bool:
    """Whether the existing output is what this job would write: made from these very source
    bytes and crop (``fingerprint``, against the one recorded when it was written: a photo
    replaced since, whatever its dates, or a bounding box changed, is written again) and, from its header, in this format, mode, size and,
    for JPEG, the quality's quantisation tables (a file another run left with other settings is
    rewritten, never kept)."""
    if job.fingerprint is None or job.fingerprint != fingerprint:
        return False
    try:
        with Image.open(job.out) as img:
            if img.size != (job.size, job.size) or img.mode != "RGB":
                return False
            if job.format == "png":
                return img.format == "PNG"
            return img.format == "JPEG" and img.quantization == _jpeg_tables(job.quality)
    except (OSError, ValueError):  # missing or unreadable: write it again
        return False


def _process(job: _Job) -> _Result:
    """Runs in a worker process: never raises, a bad file becomes a "corrupt" result."""
    try:
        data = Path(job.source).read_bytes()
        with Image.open(io.BytesIO(data)) as img:
            mode = img.mode
            if job.exif_transpose:
                img = ImageOps.exif_transpose(img) or img
            width, height = img.size
            crop = _crop_for(job, width, height)
            if crop is None:
                return _Result(job.key, "discarded", width=width, height=height, mode=mode)
            # the square's recipe: the source's bytes and the crop (a bounding box edited in
            # the list since gives another square, with the same source)
            fingerprint = hashlib.blake2b(data, digest_size=12).hexdigest() + "@{},{},{}".format(*crop)
            kept = _Result(
                job.key, "kept", width=width, height=height, mode=mode, crop=crop, fingerprint=fingerprint
            )
            if _reusable(job, fingerprint):
                return kept
            img.load()  # a truncated or broken file fails here
            rgb = Image.fromarray(rgb_of(img, job.source))  # 16-bit scans scaled, not clipped
        left, top, side = crop
        square = rgb.resize(
            (job.size, job.size),
            Image.Resampling.LANCZOS,
            box=(left, top, left + side, top + side),
        )
    except Exception as exc:  # noqa: BLE001 - any unreadable file is reported, not fatal
        reason = f"{type(exc).__name__}: {exc}".strip()
        return _Result(job.key, "corrupt", reason=reason)
    try:  # a full disk, no permission: not the photo's fault, and every later photo's too
        Path(job.out).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(job.out) as tmp:
            if job.format == "png":
                square.save(tmp, format="PNG", optimize=False)
            else:
                square.save(tmp, format="JPEG", quality=job.quality, optimize=True)
    except OSError as exc:
        return _Result(job.key, "unwritten", reason=exc.strerror or str(exc), errno=exc.errno)
    return replace(kept, written=True)


@dataclass(frozen=True)
class _Item:
    key: int  # image id
    source: Path
    source_rel: str
    out_rel: str
    species: str
    species_id: int
    bbox: tuple[float, float, float, float] | None


def _cub_items(root: Path, suffix: str) -> tuple[list[_Item], int]:
    records = read_cub(root)
    items = []
    for r in records:
        rel = Path(r.relpath)
        items.append(
            _Item(
                key=r.image_id,
                source=root / "images" / rel,
                source_rel=r.relpath,
                out_rel=(Path("images") / rel.parent / (rel.stem + suffix)).as_posix(),
                species=r.species,
                species_id=r.class_id,
                bbox=r.bbox,
            )
        )
    return items, len(records)


def _folder_items(root: Path, suffix: str) -> list[_Item]:
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    species_names = sorted({p.parent.relative_to(root).as_posix() for p in files})
    species_ids = {name: i + 1 for i, name in enumerate(species_names)}
    items, used = [], set()
    for key, p in enumerate(files, 1):
        rel = p.relative_to(root)
        out_rel = (Path("images") / rel.parent / (rel.stem + suffix)).as_posix()
        if out_rel in used:  # "a.jpg" and "a.png" in one folder
            out_rel = (Path("images") / rel.parent / f"{rel.stem}_{key}{suffix}").as_posix()
        used.add(out_rel)
        species = rel.parent.as_posix()
        items.append(
            _Item(
                key,
                p,
                rel.as_posix(),
                out_rel,
                "." if species == "." else species,
                species_ids[species],
                None,
            )
        )
    return items


def _check_paths(source: Path, out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise PrepareError(f"--out {out} is a file, not a folder")
    src, dst = source.resolve(), out.resolve()
    if src == dst or src in dst.parents or dst in src.parents:
        raise PrepareError(
            f"the output folder {out} must be outside the source {source} (and not contain it): "
            "prepare never writes into its input"
        )


def _folder_size(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths if p.is_file())


MAX_SIZE = 8192  # --size at most: the largest image side a model may have (engine.unet_config)


def prepare(config: PrepareConfig) -> PrepareReport:
    """Prepare the data set described by ``config``; returns the report (also in prepare.json)."""
    t0 = time.perf_counter()
    if (config.cub is None) == (config.images_dir is None):
        raise PrepareError("give exactly one of --cub CUB_ROOT or --images-dir DIR")
    if config.format not in FORMATS:
        raise PrepareError(f"--format must be one of {sorted(FORMATS)}, got {config.format!r}")
    if not 8 <= config.size <= MAX_SIZE:  # the network's largest; 40000 took 4.8 GB a photo
        raise PrepareError(f"--size must be 8 to {MAX_SIZE} pixels, got {config.size}")
    if not 1 <= config.quality <= 100:  # -5 wrote JPEGs of quality 1 without a word
        raise PrepareError(f"--quality must be 1 to 100, got {config.quality}")
    if config.seed < 0:  # it failed after every file was written
        raise PrepareError(f"--seed must be 0 or more, got {config.seed}")
    source = Path(config.cub or config.images_dir)  # type: ignore[arg-type]
    if not source.is_dir():
        raise PrepareError(f"source folder not found: {source}")
    out = Path(config.out)
    _check_paths(source, out)
    suffix = FORMATS[config.format]
    mode = "cub" if config.cub else "folder"
    report = PrepareReport(
        source=str(source), mode=mode, seed=config.seed, format=config.format, size=config.size
    )
    if mode == "cub":
        items, report.listed = _cub_items(source, suffix)
    else:
        items = _folder_items(source, suffix)
        report.listed = len(items)

    present = _present(items, report)
    if not present:  # a wrong folder, or RAW files only: an empty data folder and exit 0 before
        raise PrepareError(_nothing_to_prepare(source, mode, report))

    out.mkdir(parents=True, exist_ok=True)
    for leftover in (out / "images").rglob(".*.tmp*") if (out / "images").is_dir() else []:
        leftover.unlink(missing_ok=True)  # temp files of a killed run
    settings = config.image_settings()
    settings_path = out / SETTINGS_NAME
    state = read_prepare_state(out)
    old_settings = state.get("settings")
    reuse = old_settings == settings
    previous = _previous_split(out, state, settings, config.seed) if mode == "folder" else {}
    # Before the first file changes, whatever changed: a run killed from here on leaves a folder
    # that training and evaluation refuse (its files half rewritten, its manifest the old one's),
    # and a prepare.json whose settings vouch only for files written with them (the next run
    # would keep them: none when the settings changed)
    marker = {"in_progress": settings, "seed": config.seed, **({"settings": settings} if reuse else {})}
    write_text_atomic(settings_path, json.dumps(marker, indent=2) + "\n")

    prints = _read_fingerprints(out) if reuse else {}
    jobs = [
        _Job(
            key=item.key,
            source=str(item.source),
            out=str(out / item.out_rel),
            bbox=item.bbox,
            size=config.size,
            format=config.format,
            quality=config.quality,
            exif_transpose=mode == "folder",
            fingerprint=prints.get(item.out_rel),
        )
        for item in present
    ]
    results = _run_jobs(jobs, config.workers or os.cpu_count() or 1, config.progress)
    kept = _tally(results, present, report, config.size)
    prints = {item.out_rel: res.fingerprint for item, res in kept}
    write_text_atomic(out / FINGERPRINTS_NAME, json.dumps(prints, indent=0, sort_keys=True) + "\n")

    groups: dict[str, list[int]] = defaultdict(list)
    for item, _ in kept:
        groups[item.species].append(item.key)
    if mode == "folder":  # named, not numbered: a photo keeps its part when others come or go
        names = {item.key: item.source_rel for item, _ in kept}
        split = stable_split(groups, config.seed, names, previous)
    else:  # CUB's ids are its own: the split the seed gives, as it always was
        split = stratified_split(groups, config.seed)
    report.species = len(groups)
    rows = [
        ManifestRow(
            image_id=item.key,
            split=split[item.key],
            species_id=item.species_id,
            species=item.species,
            file=item.out_rel,
            source=item.source_rel,
            source_width=res.width,
            source_height=res.height,
            source_mode=res.mode,
            bbox=item.bbox,
            crop=res.crop,  # type: ignore[arg-type]
        )
        for item, res in kept
    ]
    report.splits = {name: sum(r.split == name for r in rows) for name in ("train", "val", "test")}

    report.removed_stale += _remove_stale(out, {r.file for r in rows})
    write_manifest(out, rows)
    report.bytes = _folder_size([out / r.file for r in rows])
    report.seconds = time.perf_counter() - t0
    write_text_atomic(
        settings_path, json.dumps({"settings": settings, "report": asdict(report)}, indent=2) + "\n"
    )
    return report


def _nothing_to_prepare(source: Path, mode: str, report: PrepareReport) -> str:
    if mode == "cub":
        return (
            f"none of the {report.listed} photos images.txt lists is under {source / 'images'} "
            f"(missing: {', '.join(report.missing_examples)}, ...)"
            if report.listed
            else f"{source / 'images.txt'} lists no photos"
        )
    return (
        f"no photos found in {source} or its subfolders (looked for {', '.join(sorted(IMAGE_SUFFIXES))}; "
        "hidden files and folders are left out; camera RAW files need converting first)"
    )


def _present(items: list[_Item], report: PrepareReport) -> list[_Item]:
    """The listed photos whose files exist; the others are counted as missing in ``report``."""
    present = []
    for item in items:
        if item.source.is_file():
            present.append(item)
        else:
            report.missing += 1
            if len(report.missing_examples) < 3:
                report.missing_examples.append(item.source_rel)
    report.present = len(present)
    return present


def _run_jobs(jobs: list[_Job], workers: int, progress: bool) -> list[_Result]:
    """Process the photos, in ``workers`` processes when there are several (in any order).
    Raises the OSError of a square that could not be written (a full disk: each photo was
    counted as a corrupt source and the run ended "done", exit 0), after the workers stop."""
    results: list[_Result] = []
    out_of = {job.key: job.out for job in jobs}
    with tqdm(total=len(jobs), desc="prepare", unit="photo", disable=not progress) as bar:
        if workers <= 1 or len(jobs) < 2:
            done: Iterable[_Result] = (_process(job) for job in jobs)
            pool = None
        else:
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            pool = context.Pool(min(workers, len(jobs)), initializer=_ignore_interrupts)
            done = pool.imap_unordered(_process, jobs, chunksize=8)
        try:
            for res in done:
                if res.status == "unwritten":
                    raise OSError(res.errno, res.reason, out_of[res.key])
                results.append(res)
                bar.update()
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
    return results


def _previous_split(out: Path, state: dict, settings: dict, seed: int) -> dict[str, str]:
    """Source photo -> part of the last split of this very folder with this seed into ``out``
    (its photos keep their parts), or ``{}``: another folder or seed, or none."""
    seen = state.get("settings") or state.get("in_progress") or {}
    old_seed = state.get("seed", (state.get("report") or {}).get("seed"))
    if not isinstance(seen, dict) or seen.get("source") != settings["source"] or old_seed != seed:
        return {}
    try:
        return {row.source: row.split for row in read_manifest(out, whole=False)}
    except ValueError:  # none yet, or unreadable: a fresh split
        return {}


def _ignore_interrupts() -> None:
    """A worker leaves Ctrl-C (SIGINT to the process group) to the main process, which stops the
    pool; each worker printed a KeyboardInterrupt traceback of its own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _tally(
    results: list[_Result], present: list[_Item], report: PrepareReport, size: int
) -> list[tuple[_Item, _Result]]:
    """Count the results into ``report`` (corrupt, discarded, kept, converted, written, reused,
    upscaled); returns the kept photos in key order."""
    by_key = {item.key: item for item in present}
    kept: list[tuple[_Item, _Result]] = []
    converted: Counter[str] = Counter()
    for res in sorted(results, key=lambda r: r.key):
        item = by_key[res.key]
        if res.status == "corrupt":
            report.corrupt.append((item.source_rel, res.reason))
        elif res.status == "discarded":
            report.discarded += 1
        else:
            kept.append((item, res))
            if res.mode != "RGB":
                converted[res.mode] += 1
            report.written += res.written
            report.reused += not res.written
            if res.crop is not None and res.crop[2] < size:
                report.upscaled += 1
    report.kept = len(kept)
    report.converted_to_rgb = dict(converted)
    return kept


def _read_fingerprints(out: Path) -> dict[str, str]:
    """The source fingerprints the last run recorded (none: every square is written again)."""
    try:
        prints = json.loads((out / FINGERPRINTS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return prints if isinstance(prints, dict) else {}


def _remove_stale(out: Path, files: set[str]) -> int:
    """Delete the images a previous run listed that this one does not keep (other format, other
    source); returns how many."""
    if not (out / MANIFEST_NAME).is_file():
        return 0
    try:
        old_files = {r.file for r in read_manifest(out, whole=False)}
    except ValueError:
        old_files = set()
    removed = 0
    for stale in old_files - files:
        path = out / stale
        if path.is_file() and path.resolve().is_relative_to((out / "images").resolve()):
            path.unlink()
            removed += 1
    return removed
