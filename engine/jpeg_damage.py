"""Damaged JPEG data, which Pillow decodes without a word.

libjpeg recovers from corrupt compressed data (a run of bytes lost, zeroed or overwritten inside a
scan): it decodes what it can, leaves grey or garbled blocks from there on, and only prints a
warning on the process's stderr, which Pillow neither raises nor returns. A photo read so would be
retouched and saved with the damage baked in, and nobody told.

:func:`jpeg_damage` decodes the compressed picture a second time with libjpeg-turbo (through
simplejpeg, whose strict mode turns libjpeg's first warning into an error) at 1/8 scale: the
entropy decoding, where the damage shows, is done in full, the inverse DCT only for each block's
mean (about 0.1 s for a 24-megapixel photo here). Strict mode stops at the first warning of any
kind, so the header's application and comment segments (JFIF, EXIF, ICC, Adobe, ...) and any
padding between the header's segments are left out of that decode: their warnings (an unknown JFIF
version, a thumbnail of the wrong size, a bad ICC marker) are not about the pixels and would hide a
damaged scan behind them. Of what libjpeg still says, its warnings about a scan's data are damage;
anything else it refuses (Pillow having decoded it) is left alone.

It finds what a lost, zeroed or overwritten run of bytes does (on a 1024x768 photo, 39 of 40
zeroed 4 KiB sectors, 38 of 40 lost 512-byte runs, 37 of 40 runs of 64 random bytes), but not
most single flipped bits (12 of 40): the Huffman codes resynchronise after a few blocks and the
data reads as valid, so only a look at the picture tells.

:func:`header_segments` is the one walk over a JPEG header's marker segments: lenient, as libjpeg
reads them, for the picture decoded here; strict for :mod:`engine.jpeg_blocks`, which rewrites the
header and must find it laid out exactly.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

try:  # imported here, not on the loading thread's helper (a fork mid-import would hold its lock)
    import simplejpeg
except ImportError:  # pragma: no cover - a declared dependency
    simplejpeg = None

__all__ = ["header_segments", "jpeg_damage"]

_APP_OR_COMMENT = frozenset({*range(0xE0, 0xF0), 0xFE})
_SOS, _EOI = 0xDA, 0xD9
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RSTn: markers without a length
_LENIENT_SKIPS = _STANDALONE | {0x00, 0xD8}  # and a stuffed zero (0xFF 0x00), a second SOI
# libjpeg's warnings about a scan's data (JWRN_EXTRANEOUS_DATA, _HIT_MARKER, _HUFF_BAD_CODE,
# _ARITH_BAD_CODE, _MUST_RESYNC: "Corrupt JPEG data: ..."; _JPEG_EOF; _BOGUS_PROGRESSION)
_DAMAGE = ("Corrupt JPEG data", "Premature end of JPEG file", "Inconsistent progression sequence")
_DECODE_AS = {"Gray": "GRAY", "CMYK": "CMYK", "YCCK": "CMYK"}  # simplejpeg's names; else RGB


def header_segments(data: bytes, *, lenient: bool = False) -> Iterator[tuple[int, int, int]]:
    """The marker segments of a JPEG's header after SOI (``data``: a JPEG file's bytes), up to
    and including the first SOS, as (marker, start, end): ``data[start:end]`` is the whole
    segment, marker and length field included, ``end`` where its length field says it ends.
    Fill bytes (0xFF 0xFF...) and the markers without a length (TEM, RSTn) are passed over.

    Strict (the default): the data must be laid out so, else ValueError ("it does not start like
    a JPEG file": no SOI; "its header is damaged or truncated": bytes where a marker should be,
    a length under 2 or past the data's end, the data ending first). EOI ends the walk as SOS
    does; it is read as a segment too (the two bytes after it as its length).

    ``lenient``: much as libjpeg reads a header. Bytes between segments that belong to none are
    skipped (to the next 0xFF), and so are a stuffed zero (0xFF 0x00) and a second SOI; lengths
    are not checked (``end`` may lie past the data's end: nothing follows then). The walk stops
    quietly, without an SOS, where the data does not start with SOI, at EOI, or where no marker
    and length are left."""
    if data[:2] != b"\xff\xd8":
        if lenient:
            return
        raise ValueError("it does not start like a JPEG file")
    pos = 2
    while True:
        if lenient:
            pos = data.find(b"\xff", pos)
            if pos < 0:
                return
        while pos + 1 < len(data) and data[pos] == 0xFF and data[pos + 1] == 0xFF:
            pos += 1  # fill bytes
        if pos + 4 > len(data) or data[pos] != 0xFF:
            if lenient:
                return
            raise ValueError("its header is damaged or truncated")
        marker = data[pos + 1]
        if marker in (_LENIENT_SKIPS if lenient else _STANDALONE):
            pos += 2
            continue
        if lenient and marker == _EOI:
            return
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        end = pos + 2 + length
        if not lenient and (length < 2 or end > len(data)):
            raise ValueError("its header is damaged or truncated")
        yield marker, pos, end
        if marker in (_SOS, _EOI):
            return
        pos = end


def picture_data(data: bytes) -> bytes | None:
    """``data`` (a JPEG file's bytes) with only what its picture is decoded from: SOI, the
    header's tables and frame, and everything from the first scan's header on; bytes between
    the header's segments that belong to none are skipped, as libjpeg skips them (with a
    warning): :func:`header_segments`, lenient. None when no scan header is found (Pillow
    decoded it anyway: no claim is made)."""
    kept = [b"\xff\xd8"]
    for marker, start, end in header_segments(data, lenient=True):
        if marker == _SOS:
            return b"".join(kept) + data[start:]
        if marker not in _APP_OR_COMMENT:
            kept.append(data[start:end])
    return None


def jpeg_damage(data: bytes) -> str | None:
    """libjpeg's message when the compressed picture in ``data`` (a JPEG file's bytes) is damaged,
    else None (also when simplejpeg is not installed, or libjpeg-turbo refuses the data for
    another reason: the caller's decoder has already read it; a CMYK JPEG with subsampled
    channels is one, whose header TurboJPEG cannot read, so its damage goes unreported)."""
    if simplejpeg is None:  # a declared dependency; without it, loading still works
        return None
    picture = picture_data(data)
    if picture is None:
        return None
    try:
        _, _, colour, _ = simplejpeg.decode_jpeg_header(picture, strict=False)
        simplejpeg.decode_jpeg(
            picture,
            colorspace=_DECODE_AS.get(colour, "RGB"),
            fastdct=True,
            fastupsample=True,
            min_height=1,
            min_width=1,
            strict=True,
        )
    except ValueError as exc:
        message = str(exc).strip()
        if message.startswith(_DAMAGE):
            return message
    return None
