"""An EXIF block re-written as it was: its main directory (IFD0) with the Exif, GPS and
Interoperability sub-directories, each entry's type, count and bytes unchanged, the orientation
set to 1 and the thumbnail directory (IFD1) left out.

Pillow's :class:`PIL.Image.Exif` reads text tags as Latin-1 and writes them as ASCII with
``"replace"``: a copyright "© 2024 Jörg Müller" (UTF-8, as Lightroom and phones write it) came
back as "?? 2024 J??rg M??ller", and UNDEFINED tags (UserComment, ComponentsConfiguration) came
back as BYTE. Here the entries are copied as bytes; only their offsets change.

Entries that point at data outside the block's directories (the strip, tile and thumbnail
offsets, SubIFDs) are left out: what they point at is not copied. An entry whose value lies past
the block's end is left out as Pillow leaves it out; a block whose header or main directory
cannot be read raises ValueError.
"""

from __future__ import annotations

import struct

__all__ = ["EXIF_PREFIX", "rewrite_exif"]

EXIF_PREFIX = b"Exif\x00\x00"
_ORIENTATION = 0x0112
_EXIF_IFD, _GPS_IFD, _INTEROP_IFD = 0x8769, 0x8825, 0xA005
_SUB_IFDS = {None: (_EXIF_IFD, _GPS_IFD), _EXIF_IFD: (_INTEROP_IFD,)}
# StripOffsets, StripByteCounts, TileOffsets, TileByteCounts, SubIFDs, JPEGInterchangeFormat(Length)
_POINTS_OUTSIDE = frozenset({0x0111, 0x0117, 0x0144, 0x0145, 0x014A, 0x0201, 0x0202})
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_SHORT = 3
_MAX_ENTRIES = 4096  # a directory claiming more is not EXIF

# one directory: (tag, type, count, value bytes), a sub-directory's value being its entries
_Entry = tuple[int, int, int, "bytes | list"]


def rewrite_exif(raw: bytes, *, upright: bool = False, drop: frozenset[int] = frozenset()) -> bytes:
    """``raw`` (a TIFF-structured EXIF block, with or without the ``Exif\\0\\0`` prefix) re-written
    with the prefix: IFD0 and its Exif, GPS and Interoperability directories, without IFD1; an
    orientation entry set to 1 (added when ``upright``: the pixels were turned); the tags in
    ``drop`` left out of the Exif directory (e.g. the maker note, for a block too large)."""
    data = bytes(raw[len(EXIF_PREFIX) :] if raw.startswith(EXIF_PREFIX) else raw)
    if len(data) < 8:
        raise ValueError(f"not an EXIF block ({len(data)} bytes)")
    if data[:4] == b"II*\x00":
        order = "<"
    elif data[:4] == b"MM\x00*":
        order = ">"
    else:
        raise ValueError("not an EXIF block (no TIFF header)")
    (first,) = struct.unpack(order + "I", data[4:8])
    entries = _read_directory(data, first, order, None, drop, seen=set(), budget=[len(data)])
    if entries is None:
        raise ValueError(f"its main directory at offset {first} lies outside the block ({len(data)} bytes)")
    orientation = struct.pack(order + "H", 1) + b"\x00\x00"
    entries = [e for e in entries if e[0] != _ORIENTATION] + (
        [(_ORIENTATION, _SHORT, 1, orientation)]
        if upright or any(e[0] == _ORIENTATION for e in entries)
        else []
    )
    header = data[:4] + struct.pack(order + "I", 8)
    return EXIF_PREFIX + header + _write_directory(sorted(entries, key=lambda e: e[0]), 8, order)


def _read_directory(
    data: bytes,
    offset: int,
    order: str,
    parent: int | None,
    drop: frozenset[int],
    seen: set[int],
    budget: list[int],
) -> list[_Entry] | None:
    """The entries of the directory at ``offset`` (None when it lies outside ``data`` or was
    read already). ``budget``: the value bytes still allowed, the block's size in all (entries
    sharing one value would each copy it: a 64 KB block made 68 MB); entries beyond it are left
    out."""
    if offset in seen or offset < 8 or offset + 2 > len(data):
        return None
    seen.add(offset)
    (count,) = struct.unpack_from(order + "H", data, offset)
    if count > _MAX_ENTRIES or offset + 2 + 12 * count > len(data):
        return None
    entries: list[_Entry] = []
    tags: set[int] = set()
    for i in range(count):
        tag, typ, n, field = struct.unpack_from(order + "HHI4s", data, offset + 2 + 12 * i)
        if tag in tags or tag in _POINTS_OUTSIDE or (parent == _EXIF_IFD and tag in drop):
            continue
        if tag in _SUB_IFDS.get(parent, ()):
            (where,) = struct.unpack(order + "I", field)
            sub = _read_directory(data, where, order, tag, drop, seen, budget)
            if sub is not None:
                entries.append((tag, typ if typ in (4, 13) else 4, 1, sub))  # LONG or IFD
                tags.add(tag)
            continue
        size = _TYPE_SIZES.get(typ, 0) * n
        if size == 0:  # an unknown type (its size unknown) or an empty entry
            continue
        if size <= 4:
            value = field[:size]
        else:
            (where,) = struct.unpack(order + "I", field)
            if where + size > len(data) or size > budget[0]:
                continue
            budget[0] -= size
            value = data[where : where + size]
        entries.append((tag, typ, n, value))
        tags.add(tag)
    return entries


def _write_directory(entries: list[_Entry], offset: int, order: str) -> bytes:
    """The directory at ``offset``: its table, then its values and sub-directories (each at an
    even offset); no next directory."""
    table = [struct.pack(order + "H", len(entries))]
    tail: list[bytes] = []
    where = offset + 2 + 12 * len(entries) + 4
    for tag, typ, n, value in entries:
        if isinstance(value, list):
            table.append(struct.pack(order + "HHII", tag, typ, 1, where))
            tail.append(_write_directory(sorted(value, key=lambda e: e[0]), where, order))
        elif len(value) <= 4:
            table.append(struct.pack(order + "HHI", tag, typ, n) + value.ljust(4, b"\x00"))
            continue
        else:
            table.append(struct.pack(order + "HHII", tag, typ, n, where))
            tail.append(value + b"\x00" * (len(value) & 1))
        where += len(tail[-1])
    return b"".join(table) + struct.pack(order + "I", 0) + b"".join(tail)
