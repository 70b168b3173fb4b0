"""Planning a batch: which files of the input folder are photos, the mask file of each (with
``--masks``), where each output goes, and which outputs would collide. Reads folder listings
only, never an image; the plan covers every rank (each takes its share of the sorted list).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .options import BatchError, BatchOptions

__all__ = ["Job", "is_within", "list_images", "plan_batch", "plan_outputs", "resolve_folders"]


@dataclass
class Job:
    source: Path
    relative: Path
    output: Path
    error: str | None = None  # known before loading (e.g. an output collision)
    mask: Path | None = None  # with MaskSpec("dir"): the mask file found for it


def is_within(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def list_images(
    root: Path, recursive: bool, exclude: Sequence[Path], left_out: list[Path] | None = None
) -> list[Path]:
    """The photos in ``root`` (with ``recursive``, in its sub-folders too), sorted; never in the
    folders of ``exclude`` (the output and mask folders), whatever name or link leads to them.
    ``left_out``: given, the photos in formats that are not retouched (HEIC, camera RAW, GIF:
    :data:`engine.formats.OTHER_PHOTO_SUFFIXES`) are added to it, sorted, for the report to
    name (a folder of HEIC photos finished "done 0, failed 0" without a word about them)."""
    from engine.formats import IMAGE_SUFFIXES, other_photo_format

    found: list[Path] = []
    other: list[Path] = []
    excluded = {_identity(ex) for ex in exclude} - {None}
    # Linked sub-folders are followed (as linked files are read), each real folder once: a link
    # into the input folder's own tree (a loop, or a folder listed by its own name), a link to a
    # folder that holds the input folder (it would list the folders beside it, the output folder
    # among them) or a second link to a folder already listed adds nothing.
    top = root.resolve()
    seen = {top}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=recursive):
        here = Path(dirpath)
        kept = []
        # Hidden folders and files are skipped: among them our own temporary files (".name.*").
        for d in sorted(dirnames):
            real = (here / d).resolve()
            linked = (here / d).is_symlink() and (is_within(real, top) or is_within(top, real))
            if d.startswith(".") or linked or real in seen or _identity(here / d) in excluded:
                continue
            seen.add(real)
            kept.append(d)
        dirnames[:] = kept
        for name in filenames:
            if name.startswith("."):
                continue
            if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                found.append(here / name)
            elif left_out is not None and other_photo_format(name) is not None:
                other.append(here / name)
        if not recursive:
            break
    if left_out is not None:
        left_out.extend(sorted(other, key=lambda p: p.relative_to(root).as_posix()))
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _is_mask_name(name: str) -> bool:
    return name.lower().endswith("_mask.png")


def _mask_candidates(masks_dir: Path, relative: Path, mask_names_only: bool) -> list[Path]:
    """Where the mask of the photo ``relative`` may be, in order of preference: ``<stem>.png``
    (unless ``mask_names_only``) or ``<stem>_mask.png`` in the photo's sub-folder of
    ``masks_dir``, then ``<stem>_mask.png`` at its top (never a plain ``<stem>.png`` there: in
    a recursive batch that could be another photo's mask, or another photo). The names are
    looked up in any case (:class:`_Names`)."""
    stem = relative.stem
    here = ([] if mask_names_only else [f"{stem}.png"]) + [f"{stem}_mask.png"]
    found = [masks_dir / relative.parent / n for n in here]
    if relative.parent != Path("."):
        found.append(masks_dir / f"{stem}_mask.png")
    return found


class _Names:
    """The files of folders, by name in any case (each folder listed once): ``IMG_1_MASK.png``
    is the mask of ``IMG_1.jpg`` as ``IMG_1_mask.png`` is, on any file system."""

    def __init__(self) -> None:
        self._folders: dict[Path, dict[str, list[str]]] = {}

    def find(self, path: Path) -> Path | None:
        """The file ``path`` names, its own name first, else the one name that differs only in
        case (the first of them, sorted, when there are several); None when there is none."""
        if _is_file(path):
            return path
        names = self._folders.get(path.parent)
        if names is None:
            names = {}
            try:
                for name in sorted(os.listdir(path.parent)):
                    names.setdefault(name.lower(), []).append(name)
            except OSError:  # no such folder, or it cannot be listed
                pass
            self._folders[path.parent] = names
        for name in names.get(path.name.lower(), []):
            if _is_file(path.parent / name):
                return path.parent / name
        return None


def _is_file(path: Path) -> bool:
    """Whether ``path`` is a file; False where the file system cannot tell (a name longer than it
    allows: pathlib raises there)."""
    try:
        return path.is_file()
    except OSError:
        return False


def _assign_masks(files: list[Path], src: Path, masks_dir: Path) -> dict[Path, Path | None]:
    """The mask file of each photo; files used as masks are not photos (not in the result).

    When the mask folder is the input folder (or contains it), masks live among the photos, and
    only ``<stem>_mask.png`` names count as masks: ``x.png`` is a photo, never the mask of
    ``x.jpg``; a top-level ``x_mask.png`` is a sub-folder's ``x``'s only when no top-level photo is
    named ``x``. A file listed as a photo is never used as a mask unless it has a ``_mask`` name.
    """
    mask_names_only = is_within(src, masks_dir)
    if mask_names_only:  # every _mask name among the photos is a mask, its photo there or not
        files = [f for f in files if not _is_mask_name(f.name)]
    listed = set(files)
    # Masks among the photos: a top-level x_mask.png is the mask of a top-level photo x.*, never
    # the fallback of sub/x.jpg then.
    top_stems = {f.stem.lower() for f in files if f.parent == masks_dir} if mask_names_only else set()
    names = _Names()
    chosen: dict[Path, Path | None] = {}
    for f in files:
        chosen[f] = None
        for wanted in _mask_candidates(masks_dir, f.relative_to(src), mask_names_only):
            if (
                wanted.parent == masks_dir != f.parent
                and wanted.name[: -len("_mask.png")].lower() in top_stems
            ):
                continue
            cand = names.find(wanted)
            if cand is None or cand == f or (cand in listed and not _is_mask_name(cand.name)):
                continue
            chosen[f] = cand
            break
    used = {m for m in chosen.values() if m is not None}
    return {f: m for f, m in chosen.items() if f not in used}


def resolve_folders(
    input_dir: Path, output_dir: Path, *, inputs: str = "input folder", outputs: str = "output folder"
) -> tuple[Path, Path, list[Path]]:
    """(input folder, output folder, folders not to list), resolved; BatchError if unusable.
    ``inputs``/``outputs`` name the two folders in the messages."""
    src = Path(input_dir).expanduser().resolve()
    dst = Path(output_dir).expanduser().resolve()
    if src.exists() and not src.is_dir():
        raise BatchError(f"the {inputs} is a file, not a folder: {input_dir}")
    if not src.is_dir():
        raise BatchError(f"{inputs} not found: {input_dir}")
    if dst.exists() and not dst.is_dir():
        raise BatchError(f"{outputs} path exists and is not a folder: {output_dir}")
    if dst == src or _identity(dst) == _identity(src):  # also one folder by two paths (a mount)
        raise BatchError(
            f"the {outputs} must differ from the {inputs} ({output_dir}): "
            "Retoucher never overwrites its inputs"
        )
    # never listed, wherever it is: a linked sub-folder of the input folder may lead to it
    return src, dst, [dst]


def plan_outputs(
    src: Path,
    dst: Path,
    files: Sequence[Path],
    suffix: Callable[[Path], str],
    masks: Mapping[Path, Path | None] | None = None,
    *,
    hint: str = "",
    mask_files: Sequence[Path] = (),
) -> list[Job]:
    """A job per input file (sorted as given): its output ``dst/<sub-folder>/<stem><suffix>``,
    and an error for an output that would overwrite an input (a photo, a mask of ``masks`` or
    one of ``mask_files``) or that another input already writes (``x.jpg`` and ``x.png`` both
    writing ``x.png``, or ``X.png`` on a case-blind file system: the first one keeps it; ``hint``
    is added to that message)."""
    jobs: list[Job] = []
    owner: dict[Path, Path] = {}
    # by the files they are: an output that is a link to an input or a mask would be written
    # through (engine.atomic writes through links, as a save over a photo opened by one must)
    # (and by device and inode: one folder mounted twice is one folder by two paths)
    inputs = {_identity(f) for f in files} - {None}
    read = {_identity(m) for m in (masks or {}).values() if m is not None} | {
        _identity(m) for m in mask_files
    }
    for f in files:
        rel = f.relative_to(src)
        out = dst / rel.parent / (rel.stem + suffix(f))
        job = Job(source=f, relative=rel, output=out, mask=(masks or {}).get(f))
        ident = _identity(out)
        if _name_too_long(out):
            job.error = f"its output's name is too long for the file system: {out.name}"
        elif ident is not None and ident in inputs:
            job.error = f"its output {out} would overwrite an input photo"
        elif ident is not None and ident in read:
            job.error = f"its output {out} would overwrite a mask"
        elif out.is_symlink():  # a save writes through it: the file it points to, maybe anywhere
            job.error = f"its output {out} is a link to {_real(out)}; remove the link"
        elif out.is_dir():
            job.error = f"its output {out} is a folder"
        else:
            # case-blind: on macOS's and Windows' file systems (and a USB drive's) x.png and X.png
            # are one file (normcase folds on Windows only); a batch must not depend on where it
            # runs. lower(), not casefold(): NTFS keeps Straße and Strasse apart
            key = Path(os.path.normcase(str(out)).lower())
            if key in owner:
                job.error = (
                    f"its output {out} is already the output of {owner[key].relative_to(src)}; "
                    f"rename one of them{hint}"
                )
            else:
                owner[key] = f
        jobs.append(job)
    return jobs


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _identity(path: Path) -> tuple[int, int] | None:
    """The file or folder ``path`` leads to, as (device, inode): the same for every name, link
    or mount of it; None when there is none."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _name_too_long(path: Path) -> bool:
    """Whether the file system refuses ``path``'s name as too long (every later look at it
    raises: pathlib's checks pass over only a missing file)."""
    try:
        os.lstat(path)
    except OSError as exc:
        return exc.errno == errno.ENAMETOOLONG
    return False


def plan_batch(options: BatchOptions, left_out: list[Path] | None = None) -> list[Job]:
    """Every input of the batch (all ranks), sorted, with its output path; collisions marked.
    ``left_out``: the photos in formats that are not retouched are added to it (:func:`list_images`).

    Raises :class:`BatchError` for unusable folders.
    """
    from engine.formats import suffix_for_format

    src, dst, exclude = resolve_folders(options.input_dir, options.output_dir)
    spec = options.masks
    mask_file = None
    if spec is not None and spec.kind == "dir":
        mdir = spec.value.resolve()
        if not mdir.is_dir():
            raise BatchError(f"mask folder not found: {spec.value}")
        if mdir == dst or _identity(mdir) == _identity(dst):
            raise BatchError(
                f"the output folder must differ from the mask folder ({options.output_dir}): "
                "Retoucher never overwrites its inputs"
            )
        if mdir != src:  # never listed as photos, wherever it is (as the output folder)
            exclude.append(mdir)
    elif spec is not None and spec.kind == "file":
        if not spec.value.is_file():
            raise BatchError(f"mask file not found: {spec.value}")
        mask_file = spec.value.resolve()
    files = list_images(src, options.recursive, exclude, left_out)
    masks: dict[Path, Path | None] | None = None
    if spec is not None and spec.kind == "dir":
        # Masks kept next to the photos (photo.jpg + photo_mask.png) are not photos to retouch.
        masks = _assign_masks(files, src, spec.value.resolve())
        files = [f for f in files if f in masks]
    if mask_file is not None:  # the one mask, kept among the photos, is not a photo either
        files = [f for f in files if f.resolve() != mask_file]
    fmt = options.format
    jobs = plan_outputs(
        src,
        dst,
        files,
        lambda f: f.suffix if fmt == "same" else suffix_for_format(fmt),
        masks,
        hint=" (or keep --format same)",
        mask_files=[mask_file] if mask_file is not None else [],
    )
    _refuse_shared_masks(jobs, src)
    return jobs


def _refuse_shared_masks(jobs: Sequence[Job], src: Path) -> None:
    """A mask file found for several photos of one folder (``a.jpg`` and ``a.png`` both take
    ``masks/a.png``) is the first one's, as ``retoucher detect`` wrote it for the first (it
    refuses the second's mask by the same rule); each other photo gets an error instead of
    another photo's holes. Photos of different sub-folders may share the top-level
    ``x_mask.png`` on purpose (the fallback the README describes)."""
    owner: dict[tuple[int, int, Path], Job] = {}
    for job in jobs:
        if job.mask is None:
            continue
        st = job.mask.stat()  # one file by any name or case
        first = owner.setdefault((st.st_dev, st.st_ino, job.relative.parent), job)
        if first is not job and job.error is None:
            job.error = (
                f"its mask {job.mask} is also the mask of {first.relative} (photos that share a "
                "name share their mask file); rename one of them and make its mask"
            )
