"""JPEG saves from the app's document and from ``retoucher batch`` leave the photo untouched
outside the blocks (MCUs) that hold retouched pixels, over repeated saves too."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from retoucher.batch import BatchOptions, MaskSpec, run_batch
from retoucher.document import Document
from retoucher.edits import ImageEdit
from tests.engine.jpeg_photos import (
    MCU,
    coefficients,
    decode,
    near_changed_mcus,
    other_texture,
    textured,
    write_jpeg,
)


def fill(doc: Document, y: int, x: int, h: int, w: int, seed: int) -> tuple[np.ndarray, ImageEdit]:
    """Fill a hole of the document with another texture, as the app does: (hole, the edit)."""
    hole = np.zeros(doc.mask.shape, bool)
    hole[y : y + h, x : x + w] = True
    result = doc.image.copy()
    result[hole] = other_texture(doc.height, doc.width, seed=seed)[hole]
    edit = doc.apply_fill(result, hole)
    assert edit is not None
    return hole, edit


@pytest.mark.parametrize(("quality", "subsampling", "size"), [(90, 2, (150, 210)), (95, 0, (99, 131))])
def test_repeated_save_fill_save_does_not_drift_outside_the_holes(
    tmp_path, caplog, quality, subsampling, size
):
    src = write_jpeg(tmp_path / "photo.jpg", textured(*size), quality, subsampling)
    first = decode(src)
    doc = Document.open(src)
    near = np.zeros(size, bool)
    height, width = size
    holes = [
        (height // 7, width // 7, 17, 25),
        (height // 2, width // 2, 30, 40),
        (height // 4, width * 2 // 3, 12, 30),
    ]
    with caplog.at_level(logging.WARNING):
        for n, (y, x, h, w) in enumerate(holes):
            before = coefficients(src)
            hole, _ = fill(doc, y, x, h, w, seed=10 + n)
            doc.save(keep_jpeg_compression=True)
            this = near_changed_mcus(hole, MCU[subsampling])
            near |= this
            now = decode(src)
            np.testing.assert_array_equal(now[~near], first[~near])
            fill_error = np.abs(now[hole] - doc.image[hole]).mean()
            assert fill_error < np.abs(now[hole] - first[hole]).mean() / 2
            # Blocks of earlier holes are not re-encoded again (no drift there either).
            mh, mw = MCU[subsampling]
            mcus = this[::mh, ::mw]
            for i, (b, a) in enumerate(zip(before, coefficients(src))):
                factor = (mh // 8, mw // 8) if i == 0 else (1, 1)
                inside = np.repeat(np.repeat(mcus, factor[0], 0), factor[1], 1)[: b.shape[0], : b.shape[1]]
                np.testing.assert_array_equal(a[~inside], b[~inside])
    assert not caplog.records


def test_undo_after_a_save_brings_the_original_back_at_the_next_save(tmp_path):
    src = write_jpeg(tmp_path / "photo.jpg", textured(96, 128), 90, 2)
    first = decode(src)
    doc = Document.open(src)
    hole, edit = fill(doc, 30, 40, 20, 20, seed=5)
    doc.save(keep_jpeg_compression=True)
    filled_in = decode(src)[hole]
    assert np.abs(filled_in - doc.image[hole]).mean() < np.abs(filled_in - first[hole]).mean() / 2
    doc.undo(edit)
    doc.save(keep_jpeg_compression=True)
    back = decode(src)
    near = near_changed_mcus(hole, MCU[2])
    np.testing.assert_array_equal(back[~near], first[~near])
    assert np.abs(back[hole] - first[hole]).mean() < np.abs(filled_in - first[hole]).mean() / 2


def test_an_earlier_fill_undone_after_two_saves_is_written_back(tmp_path):
    """Fill A, save; fill B, save; undo A, save: the second save's record of what the file holds
    was taken from the comparison after it had been corrected in place, so A's pixels dropped
    out of it and the third save left A's fill in the file."""
    src = write_jpeg(tmp_path / "photo.jpg", textured(96, 128), 90, 2)
    first = decode(src)
    doc = Document.open(src)
    hole_a, edit_a = fill(doc, 10, 10, 16, 16, seed=1)
    doc.save(keep_jpeg_compression=True)
    filled_a = decode(src)[hole_a]
    hole_b, _ = fill(doc, 60, 90, 16, 16, seed=2)
    doc.save(keep_jpeg_compression=True)
    doc.undo(edit_a)
    doc.save(keep_jpeg_compression=True)
    back = decode(src)[hole_a]
    assert np.abs(back - first[hole_a]).mean() < np.abs(filled_a - first[hole_a]).mean() / 2


def test_save_as_then_save_keeps_blocks_and_a_rotated_source_is_re_encoded_once(tmp_path, caplog):
    exif = Image.Exif()
    exif[0x0112] = 6
    src = write_jpeg(tmp_path / "turned.jpg", textured(64, 96), 90, 2, exif=exif.tobytes())
    doc = Document.open(src)
    fill(doc, 10, 10, 12, 12, seed=3)
    copy = tmp_path / "copy.jpg"
    with caplog.at_level(logging.WARNING):
        doc.save(copy, keep_jpeg_compression=True)
    assert len(caplog.records) == 1 and "EXIF orientation (6)" in caplog.records[0].getMessage()
    caplog.clear()
    saved = decode(copy)
    hole, _ = fill(doc, 60, 30, 10, 20, seed=4)
    with caplog.at_level(logging.WARNING):
        doc.save(keep_jpeg_compression=True)
    assert not caplog.records  # the saved file is upright: its blocks are kept now
    near = near_changed_mcus(hole, MCU[2])
    np.testing.assert_array_equal(decode(copy)[~near], saved[~near])
    assert src.read_bytes() != copy.read_bytes() and doc.path == copy


class TexturedFill:
    """A stand-in for the engine: fills the hole with another texture."""

    name = "textured-fill"
    device_name = "CPU"

    def __call__(self, image, hole, *, cancel=None, progress=None, texture=None, mirror=None):
        out = image.copy()
        out[hole] = other_texture(*image.shape[:2], seed=9)[hole]
        return out


def test_batch_keeps_the_blocks_outside_the_hole_unless_a_quality_is_given(tmp_path, caplog):
    src, out, out_q = tmp_path / "in", tmp_path / "out", tmp_path / "out_q"
    src.mkdir()
    write_jpeg(src / "a.jpg", textured(120, 160, seed=1), 90, 2)
    write_jpeg(src / "b.jpg", textured(99, 133, seed=2), 95, 0)
    rect = (40, 30, 33, 21)  # x, y, w, h
    with caplog.at_level(logging.WARNING):
        report = run_batch(BatchOptions(src, out, MaskSpec("rect", rect)), inpainter=TexturedFill())
    assert report.ok and len(report.done) == 2
    assert not caplog.records
    for name, sub in (("a.jpg", 2), ("b.jpg", 0)):
        before, after = decode(src / name), decode(out / name)
        hole = np.zeros(before.shape[:2], bool)
        hole[30:51, 40:73] = True
        near = near_changed_mcus(hole, MCU[sub])
        np.testing.assert_array_equal(after[~near], before[~near])
        assert (
            abs((out / name).stat().st_size - (src / name).stat().st_size)
            <= 0.03 * (src / name).stat().st_size
        )

    with caplog.at_level(logging.WARNING):
        run_batch(BatchOptions(src, out_q, MaskSpec("rect", rect), quality=95), inpainter=TexturedFill())
    said = sorted(r.getMessage() for r in caplog.records)
    assert len(said) == 2 and all("the chosen quality 95" in m for m in said)
    assert "a.jpg" in said[0] and "b.jpg" in said[1]
    assert np.abs(decode(out_q / "a.jpg") - decode(src / "a.jpg")).max() > 2
