"""CUB-200-2011: reading the official metadata and the seed's bird-square crop.

The official layout (Wah et al. 2011) is a folder with ``images.txt`` (id, relative path),
``bounding_boxes.txt`` (id, x, y, width, height in pixels), ``image_class_labels.txt`` (id,
class id), ``classes.txt`` (class id, folder name), ``train_test_split.txt`` (id, 1 = official
train) and ``images/``. A partial copy (photos missing from ``images/``) is normal: the listing
stays complete, the caller counts what is absent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

__all__ = ["CUBError", "CUBRecord", "read_cub", "bird_square", "centre_square"]

REQUIRED_FILES = (
    "images.txt",
    "bounding_boxes.txt",
    "image_class_labels.txt",
    "classes.txt",
    "train_test_split.txt",
)


class CUBError(ValueError):
    """The CUB folder is missing a metadata file or one of them is malformed."""


@dataclass(frozen=True)
class CUBRecord:
    image_id: int
    relpath: str  # relative to images/
    class_id: int
    species: str  # the class folder name, e.g. "001.Black_footed_Albatross"
    bbox: tuple[float, float, float, float]  # x, y, width, height
    official_train: bool


def _read_table(path: Path, ncols: int) -> dict[int, list[str]]:
    if not path.is_file():
        raise CUBError(f"{path} is missing: not an official CUB-200-2011 folder")
    rows: dict[int, list[str]] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            parts = line.split(maxsplit=ncols - 1) if ncols == 2 else line.split()
            if len(parts) != ncols:
                raise CUBError(f"{path}:{lineno}: expected {ncols} fields, got {line.strip()!r}")
            try:
                key = int(parts[0])
            except ValueError:
                raise CUBError(f"{path}:{lineno}: the first field is not an id: {line.strip()!r}") from None
            if key in rows:  # the later line would replace the earlier one without a word
                raise CUBError(f"{path}:{lineno}: id {key} is listed a second time")
            rows[key] = [p.strip() for p in parts[1:]]
    return rows


def _inside(rel: str) -> bool:
    """Whether ``rel`` (a path of images.txt) stays inside the folder it is relative to: an
    absolute path or one climbing out with ``..`` made prepare write its square over the photo
    itself (an 800x600 original became a 32x32 square)."""
    posix, windows = PurePosixPath(rel.replace("\\", "/")), PureWindowsPath(rel)
    return bool(rel.strip()) and not posix.is_absolute() and not windows.drive and ".." not in posix.parts


def read_cub(root: str | Path) -> list[CUBRecord]:
    """All photos listed by the metadata, sorted by image id (present on disk or not)."""
    root = Path(root)
    if not root.is_dir():
        raise CUBError(f"CUB folder not found: {root}")
    images = _read_table(root / "images.txt", 2)
    boxes = _read_table(root / "bounding_boxes.txt", 5)
    labels = _read_table(root / "image_class_labels.txt", 2)
    classes = _read_table(root / "classes.txt", 2)
    split = _read_table(root / "train_test_split.txt", 2)
    seen: dict[str, int] = {}
    squares: dict[tuple[str, str], int] = {}
    for image_id in sorted(images):  # two ids of one photo would write one square twice
        rel = images[image_id][0]
        first = seen.setdefault(rel, image_id)
        if first != image_id:
            raise CUBError(f"{root}: images {first} and {image_id} both name {rel}")
        if not _inside(rel):  # prepare writes its square at the same path under its output
            raise CUBError(
                f"{root}: image {image_id} names {rel}, which is no path inside the images folder "
                "(a relative path without '..')"
            )
        path = PurePosixPath(rel)
        first = squares.setdefault((path.parent.as_posix().lower(), path.stem.lower()), image_id)
        if first != image_id:
            raise CUBError(
                f"{root}: images {first} and {image_id} ({images[first][0]}, {rel}) differ only in "
                "their suffix or case: their squares would be one file"
            )
    records = []
    for image_id in sorted(images):
        try:
            x, y, w, h = (float(v) for v in boxes[image_id])
            class_id = int(labels[image_id][0])
            species = classes[class_id][0]
            official_train = split[image_id][0] == "1"
        except KeyError as exc:
            raise CUBError(
                f"{root}: image {image_id} ({images[image_id][0]}) has no entry for {exc} "
                "in one of the metadata files"
            ) from None
        except ValueError as exc:
            raise CUBError(f"{root}: image {image_id} has a malformed metadata field ({exc})") from None
        records.append(
            CUBRecord(image_id, images[image_id][0], class_id, species, (x, y, w, h), official_train)
        )
    return records


def bird_square(
    bbox: tuple[float, float, float, float], width: int, height: int
) -> tuple[int, int, int] | None:
    """The seed's crop: the smallest square containing the bounding box, centred on the box and
    shifted to stay inside the photo. Returns ``(left, top, side)`` in pixels, or None when no
    such square fits (the box's long side exceeds the photo's short side).

    The box is first snapped outwards to whole pixels and clipped to the photo (a few CUB boxes
    overhang the border by a pixel), so the returned square always contains the clipped box.
    """
    x, y, w, h = bbox
    x0 = max(0, math.floor(x))
    y0 = max(0, math.floor(y))
    x1 = min(width, math.ceil(x + w))
    y1 = min(height, math.ceil(y + h))
    if x1 <= x0 or y1 <= y0:
        return None
    bw, bh = x1 - x0, y1 - y0
    side = max(bw, bh)
    if side > min(width, height):
        return None
    left = min(max(x0 - (side - bw) // 2, 0), width - side)
    top = min(max(y0 - (side - bh) // 2, 0), height - side)
    return left, top, side


def centre_square(width: int, height: int) -> tuple[int, int, int]:
    """The largest centred square: the crop for photos without a bounding box."""
    side = min(width, height)
    return (width - side) // 2, (height - side) // 2, side
