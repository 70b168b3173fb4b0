"""Photo metadata: what a file says about its picture and how it was stored, read on load and
written back on save, as one :class:`PhotoMetadata` object.

:func:`engine.imageio.load_image` reads it (with the functions here) into
``LoadedImage.metadata``; the app's document holds it while the photo is open; and
:func:`engine.imageio.save_image` writes it whole, through :func:`metadata_params`, where the
output format can hold each part:

* EXIF (JPEG, PNG, TIFF, WebP): rebuilt with orientation 1 (the pixels are upright) and without
  the original's embedded thumbnail, which would still show what was retouched away;
* the ICC profile (JPEG, PNG, TIFF, WebP), valid for the 8-bit RGB pixels;
* the resolution in DPI (JPEG, PNG, TIFF, BMP) and the XMP packet (JPEG, PNG, TIFF, WebP);
* a PNG's colour chunks sRGB, gAMA and cHRM (:class:`PngColour`; PNG only; its iCCP chunk is the
  ICC profile above);
* a PNG's text chunks (PNG only) and a JPEG's comment (its bytes; a PNG's "Comment" text
  becomes one, and one becomes a PNG's "Comment");
* a JPEG's quantisation tables and chroma subsampling (:class:`JpegTables`), re-used by a JPEG
  written from it when asked (:meth:`PhotoMetadata.jpeg_tables_for`: the one place of that rule).

Metadata that cannot be read (a damaged EXIF block, a broken ICC profile...) is dropped, never
copied into an output, and a warning through :mod:`logging` names the file and what was lost;
the photo itself still loads.
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
import struct
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PIL import Image, ImageCms, JpegImagePlugin, PngImagePlugin

from .exif_block import rewrite_exif
from .formats import is_jpeg, supports_alpha
from .iptc import TIFF_IPTC, iptc_from_jpeg, iptc_from_tiff, jpeg_iptc_segment

__all__ = [
    "GREY_MODES",
    "PALETTE_MODES",
    "JpegTables",
    "PngColour",
    "PhotoMetadata",
    "exif_orientation",
    "read_exif",
    "read_iptc",
    "icc_colour_space",
    "srgb_profile_bytes",
    "cmyk_to_srgb",
    "read_dpi",
    "read_xmp",
    "read_jpeg_tables",
    "read_png_colour",
    "read_text",
    "read_comment",
    "read_webp_lossless",
    "written_grey",
    "picture_mode",
    "file_mode",
    "page_count",
    "metadata_params",
    "exif_sub_ifds",
]

log = logging.getLogger(__name__)

_ORIENTATION = 0x0112  # the EXIF orientation tag

_EXIF_FORMATS = frozenset({"JPEG", "PNG", "TIFF", "WEBP"})
_ICC_FORMATS = frozenset({"JPEG", "PNG", "TIFF", "WEBP"})
_DPI_FORMATS = frozenset({"JPEG", "PNG", "TIFF", "BMP"})
_XMP_FORMATS = frozenset({"JPEG", "PNG", "TIFF", "WEBP"})
_IPTC_FORMATS = frozenset({"JPEG", "TIFF"})
# Pillow modes of greyscale files (read as RGB with R = G = B, written grey again while they are)
GREY_MODES = frozenset({"1", "L", "LA", "La", "LA;16", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
PALETTE_MODES = frozenset({"P", "PA"})
_TIFF_XMP = 700
_TIFF_X_RESOLUTION = 282
# ImageDescription, Make, Model, Software, DateTime, Artist, Copyright
_TIFF_DESCRIPTIVE_TAGS = (0x010E, 0x010F, 0x0110, 0x0131, 0x0132, 0x013B, 0x8298)
_EXIF_SUB_IFDS = (0x8769, 0x8825)  # the Exif and GPS sub-directories
_EXIF_IFD, _INTEROP_IFD = 0x8769, 0xA005  # the Interop sub-directory hangs off the Exif one
_MAKER_NOTE = 0x927C  # in the Exif sub-directory: the camera maker's private data
JPEG_SEGMENT_BYTES = 65533  # the data one JPEG marker segment holds (Pillow's JPEG writer's limit)
_JPEG_XMP_BYTES = JPEG_SEGMENT_BYTES - len(b"http://ns.adobe.com/xap/1.0/\x00")


@dataclass(frozen=True)
class JpegTables:
    """How a JPEG file was compressed: its quantisation tables and chroma subsampling
    (0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0, None = other). Writing a JPEG with them re-uses the
    original's quality instead of a fixed one."""

    qtables: tuple[tuple[int, ...], ...]
    subsampling: int | None = None


@dataclass(frozen=True)
class PngColour:
    """A PNG's colour chunks other than iCCP: ``srgb`` (the sRGB chunk's rendering intent,
    0..3), ``gamma`` (gAMA, e.g. 0.45455) and ``chromaticity`` (cHRM: white point and red, green,
    blue primaries as x, y pairs, 8 numbers), each None when absent. They tell viewers how the
    pixel values map to colours, so a PNG written from the picture carries them again (Pillow
    leaves sRGB out when there is an ICC profile, as the PNG specification asks)."""

    srgb: int | None = None
    gamma: float | None = None
    chromaticity: tuple[float, ...] | None = None


@dataclass(frozen=True)
class PhotoMetadata:
    """What a photo file said about its picture and how it was stored.

    Descriptive (written back where the output format can hold it): ``exif`` (orientation 1,
    no thumbnail), ``icc_profile`` (describes the 8-bit RGB pixels), ``grey_icc_profile`` (a
    greyscale file's Gray profile: written back when its picture is written grey), ``dpi`` (x, y of the upright
    picture), ``xmp``, ``png_colour`` (a PNG's sRGB, gAMA and cHRM chunks), ``text`` (a PNG's
    text chunks: :func:`read_text`), ``comment`` (a JPEG's COM segment, its bytes), ``iptc``
    (a JPEG's or TIFF's IPTC-IIM records: :mod:`engine.iptc`; JPEG and TIFF only). Storage: ``format`` (Pillow's name: JPEG, PNG, TIFF, WEBP, BMP, MPO...),
    ``mode`` (Pillow's mode before conversion to 8-bit RGB; "RGB;16"/"RGBA;16" for 16-bit RGB),
    ``pages`` (pictures in the file; only the first is loaded), ``jpeg_tables`` (JPEG files),
    ``grey_palette`` (a palette file without an ICC profile whose picture was grey: written grey).

    The alpha channel is not metadata: it is pixels, an array the size of the picture, and
    travels beside ``rgb`` (``LoadedImage.alpha``, ``Document.alpha``). Nor is the file's path:
    the same metadata is written to another path (Save As, a batch output), and a document's
    path changes when it is saved elsewhere; it lives beside this object, not in it.
    An empty ``PhotoMetadata()`` describes a picture that came from no file.
    """

    exif: bytes | None = None
    icc_profile: bytes | None = None
    dpi: tuple[float, float] | None = None
    xmp: bytes | None = None
    format: str | None = None
    mode: str = "RGB"
    pages: int = 1
    jpeg_tables: JpegTables | None = None
    png_colour: PngColour | None = None
    text: tuple[tuple[str, str], ...] = ()
    comment: bytes | None = None
    iptc: bytes | None = None
    lossless: bool = False  # a lossless WebP (VP8L): written lossless again as WebP
    tiff_deflate: bool = False  # a Deflate (zip) TIFF: written with Deflate again as TIFF (else LZW)
    grey_icc_profile: bytes | None = None
    grey_palette: bool = False  # a palette file (no ICC profile) whose picture was grey

    @property
    def is_greyscale(self) -> bool:
        """Whether the file is greyscale (1-bit, 8-bit or 16-bit grey, with or without alpha), or a
        palette file whose picture was grey (its own mode, P, is neither grey nor RGB: the grey
        picture is written grey, as the smaller and equally exact of the two)."""
        return self.mode in GREY_MODES or self.grey_palette

    @property
    def bits_per_channel_lost(self) -> bool:
        """Whether the file holds more than 8 bits per channel (16-bit grey or RGB, 32-bit
        integer or float), which a Retoucher picture (8 bits) and the files written from it lose."""
        mode = self.mode or ""
        return mode in ("I", "F") or mode.startswith(("I;", "F;")) or mode.endswith(";16")

    def jpeg_tables_for(
        self, fmt: str, keep_jpeg_compression: bool, *, colour: bool = False
    ) -> JpegTables | None:
        """The compression of a file written in ``fmt`` from this photo: a JPEG written from a
        JPEG keeps the original's quantisation tables and chroma subsampling when
        ``keep_jpeg_compression`` is asked (returned here); anything else (None) is written at
        the chosen quality, and so is a greyscale JPEG's picture written in ``colour`` (its
        pixels took colour: the grey file's one luma table would compress the chroma)."""
        if colour and self.is_greyscale:
            return None
        if keep_jpeg_compression and fmt == "JPEG" and is_jpeg(self.format):
            return self.jpeg_tables
        return None

    def as_written(self, fmt: str, *, keep_jpeg_compression: bool, alpha: bool) -> PhotoMetadata:
        """The metadata of the file :func:`engine.imageio.save_image` writes from this photo in
        ``fmt`` (a name as :func:`engine.formats.normalise_format` gives it): one 8-bit page,
        grey (L, LA) for a greyscale photo, else RGB(A), compressed with :meth:`jpeg_tables_for`
        (or, when None, at a quality that a later save repeats); the descriptive parts are
        unchanged. (A greyscale photo whose pixels took colour is written RGB; the next save
        looks at its pixels again. One written as WebP, which holds no grey picture, stays a
        greyscale photo: after a WebP copy every later save wrote it in colour without its Gray
        profile, saying "the retouched picture is not grey".)"""
        grey = self.is_greyscale
        mode = _written_mode(fmt, grey=grey, alpha=alpha)
        if grey and not written_grey(fmt, grey):
            mode = picture_mode(grey=True, alpha=alpha and supports_alpha(fmt))
        return replace(
            self,
            format=fmt,
            jpeg_tables=self.jpeg_tables_for(fmt, keep_jpeg_compression),
            lossless=self.lossless and fmt == "WEBP",
            tiff_deflate=self.tiff_deflate and fmt == "TIFF",
            mode=mode,
            pages=1,
            grey_palette=False,  # the written mode says whether it is grey now
        )


def written_grey(fmt: str, greyscale: bool) -> bool:
    """Whether a greyscale photo's neutral picture is written as grey in ``fmt`` (WebP has no
    grey mode: it is written RGB)."""
    return greyscale and fmt != "WEBP"


def picture_mode(*, grey: bool, alpha: bool) -> str:
    """The Pillow mode of an 8-bit picture written grey or in colour, with or without alpha."""
    if grey:
        return "LA" if alpha else "L"
    return "RGBA" if alpha else "RGB"


def _written_mode(fmt: str, *, grey: bool, alpha: bool) -> str:
    # JPEG and BMP flatten the alpha onto white
    return picture_mode(grey=written_grey(fmt, grey), alpha=alpha and supports_alpha(fmt))


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# ---------------------------------------------------------------------------------------------
# reading


def exif_orientation(im: Image.Image, path: Path, *, quiet: bool = False) -> int:
    """The EXIF orientation (1..8; 1 when absent, unreadable or out of range: some cameras and
    apps write 0, which viewers read as upright). ``quiet``: no warning for unreadable EXIF."""
    try:
        value = im.getexif().get(_ORIENTATION, 1)
        if not isinstance(value, int):
            # stored as text ("6") or a list: Pillow's exif_transpose (and strict viewers) leave
            # the picture as stored, so it is upright as it is (taken as 6, the DPI was swapped
            # and the JPEG's blocks refused as rotated, for a picture nothing turned)
            if not quiet:
                log.warning(
                    "%s: its EXIF orientation is not a number (%r); the picture is used as stored",
                    path,
                    value,
                )
            return 1
        return value if 1 <= value <= 8 else 1
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds for damaged EXIF data
        if quiet:
            return 1
        log.warning(
            "%s: its EXIF orientation cannot be read (%s); the picture is used as stored, not rotated",
            path,
            _reason(exc),
        )
        return 1


def _tiff_exif(im: Image.Image, path: Path) -> bytes | None:
    """TIFF keeps EXIF among its own structural tags; take only the descriptive ones."""
    try:
        src = im.getexif()
        out = Image.Exif()
        for tag in _TIFF_DESCRIPTIVE_TAGS:
            if tag in src:
                out[tag] = _text_bytes(src[tag])
        for tag in _EXIF_SUB_IFDS:
            if tag in src:
                ifd = src.get_ifd(tag)
                if ifd:
                    out[tag] = {k: _text_bytes(v) for k, v in ifd.items()}
        if _INTEROP_IFD in out.get(_EXIF_IFD, {}):  # read from the file: Pillow closed it once decoded
            with Image.open(path) as again:
                _nest_interop(again.getexif(), out[_EXIF_IFD])
        return out.tobytes() if len(out) else None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds for damaged TIFF tags
        log.warning(
            "%s: its TIFF EXIF tags cannot be read and are not copied to the output (%s)", path, _reason(exc)
        )
        return None


def _rebuilt_exif(raw: bytes, *, had_orientation: bool = False) -> bytes:
    """Re-write an EXIF block as it was (:func:`engine.exif_block.rewrite_exif`: every entry's
    bytes kept, text in any encoding included): the main directory (IFD0) with its Exif, GPS and
    Interop sub-directories, orientation forced to 1 (our pixels are upright). IFD1 is not
    written, so the embedded thumbnail of the original picture (which would still show a removed
    object in file managers) never reaches a retouched file. Raises on data that is not EXIF."""
    return rewrite_exif(raw, upright=had_orientation)


def _pillow_exif(raw: bytes) -> Image.Exif:
    """``raw`` as Pillow's Exif, for Pillow's TIFF writer, with its text as the bytes it was:
    Pillow reads text as Latin-1 and writes it as ASCII with "?" for every other byte (a
    copyright "© Jörg" became "?? J??rg"); bytes are written as they are (a tag Pillow does not
    know as text, in a sub-directory, is then typed BYTE: its bytes kept, not its type)."""
    tags = Image.Exif()
    tags.load(raw)
    for directory in (tags, *(tags.get_ifd(t) for t in _EXIF_SUB_IFDS if t in tags)):
        for tag, value in list(directory.items()):
            directory[tag] = _text_bytes(value)
    _nest_interop(tags, tags.get_ifd(_EXIF_IFD) if _EXIF_IFD in tags else None)
    return tags


def _nest_interop(source: Image.Exif, exif_ifd: dict[int, Any] | None) -> None:
    """Put the Interop sub-directory into ``exif_ifd`` (the Exif one, to be written) as a
    directory, not the number it was read as: written as a number, the TIFF's pointer led into
    other bytes and the InteropIndex (R03: an in-camera Adobe RGB JPEG's only colour statement
    without a profile) was lost. One that cannot be read is left out."""
    if not exif_ifd or _INTEROP_IFD not in exif_ifd or isinstance(exif_ifd[_INTEROP_IFD], dict):
        return
    try:
        interop = dict(source.get_ifd(_INTEROP_IFD))
    except Exception:  # noqa: BLE001 - a damaged directory: no pointer rather than a wrong one
        interop = {}
    if interop:
        exif_ifd[_INTEROP_IFD] = {k: _text_bytes(v) for k, v in interop.items()}
    else:
        del exif_ifd[_INTEROP_IFD]


def _text_bytes(value: Any) -> Any:
    """A text value Pillow read (as Latin-1) that is not ASCII: its bytes, which Pillow writes
    as they are; anything else as it is."""
    return value.encode("latin-1", "replace") if isinstance(value, str) and not value.isascii() else value


def read_exif(im: Image.Image, had_orientation: bool, fmt: str | None, path: Path) -> bytes | None:
    """The EXIF block to write back: rebuilt without the thumbnail, orientation 1."""
    raw = im.info.get("exif")
    if not raw and fmt == "TIFF":
        return _tiff_exif(im, path)
    if not raw:
        return None
    try:
        return _rebuilt_exif(bytes(raw), had_orientation=had_orientation)
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds for damaged EXIF data
        # A damaged block is dropped rather than copied into the output.
        log.warning("%s: its EXIF block is damaged and is not copied to the output (%s)", path, _reason(exc))
        return None


def icc_colour_space(icc: bytes, path: Path) -> str | None:
    """The colour space an ICC profile describes ("RGB", "CMYK", "GRAY"...), None when the
    profile cannot be read (a warning says so: the caller drops it)."""
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return str(profile.profile.xcolor_space).strip().upper()
    except OSError as exc:  # what littlecms gives for data that is not a profile
        log.warning(
            "%s: its ICC profile cannot be read and is not copied to the output (%s)", path, _reason(exc)
        )
        return None


def srgb_profile_bytes() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def cmyk_to_srgb(im: Image.Image, icc: bytes, path: Path) -> Image.Image | None:
    """A CMYK picture converted to sRGB through its CMYK profile ``icc``; None (with a warning)
    when the profile cannot do it: the caller falls back to Pillow's naive conversion."""
    try:
        rgb = ImageCms.profileToProfile(
            im,
            ImageCms.ImageCmsProfile(io.BytesIO(icc)),
            ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")),
            outputMode="RGB",
        )
    except (ImageCms.PyCMSError, OSError) as exc:  # littlecms' errors, wrapped or not
        log.warning(
            "%s: its CMYK ICC profile cannot convert the picture to sRGB (%s); it is converted without "
            "it (colours may be off) and the profile is not copied to the output",
            path,
            _reason(exc),
        )
        return None
    assert rgb is not None  # None only with inPlace=True
    return rgb


def read_dpi(im: Image.Image, fmt: str | None, *, swap: bool) -> tuple[float, float] | None:
    """The resolution of the upright picture (``swap``: the orientation turned it by 90 degrees)."""
    # Pillow reports (1, 1) for a TIFF without resolution tags: no DPI then.
    if fmt == "TIFF" and _TIFF_X_RESOLUTION not in getattr(im, "tag_v2", {}):
        return None
    value = im.info.get("dpi")
    try:
        x, y = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if not (0 < x < 1e6 and 0 < y < 1e6):
        return None
    return (y, x) if swap else (x, y)


def read_xmp(value: Any) -> bytes | None:
    """The XMP packet as bytes, without its thumbnails (:func:`_without_thumbnails`); None when
    absent or blank."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    if not (isinstance(value, (bytes, bytearray)) and value.strip(b"\x00 ")):
        return None
    return _without_thumbnails(bytes(value))


# the opening tag of xmp:Thumbnails (xap: in older files): an array of base64 JPEG previews
_XMP_THUMBNAILS = re.compile(rb"<([\w.-]+):Thumbnails(?=[\s/>])[^>]*>")


def _without_thumbnails(xmp: bytes) -> bytes:
    """``xmp`` without its ``xmp:Thumbnails`` previews: like the EXIF thumbnail they show the
    picture as it was before retouching (what was removed, in file managers and catalogues).
    One pass over the packet (an element never closed is kept, with what follows it)."""
    parts, at, unclosed = [], 0, set()
    for opening in _XMP_THUMBNAILS.finditer(xmp):
        prefix = opening.group(1)
        if opening.start() < at or prefix in unclosed:  # inside one taken out; never closed
            continue
        if opening.group(0).endswith(b"/>"):
            end = opening.end()
        else:
            close = xmp.find(b"</" + prefix + b":Thumbnails>", opening.end())
            if close < 0:
                unclosed.add(prefix)
                continue
            end = close + len(prefix) + len(b"</:Thumbnails>")
        parts.append(xmp[at : opening.start()])
        at = end
    return b"".join(parts) + xmp[at:] if parts else xmp


def read_jpeg_tables(im: Image.Image, path: Path) -> JpegTables | None:
    """A JPEG file's quantisation tables and subsampling (4:4:4 for a sampling Pillow cannot
    write; None when the tables are unusual: 12-bit tables...,
    and for a CMYK JPEG, whose tables and sampling describe inks, not the RGB file written
    from it: that one is written at the chosen quality, 4:4:4 from 90 up)."""
    if im.mode == "CMYK":
        return None
    try:
        tables = getattr(im, "quantization", None) or {}
        qtables = tuple(tuple(int(v) for v in tables[k]) for k in sorted(tables))
        if not qtables or any(len(t) != 64 for t in qtables):
            return None
        sampling = JpegImagePlugin.get_sampling(im)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
        log.warning(
            "%s: its JPEG quantisation tables cannot be read; a JPEG saved from it is written at the "
            "chosen quality instead (%s)",
            path,
            _reason(exc),
        )
        return None
    # a sampling Pillow does not write (4:4:0, which a lossless rotation of a 4:2:2 photo gives;
    # 4:1:1): 4:4:4, which loses none of its chroma (Pillow's default 4:2:0 halved what 4:4:0
    # kept across)
    return JpegTables(qtables, sampling if sampling in (0, 1, 2) else 0)


def read_webp_lossless(path: Path) -> bool:
    """Whether a WebP file's picture is lossless (a VP8L bitstream; lossy ones are VP8, with
    or without an ALPH chunk). Walks the RIFF chunk headers only; False when they cannot be
    read (the picture is then written as lossy WebP is)."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WEBP":
                return False
            for _ in range(64):  # VP8X, ICCP, ANIM, ALPH... come before the bitstream
                chunk = f.read(8)
                if len(chunk) < 8:
                    return False
                fourcc, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if fourcc in (b"VP8L", b"VP8 "):
                    return fourcc == b"VP8L"
                if fourcc == b"ANMF":  # an animation: its first frame's chunks follow its header
                    f.seek(16, os.SEEK_CUR)
                    continue
                f.seek(size + (size & 1), os.SEEK_CUR)
    except OSError:
        return False
    return False


def read_png_colour(info: dict[str, Any], path: Path) -> PngColour | None:
    """The sRGB, gAMA and cHRM chunks of a PNG as Pillow reads them into ``info`` (None when
    it has none); a chunk with values out of range is dropped with a warning."""
    srgb, gamma, chrm = info.get("srgb"), info.get("gamma"), info.get("chromaticity")
    if srgb is not None and srgb not in (0, 1, 2, 3):
        log.warning("%s: its sRGB chunk (rendering intent %r) is invalid and is not copied", path, srgb)
        srgb = None
    if gamma is not None and not (isinstance(gamma, (int, float)) and 0 < gamma < 42949):
        log.warning("%s: its gAMA chunk (%r) is invalid and is not copied", path, gamma)
        gamma = None
    if chrm is not None:
        values = tuple(float(v) for v in chrm) if isinstance(chrm, (tuple, list)) else ()
        if len(values) != 8 or not all(math.isfinite(v) and 0 <= v < 42949 for v in values):
            log.warning("%s: its cHRM chunk is invalid and is not copied", path)
            chrm = None
        else:
            chrm = values
    if srgb is None and gamma is None and chrm is None:
        return None
    return PngColour(srgb=srgb, gamma=None if gamma is None else float(gamma), chromaticity=chrm)


COMMENT = "Comment"
"""The keyword of a PNG text chunk that a JPEG's comment (COM segment) becomes, and back."""
_XMP_KEY = "XML:com.adobe.xmp"
# ImageMagick's copies of blocks in PNG text: the EXIF (its old orientation), the ICC profile and
# the XMP are kept on their own; Photoshop's resources (8BIM) may hold the original's thumbnail
_RAW_COPIES = tuple(f"Raw profile type {k}" for k in ("exif", "APP1", "icc", "icm", "xmp", "8bim"))


def read_text(im: Image.Image, fmt: str | None) -> tuple[tuple[str, str], ...]:
    """A PNG's text chunks (tEXt, zTXt, iTXt: Author, Copyright, Description...; not its XMP,
    kept on its own, nor ImageMagick's copies of its EXIF, ICC profile, XMP or Photoshop
    resources: :data:`_RAW_COPIES`), as (keyword, text) pairs in file order."""
    if fmt != "PNG":
        return ()
    chunks = getattr(im, "text", None) or {}
    return tuple((str(k), str(v)) for k, v in chunks.items() if k != _XMP_KEY and str(k) not in _RAW_COPIES)


def read_iptc(im: Image.Image, fmt: str | None) -> bytes | None:
    """A JPEG's or TIFF's IPTC-IIM records (:mod:`engine.iptc`), None when it has none."""
    if is_jpeg(fmt):
        return iptc_from_jpeg(getattr(im, "applist", None) or [])
    if fmt == "TIFF":  # its bytes: Pillow's value of a tag typed LONG is its first number only
        return iptc_from_tiff(getattr(getattr(im, "tag_v2", None), "_tagdata", {}).get(TIFF_IPTC))
    return None


def read_comment(im: Image.Image, fmt: str | None) -> bytes | None:
    """A JPEG's comment (COM segment) as its bytes (it names no encoding)."""
    comment = im.info.get("comment") if is_jpeg(fmt) else None
    if isinstance(comment, str):
        comment = comment.encode("utf-8")
    return bytes(comment) if comment else None


def _comment_text(comment: bytes) -> str:
    """A JPEG comment as a PNG text: UTF-8 where it is, else Latin-1 (every byte a character)."""
    try:
        return comment.decode("utf-8")
    except UnicodeDecodeError:
        return comment.decode("latin-1")


def _png_info(metadata: PhotoMetadata) -> PngImagePlugin.PngInfo | None:
    """The chunks Pillow's ``pnginfo`` writes for ``metadata``: colour chunks, XMP and text."""
    info = PngImagePlugin.PngInfo()
    colour = metadata.png_colour
    if colour is not None and colour.srgb is not None:
        info.add(b"sRGB", bytes([colour.srgb]))
    if colour is not None and colour.gamma is not None:
        info.add(b"gAMA", struct.pack(">I", round(colour.gamma * 100000)))
    if colour is not None and colour.chromaticity is not None:
        info.add(b"cHRM", struct.pack(">8I", *(round(v * 100000) for v in colour.chromaticity)))
    if metadata.xmp:
        info.add_itxt(_XMP_KEY, bytes(metadata.xmp).decode("utf-8", "replace"))
    text = metadata.text
    if metadata.comment and COMMENT not in dict(text):
        text += ((COMMENT, _comment_text(metadata.comment)),)
    for key, value in text:
        info.add_text(key, value, zip=len(value) > 1024)  # tEXt, or iTXt where Latin-1 cannot hold it
    return info if info.chunks else None


def file_mode(im: Image.Image) -> str:
    """Pillow's mode, except that 16-bit RGB(A) files, which Pillow opens as 8-bit "RGB" or
    "RGBA", are reported as "RGB;16" / "RGBA;16" so that nobody writes 8 bits over them unawares,
    and a 16-bit grey PNG with alpha, which Pillow opens as "RGBA", as "LA;16" (a greyscale file).
    Read it before decoding (decoding empties ``im.tile``)."""
    mode = im.mode
    if mode in ("RGB", "RGBA"):
        try:
            rawmode = im.tile[0][3]
            rawmode = rawmode[0] if isinstance(rawmode, tuple) else rawmode
        except (IndexError, TypeError):
            return mode
        if isinstance(rawmode, str) and rawmode.startswith("LA;16"):
            return "LA;16"
        if isinstance(rawmode, str) and ";16" in rawmode:
            return f"{mode};16"
    return mode


def page_count(im: Image.Image, path: Path) -> int:
    """Pictures in the file (TIFF pages, animation frames); 1 when they cannot be counted."""
    try:
        return max(1, int(getattr(im, "n_frames", 1)))
    except Exception as exc:  # noqa: BLE001 - counting walks the whole file; each plugin fails its own way
        log.warning(
            "%s: its pages cannot be counted (%s); it is treated as a single picture", path, _reason(exc)
        )
        return 1


# ---------------------------------------------------------------------------------------------
# writing


def _sanitise_exif(exif: bytes) -> bytes:
    """Our pixels are always upright, so a written file must never ask for a rotation; and a
    thumbnail in the block would show the picture as it was before retouching: rebuild it."""
    try:
        return _rebuilt_exif(exif)
    except Exception as exc:
        raise ValueError(f"the EXIF block to save is not valid EXIF data ({exc})") from exc


def exif_sub_ifds(exif: bytes | Image.Exif | None) -> bool:
    """Whether an EXIF block to write has an Exif or GPS sub-directory (what libtiff's compressed
    TIFF writer cannot write)."""
    if exif is None:
        return False
    if not isinstance(exif, Image.Exif):
        tags = Image.Exif()
        tags.load(exif)
        exif = tags
    return any(tag in exif for tag in _EXIF_SUB_IFDS)


def metadata_params(
    metadata: PhotoMetadata, fmt: str, *, grey: bool = False, output: str | os.PathLike[str] = "the output"
) -> dict[str, Any]:
    """Pillow ``save()`` keywords that write ``metadata``'s EXIF, ICC profile (the Gray one for
    a picture written ``grey``), DPI, XMP, PNG colour and text chunks and a JPEG comment where
    ``fmt`` can hold them (the compression is the caller's: see
    :meth:`PhotoMetadata.jpeg_tables_for`); a JPEG gets what fits its segments (:func:`_fit_jpeg_segments`, a warning naming ``output`` says what was
    left out). Raises ValueError for EXIF that is not EXIF."""
    params: dict[str, Any] = {}
    if metadata.xmp:
        metadata = replace(metadata, xmp=_without_thumbnails(bytes(metadata.xmp)))
    exif, xmp = metadata.exif, metadata.xmp
    if exif and fmt in _EXIF_FORMATS:
        params["exif"] = _sanitise_exif(bytes(exif))
    icc = metadata.grey_icc_profile if grey else metadata.icc_profile
    if icc and fmt in _ICC_FORMATS:
        params["icc_profile"] = bytes(icc)
    if metadata.dpi is not None and fmt in _DPI_FORMATS:
        params["dpi"] = tuple(float(v) for v in metadata.dpi)
    _say_unwritable(metadata, fmt, grey, output)
    if fmt == "PNG" and (info := _png_info(metadata)) is not None:
        params["pnginfo"] = info
    if xmp and fmt in ("JPEG", "WEBP"):
        params["xmp"] = bytes(xmp)
    if fmt == "TIFF":
        tags = {_TIFF_XMP: bytes(xmp)} if xmp else {}
        if metadata.iptc:
            tags[TIFF_IPTC] = bytes(metadata.iptc)
        if "exif" in params:  # Pillow's TIFF writer re-reads the block: its text as bytes
            params["exif"] = _pillow_exif(params["exif"])
            for tag, value in tags.items():  # Pillow takes either tiffinfo or exif: among the EXIF
                params["exif"][tag] = value
        elif tags:
            params["tiffinfo"] = tags
    if fmt == "JPEG":
        png_comment = dict(metadata.text).get(COMMENT)
        comment = metadata.comment or (png_comment.encode("utf-8") if png_comment else None)
        if comment:
            params["comment"] = comment
        if metadata.iptc:
            segment = jpeg_iptc_segment(bytes(metadata.iptc))
            if segment is None:
                log.warning(
                    "%s: its IPTC records (%s bytes) do not fit a JPEG's 64 KB segment and are not written",
                    output,
                    f"{len(metadata.iptc):,}",
                )
            else:
                params["extra"] = segment
        _fit_jpeg_segments(params, output)
    return params


def _say_unwritable(metadata: PhotoMetadata, fmt: str, grey: bool, output: str | os.PathLike[str]) -> None:
    """A logged warning naming what of ``metadata`` a ``fmt`` file cannot hold (a BMP holds no
    colour profile, EXIF or XMP; a PNG or WebP no IPTC records): it was dropped without a word."""
    icc = metadata.grey_icc_profile if grey else metadata.icc_profile
    lost = [
        name
        for name, present, formats in (
            ("colour profile", icc, _ICC_FORMATS),
            ("EXIF", metadata.exif, _EXIF_FORMATS),
            ("XMP", metadata.xmp, _XMP_FORMATS),
            ("IPTC records (captions, keywords)", metadata.iptc, _IPTC_FORMATS),
        )
        if present and fmt not in formats
    ]
    if lost:
        names = lost[0] if len(lost) == 1 else ", ".join(lost[:-1]) + " and " + lost[-1]
        log.warning(
            "%s: a %s file cannot hold the photo's %s; %s not written%s",
            output,
            fmt,
            names,
            "it is" if len(lost) == 1 else "they are",
            " (without its profile the colours are read as sRGB)" if "colour profile" in lost else "",
        )
    colour = metadata.png_colour
    if fmt != "PNG" and colour is not None and colour.srgb is None and not icc and not _srgb_like(colour):
        log.warning(
            "%s: a %s file cannot hold the PNG's colour chunks (%s); they are not written, so "
            "viewers that honoured them show its colours as sRGB (as Retoucher does)",
            output,
            fmt,
            ", ".join(
                ([f"gamma {colour.gamma:g}"] if colour.gamma is not None else [])
                + (["chromaticities"] if colour.chromaticity is not None else [])
            ),
        )
    if not grey and metadata.grey_icc_profile and not metadata.icc_profile:  # it was dropped in silence
        log.warning(
            "%s: the photo's Gray colour profile describes grey pixels, and the picture is written in "
            "colour (%s); it is not written, so its tones are read as sRGB",
            output,
            "a WebP file holds no grey pictures" if fmt == "WEBP" else "the retouched picture is not grey",
        )


_SRGB_CHROMATICITY = (0.3127, 0.329, 0.64, 0.33, 0.3, 0.6, 0.15, 0.06)  # white, red, green, blue


def _srgb_like(colour: PngColour) -> bool:
    """The gAMA and cHRM chunks say what sRGB is (gamma 1/2.2, its primaries): nothing is lost
    where they cannot be written."""
    gamma_ok = colour.gamma is None or abs(colour.gamma - 1 / 2.2) < 0.005
    primaries_ok = colour.chromaticity is None or all(
        abs(a - b) < 0.005 for a, b in zip(colour.chromaticity, _SRGB_CHROMATICITY, strict=False)
    )
    return gamma_ok and primaries_ok


def _fit_jpeg_segments(params: dict[str, Any], output: str | os.PathLike[str]) -> None:
    """A JPEG holds its EXIF, its XMP and its comment in one marker segment each (64 KB): a
    larger block (a large maker note, Photoshop's edit history in the XMP) made Pillow refuse the
    save, and the photo was not written at all. EXIF over the limit loses its maker note, then
    the whole block if that is not enough; XMP or a comment over it is left out; a logged
    warning says what went."""
    exif = params.get("exif")
    if exif is not None and len(exif) > JPEG_SEGMENT_BYTES:
        smaller = rewrite_exif(exif, drop=frozenset({_MAKER_NOTE}))
        if len(smaller) <= JPEG_SEGMENT_BYTES:
            params["exif"] = smaller
            what = f"its EXIF maker note ({len(exif) - len(smaller):,} bytes)"
        else:
            del params["exif"]
            what = f"its EXIF block ({len(exif):,} bytes)"
        log.warning("%s: %s does not fit a JPEG's 64 KB segment and is not written", output, what)
    for key, name, limit in (
        ("xmp", "XMP packet", _JPEG_XMP_BYTES),
        ("comment", "comment", JPEG_SEGMENT_BYTES),
    ):
        block = params.get(key)
        if block is not None and len(block) > limit:
            del params[key]
            log.warning(
                "%s: its %s (%s bytes) does not fit a JPEG's 64 KB segment and is not written",
                output,
                name,
                f"{len(block):,}",
            )
