"""Image file formats and suffixes: the one table every part of Retoucher reads.

Format names are Pillow's (``JPEG``, ``PNG``, ``TIFF``, ``WEBP``, ``BMP``); suffixes are lower
case with the dot. Pillow is imported only for suffixes outside the table.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "ALPHA_FORMATS",
    "DEFAULT_QUALITY",
    "IMAGE_SUFFIXES",
    "JPEG_FORMATS",
    "OTHER_PHOTO_SUFFIXES",
    "format_for_suffix",
    "is_jpeg",
    "is_readable_suffix",
    "is_written",
    "other_photo_format",
    "normalise_format",
    "output_format",
    "suffix_for_format",
    "supports_alpha",
]

SUFFIX_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".jpe": "JPEG",
    ".jfif": "JPEG",
    ".png": "PNG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
    ".bmp": "BMP",
}
"""Suffix -> the format written for it."""

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp"})
"""Suffixes treated as photos by folder-level tools (``retoucher batch``, ``prepare``) and
offered by the app's file dialogs."""

_RAW_SUFFIXES = (".3fr", ".arw", ".cr2", ".cr3", ".crw", ".dcr", ".dng", ".erf", ".iiq", ".kdc", ".mos", ".mrw", ".nef", ".nrw", ".orf", ".pef", ".raf", ".rw2", ".rwl", ".sr2", ".srf", ".srw", ".x3f")  # fmt: skip
OTHER_PHOTO_SUFFIXES = {
    ".heic": "HEIC",
    ".heif": "HEIF",
    ".hif": "HEIF",
    ".avif": "AVIF",
    ".jxl": "JPEG XL",
    ".gif": "GIF",
    ".jp2": "JPEG 2000",
    ".j2k": "JPEG 2000",
    ".jpf": "JPEG 2000",
    ".psd": "PSD",
    ".exr": "OpenEXR",
    ".hdr": "Radiance HDR",
    **dict.fromkeys(_RAW_SUFFIXES, "camera RAW"),
}
"""Suffix -> name of the photo formats that folder-level tools (``retoucher batch``,
``retoucher detect``) leave out, so that they can say so: a phone's HEIC, camera RAW files kept
beside their JPEGs, an animated GIF. Not :data:`IMAGE_SUFFIXES`; other files (a ``.txt``, an
``.xmp`` sidecar) are no photos and are passed over without a word."""

FORMAT_SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "TIFF": ".tif", "WEBP": ".webp", "BMP": ".bmp"}
"""Format -> the suffix a new file of that format gets."""

ALPHA_FORMATS = frozenset({"PNG", "TIFF", "WEBP"})
"""Formats whose files keep an alpha channel on save."""

DEFAULT_QUALITY = 95
"""The JPEG and WebP quality files are written at unless told otherwise (JPEG at 90 or more is
written with 4:4:4 chroma)."""

JPEG_FORMATS = frozenset({"JPEG", "MPO"})
"""Formats that are JPEG data (MPO: a camera JPEG with extra preview pictures, written back as
JPEG)."""

# Names for a format that Pillow reads or people type, and the format written for them.
_FORMAT_ALIASES = {"JPG": "JPEG", "TIF": "TIFF", "MPO": "JPEG"}


def normalise_format(fmt: str) -> str:
    """The format written for a name (``"jpg"``, ``".tif"``, ``"MPO"`` -> ``"JPEG"``, ``"TIFF"``,
    ``"JPEG"``)."""
    f = fmt.upper().lstrip(".")
    return _FORMAT_ALIASES.get(f, f)


def is_jpeg(fmt: str | None) -> bool:
    """Whether a format name (as Pillow reports it when reading) is JPEG data."""
    return bool(fmt) and fmt.upper() in JPEG_FORMATS


def is_written(fmt: str | None) -> bool:
    """Whether Retoucher writes files of this format (as Pillow reports it when reading: ``MPO``
    is written as JPEG): the formats of :data:`FORMAT_SUFFIXES`, not every format Pillow reads."""
    return bool(fmt) and normalise_format(fmt) in FORMAT_SUFFIXES


def format_for_suffix(suffix: str) -> str:
    """Pillow format name for a file suffix (``".jpg"`` -> ``"JPEG"``); ValueError if unknown."""
    s = suffix.lower()
    if not s.startswith("."):
        s = "." + s
    if s in SUFFIX_FORMATS:
        return SUFFIX_FORMATS[s]
    from PIL import Image

    fmt = Image.registered_extensions().get(s)
    if fmt is None:
        raise ValueError(f"no image format is known for the file suffix {suffix!r}")
    return fmt


def other_photo_format(path: str | os.PathLike[str]) -> str | None:
    """The name of the photo format of a file that folder-level tools leave out, from its suffix
    (``IMG_1.HEIC`` -> ``"HEIC"``, ``a.nef`` -> ``"camera RAW"``); None for a photo they
    retouch and for a file that is no photo (:data:`OTHER_PHOTO_SUFFIXES`)."""
    return OTHER_PHOTO_SUFFIXES.get(Path(path).suffix.lower())


def is_readable_suffix(path: str | os.PathLike[str]) -> bool:
    """Whether a file's suffix names a format Pillow reads (``.jpg``, ``.gif``, ``.psd``; not
    ``.txt``, nor ``.pdf``, which Pillow only writes): what a photo dropped on the app may be."""
    s = Path(path).suffix.lower()
    if s in SUFFIX_FORMATS:
        return True
    from PIL import Image

    return Image.registered_extensions().get(s) in Image.OPEN


def output_format(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """The format a file is written in: ``fmt`` when one is given (normalised: ``"jpg"`` ->
    ``"JPEG"``), else the one the suffix of ``path`` names; ValueError for an unknown suffix."""
    return normalise_format(fmt) if fmt else format_for_suffix(Path(path).suffix)


def suffix_for_format(fmt: str) -> str:
    """The usual file suffix for a format name (``"JPEG"``/``"jpg"`` -> ``".jpg"``)."""
    f = normalise_format(fmt)
    if f in FORMAT_SUFFIXES:
        return FORMAT_SUFFIXES[f]
    from PIL import Image

    for ext, name in Image.registered_extensions().items():
        if name == f:
            return ext
    raise ValueError(f"unknown image format {fmt!r}")


def supports_alpha(fmt: str) -> bool:
    return normalise_format(fmt) in ALPHA_FORMATS
