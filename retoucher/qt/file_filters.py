"""File-dialog name filters (``"Photos (*.jpg *.png)"``), built from :mod:`engine.formats`, the
one table of image formats and suffixes, so that every dialog offers what the engine reads and
writes."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from engine.formats import FORMAT_SUFFIXES, IMAGE_SUFFIXES, SUFFIX_FORMATS, normalise_format
from engine.weight_header import DEFAULT_WEIGHTS_NAME

__all__ = [
    "MASK_EXPORT_FILTER",
    "MASK_FILTER",
    "OPEN_FILTER",
    "SAVE_FILTERS",
    "WEIGHTS_FILTER",
    "format_suffixes",
    "name_filter",
    "save_filter",
]

ALL_FILES = "All files (*)"
FORMAT_LABELS = {"WEBP": "WebP"}
"""A format's name in a dialog, where it is not Pillow's name."""
MASK_FORMATS = ("PNG", "BMP", "TIFF")
"""The lossless formats offered for a mask file."""


def format_suffixes(fmt: str) -> list[str]:
    """The photo suffixes of a format (``"TIFF"`` -> ``[".tif", ".tiff"]``), its usual one first."""
    found = [s for s, f in SUFFIX_FORMATS.items() if f == fmt and s in IMAGE_SUFFIXES]
    return sorted(found, key=lambda s: s != FORMAT_SUFFIXES[fmt])


def name_filter(label: str, suffixes: Iterable[str]) -> str:
    """``"label (*.a *.b)"``."""
    return f"{label} ({' '.join('*' + s for s in suffixes)})"


def _formats_filter(label: str, formats: Iterable[str]) -> str:
    return name_filter(label, [s for f in formats for s in format_suffixes(f)])


OPEN_FILTER = ";;".join([_formats_filter("Photos", FORMAT_SUFFIXES), ALL_FILES])
SAVE_FILTERS = {
    _formats_filter(FORMAT_LABELS.get(fmt, fmt), [fmt]): suffix for fmt, suffix in FORMAT_SUFFIXES.items()
}
"""Save dialog filter -> the suffix a name typed without one gets."""
MASK_FILTER = ";;".join([_formats_filter("Masks", MASK_FORMATS), ALL_FILES])
MASK_EXPORT_FILTER = _formats_filter("PNG mask", ["PNG"])
WEIGHTS_FILTER = name_filter("Retoucher weights", [Path(DEFAULT_WEIGHTS_NAME).suffix])

DEFAULT_SAVE_FORMAT = "PNG"
"""What Save As offers for a photo in no file (pasted) or in a format Retoucher does not write."""


def save_filter(fmt: str | None) -> str:
    """The :data:`SAVE_FILTERS` entry for a format (Pillow's name, any alias: ``"MPO"`` is
    JPEG); :data:`DEFAULT_SAVE_FORMAT`'s for None or a format not written."""
    written = normalise_format(fmt) if fmt else DEFAULT_SAVE_FORMAT
    suffix = FORMAT_SUFFIXES.get(written, FORMAT_SUFFIXES[DEFAULT_SAVE_FORMAT])
    return next(f for f, s in SAVE_FILTERS.items() if s == suffix)
