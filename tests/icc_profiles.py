"""Minimal ICC v2 matrix/TRC profiles for tests: no profile but sRGB ships with Pillow, and the
machines that run the tests have none of their own."""

from __future__ import annotations

import struct

D50 = (0.9642, 1.0, 0.8249)
ADOBE_RGB = ((0.6097, 0.3111, 0.0195), (0.2053, 0.6257, 0.0609), (0.1492, 0.0632, 0.7446))
"""Adobe RGB (1998)'s primaries adapted to D50, as its ICC profile holds them."""
SRGB = ((0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141))
"""sRGB's, the same way (with a gamma of 1.0: linear sRGB)."""


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + b"\0" * 4 + struct.pack(">iii", *(round(v * 65536) for v in (x, y, z)))


def _curve(gamma: float) -> bytes:
    return b"curv" + b"\0" * 4 + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"


def _desc(name: str) -> bytes:
    text = name.encode() + b"\0"
    return b"desc" + b"\0" * 4 + struct.pack(">I", len(text)) + text + b"\0" * 79


def _profile(space: bytes, entries: list[tuple[bytes, bytes]]) -> bytes:
    offset = 128 + 4 + 12 * len(entries)
    table, data = struct.pack(">I", len(entries)), b""
    for sig, blob in entries:
        data += b"\0" * (-(offset + len(data)) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(blob))
        data += blob
    head = (
        struct.pack(">I", offset + len(data)) + b"lcms" + bytes([2, 0x10, 0, 0]) + b"mntr" + space + b"XYZ "
    )
    head = (head + b"\0" * 12 + b"acsp" + b"\0" * 24 + _xyz(*D50)[8:]).ljust(128, b"\0")
    return head + table + data


def gray_profile(gamma: float = 2.2, name: str = "Test Gray") -> bytes:
    """A Gray profile: a ``gamma`` kTRC, D50 white, a description."""
    return _profile(b"GRAY", [(b"kTRC", _curve(gamma)), (b"wtpt", _xyz(*D50)), (b"desc", _desc(name))])


def rgb_profile(gamma: float = 563 / 256, primaries=ADOBE_RGB, name: str = "Test Adobe RGB (1998)") -> bytes:
    """An RGB matrix/TRC profile: one ``gamma`` for the three channels, ``primaries`` (red, green,
    blue XYZ at D50); by default Adobe RGB (1998)'s."""
    red, green, blue = primaries
    curve = _curve(gamma)
    return _profile(
        b"RGB ",
        [
            (b"desc", _desc(name)),
            (b"wtpt", _xyz(*D50)),
            (b"rXYZ", _xyz(*red)),
            (b"gXYZ", _xyz(*green)),
            (b"bXYZ", _xyz(*blue)),
            (b"rTRC", curve),
            (b"gTRC", curve),
            (b"bTRC", curve),
        ],
    )
