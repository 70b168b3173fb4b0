"""Helpers for the tests of JPEG saves that keep unchanged blocks: textured colour photos written
as JPEG, decoding, the MCU ring around changed pixels, marker segments and coefficients."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from engine.imageio import LoadedImage, save_image
from engine.jpeg_damage import header_segments

MCU = {0: (8, 8), 1: (8, 16), 2: (16, 16)}  # Pillow subsampling -> MCU (height, width)


def block_save(tmp_path: Path, loaded: LoadedImage, rgb: np.ndarray, name: str = "out.jpg", **kw) -> Path:
    """``rgb`` (``loaded``'s picture with some pixels changed) saved as ``tmp_path / name`` from
    ``loaded``'s JPEG, keeping its compression and the blocks without a changed pixel."""
    changed = (rgb != loaded.rgb).any(axis=2)
    kw.setdefault("keep_jpeg_compression", True)
    return save_image(
        tmp_path / name, rgb, metadata=loaded.metadata, source=loaded.source, changed=changed, **kw
    )


def textured(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A colour photo stand-in: smooth colour gradients with waves and grain, no grey."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 150 + 70 * np.sin(xx / 13.0 + seed)
    g = 110 + 60 * np.cos(yy / 9.0) * np.sin(xx / 29.0)
    b = 90 + 50 * np.sin((xx + 2 * yy) / 21.0)
    img = np.stack([r, g, b], -1) + rng.normal(0, 9, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def other_texture(h: int, w: int, seed: int) -> np.ndarray:
    """What a fill puts in: a texture of other colours (the negative of :func:`textured`)."""
    return 255 - textured(h, w, seed)


def write_jpeg(path: Path, rgb: np.ndarray, quality: int, subsampling: int, **kw: object) -> Path:
    Image.fromarray(rgb).save(path, format="JPEG", quality=quality, subsampling=subsampling, **kw)
    return path


def decode(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).astype(np.int16)


def near_changed_mcus(changed: np.ndarray, mcu: tuple[int, int], ring: int = 1) -> np.ndarray:
    """bool HxW: the pixels of every MCU that holds a changed pixel, and of ``ring`` MCUs
    around them."""
    mh, mw = mcu
    h, w = changed.shape
    rows, cols = -(-h // mh), -(-w // mw)
    padded = np.zeros((rows * mh, cols * mw), bool)
    padded[:h, :w] = changed
    hit = padded.reshape(rows, mh, cols, mw).any(axis=(1, 3))
    grown = hit.copy()
    for r, c in np.argwhere(hit):
        grown[max(0, r - ring) : r + ring + 1, max(0, c - ring) : c + ring + 1] = True
    return np.repeat(np.repeat(grown, mh, axis=0), mw, axis=1)[:h, :w]


def metadata_segments(path: Path) -> list[bytes]:
    """The APPn and COM segments of a JPEG, in file order (engine.jpeg_damage.header_segments,
    strict: tested on its own in test_jpeg_blocks)."""
    data = Path(path).read_bytes()
    return [data[s:e] for m, s, e in header_segments(data) if 0xE0 <= m <= 0xEF or m == 0xFE]


def coefficients(path: Path) -> tuple[np.ndarray, ...]:
    import jpeglib

    jpeg = jpeglib.read_dct(str(path))
    return (np.array(jpeg.Y), np.array(jpeg.Cb), np.array(jpeg.Cr))


def scan_damaged(data: bytes, at: float = 0.4, span: int = 64) -> bytes:
    """``data`` (a JPEG file) with ``span`` bytes inside its compressed picture zeroed, as a bad
    sector zeroes them (``at``: where, as a fraction of the data from the first scan on). Damage
    that happens to decode as valid codes, such as most single flipped bits, cannot be told from a
    picture: :mod:`engine.jpeg_damage`."""
    start = data.index(b"\xff\xda")
    pos = start + int((len(data) - start) * at)
    return data[:pos] + bytes(span) + data[pos + span :]
