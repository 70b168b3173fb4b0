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
"""

from __future__ import annotations

import struct

__all__ = ["jpeg_damage"]

_APP_OR_COMMENT = frozenset({*range(0xE0, 0xF0), 0xFE})
_SOS, _EOI = 0xDA, 0xD9
# libjpeg's warnings about a scan's data (JWRN_EXTRANEOUS_DATA, _HIT_MARKER, _HUFF_BAD_CODE,
# _ARITH_BAD_CODE, _MUST_RESYNC: "Corrupt JPEG data: ..."; _JPEG_EOF; _BOGUS_PROGRESSION)
_DAMAGE = ("Corrupt JPEG data", "Premature end of JPEG file", "Inconsistent progression sequence")
_DECODE_AS = {"Gray": "GRAY", "CMYK": "CMYK", "YCCK": "CMYK"}  # simplejpeg's names; else RGB


def picture_data(data: bytes) -> bytes | None:
    """``data`` (a JPEG file's bytes) with only what its picture is decoded from: SOI, the
    header's tables and frame, and everything from the first scan's header on; bytes between
    the header's segments that belong to none are skipped, as libjpeg skips them (with a
    warning). None when no scan header is found (Pillow decoded it anyway: no claim is made)."""
    if data[:2] != b"\xff\xd8":
        return None
    kept, pos = [b"\xff\xd8"], 2
    while True:
        pos = data.find(b"\xff", pos)
        while 0 <= pos < len(data) - 1 and data[pos + 1] == 0xFF:
            pos += 1  # fill bytes
        if pos < 0 or pos + 4 > len(data):
            return None
        marker = data[pos + 1]
        if marker == 0x00 or 0xD0 <= marker <= 0xD8 or marker == 0x01:  # not a header segment
            pos += 2
            continue
        if marker == _EOI:
            return None
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker == _SOS:
            return b"".join(kept) + data[pos:]
        if marker not in _APP_OR_COMMENT:
            kept.append(data[pos : pos + 2 + length])
        pos += 2 + length


def jpeg_damage(data: bytes) -> str | None:
    """libjpeg's message when the compressed picture in ``data`` (a JPEG file's bytes) is damaged,
    else None (also when simplejpeg is not installed, or libjpeg-turbo refuses the data for
    another reason: the caller's decoder has already read it)."""
    try:
        import simplejpeg
    except ImportError:  # a declared dependency; without it, loading still works
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
