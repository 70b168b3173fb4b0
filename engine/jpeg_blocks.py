"""Writing a JPEG back with only its changed blocks re-encoded.

A baseline JPEG stores its picture as a grid of MCUs (minimum coded units: 16x16 pixels at
4:2:0, 16x8 at 4:2:2, 8x8 at 4:4:4), each as DCT coefficients quantised with the file's tables.
When a photo read from a JPEG is written back as JPEG with that file's own tables and
subsampling, :func:`write_changed_blocks` re-encodes only the MCUs that hold a changed pixel and
copies the coefficients of every other MCU from the source file unchanged, so the rest of the
photo decodes exactly as before (no generation loss, however often it is saved). Only in the
MCUs next to a re-encoded one can a pixel differ, by a few levels, where the decoder's chroma
upsampling blends in the neighbour's new colour.

The changed MCUs are encoded by Pillow with exactly the parameters of a plain save (the same
tables, subsampling and metadata), from MCU-aligned crops of the picture (one per run of MCU
rows with changes), so they hold the coefficients a plain save would give them; the output's
metadata segments (JFIF, EXIF, ICC, XMP) are those of that encoding, i.e. what a plain save
writes. :mod:`jpeglib` (its libjpeg-turbo build) reads and writes the coefficients.

:func:`save_changed_blocks` is what :func:`engine.imageio.save_image` calls: it writes the file
so, or logs one warning that says why it cannot (a chosen quality; progressive or arithmetic
coding, CMYK or greyscale, a picture turned upright from its EXIF orientation, a file changed on
disk since it was read: :func:`block_write_problem`, from the header; or what
:func:`write_changed_blocks` finds only while reading the coefficients, as a
:class:`BlockWriteError`), and the caller then writes the picture the plain way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .jpeg_damage import header_segments
from .metadata import JpegTables

__all__ = [
    "BlockWriteError",
    "SourceFile",
    "block_write_problem",
    "changed_pixels",
    "check_changed",
    "save_changed_blocks",
    "write_changed_blocks",
]

log = logging.getLogger(__name__)

_SOS = 0xDA
_SEQUENTIAL_HUFFMAN = (0xC0, 0xC1)  # SOF0 baseline, SOF1 extended sequential
_SOF_NAMES = {0xC2: "progressive", 0xC3: "lossless"}
_ARITHMETIC = frozenset({0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_OTHER_SOF = frozenset({0xC5, 0xC6, 0xC7})  # hierarchical (differential) Huffman
_TURBO = "turbo210"  # the libjpeg build of jpeglib used (packaging/retoucher.spec bundles it)


class BlockWriteError(ValueError):
    """The source JPEG turned out not to allow writing back only its changed blocks."""


@dataclass(frozen=True)
class SourceFile:
    """The file a picture was read from, as it was when read: enough to tell whether it has
    changed since (size and modification time) and whether its stored pixel grid is the
    picture's (``orientation`` 1: no EXIF rotation was applied on load)."""

    path: Path
    size: int
    mtime_ns: int
    orientation: int = 1

    @classmethod
    def of(cls, path: str | os.PathLike[str], orientation: int = 1) -> SourceFile:
        st = os.stat(path)
        return cls(Path(path), st.st_size, st.st_mtime_ns, orientation)

    def changed_on_disk(self) -> bool:
        try:
            st = os.stat(self.path)
        except OSError:
            return True
        return (st.st_size, st.st_mtime_ns) != (self.size, self.mtime_ns)


@dataclass(frozen=True)
class _Frame:
    """What a JPEG's header says about its coding: the SOF marker, sample precision, size,
    and per component (id, horizontal, vertical sampling factor)."""

    sof: int
    precision: int
    height: int
    width: int
    components: tuple[tuple[int, int, int], ...]

    @property
    def mcu(self) -> tuple[int, int]:
        """(height, width) of an MCU in pixels."""
        return 8 * max(c[2] for c in self.components), 8 * max(c[1] for c in self.components)


def _segments(data: bytes) -> list[tuple[int, bytes]]:
    """The marker segments of a JPEG after SOI up to and including the first SOS header (or
    EOI), as (marker, whole segment bytes); ValueError when the data is not laid out so
    (:func:`engine.jpeg_damage.header_segments`, strict)."""
    return [(marker, data[start:end]) for marker, start, end in header_segments(data)]


def _frame(segments: list[tuple[int, bytes]]) -> _Frame:
    for marker, seg in segments:
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            precision, height, width, n = struct.unpack(">BHHB", seg[4:10])
            comps = tuple((seg[10 + 3 * i], seg[11 + 3 * i] >> 4, seg[11 + 3 * i] & 15) for i in range(n))
            return _Frame(marker, precision, height, width, comps)
    raise ValueError("it has no frame header (SOF)")


def _huffman_tables(segments: list[tuple[int, bytes]]) -> set[tuple[int, bytes]]:
    """The Huffman tables a JPEG's DHT segments define, as (class, code lengths + symbols)."""
    tables = set()
    for marker, seg in segments:
        if marker != 0xC4:
            continue
        pos = 4
        while pos + 17 <= len(seg):
            count = sum(seg[pos + 1 : pos + 17])
            tables.add((seg[pos] >> 4, seg[pos + 1 : pos + 17 + count]))
            pos += 17 + count
    return tables


def _coding_problem(frame: _Frame) -> str | None:
    if frame.sof in _SOF_NAMES:
        return f"it is a {_SOF_NAMES[frame.sof]} JPEG"
    if frame.sof in _ARITHMETIC:
        return "it uses arithmetic coding"
    if frame.sof in _OTHER_SOF or frame.sof not in _SEQUENTIAL_HUFFMAN:
        return "it is a hierarchical JPEG"
    if frame.precision != 8:
        return f"it has {frame.precision}-bit samples"
    if len(frame.components) != 3:
        kind = {1: "greyscale", 4: "CMYK"}.get(len(frame.components), f"{len(frame.components)}-component")
        return f"it is a {kind} JPEG"
    (_, hy, vy), *chroma = frame.components
    if any((h, v) != (1, 1) for _, h, v in chroma) or (hy, vy) not in ((1, 1), (2, 1), (2, 2)):
        return "its chroma subsampling is unusual"
    return None


def block_write_problem(source: SourceFile, shape: tuple[int, ...]) -> str | None:
    """Why the picture (``shape`` H, W) cannot be written back over ``source``'s blocks, or
    None (from the file's header: nothing is decoded)."""
    if source.orientation != 1:
        return (
            f"its EXIF orientation ({source.orientation}) rotates the stored picture, whose "
            "blocks do not line up with the upright one (the saved file is upright, so later "
            "saves keep its blocks)"
        )
    if source.changed_on_disk():
        return "the file changed on disk (or went away) since it was read"
    try:
        with open(source.path, "rb") as f:
            head = f.read()
        segments = _segments(head)
        frame = _frame(segments)
    except (OSError, ValueError) as exc:
        return f"its header cannot be read ({exc})"
    problem = _coding_problem(frame)
    if problem is None and (frame.height, frame.width) != tuple(shape[:2]):
        problem = f"it is {frame.width}x{frame.height}, the picture {shape[1]}x{shape[0]}"
    return problem


def _refusal(
    source: SourceFile, shape: tuple[int, ...], *, tables: JpegTables | None, alpha: bool, quality: int
) -> str | None:
    """Why a JPEG written from ``source`` with the compression ``tables`` (None: at ``quality``)
    cannot keep the source's unchanged blocks, or None when it can."""
    if tables is None:  # a file that could not keep its blocks anyway (CMYK...) says that first
        problem = block_write_problem(source, shape)
        return problem or f"it is written at the chosen quality {quality}, not with its own tables"
    if alpha:
        return "its transparency is flattened onto white"
    problem = block_write_problem(source, shape)
    if problem is None and tables.subsampling is None:
        problem = "its chroma subsampling cannot be written again"
    return problem


def check_changed(changed: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``changed`` if it is a bool mask of the picture's ``shape`` (H, W...); else ValueError."""
    if not isinstance(changed, np.ndarray) or changed.dtype != np.bool_ or changed.shape != shape[:2]:
        raise ValueError(
            f"changed must be a bool array of shape {shape[:2]} (where the picture differs from "
            f"its source file), got {getattr(changed, 'dtype', type(changed).__name__)} "
            f"{getattr(changed, 'shape', '')}"
        )
    return changed


def save_changed_blocks(
    out: Path,
    rgb: np.ndarray,
    changed: np.ndarray,
    source: SourceFile,
    params: dict[str, Any],
    *,
    tables: JpegTables | None,
    alpha: np.ndarray | None,
    quality: int,
    output: Path,
) -> bool:
    """Write ``out`` (the temporary file of a save to ``output``) from a picture read from the
    JPEG ``source`` as :func:`write_changed_blocks` does, and return True; or, when that cannot
    be done (``tables`` None: written at the chosen ``quality``; an ``alpha`` to flatten; a
    problem of the file), log one warning naming ``output``, the source and why, and return
    False: the caller then writes the picture the plain way."""
    refusal = _refusal(source, rgb.shape, tables=tables, alpha=alpha is not None, quality=quality)
    if refusal is None:
        try:
            write_changed_blocks(out, rgb, changed, source, params)
            return True
        except BlockWriteError as exc:
            refusal = str(exc)
    log.warning(
        "%s: the whole picture is re-encoded (small JPEG losses everywhere), not only the blocks "
        "that changed, because %s (source %s)",
        output,
        refusal,
        source.path,
    )
    return False


def _changed_mcus(changed: np.ndarray, mcu: tuple[int, int]) -> np.ndarray:
    """bool (MCU rows, MCU columns): True where an MCU holds a changed pixel."""
    mh, mw = mcu
    h, w = changed.shape
    mcus = np.zeros((-(-h // mh), -(-w // mw)), dtype=bool)
    rows = np.flatnonzero(changed.any(axis=1))
    if not len(rows):
        return mcus
    r0, r1 = rows[0] // mh, rows[-1] // mh + 1  # only the band of MCU rows with changes
    band = changed[r0 * mh : r1 * mh]
    padded = np.zeros(((r1 - r0) * mh, mcus.shape[1] * mw), dtype=bool)
    padded[: band.shape[0], :w] = band
    mcus[r0:r1] = padded.reshape(r1 - r0, mh, mcus.shape[1], mw).any(axis=(1, 3))
    return mcus


def changed_pixels(new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """bool HxW: where two uint8 HxWx3 pictures differ (what :func:`write_changed_blocks` takes
    as ``changed``); several times faster than ``(new != old).any(axis=2)``."""
    if new.shape != old.shape:
        raise ValueError(f"pictures of different shapes: {new.shape} and {old.shape}")
    h, w = new.shape[:2]
    out = np.zeros((h, w), dtype=bool)
    differ = new != old
    rows = np.flatnonzero(differ.reshape(h, -1).any(axis=1))
    if len(rows):
        band = differ[rows[0] : rows[-1] + 1]
        out[rows[0] : rows[-1] + 1] = band[:, :, 0] | band[:, :, 1] | band[:, :, 2]
    return out


def _encode_crop(rgb: np.ndarray, box: tuple[int, int, int, int], params: dict[str, Any], path: Path) -> Path:
    y0, x0, y1, x1 = box
    Image.fromarray(np.ascontiguousarray(rgb[y0:y1, x0:x1]), "RGB").save(path, format="JPEG", **params)
    return path


def _merge(src: Any, new: Any, mcus: np.ndarray, origin: tuple[int, int], frame: _Frame) -> None:
    """Put ``new``'s coefficients (a crop starting at MCU ``origin``) into ``src``'s arrays in
    the changed ``mcus`` (all inside the crop)."""
    r0, c0 = origin
    for comp, crop, (_, h, v) in zip((src.Y, src.Cb, src.Cr), (new.Y, new.Cb, new.Cr), frame.components):
        block_mask = np.repeat(np.repeat(mcus, v, axis=0), h, axis=1)[: comp.shape[0], : comp.shape[1]]
        by, bx = r0 * v, c0 * h
        ch, cw = crop.shape[:2]
        window = block_mask[by : by + ch, bx : bx + cw]
        if window.shape != (ch, cw) or block_mask.sum() != window.sum():
            raise BlockWriteError("the re-encoded blocks do not fit the file's block grid")
        comp[by : by + ch, bx : bx + cw][window] = crop[window]


def _splice(written: bytes, header_from: list[tuple[int, bytes]], ids: tuple[int, ...]) -> bytes:
    """``written`` (jpeglib's file) with its APPn/COM segments replaced by ``header_from``'s
    (Pillow's, as a plain save writes them) and the source's component ids in SOF and SOS."""
    walk = list(header_segments(written))
    segments = [(marker, written[start:end]) for marker, start, end in walk]
    scan_start = walk[-1][2]  # where the scan header ends (fill bytes or RSTn before it counted)
    meta = [seg for m, seg in header_from if 0xE0 <= m <= 0xEF or m == 0xFE]
    new_id = {c[0]: ids[i] for i, c in enumerate(_frame(segments).components)}
    rest = []
    for marker, seg in segments:
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:
            continue
        if 0xC0 <= marker <= 0xC3:
            patched = bytearray(seg)
            for i in range(patched[9]):
                patched[10 + 3 * i] = new_id[patched[10 + 3 * i]]
            seg = bytes(patched)
        elif marker == _SOS:
            patched = bytearray(seg)
            for i in range(patched[4]):
                patched[5 + 2 * i] = new_id[patched[5 + 2 * i]]
            seg = bytes(patched)
        rest.append(seg)
    return b"\xff\xd8" + b"".join(meta) + b"".join(rest) + written[scan_start:]


def write_changed_blocks(
    out: Path,
    rgb: np.ndarray,
    changed: np.ndarray,
    source: SourceFile,
    params: dict[str, Any],
) -> None:
    """Write ``rgb`` to ``out`` as ``source`` with the MCUs that hold a ``changed`` pixel
    (bool HxW) re-encoded with Pillow's ``save()`` keywords ``params`` (those of a plain save:
    the source's quantisation tables and subsampling, and the metadata), every other MCU's
    coefficients copied from ``source``. Call :func:`block_write_problem` first; raises
    :class:`BlockWriteError` when the source turns out not to allow it (tables or sampling that
    ``params`` do not reproduce, data jpeglib cannot read)."""
    import jpeglib

    data = source.path.read_bytes()
    if len(data) != source.size:
        raise BlockWriteError("the file changed on disk since it was read")
    src_segments = _segments(data)
    frame = _frame(src_segments)
    mcus = _changed_mcus(changed, frame.mcu)
    with tempfile.TemporaryDirectory(prefix="retoucher-blocks-") as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "source.jpg").write_bytes(data)
        src = _read_coefficients(tmp / "source.jpg")
        if src.jpeg_color_space != jpeglib.JCS_YCbCr:
            raise BlockWriteError(f"its colours are stored as {src.jpeg_color_space.name}, not YCbCr")
        header: list[tuple[int, bytes]] = []
        for n, (r0, c0, r1, c1) in enumerate(_bands(mcus)):
            mh, mw = frame.mcu
            box = (r0 * mh, c0 * mw, min(rgb.shape[0], r1 * mh), min(rgb.shape[1], c1 * mw))
            crop_path = _encode_crop(rgb, box, params, tmp / f"band{n}.jpg")
            new = _read_coefficients(crop_path)
            _check_same_coding(src, new)
            in_band = np.zeros_like(mcus)
            in_band[r0:r1, c0:c1] = mcus[r0:r1, c0:c1]
            _merge(src, new, in_band, (r0, c0), frame)
            header = header or _segments(crop_path.read_bytes())
        # Pillow writes the standard Huffman tables; a file with its own (optimised) ones
        # gets optimised ones again, so that its size stays what it was.
        optimise = not _huffman_tables(src_segments) <= _huffman_tables(header)
        written = _write_coefficients(src, tmp / "merged.jpg", optimise)
    out.write_bytes(_splice(written, header, tuple(c[0] for c in frame.components)))


def _bands(mcus: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Boxes (first row, first column, end row, end column, in MCUs) that cover the changed
    ``mcus``: one per run of MCU rows with changes, as wide as the changes in it (so that two
    far-apart retouches do not re-encode the whole picture between them). Nothing changed: the
    first MCU, encoded only for the metadata segments."""
    rows = np.flatnonzero(mcus.any(axis=1))
    if not len(rows):
        return [(0, 0, 1, 1)]
    bands = []
    for run in np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1):
        cols = np.flatnonzero(mcus[run[0] : run[-1] + 1].any(axis=0))
        bands.append((int(run[0]), int(cols[0]), int(run[-1]) + 1, int(cols[-1]) + 1))
    return bands


def _read_coefficients(path: Path) -> Any:
    import jpeglib

    try:
        with _libjpeg():
            jpeg = jpeglib.read_dct(str(path))
            jpeg.load()
    except Exception as exc:
        raise BlockWriteError(f"its coefficients cannot be read ({exc})") from exc
    return jpeg


def _check_same_coding(src: Any, new: Any) -> None:
    """The re-encoded blocks must use the source's tables and sampling: else BlockWriteError."""
    if not all(np.array_equal(src.get_component_qt(i), new.get_component_qt(i)) for i in range(3)):
        raise BlockWriteError("its quantisation tables are not the ones it is saved with")
    if not np.array_equal(np.asarray(src.samp_factor), np.asarray(new.samp_factor)):
        raise BlockWriteError("its chroma subsampling is not the one it is saved with")


def _libjpeg() -> contextlib.AbstractContextManager[Any]:
    """jpeglib switched to its libjpeg-turbo build (a quarter faster than its default, libjpeg
    6b; the coefficients are the same) while in the block, when it has one."""
    import jpeglib

    if _TURBO in jpeglib.version.versions():
        return jpeglib.version(_TURBO)
    return contextlib.nullcontext()


def _write_coefficients(src: Any, path: Path, optimise: bool) -> bytes:
    """``src``'s coefficients as a baseline JPEG file (its APPn segments are jpeglib's)."""
    import jpeglib

    jpeg = jpeglib.DCTJPEG(
        path=None,
        content=None,
        height=src.height,
        width=src.width,
        block_dims=src.block_dims,
        samp_factor=src.samp_factor,
        markers=None,
        huffmans=None,
        jpeg_color_space=src.jpeg_color_space,
        progressive_mode=False,
        num_scans=1,
        Y=src.Y,
        Cb=src.Cb,
        Cr=src.Cr,
        K=None,
        qt=np.asarray(src.qt),
        quant_tbl_no=np.asarray(src.quant_tbl_no),
    )
    try:
        with _libjpeg():
            jpeg.write_dct(str(path), flags=["+OPTIMIZE_CODING" if optimise else "-OPTIMIZE_CODING"])
        return path.read_bytes()
    except Exception as exc:
        raise BlockWriteError(f"its coefficients cannot be written ({exc})") from exc
