"""The prepared data set's manifest: one CSV row per kept photo.

``DATA_DIR/manifest.csv`` columns: image id, split (train/val/test), species id and name, the
prepared file (relative to DATA_DIR), the source photo (relative to the source root), the
source's size and colour mode, the bird's bounding box (empty without one) and the square crop
taken from the source.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, fields
from pathlib import Path

from engine.atomic import atomic_path

__all__ = [
    "MANIFEST_NAME",
    "SETTINGS_NAME",
    "SPLITS",
    "ManifestError",
    "ManifestRow",
    "read_manifest",
    "read_prepare_state",
    "write_manifest",
]

MANIFEST_NAME = "manifest.csv"
SETTINGS_NAME = "prepare.json"
"""What the prepare that wrote DATA_DIR did: ``{"settings": ...}``, or ``{"in_progress": ...}``
while one runs (or after one stopped half-way)."""
SPLITS = ("train", "val", "test")


class ManifestError(ValueError):
    """A prepared data folder without a readable manifest."""


@dataclass(frozen=True)
class ManifestRow:
    image_id: int
    split: str
    species_id: int
    species: str
    file: str
    source: str
    source_width: int
    source_height: int
    source_mode: str
    bbox: tuple[float, float, float, float] | None
    crop: tuple[int, int, int]  # left, top, side

    def to_csv(self) -> dict[str, str]:
        return {
            "image_id": str(self.image_id),
            "split": self.split,
            "species_id": str(self.species_id),
            "species": self.species,
            "file": self.file,
            "source": self.source,
            "source_width": str(self.source_width),
            "source_height": str(self.source_height),
            "source_mode": self.source_mode,
            "bbox": "" if self.bbox is None else " ".join(f"{v:g}" for v in self.bbox),
            "crop": " ".join(str(v) for v in self.crop),
        }

    @classmethod
    def from_csv(cls, row: dict[str, str]) -> ManifestRow:
        bbox = tuple(float(v) for v in row["bbox"].split()) if row["bbox"].strip() else None
        left, top, side = (int(v) for v in row["crop"].split())
        return cls(
            image_id=int(row["image_id"]),
            split=row["split"],
            species_id=int(row["species_id"]),
            species=row["species"],
            file=row["file"],
            source=row["source"],
            source_width=int(row["source_width"]),
            source_height=int(row["source_height"]),
            source_mode=row["source_mode"],
            bbox=bbox,  # type: ignore[arg-type]
            crop=(left, top, side),
        )


COLUMNS = [f.name for f in fields(ManifestRow)]


def read_prepare_state(data_dir: str | Path) -> dict:
    """DATA_DIR/prepare.json as it is (``{}``: none, an older folder, or unreadable)."""
    try:
        state = json.loads((Path(data_dir) / SETTINGS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _half_prepared(data_dir: Path) -> bool:
    return "in_progress" in read_prepare_state(data_dir)  # none or unreadable: the manifest decides


def write_manifest(data_dir: str | Path, rows: list[ManifestRow]) -> Path:
    path = Path(data_dir) / MANIFEST_NAME
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for row in sorted(rows, key=lambda r: r.image_id):
            writer.writerow(row.to_csv())
    return path


def read_manifest(data_dir: str | Path, split: str | None = None, *, whole: bool = True) -> list[ManifestRow]:
    """Rows of the manifest (all, or one split), sorted by image id. ``whole``: refuse a folder
    that a prepare stopped half-way through (its images a mix of two runs, its manifest the old
    one's: training and evaluation read it without a word); prepare itself reads it anyway."""
    path = Path(data_dir) / MANIFEST_NAME
    if not path.is_file():
        raise ManifestError(
            f"{path} not found: {data_dir} is not a prepared data folder "
            "(make one with 'retoucher-train prepare')"
        )
    if whole and _half_prepared(Path(data_dir)):
        raise ManifestError(
            f"{data_dir} is half prepared: a prepare into it stopped before it ended, and its "
            "images may be a mix of two runs; run that prepare again"
        )
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = [ManifestRow.from_csv(r) for r in csv.DictReader(fh)]
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise ManifestError(f"{path} is malformed ({exc!r})") from exc
    if split is not None:
        rows = [r for r in rows if r.split == split]
    return sorted(rows, key=lambda r: r.image_id)
