"""IPTC-IIM records (caption, keywords, byline, copyright, location...: what news agencies,
photo libraries and older catalogues write) read from a JPEG or TIFF and written back to one.

A JPEG holds them in an APP13 "Photoshop 3.0" segment, as the IPTC-NAA resource (0x0404) among
Photoshop's image resources; a TIFF in its IPTC tag (33723). Only that resource is kept: the
segment's other resources include Photoshop's thumbnail of the picture (0x0409, 0x040C), which
would still show what was retouched away.
"""

from __future__ import annotations

import struct
from typing import Any

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
    records = _resource(data, _IPTC_RESOURCE)
    return records if records and records[0] == 0x1C else None


def iptc_from_tiff(value: Any) -> bytes | None:
    """The IPTC records of a TIFF's tag 33723 (bytes, or the LONG numbers some writers type it
    as), None when absent or not IPTC."""
    if isinstance(value, (tuple, list)) and all(isinstance(v, int) for v in value):
        value = b"".join(struct.pack(">I", v & 0xFFFFFFFF) for v in value)
    if not isinstance(value, (bytes, bytearray)):
        return None
    records = bytes(value).rstrip(b"\x00")
    return records if records and records[0] == 0x1C else None


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
