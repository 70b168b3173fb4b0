"""engine.exif_block: EXIF re-written entry for entry (text in any encoding, types, rationals),
without the thumbnail directory, orientation 1; and the saves that use it."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from PIL import Image

from engine.exif_block import EXIF_PREFIX, rewrite_exif
from engine.imageio import load_image, save_image
from engine.metadata import PhotoMetadata

COPYRIGHT = "© 2024 Jörg Müller".encode() + b"\x00"  # UTF-8, as Lightroom and phones write it
THUMBNAIL = b"\xff\xd8THE-UNRETOUCHED-THUMBNAIL\xff\xd9"


def _block(order: str, directories: list[list[tuple[int, int, int, bytes]]], links: dict) -> bytes:
    """A TIFF-structured block: ``directories[0]`` is IFD0; ``links`` maps (directory index, tag)
    to the index of the directory the entry points at, (0, "next") to IFD1's index."""
    sizes = [
        2 + 12 * len(d) + 4 + sum(len(v) + (len(v) & 1) for *_, v in d if len(v) > 4) for d in directories
    ]
    starts = [8 + sum(sizes[:i]) for i in range(len(directories))]
    out = (b"II*\x00" if order == "<" else b"MM\x00*") + struct.pack(order + "I", 8)
    for i, entries in enumerate(directories):
        table, tail = struct.pack(order + "H", len(entries)), b""
        after = starts[i] + 2 + 12 * len(entries) + 4
        for tag, typ, n, value in entries:
            if (i, tag) in links:
                value = struct.pack(order + "I", starts[links[i, tag]])
            if len(value) <= 4:
                table += struct.pack(order + "HHI", tag, typ, n) + value.ljust(4, b"\x00")
            else:
                table += struct.pack(order + "HHII", tag, typ, n, after + len(tail))
                tail += value + b"\x00" * (len(value) & 1)
        nxt = starts[links[i, "next"]] if (i, "next") in links else 0
        out += table + struct.pack(order + "I", nxt) + tail
    return EXIF_PREFIX + out


def _camera_exif(order: str = ">") -> bytes:
    p = lambda fmt, *v: struct.pack(order + fmt, *v)  # noqa: E731
    ifd0 = [
        (0x010F, 2, 4, b"Cam\x00"),
        (0x0112, 3, 1, p("H", 6)),  # rotated
        (0x8298, 2, len(COPYRIGHT), COPYRIGHT),
        (0x8769, 4, 1, b""),
        (0x8825, 4, 1, b""),
    ]
    exif = [
        (0x9101, 7, 4, b"\x01\x02\x03\x00"),  # ComponentsConfiguration, UNDEFINED
        (0x9286, 7, 13, b"ASCII\x00\x00\x00hello"),  # UserComment, UNDEFINED
        (0x927C, 7, 6, b"MAKER!"),
        (0xA005, 4, 1, b""),
        (0xA432, 5, 2, p("IIII", 28, 10, 56, 10)),  # LensSpecification: 28/10 stays 28/10
    ]
    interop = [(0x0001, 2, 4, b"R98\x00")]
    gps = [(0x0000, 1, 4, b"\x02\x03\x00\x00"), (0x0006, 5, 1, p("II", 1234, 10))]
    ifd1 = [(0x0103, 3, 1, p("H", 6)), (0xC4A5, 7, len(THUMBNAIL), THUMBNAIL)]  # reached from IFD1 only
    return _block(
        order,
        [ifd0, exif, interop, gps, ifd1],
        {(0, 0x8769): 1, (0, 0x8825): 3, (1, 0xA005): 2, (0, "next"): 4},
    )


def _entries(block: bytes) -> dict[str, dict[int, tuple[int, int, bytes]]]:
    """Every directory's entries as (type, count, value bytes), by a reader of its own."""
    data = block[len(EXIF_PREFIX) :]
    order = "<" if data[:2] == b"II" else ">"
    sizes = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1}
    found: dict[str, dict[int, tuple[int, int, bytes]]] = {}

    def read(offset: int, name: str) -> int:
        (n,) = struct.unpack_from(order + "H", data, offset)
        entries = {}
        for i in range(n):
            tag, typ, count, field = struct.unpack_from(order + "HHI4s", data, offset + 2 + 12 * i)
            size = sizes[typ] * count
            (at,) = struct.unpack(order + "I", field)
            entries[tag] = (typ, count, field[:size] if size <= 4 else data[at : at + size])
        found[name] = entries
        for tag, sub in ((0x8769, "exif"), (0x8825, "gps"), (0xA005, "interop")):
            if tag in entries:
                read(struct.unpack(order + "I", entries[tag][2])[0], sub)
        (nxt,) = struct.unpack_from(order + "I", data, offset + 2 + 12 * n)
        return nxt

    assert read(struct.unpack(order + "I", data[4:8])[0], "ifd0") == 0  # no IFD1
    return found


@pytest.mark.parametrize("order", ["<", ">"])
def test_rewrite_keeps_every_entry_as_it_was_but_the_orientation_and_the_thumbnail(order):
    raw = _camera_exif(order)
    before, after = _entries_with_ifd1(raw), _entries(rewrite_exif(raw))
    assert after["ifd0"][0x8298] == (2, len(COPYRIGHT), COPYRIGHT)  # UTF-8 text, byte for byte
    assert after["ifd0"][0x0112] == (3, 1, struct.pack(order + "H", 1))
    links = (0x0112, 0x8769, 0x8825, 0xA005)  # the orientation, and offsets that moved

    def kept(entries):
        return {t: v for t, v in entries.items() if t not in links}

    for name in ("ifd0", "exif", "gps", "interop"):
        assert kept(after[name]) == kept(before[name]), name  # types (UNDEFINED), rationals, maker note
    assert b"UNRETOUCHED" not in rewrite_exif(raw)
    assert rewrite_exif(rewrite_exif(raw)) == rewrite_exif(raw)
    # Pillow reads it as the same block (what the files' readers see)
    ours, pillows = Image.Exif(), Image.Exif()
    ours.load(rewrite_exif(raw))
    pillows.load(raw)
    assert kept(ours.get_ifd(0x8769)) == kept(pillows.get_ifd(0x8769))
    assert ours.get_ifd(0x8825) == pillows.get_ifd(0x8825)
    assert ours[0x8298] == pillows[0x8298] and ours[0x0112] == 1


def _entries_with_ifd1(raw: bytes) -> dict:
    """The entries of ``raw`` (which has an IFD1): read with IFD1's link cut."""
    data = bytearray(raw[len(EXIF_PREFIX) :])
    order = "<" if data[:2] == b"II" else ">"
    (n,) = struct.unpack_from(order + "H", data, 8)
    struct.pack_into(order + "I", data, 8 + 2 + 12 * n, 0)
    return _entries(EXIF_PREFIX + bytes(data))


def test_rewrite_drops_a_maker_note_when_asked_adds_an_orientation_and_refuses_what_is_not_exif():
    raw = _camera_exif()
    assert 0x927C not in _entries(rewrite_exif(raw, drop=frozenset({0x927C})))["exif"]
    plain = _block(">", [[(0x010F, 2, 4, b"Cam\x00")]], {})
    assert 0x0112 not in _entries(rewrite_exif(plain))["ifd0"]
    assert _entries(rewrite_exif(plain, upright=True))["ifd0"][0x0112] == (3, 1, b"\x00\x01")
    with pytest.raises(ValueError, match="not an EXIF block"):
        rewrite_exif(b"Exif\x00\x00JUNKJUNKJUNK")
    with pytest.raises(ValueError, match="outside the block"):
        rewrite_exif(b"MM\x00*\x00\x00\x40\x00")


def test_rewrite_leaves_out_what_it_cannot_copy_and_never_loops():
    """A value past the block's end and an entry pointing at image data are left out (as Pillow
    leaves them); a sub-directory pointing back at IFD0 is read once."""
    order = ">"
    ifd0 = [
        (0x010F, 2, 4, b"Cam\x00"),
        (0x0110, 2, 64, b"\x00\x00\xff\xff"),  # its 64 bytes at offset 65535: past the end
        (0x0111, 4, 1, b"\x00\x00\x00\x10"),  # StripOffsets: the strips are not copied
        (0x8769, 4, 1, b""),
    ]
    raw = _block(order, [ifd0], {(0, 0x8769): 0})
    entries = _entries(rewrite_exif(raw))
    assert set(entries["ifd0"]) == {0x010F}


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif"])
def test_a_saved_photo_keeps_its_non_ascii_exif_text(tmp_path, suffix):
    """Pillow wrote EXIF text as ASCII with "?" for every other byte: "© 2024 Jörg Müller" became
    "?? 2024 J??rg M??ller" in every file saved (the original itself with Save)."""
    rgb = np.random.default_rng(0).integers(0, 256, (32, 48, 3), np.uint8)
    src = tmp_path / f"src{suffix}"
    save_image(src, rgb, metadata=PhotoMetadata(exif=_camera_exif()))
    loaded = load_image(src)
    out = tmp_path / f"out{suffix}"
    save_image(out, loaded.rgb, metadata=loaded.metadata)
    for path in (src, out):
        data = path.read_bytes()
        assert COPYRIGHT[:-1] in data and b"?? 2024" not in data, path.name
        assert b"UNRETOUCHED" not in data


def test_entries_sharing_one_value_cost_no_more_than_the_block():
    """4,000 entries pointing at one 15 KB value (a 64 KB block) made 68 MB in 87 s: each copied
    it, and the output grew by re-joining. Value bytes beyond the block's size are left out."""
    import time

    value = b"x" * 15000
    entries = [(0x9000 + i, 7, len(value), value) for i in range(4000)]
    order = ">"
    table = struct.pack(order + "H", len(entries))
    at = 8 + 2 + 12 * len(entries) + 4
    for tag, typ, n, _ in entries:
        table += struct.pack(order + "HHII", tag, typ, n, at)  # all at one place
    raw = EXIF_PREFIX + b"MM\x00*" + struct.pack(order + "I", 8) + table + b"\x00" * 4 + value
    t0 = time.perf_counter()
    out = rewrite_exif(raw)
    assert time.perf_counter() - t0 < 2 and len(out) < 2 * len(raw)
    with pytest.raises(ValueError, match="not an EXIF block"):
        rewrite_exif(b"MM\x00")
