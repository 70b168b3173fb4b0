"""IPTC-IIM records (caption, keywords, byline, copyright, location...: what news agencies,
photo libraries and older catalogues write) read from a JPEG or TIFF and written back to one.

A JPEG holds them in an APP13 "Photoshop 3.0" segment, as the IPTC-NAA resource (0x0404) among
Photoshop's image resources; a TIFF in its IPTC tag (33723). Only that resource is kept: the
segment's other resources include Photoshop's thumbnail of the picture (0x0409, 0x040C), which
would still show what was retouched away.
"""

from __future__ import annotations

import struct

__all__ = ["TIFF_IPTC", "iptc_from_jpeg", "iptc_from_tiff", "jpeg_iptc_segment"]

TIFF_IPTC = 33723
_PHOTOSHOP = b"Photoshop 3.0\x00"
_IPTC_RESOURCE = 0x0404
_SEGMENT_BYTES = 65533  # what one JPEG marker segment holds


def iptc_from_jpeg(applist: list[tuple[str, bytes]]) -> bytes | None:
    """The IPTC records of a JPEG's APP13 segments (Pillow's ``im.applist``), None when it has
    none. A resource spread over several APP13 segments (over 64 KB) is joined, as Photoshop
    writes it."""
    data = b"".join(
        body[len(_PHOTOSHOP) :] for name, body in applist if name == "APP13" and body.startswith(_PHOTOSHOP)
    )
    return _datasets(_resource(data, _IPTC_RESOURCE))


def iptc_from_tiff(raw: bytes | None) -> bytes | None:
    """The IPTC records of a TIFF's tag 33723 as the file stores them (``raw``: its bytes,
    whatever type the tag was given: Photoshop types it LONG, padded to 4 bytes), None when
    absent or not IPTC."""
    return _datasets(raw)


def _datasets(data: bytes | None) -> bytes | None:
    """The complete IPTC datasets at the start of ``data`` (0x1C, record, tag, 2-byte length,
    value; an extended length not followed), None when there are none: what follows the last
    whole one (a TIFF's padding) is left out."""
    if not data:
        return None
    at = 0
    while at + 5 <= len(data) and data[at] == 0x1C:
        (size,) = struct.unpack_from(">H", data, at + 3)
        if size & 0x8000 or at + 5 + size > len(data):
            break
        at += 5 + size
    return bytes(data[:at]) or None


def jpeg_iptc_segment(records: bytes) -> bytes | None:
    """The APP13 segment (marker included) that holds ``records``; None when they do not fit
    one segment."""
    resource = b"8BIM" + struct.pack(">H", _IPTC_RESOURCE) + b"\x00\x00" + struct.pack(">I", len(records))
    body = _PHOTOSHOP + resource + records + b"\x00" * (len(records) & 1)
    if len(body) > _SEGMENT_BYTES:
        return None
    return b"\xff\xed" + struct.pack(">H", len(body) + 2) + body


def _resource(data: bytes, wanted: int) -> bytes | None:
    """Resource ``wanted`` of Photoshop image resources ``data`` ("8BIM", id, Pascal name padded
    to even, size, data padded to even), None when absent or the list is damaged before it."""
    at = 0
    while at + 12 <= len(data) and data[at : at + 4] == b"8BIM":
        (rid,) = struct.unpack_from(">H", data, at + 4)
        name = 1 + data[at + 6]
        at += 6 + name + (name & 1)
        if at + 4 > len(data):
            return None
        (size,) = struct.unpack_from(">I", data, at)
        at += 4
        if at + size > len(data):
            return None
        if rid == wanted:
            return data[at : at + size]
        at += size + (size & 1)
    return None
