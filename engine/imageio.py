"""Image files in and out: the one place where Pillow meets the engine's arrays.

Loading gives a :class:`LoadedImage`: ``rgb`` (``uint8 HxWx3``, in display orientation: the EXIF
orientation is applied), ``alpha`` (``uint8 HxW`` or None) kept aside, and ``metadata``, one
:class:`~engine.metadata.PhotoMetadata` (EXIF, ICC profile, DPI, XMP, format, mode, pages, JPEG
tables; read and written by :mod:`engine.metadata`) to write back on save. Any Pillow mode is
turned into 8-bit RGB: grayscale, bilevel, palette (transparency becomes alpha), CMYK (through
its embedded ICC profile to sRGB when there is one), 16-bit and 32-bit integer and float images
(scaled down, not clipped).

The pixel count is checked from the header, before anything is decoded, so a decompression bomb
costs nothing but an :class:`ImageTooLargeError`. Every problem with an input file is an
:class:`ImageReadError` (a ``ValueError``) whose message names the file; input files are only
ever opened for reading. Metadata that cannot be read is dropped with a logged warning; a JPEG
whose compressed data is damaged loads as libjpeg recovers it, with a logged warning.

Saving is atomic (:func:`engine.atomic.atomic_path`), picks the format from the suffix, writes
JPEG at quality 95 with 4:4:4 chroma by default (or with the original's tables, see
:meth:`~engine.metadata.PhotoMetadata.jpeg_tables_for`, re-encoding only the changed blocks of
the source JPEG: :mod:`engine.jpeg_blocks`), keeps the metadata where the format can
hold it, and restores alpha for PNG, TIFF and WebP. Formats without alpha (JPEG, BMP) get the
image flattened onto white, as image editors do when exporting a transparent picture to JPEG.

Saving a greyscale file's picture writes it greyscale (L, LA) again while its pixels are grey, and
a lossless WebP's lossless again.

Hole masks on disk are grayscale pictures, white (> 127) = hole; strokes of one colour on a
transparent layer are the hole whatever their colour (:func:`load_mask`).
"""

from __future__ import annotations

import io
import logging
import os
import struct
import threading
import warnings
from concurrent.futures import Future, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .atomic import atomic_path
from .formats import (
    ALPHA_FORMATS,
    DEFAULT_QUALITY,
    IMAGE_SUFFIXES,
    format_for_suffix,
    is_jpeg,
    output_format,
    suffix_for_format,
    supports_alpha,
)
from .grey import is_grey
from .jpeg_blocks import SourceFile, check_changed, save_changed_blocks
from .jpeg_damage import jpeg_damage
from .metadata import (
    GREY_MODES,
    PALETTE_MODES,
    JpegTables,
    PhotoMetadata,
    cmyk_to_srgb,
    exif_orientation,
    exif_sub_ifds,
    file_mode,
    icc_colour_space,
    metadata_params,
    page_count,
    picture_mode,
    read_comment,
    read_dpi,
    read_exif,
    read_iptc,
    read_jpeg_tables,
    read_png_colour,
    read_text,
    read_webp_lossless,
    read_xmp,
    srgb_profile_bytes,
    written_grey,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_QUALITY",
    "IMAGE_SUFFIXES",
    "ALPHA_FORMATS",
    "ImageReadError",
    "ImageTooLargeError",
    "ImageNotFoundError",
    "MaskShapeError",
    "MultiPageWarning",
    "LoadedImage",
    "JpegTables",
    "PhotoMetadata",
    "SourceFile",
    "load_image",
    "rgb_of",
    "save_image",
    "load_mask",
    "save_mask",
    "format_for_suffix",
    "suffix_for_format",
    "supports_alpha",
]

log = logging.getLogger(__name__)
_DEFLATE = ("tiff_adobe_deflate", "tiff_deflate")  # Pillow's names of a Deflate (zip) TIFF

DEFAULT_MAX_PIXELS = 250_000_000
"""Largest image (width x height) :func:`load_image` decodes by default: 250 megapixels."""

# Pillow's own bomb check reads a process-wide limit (Image.MAX_IMAGE_PIXELS: a warning above
# ~89 Mpx, an error above twice that, raised inside Image.open before the size can be read). We
# lift it only while opening a header or decoding (under this lock, restored at once) and apply
# the caller's ``max_pixels`` ourselves. Leaving the global alone is not possible with Pillow's
# public API: the error loses the image (its size only in the message), and silencing the warning
# needs warnings.catch_warnings, which swaps the process-wide filter list (before Python 3.14).
_open_lock = threading.Lock()


PAINT_SPREAD = 64  # grey levels: opaque pixels of a mask within this range are strokes of one colour


class ImageReadError(ValueError):
    """An image (or mask) file that cannot be read: corrupt, truncated, unknown or unsupported."""


class ImageTooLargeError(ImageReadError):
    """The image has more pixels than the allowed maximum (decompression-bomb protection)."""


class MultiPageWarning(UserWarning):
    """The file holds several pictures (TIFF pages, animation frames); only the first is loaded."""


class MaskShapeError(ImageReadError):
    """A mask whose aspect ratio differs from the photo's: scaling it would distort the hole."""


class ImageNotFoundError(ImageReadError, FileNotFoundError):
    """The file does not exist (also a ``FileNotFoundError``)."""


@dataclass
class LoadedImage:
    """A decoded photo in display orientation, with what is needed to write it back faithfully."""

    rgb: np.ndarray  # uint8 HxWx3
    alpha: np.ndarray | None = None  # uint8 HxW, 255 = opaque
    metadata: PhotoMetadata = field(default_factory=PhotoMetadata)
    path: Path | None = None
    source: SourceFile | None = None  # the file as it was read (see engine.jpeg_blocks)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])


# ---------------------------------------------------------------------------------------------
# loading


def _open_unlimited(source: Path | io.BytesIO) -> Image.Image:
    """``Image.open`` (the header) without Pillow's own pixel limit, which the callers replace
    by theirs (``max_pixels``, checked on the header before anything is decoded)."""
    with _open_lock:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(source)
        finally:
            Image.MAX_IMAGE_PIXELS = saved


_UNREAD_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"hevc": "HEIC", b"heim": "HEIC", b"heis": "HEIC", b"mif1": "HEIF", b"msf1": "HEIF"}  # fmt: skip
"""ISO media brands of photo formats Pillow does not read (an iPhone's HEIC): such a photo was
called perhaps corrupt."""


def _unread_format(path: Path) -> str | None:
    """The name of a photo format that is known but not read (HEIC), from the file's first bytes."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
    except OSError:
        return None
    return _UNREAD_BRANDS.get(head[8:12]) if head[4:8] == b"ftyp" else None


def _open_checked(path: Path, max_pixels: int, what: str) -> Image.Image:
    """Open (header only) and enforce the pixel limit before any decoding."""
    if not path.exists():
        raise ImageNotFoundError(f"{what} not found: {path}")
    if path.is_dir():
        raise ImageReadError(f"{path} is a folder, not an {what}")
    try:
        im = _open_unlimited(path)
    except UnidentifiedImageError as exc:
        known = _unread_format(path)
        raise ImageReadError(
            f"{path} is a {known} photo, which Retoucher cannot read: convert it to JPEG, PNG or TIFF first"
            if known
            else f"{path} is not an image file Retoucher can read (unknown or corrupt format)"
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageReadError(f"{path} could not be opened as an {what}: {exc}") from exc
    width, height = im.size
    if width * height > max_pixels:
        im.close()
        raise ImageTooLargeError(
            f"{path} is {width}x{height} = {width * height:,} pixels, more than the limit of "
            f"{max_pixels:,} pixels (refused before decoding, as protection against "
            "decompression bombs)"
        )
    if width < 1 or height < 1:
        im.close()
        raise ImageReadError(f"{path} has an empty size {width}x{height}")
    return im


def _decode(im: Image.Image, path: Path, what: str) -> None:
    try:
        pillow_limit = Image.MAX_IMAGE_PIXELS
        if pillow_limit is not None and im.width * im.height > pillow_limit:
            # Some decoders (TIFF) repeat Pillow's check; ours already passed.
            with _open_lock:
                Image.MAX_IMAGE_PIXELS = None
                try:
                    im.load()
                finally:
                    Image.MAX_IMAGE_PIXELS = pillow_limit
        else:
            im.load()
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{path}: {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as exc:
        raise ImageReadError(
            f"{path} is damaged or truncated and could not be decoded as an {what}: {exc}"
        ) from exc


def _damage_message(path: Path) -> str | None:
    """libjpeg's message when the JPEG at ``path`` is damaged (:mod:`engine.jpeg_damage`), else
    None; None too when the file cannot be read again now (it was just opened from there; a read
    that fails now is not the picture's problem)."""
    try:
        return jpeg_damage(path.read_bytes())
    except (OSError, MemoryError):
        return None


def _start_damage_check(path: Path) -> Future[str | None]:
    """:func:`_damage_message` on a thread of its own, beside Pillow's decode of the same file:
    the check is a second decode (at 1/8 scale) that libjpeg-turbo runs without the GIL, so on two
    cores it costs the load little (a 16.6 MB 24-megapixel JPEG here, one process alternating:
    561-691 ms checked after the decode, 437-550 ms beside it). A thread per load, not a pool: no
    state for a forked process to inherit half-made."""
    future: Future[str | None] = Future()

    def run() -> None:
        try:
            future.set_result(_damage_message(path))
        except BaseException as exc:  # noqa: BLE001 - handed to the loading thread, which raises it
            future.set_exception(exc)

    try:
        threading.Thread(target=run, name="jpeg-damage-check", daemon=True).start()
    except RuntimeError:  # no thread to be had: checked here, after all
        run()
    return future


def _without_end_marker(path: Path) -> Image.Image | None:
    """The picture of a JPEG whose data is complete but for its end-of-image marker (some
    cameras, an interrupted copy: the file stops right after the last scan), decoded from its
    bytes with the two-byte marker added, with a warning logged; None when anything more is
    missing (then the marker added leaves libjpeg short of data: "Corrupt JPEG data: premature
    end of data segment") or the file cannot be read now. Pillow refuses such a file as
    truncated; browsers and OpenCV read it whole."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if data.endswith(b"\xff\xd9"):
        return None
    data += b"\xff\xd9"
    if jpeg_damage(data) is not None:
        return None
    try:
        im = _open_unlimited(io.BytesIO(data))  # the same header the caller checked the size of
        _decode(im, path, "image")
    except (ImageReadError, OSError, SyntaxError, ValueError):
        return None
    log.warning(
        "%s: the JPEG ends without its end-of-image marker; its picture is complete and read so", path
    )
    return im


def _warn_if_damaged(path: Path, damage: str | None) -> None:
    """Log a warning when a JPEG that decoded is damaged (``damage``: libjpeg's message): Pillow
    gives such a picture with grey or garbled blocks and says nothing."""
    if damage:
        log.warning(
            "%s: the JPEG's compressed data is damaged (libjpeg: %s); parts of the picture may "
            "be grey or garbled, as they are read (a fill, a damage search and a save see them so)",
            path,
            damage,
        )


def _orient(im: Image.Image, path: Path) -> tuple[Image.Image, int]:
    """Apply the EXIF orientation; return the upright image and the original orientation."""
    orientation = exif_orientation(im, path)
    if orientation in (2, 3, 4, 5, 6, 7, 8):
        im = ImageOps.exif_transpose(im)
    return im, orientation


def _high_bit_to_uint8(a: np.ndarray, mode: str) -> np.ndarray:
    """Scale 16-bit, 32-bit integer or float samples to 0..255 (rounded, not clipped)."""
    if a.dtype.kind == "f":
        a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        top = float(a.max()) if a.size else 0.0
        scale = 255.0 if top <= 1.0 else (255.0 / 65535.0 if top > 255.0 else 1.0)
        return np.clip(np.rint(a * scale), 0, 255).astype(np.uint8)
    a = a.astype(np.int64)
    if mode.startswith("I;16"):
        peak = 65535
    else:  # mode "I": 32-bit integers, in practice 8- or 16-bit data widened
        top = int(a.max()) if a.size else 0
        peak = 255 if top <= 255 else 65535 if top <= 65535 else max(top, 1)
    a = np.clip(a, 0, peak)
    return ((a * 255 + peak // 2) // peak).astype(np.uint8)


def _to_rgb_alpha(
    im: Image.Image, icc: bytes | None, path: Path, stored: str | None = None
) -> tuple[np.ndarray, np.ndarray | None, bytes | None, bytes | None]:
    """Any mode -> (rgb uint8 HxWx3, alpha uint8 HxW | None, icc profile valid for rgb, a grey
    file's Gray profile or None). ``stored``: the file's mode (:func:`file_mode`, which says
    "LA;16" where Pillow opened a 16-bit grey PNG with alpha as RGBA), when known."""
    mode = im.mode
    icc_space = icc_colour_space(icc, path) if icc else None
    grey_icc = icc if icc_space == "GRAY" and (stored or mode) in GREY_MODES else None
    alpha: np.ndarray | None = None

    if mode == "CMYK":
        if icc and icc_space == "CMYK":
            rgb_im = cmyk_to_srgb(im, icc, path)
            if rgb_im is not None:
                return np.asarray(rgb_im, dtype=np.uint8).copy(), None, srgb_profile_bytes(), None
        else:  # the app said nothing of it (the batch did): 16 levels off on average from SWOP's
            log.warning(
                "%s is CMYK without a CMYK colour profile: converted to RGB by a plain formula, so its "
                "colours may be off",
                path,
            )
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy(), None, None, None

    if mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        samples = np.asarray(im)
        gray = _high_bit_to_uint8(samples, mode)
        rgb = np.repeat(gray[:, :, None], 3, axis=2)
        key = im.info.get("transparency")  # a 16-bit grey PNG's tRNS: the one transparent level
        if isinstance(key, int) and mode != "F":
            alpha = np.where(samples == key, 0, 255).astype(np.uint8)
        return rgb, alpha, None, grey_icc  # a grayscale profile does not describe RGB data

    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode in ("P", "L", "RGB", "1") and "transparency" in im.info
    )
    if mode == "P" and not has_alpha and im.palette is not None and im.palette.mode == "RGBA":
        has_alpha = True
    try:
        if has_alpha:
            rgba = np.asarray(im.convert("RGBA"), dtype=np.uint8)
            rgb, alpha = rgba[:, :, :3].copy(), rgba[:, :, 3].copy()
        else:
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (ValueError, OSError) as exc:
        raise ImageReadError(f"{path} has the image mode {mode!r}, which cannot be converted to RGB") from exc
    if icc and icc_space != "RGB":
        icc = None  # a gray/other profile would mislabel the RGB pixels
    return rgb, alpha, icc, grey_icc


def rgb_of(im: Image.Image, path: str | os.PathLike[str]) -> np.ndarray:
    """A decoded Pillow image of any mode as 8-bit RGB (uint8 HxWx3), as :func:`load_image`
    converts it (16-bit and float samples scaled to 0..255, where Pillow's ``convert("RGB")``
    clips them to white), without its alpha, orientation or colour profile."""
    return _to_rgb_alpha(im, None, Path(path))[0]


def load_image(
    path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS, check_jpeg_data: bool = True
) -> LoadedImage:
    """Read a photo as upright 8-bit RGB with its alpha and its metadata kept aside.

    Raises :class:`ImageNotFoundError` (missing file), :class:`ImageTooLargeError` (more than
    ``max_pixels`` pixels, checked before decoding) or :class:`ImageReadError` (unknown format,
    corrupt or truncated data, unsupported mode), each naming the file. A file of several pages
    or frames (multi-page TIFF, animation) gives its first one, with a :class:`MultiPageWarning`
    and ``metadata.pages`` set to the count. A JPEG whose compressed data is damaged (which
    libjpeg decodes as far as it can, with grey or garbled blocks after) loads, with a warning
    logged that says so (:mod:`engine.jpeg_damage`; ``check_jpeg_data=False`` skips that second
    decode, for a reader that loads the same files over and over). Metadata that cannot be read is left out, with a
    warning logged (:mod:`logging`) that names the file and what was dropped.
    """
    path = Path(path)
    im = _open_checked(path, max_pixels, "image")
    with im:
        stamp = SourceFile.of(path)
        fmt = im.format
        mode = file_mode(im)
        pages = page_count(im, path)
        if pages > 1 and fmt != "MPO":  # MPO: a camera JPEG with previews, not pages
            warnings.warn(
                f"{path} holds {pages} pages (or frames); only the first one is loaded, and a "
                "file saved from it holds only that one",
                MultiPageWarning,
                stacklevel=2,
            )
        check = _start_damage_check(path) if check_jpeg_data and is_jpeg(fmt) else None
        # Pillow turns a TIFF upright as it decodes it and drops the tag (its DPI stays as stored)
        stored_orientation = exif_orientation(im, path, quiet=True) if fmt == "TIFF" else 1
        try:
            _decode(im, path, "image")
        except BaseException as exc:
            if check is not None:
                wait([check])  # nothing left reading the file behind the caller's back
            whole = _without_end_marker(path) if isinstance(exc, ImageReadError) and is_jpeg(fmt) else None
            if whole is None:
                raise
            im, check = whole, None  # the same header, from the file's bytes and the marker
        if check is not None:
            _warn_if_damaged(path, check.result())
        try:
            upright, orientation = _orient(im, path)
        except Exception as exc:
            raise ImageReadError(f"{path}: could not apply the EXIF orientation ({exc})") from exc
        exif = read_exif(upright, orientation != 1, fmt, path)
        given = upright.info.get("icc_profile") or im.info.get("icc_profile") or None
        rgb, alpha, icc, grey_icc = _to_rgb_alpha(upright, bytes(given) if given else None, path, mode)
        metadata = PhotoMetadata(
            exif=exif,
            icc_profile=icc,
            dpi=read_dpi(im, fmt, swap=bool({orientation, stored_orientation} & {5, 6, 7, 8})),
            xmp=read_xmp(upright.info.get("xmp")),
            format=fmt,
            mode=mode,
            pages=pages,
            jpeg_tables=read_jpeg_tables(im, path) if is_jpeg(fmt) else None,
            png_colour=read_png_colour(im.info, path) if fmt == "PNG" else None,
            text=read_text(im, fmt),
            comment=read_comment(im, fmt),
            iptc=read_iptc(im, fmt),
            lossless=fmt == "WEBP" and read_webp_lossless(path),
            tiff_deflate=fmt == "TIFF" and im.info.get("compression") in _DEFLATE,
            grey_icc_profile=grey_icc,
            # a palette file's profile is an RGB one, which a grey file could not carry: it stays RGB
            grey_palette=mode in PALETTE_MODES and icc is None and is_grey(rgb),
        )
    return LoadedImage(
        rgb=np.ascontiguousarray(rgb),
        alpha=None if alpha is None else np.ascontiguousarray(alpha),
        metadata=metadata,
        path=path,
        source=replace(stamp, orientation=orientation),
    )


# ---------------------------------------------------------------------------------------------
# saving


def _check_rgb(rgb: Any) -> np.ndarray:
    if not isinstance(rgb, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(rgb).__name__}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got dtype {rgb.dtype}")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"image must have shape HxWx3 (RGB), got {rgb.shape}")
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError(f"image is empty: shape {rgb.shape}")
    return np.ascontiguousarray(rgb)


def _check_alpha(alpha: Any, shape: tuple[int, ...]) -> np.ndarray:
    if not isinstance(alpha, np.ndarray):
        raise ValueError(f"alpha must be a numpy array, got {type(alpha).__name__}")
    if alpha.dtype != np.uint8:
        raise ValueError(f"alpha must be uint8, got dtype {alpha.dtype}")
    if alpha.shape != tuple(shape[:2]):
        raise ValueError(f"alpha has shape {alpha.shape}, the image is {tuple(shape[:2])}")
    return np.ascontiguousarray(alpha)


def _flatten_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    a = alpha.astype(np.uint16)[:, :, None]
    out = (rgb.astype(np.uint16) * a + 255 * (255 - a) + 127) // 255
    return out.astype(np.uint8)


def save_image(
    path: str | os.PathLike[str],
    rgb: np.ndarray,
    *,
    alpha: np.ndarray | None = None,
    metadata: PhotoMetadata | None = None,
    format: str | None = None,
    quality: int = DEFAULT_QUALITY,
    keep_jpeg_compression: bool = False,
    source: SourceFile | None = None,
    changed: np.ndarray | None = None,
    own_process: bool = False,
) -> Path:
    """Write ``rgb`` (uint8 HxWx3) atomically; return the path.

    ``format`` defaults to the one the suffix names. ``alpha`` is restored for PNG, TIFF and
    WebP; for formats without alpha the picture is flattened onto white. ``metadata`` (a
    :class:`LoadedImage`'s, or a document's) is written where the format can hold each part:
    EXIF (with orientation 1, without a thumbnail), the ICC profile, DPI (JPEG, PNG, TIFF, BMP)
    and XMP (JPEG, PNG, TIFF, WebP). ``quality`` (1..100) applies to JPEG and lossy WebP (a
    lossless WebP's picture, ``metadata.lossless``, is written lossless again as WebP); JPEG at
    quality >= 90 uses 4:4:4 chroma (no subsampling). With ``keep_jpeg_compression``, a JPEG
    written from a JPEG keeps the original's quantisation and subsampling instead of ``quality``
    (:meth:`~engine.metadata.PhotoMetadata.jpeg_tables_for`).

    ``source`` (the JPEG file the picture came from, as :attr:`LoadedImage.source` describes it)
    with ``changed`` (bool HxW, True where ``rgb`` differs from that file's pixels): a JPEG
    written from it with its own compression re-encodes only the blocks that hold a changed
    pixel and copies every other block's coefficients (:mod:`engine.jpeg_blocks`). Where that
    cannot be done (progressive or arithmetic coding, CMYK or greyscale, EXIF-rotated, changed on
    disk, a chosen quality...) the picture is re-encoded whole and one logged warning says why.

    ``own_process``: a caller that writes in a worker thread while its window must repaint (the
    app) has an encoder that holds Python's global lock for the whole write (Pillow's libtiff
    one: LZW or Deflate TIFF) run in a child process of its own: in the thread it froze the
    window for the whole encode (0.7 s at 24 MP, 2.9 s at 96 MP); the child costs about half a
    second to start. Its errors come back as they are (an OSError for a full disk).
    """
    path = Path(path)
    rgb = _check_rgb(rgb)
    changed = None if source is None else check_changed(changed, rgb.shape)
    if alpha is not None:
        alpha = _check_alpha(alpha, rgb.shape)
    if not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ValueError(f"quality must be an integer from 1 to 100, got {quality!r}")
    fmt = output_format(path, format)
    if fmt not in Image.SAVE:
        Image.init()
        if fmt not in Image.SAVE:
            raise ValueError(f"Pillow cannot write the image format {fmt!r} ({path})")
    if metadata is None:
        metadata = PhotoMetadata()

    if alpha is not None and fmt not in ALPHA_FORMATS:
        if (alpha < 255).any():
            log.warning("%s: a %s file holds no transparency; the picture is flattened onto white", path, fmt)
        rgb = _flatten_on_white(rgb, alpha)
    # a greyscale photo stays greyscale while its pixels are (the engine fills it in grey)
    grey = written_grey(fmt, metadata.is_greyscale) and is_grey(rgb)
    params = metadata_params(metadata, fmt, grey=grey, output=path)
    colour = metadata.is_greyscale and not grey  # a grey file's picture that took colour
    tables = metadata.jpeg_tables_for(fmt, keep_jpeg_compression, colour=colour)
    params.update(
        _compression_params(
            fmt, quality, tables, sub_ifds=exif_sub_ifds(params.get("exif")), metadata=metadata
        )
    )
    jpeg_from_jpeg = fmt == "JPEG" and is_jpeg(metadata.format)
    with atomic_path(path) as tmp:
        kept = (
            source is not None
            and changed is not None
            and jpeg_from_jpeg
            and save_changed_blocks(
                tmp, rgb, changed, source, params, tables=tables, alpha=alpha, quality=quality, output=path
            )
        )
        if not kept:
            with_alpha = alpha is not None and fmt in ALPHA_FORMATS
            pixels = rgb[:, :, :1] if grey else rgb  # a grey picture's one channel
            if with_alpha:
                pixels = np.dstack([pixels, alpha])
            pixels = pixels[:, :, 0] if pixels.shape[2] == 1 else pixels
            mode = picture_mode(grey=grey, alpha=with_alpha)
            if own_process and fmt == "TIFF" and params.get("compression"):
                _write_in_child(pixels, mode, tmp, fmt, params, shown=path)
            else:
                _write_picture(pixels, mode, str(tmp), fmt, params)
    return path


def _write_picture(pixels: np.ndarray, mode: str, path: str, fmt: str, params: dict[str, Any]) -> None:
    """Pillow's write of ``pixels`` (here, or in :func:`_write_in_child`'s process)."""
    Image.fromarray(pixels, mode).save(path, format=fmt, **params)


CHILD_WRITER_FLAG = "--engine-write-picture"  # a frozen app's entry point runs _child_writes for it
_CHILD_DONE = b"\0engine-child-wrote\0"  # what the child's stdout ends with after the write
_CHILD_FAILED = b"\0engine-child-failed\0"  # ... before its pickled exception


def _child_command(home: str) -> list[str] | None:
    """How to start a Python that writes a picture: this interpreter with ``-P`` (no script
    folder or working directory on its path: an ``engine`` folder there would be imported
    instead) importing this very engine (``home``: it must be the one imported), or a frozen
    app with :data:`CHILD_WRITER_FLAG`; None where neither is possible."""
    import sys

    if not sys.executable:
        return None
    if getattr(sys, "frozen", False):
        return [sys.executable, CHILD_WRITER_FLAG]
    code = (
        "import sys; from pathlib import Path; home = Path(sys.argv[1]);"
        "sys.path.append(str(home)); import engine;"
        "assert Path(engine.__file__).resolve().parent.parent == home, 'another engine: ' + engine.__file__;"
        "from engine.imageio import _child_writes; _child_writes()"
    )
    return [sys.executable, "-P", "-c", code, home]


def _write_in_child(
    pixels: np.ndarray, mode: str, path: Path, fmt: str, params: dict[str, Any], *, shown: Path | None = None
) -> None:
    """:func:`_write_picture` in a child Python (not multiprocessing's spawn, which re-runs the
    parent's main script): a small pickled header, then the pixels' bytes as they are, through
    its stdin (no pickled copy of the picture). The write's own errors come back as they are;
    where no child can do it (one that cannot start or import this engine, one that died or
    hung past a generous time limit) the picture is written here after all, with a warning
    logged: late is better than not saved."""
    import pickle
    import struct
    import subprocess

    pixels = np.ascontiguousarray(pixels)
    command = _child_command(str(Path(__file__).resolve().parent.parent))
    why, timed_out = "no interpreter to start", False
    if command is not None:
        header = pickle.dumps((pixels.shape, pixels.dtype.str, mode, str(path), fmt, params))
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)  # Windows: no console flashing up
        limit = 60 + pixels.nbytes / 2e6  # 60 s and 1 s for each 2 MB: a stuck child ends
        try:
            with subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                creationflags=flags,
            ) as proc:
                try:
                    assert proc.stdin is not None
                    proc.stdin.write(struct.pack("<Q", len(header)) + header)
                    proc.stdin.flush()
                    out, err = proc.communicate(memoryview(pixels).cast("B"), timeout=limit)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    out, err = proc.communicate()
                    why, timed_out = f"it took more than {limit:.0f} s", True
                except (BrokenPipeError, OSError):  # it ended before it read the picture
                    out, err = proc.communicate()
            if proc.returncode == 0 and out.endswith(_CHILD_DONE):
                return
            if _CHILD_FAILED in out:
                try:
                    error = pickle.loads(out.split(_CHILD_FAILED, 1)[1])
                except Exception:  # noqa: BLE001 - not one it could send back: it failed otherwise
                    error = None
                if isinstance(error, Exception):
                    raise error
            if not timed_out:
                lines = err.decode(errors="replace").strip().splitlines()
                why = lines[-1] if lines else f"exit status {proc.returncode}"
        except OSError as exc:  # it could not be started
            why = str(exc)
    log.warning("could not write %s in a process of its own (%s); writing it here", shown or path, why)
    _write_picture(pixels, mode, str(path), fmt, params)


def _child_writes() -> None:
    """The child of :func:`_write_in_child`: read the header and the pixels from stdin, write
    the picture; say it is done (or send back the pickled failure, exit status 1) on stdout."""
    import pickle
    import struct
    import sys

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    (size,) = struct.unpack("<Q", stdin.read(8))
    shape, dtype, mode, path, fmt, params = pickle.loads(stdin.read(size))
    pixels = np.empty(shape, dtype=np.dtype(dtype))
    view, got = memoryview(pixels).cast("B"), 0
    while got < len(view):
        n = stdin.readinto(view[got:])
        if not n:
            raise EOFError(f"the picture ended after {got} of {len(view)} bytes")
        got += n
    try:
        _write_picture(pixels, mode, path, fmt, params)
    except Exception as exc:  # noqa: BLE001 - every failure is the parent's to report
        stdout.write(_CHILD_FAILED + pickle.dumps(exc))
        stdout.flush()
        sys.exit(1)
    stdout.write(_CHILD_DONE)
    stdout.flush()


def _compression_params(
    fmt: str, quality: int, tables: JpegTables | None, *, sub_ifds: bool, metadata: PhotoMetadata
) -> dict[str, Any]:
    """Pillow ``save()`` keywords for the compression: a JPEG's ``tables`` or ``quality``; a
    WebP from a lossless one is lossless (``exact``: transparent pixels keep their colour); a
    TIFF LZW, or Deflate from a Deflate one, unless its EXIF has ``sub_ifds``."""
    lossless = metadata.lossless
    if fmt == "JPEG" and tables is not None:
        params: dict[str, Any] = {"qtables": [list(t) for t in tables.qtables]}
        if tables.subsampling is not None:
            params["subsampling"] = tables.subsampling
        return params
    if fmt == "JPEG":
        return {"quality": quality, "subsampling": 0 if quality >= 90 else 2}
    if fmt == "WEBP" and lossless:
        return {"lossless": True, "exact": True, "quality": 100, "method": 4}
    if fmt == "WEBP":
        return {"quality": quality, "method": 4}
    if fmt == "TIFF" and not sub_ifds:
        # LZW goes through libtiff, which writes the main directory's tags (Software, DateTime,
        # Artist, XMP...) but not EXIF sub-directories (Exif, GPS): with those the file is
        # written uncompressed by Pillow's own writer, which keeps them. (Any tag at all made a
        # scanner's LZW TIFF come back uncompressed, 1.5-4x its size.)
        return {"compression": "tiff_adobe_deflate" if metadata.tiff_deflate else "tiff_lzw"}
    if fmt == "PNG":
        return {"compress_level": 6}
    return {}


# ---------------------------------------------------------------------------------------------
# masks


def load_mask(
    path: str | os.PathLike[str],
    shape: tuple[int, int] | None = None,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Read a hole mask: bool HxW, True where the picture is brighter than 127 (white = hole).

    Strokes painted on a transparent layer are the hole where they are opaque (alpha above
    127, or above half the most opaque pixel's where none is: a faded brush), whatever their
    colour and whatever colour the transparent pixels hide: a mask whose alpha varies and whose
    opaque pixels are one colour (grey levels within ``PAINT_SPREAD`` of each other, antialiased
    edges included) covering at most half the picture. Any other mask
    (opaque, one alpha everywhere, or mostly opaque) is read by brightness. With
    ``shape=(H, W)`` a mask of another size is scaled to it (nearest-neighbour where enlarged;
    where shrunk, a pixel is hole when any mask pixel it covers is), if it has the same aspect
    ratio (within 1 %, or one pixel of rounding); otherwise :class:`MaskShapeError` names both sizes (a mask
    drawn on the stored landscape pixels of a photo displayed upright, for instance).
    """
    path = Path(path)
    im = _open_checked(path, max_pixels, "mask")
    with im:
        _decode(im, path, "mask")
        upright, _ = _orient(im, path)
        rgb, alpha, _, _ = _to_rgb_alpha(upright, None, path)
    gray = (
        rgb[:, :, 0].astype(np.uint32) * 299
        + rgb[:, :, 1].astype(np.uint32) * 587
        + rgb[:, :, 2].astype(np.uint32) * 114
        + 500
    ) // 1000
    hole = _painted(gray, alpha)
    if shape is not None:
        h, w = (int(s) for s in shape)
        if h < 1 or w < 1:
            raise ValueError(f"mask shape must be positive, got {shape}")
        if hole.shape != (h, w):
            _check_mask_aspect(path, hole.shape, (h, w))
            hole = _scaled_mask(hole, h, w)
    return np.ascontiguousarray(hole)


def _scaled_mask(hole: np.ndarray, h: int, w: int) -> np.ndarray:
    """``hole`` at ``h x w``: nearest-neighbour where it is enlarged; where it is shrunk, a pixel
    is hole when any mask pixel it covers is (nearest sampling dropped a 1 px scratch drawn on a
    mask twice the photo's size: the photo came out unchanged, 'nothing to fill')."""
    if h >= hole.shape[0] and w >= hole.shape[1]:
        picture = Image.fromarray(hole.astype(np.uint8) * 255, "L")
        return np.asarray(picture.resize((w, h), Image.Resampling.NEAREST)) > 127
    # the box mean in floating point: in 8 bits one hole pixel in a block of 23x23 or more
    # rounds to 0 (a speck on a mask 23 times the photo's size was lost)
    coverage = Image.fromarray(hole.astype(np.float32), "F").resize((w, h), Image.Resampling.BOX)
    return np.asarray(coverage) > 0


def _painted(gray: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """The hole of a mask from its grey levels and alpha (see :func:`load_mask`)."""
    if alpha is None or alpha.min() == alpha.max():
        return gray > 127
    # more than half as opaque as the most opaque pixel: strokes of a soft or faded brush (a layer
    # at 40% opacity) were read by the brightness of what the transparent pixels hide
    opaque = alpha > min(127, int(alpha.max()) // 2)
    if gray.min() == gray.max():  # one colour everywhere, strokes in alpha only
        return opaque
    painted = gray[opaque]
    if 0 < painted.size <= opaque.size // 2 and int(painted.max()) - int(painted.min()) <= PAINT_SPREAD:
        return opaque  # strokes of one colour on a mostly transparent layer
    return gray > 127


def _check_mask_aspect(path: Path, mask_hw: tuple[int, ...], hw: tuple[int, int]) -> None:
    mh, mw = int(mask_hw[0]), int(mask_hw[1])
    h, w = hw
    # mh/mw == h/w  <=>  mh*w == mw*h; tolerate 1 % or one pixel of rounding in either picture
    # (one pixel of mask height changes mh*w by w, and so on).
    diff = abs(mh * w - mw * h)
    if diff <= max(0.01 * max(mh * w, mw * h), max(h, w, mh, mw)):
        return
    raise MaskShapeError(
        f"{path}: the mask is {mw}x{mh} pixels (width x height) but the photo is {w}x{h}; their "
        f"aspect ratios differ ({mw / mh:.3f} vs {w / h:.3f}), so scaling the mask would move "
        "and distort the hole. Draw the mask on the photo as it is displayed (upright), or at "
        "its size."
    )


def save_mask(path: str | os.PathLike[str], hole: np.ndarray) -> Path:
    """Write a hole mask (bool HxW, True = hole) as a grayscale PNG, white = hole, atomically."""
    path = Path(path)
    if not isinstance(hole, np.ndarray):
        raise ValueError(f"mask must be a numpy array, got {type(hole).__name__}")
    if hole.dtype != np.bool_:
        raise ValueError(f"mask must be a bool array (True = hole), got dtype {hole.dtype}")
    if hole.ndim != 2 or hole.shape[0] < 1 or hole.shape[1] < 1:
        raise ValueError(f"mask must have shape HxW, got {hole.shape}")
    if path.suffix.lower() != ".png":
        raise ValueError(f"masks are saved as PNG; use a .png file name, not {path.name!r}")
    im = Image.fromarray(np.ascontiguousarray(hole).astype(np.uint8) * 255, "L")
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG")
    return path
