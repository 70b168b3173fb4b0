"""engine.jpeg_blocks through engine.imageio.save_image: a JPEG written back from a JPEG with its
own compression re-encodes only the blocks (MCUs) that hold a changed pixel; the rest of the
photo decodes exactly as before. Where that cannot be done it is re-encoded whole, as a plain
save, with one logged warning that says why. Also the walk over a JPEG header's marker segments
that it shares with engine.jpeg_damage: strict here, lenient (as libjpeg) there."""

from __future__ import annotations

import logging
import os
import struct

import numpy as np
import pytest
from PIL import Image, ImageCms

from engine.imageio import SourceFile, load_image, save_image
from engine.jpeg_blocks import _segments, block_write_problem, changed_pixels
from engine.jpeg_damage import header_segments, picture_data
from tests.engine.jpeg_photos import (
    MCU,
    block_save,
    coefficients,
    decode,
    metadata_segments,
    near_changed_mcus,
    other_texture,
    textured,
    write_jpeg,
)

SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'

CASES = [
    pytest.param(90, 2, (160, 224), {}, id="420-q90-mcu-multiple"),
    pytest.param(90, 2, (157, 219), {}, id="420-q90-odd-size"),
    pytest.param(95, 0, (96, 136), {}, id="444-q95-mcu-multiple"),
    pytest.param(95, 0, (101, 133), {}, id="444-q95-odd-size"),
    pytest.param(85, 1, (120, 170), {}, id="422-q85"),
    pytest.param(90, 2, (150, 200), {"optimize": True}, id="420-q90-optimised-huffman"),
]


def filled(rgb: np.ndarray, hole: np.ndarray, seed: int = 7) -> np.ndarray:
    out = rgb.copy()
    out[hole] = other_texture(*rgb.shape[:2], seed=seed)[hole]
    return out


def a_hole(shape: tuple[int, ...], y: int, x: int, h: int, w: int) -> np.ndarray:
    hole = np.zeros(shape[:2], bool)
    hole[y : y + h, x : x + w] = True
    return hole


def blocks_of(mcus: np.ndarray, factor: tuple[int, int], shape: tuple[int, ...]) -> np.ndarray:
    """An MCU mask as a mask of one component's 8x8 blocks (``factor``: blocks per MCU)."""
    return np.repeat(np.repeat(mcus, factor[0], 0), factor[1], 1)[: shape[0], : shape[1]]


@pytest.mark.parametrize(("quality", "subsampling", "size", "extra"), CASES)
def test_only_the_blocks_with_changed_pixels_are_re_encoded(tmp_path, quality, subsampling, size, extra):
    h, w = size
    src = write_jpeg(tmp_path / "in.jpg", textured(h, w), quality, subsampling, **extra)
    loaded = load_image(src)
    hole = a_hole(loaded.rgb.shape, h // 3, w // 4, 23, 37)  # not aligned to the MCUs
    result = filled(loaded.rgb, hole)
    out = block_save(tmp_path, loaded, result)
    plain = save_image(tmp_path / "plain.jpg", result, metadata=loaded.metadata, keep_jpeg_compression=True)

    before, after, replain = decode(src), decode(out), decode(plain)
    near = near_changed_mcus(hole, MCU[subsampling])
    assert near.mean() < 0.5
    np.testing.assert_array_equal(after[~near], before[~near])  # untouched: not one level off
    assert np.abs(replain[~near] - before[~near]).max() > 0  # what a plain save does there
    # In the hole: the fill, as faithfully as a plain save with the same tables gives it.
    error = np.abs(after[hole] - result[hole]).mean()
    assert error <= np.abs(replain[hole] - result[hole]).mean() + 0.5
    assert error < np.abs(after[hole] - before[hole]).mean() / 2
    # The size stays the file's own (same tables, same Huffman style).
    assert abs(out.stat().st_size - src.stat().st_size) <= 0.03 * src.stat().st_size

    # Coefficients: the source's outside the changed MCUs, a plain save's inside them.
    mh, mw = MCU[subsampling]
    mcus = near_changed_mcus(hole, MCU[subsampling], ring=0)[::mh, ::mw]
    for i, (s, o, p) in enumerate(zip(coefficients(src), coefficients(out), coefficients(plain))):
        factor = (mh // 8, mw // 8) if i == 0 else (1, 1)
        inside = blocks_of(mcus, factor, s.shape)
        np.testing.assert_array_equal(o[~inside], s[~inside])
        np.testing.assert_array_equal(o[inside], p[inside])


def test_metadata_is_what_a_plain_save_writes(tmp_path):
    exif = Image.Exif()
    exif[0x010F] = "BlockCam"
    src = write_jpeg(
        tmp_path / "in.jpg",
        textured(96, 128),
        90,
        2,
        exif=exif.tobytes(),
        icc_profile=SRGB_ICC,
        xmp=XMP,
        dpi=(240, 240),
    )
    loaded = load_image(src)
    result = filled(loaded.rgb, a_hole(loaded.rgb.shape, 20, 30, 10, 10))
    out = block_save(tmp_path, loaded, result)
    plain = save_image(tmp_path / "plain.jpg", result, metadata=loaded.metadata, keep_jpeg_compression=True)
    assert metadata_segments(out) == metadata_segments(plain)
    assert len(metadata_segments(out)) >= 4  # JFIF (DPI), EXIF, ICC, XMP
    again = load_image(out)
    assert again.metadata.icc_profile == SRGB_ICC and again.metadata.xmp == XMP
    assert again.metadata.dpi == (240, 240) and again.metadata.exif == loaded.metadata.exif
    with Image.open(out) as im, Image.open(src) as orig:
        assert im.quantization == orig.quantization and im.layer == orig.layer  # ids, sampling


def test_an_unchanged_picture_keeps_every_coefficient(tmp_path, caplog):
    src = write_jpeg(tmp_path / "in.jpg", textured(80, 120), 92, 2)
    loaded = load_image(src)
    with caplog.at_level(logging.WARNING):
        out = block_save(tmp_path, loaded, loaded.rgb)
    assert not caplog.records
    for s, o in zip(coefficients(src), coefficients(out)):
        np.testing.assert_array_equal(o, s)


def progressive(path, rgb):
    return write_jpeg(path, rgb, 90, 2, progressive=True)


def cmyk(path, rgb):
    Image.fromarray(rgb).convert("CMYK").save(path, quality=90)
    return path


def grey(path, rgb):
    Image.fromarray(rgb).convert("L").save(path, quality=90)
    return path


def rotated(path, rgb):
    exif = Image.Exif()
    exif[0x0112] = 6
    return write_jpeg(path, rgb, 90, 2, exif=exif.tobytes())


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (progressive, "it is a progressive JPEG"),
        (cmyk, "CMYK"),
        (grey, "greyscale"),
        (rotated, "EXIF orientation (6)"),
    ],
)
def test_files_it_cannot_treat_so_are_re_encoded_as_before_and_it_says_so_once(tmp_path, caplog, make, why):
    src = make(tmp_path / "in.jpg", textured(64, 96))
    loaded = load_image(src)
    result = filled(loaded.rgb, a_hole(loaded.rgb.shape, 10, 10, 12, 12))
    with caplog.at_level(logging.WARNING):
        out = block_save(tmp_path, loaded, result)
    plain = save_image(tmp_path / "plain.jpg", result, metadata=loaded.metadata, keep_jpeg_compression=True)
    assert out.read_bytes() == plain.read_bytes()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    warnings = [m for m in warnings if "colours may be off" not in m]  # a CMYK source's, as it is read
    assert len(warnings) == 1, warnings
    assert "out.jpg: the whole picture is re-encoded" in warnings[0] and why in warnings[0]
    assert str(src) in warnings[0]


def test_a_chosen_quality_re_encodes_as_before_and_says_so_once(tmp_path, caplog):
    src = write_jpeg(tmp_path / "in.jpg", textured(64, 96), 90, 2)
    loaded = load_image(src)
    result = filled(loaded.rgb, a_hole(loaded.rgb.shape, 10, 10, 12, 12))
    with caplog.at_level(logging.WARNING):
        out = block_save(tmp_path, loaded, result, keep_jpeg_compression=False, quality=80)
    plain = save_image(tmp_path / "plain.jpg", result, metadata=loaded.metadata, quality=80)
    assert out.read_bytes() == plain.read_bytes()
    assert len(caplog.records) == 1
    assert "the chosen quality 80" in caplog.records[0].getMessage()


def test_a_source_changed_on_disk_since_it_was_read_is_not_used(tmp_path, caplog):
    src = write_jpeg(tmp_path / "in.jpg", textured(64, 96), 90, 2)
    loaded = load_image(src)
    write_jpeg(src, textured(64, 96, seed=3), 90, 2)  # another picture under the same name
    os.utime(src, ns=(loaded.source.mtime_ns + 10**9, loaded.source.mtime_ns + 10**9))
    result = filled(loaded.rgb, a_hole(loaded.rgb.shape, 10, 10, 12, 12))
    with caplog.at_level(logging.WARNING):
        out = block_save(tmp_path, loaded, result)
    plain = save_image(tmp_path / "plain.jpg", result, metadata=loaded.metadata, keep_jpeg_compression=True)
    assert out.read_bytes() == plain.read_bytes()
    assert len(caplog.records) == 1 and "changed on disk" in caplog.records[0].getMessage()


@pytest.mark.parametrize(("sof", "why"), [(0xC9, "arithmetic coding"), (0xC3, "lossless")])
def test_arithmetic_and_other_codings_are_refused_from_the_header(tmp_path, sof, why):
    data = bytearray(write_jpeg(tmp_path / "in.jpg", textured(32, 32), 90, 2).read_bytes())
    at = data.index(b"\xff\xc0")
    data[at + 1] = sof
    (tmp_path / "odd.jpg").write_bytes(bytes(data))
    assert why in block_write_problem(SourceFile.of(tmp_path / "odd.jpg"), (32, 32, 3))
    assert block_write_problem(SourceFile.of(tmp_path / "in.jpg"), (32, 32, 3)) is None
    assert "32x32, the picture 40x32" in block_write_problem(SourceFile.of(tmp_path / "in.jpg"), (32, 40, 3))


def test_a_jpeg_written_from_a_png_says_nothing(tmp_path, caplog):
    Image.fromarray(textured(40, 40)).save(tmp_path / "in.png")
    loaded = load_image(tmp_path / "in.png")
    with caplog.at_level(logging.WARNING):
        block_save(tmp_path, loaded, filled(loaded.rgb, a_hole((40, 40), 5, 5, 8, 8)))
    assert not caplog.records


def test_changed_must_match_the_picture(tmp_path):
    src = write_jpeg(tmp_path / "in.jpg", textured(32, 48), 90, 2)
    loaded = load_image(src)
    with pytest.raises(ValueError, match=r"changed must be a bool array of shape \(32, 48\)"):
        save_image(tmp_path / "o.jpg", loaded.rgb, metadata=loaded.metadata, source=loaded.source)
    with pytest.raises(ValueError, match="changed must be"):
        save_image(
            tmp_path / "o.jpg",
            loaded.rgb,
            metadata=loaded.metadata,
            source=loaded.source,
            changed=np.zeros((32, 47), bool),
        )


def test_changed_pixels_is_where_the_pictures_differ():
    old = textured(40, 50)
    new = old.copy()
    assert not changed_pixels(new, old).any()
    new[3, 4, 2] ^= 1
    new[30:33, 10:40, 0] += 1
    np.testing.assert_array_equal(changed_pixels(new, old), (new != old).any(axis=2))
    with pytest.raises(ValueError, match="different shapes"):
        changed_pixels(new[:-1], old)


@pytest.mark.parametrize(
    "holes",
    [
        pytest.param([(8, 8, 20, 20), (120, 170, 25, 30)], id="far-apart"),
        pytest.param([(60, 5, 20, 20), (70, 180, 20, 30)], id="same-rows"),
        pytest.param([(0, 0, 160, 224)], id="everything"),
    ],
)
def test_several_retouches_keep_the_blocks_between_them(tmp_path, holes):
    src = write_jpeg(tmp_path / "in.jpg", textured(160, 224), 90, 2)
    loaded = load_image(src)
    hole = np.zeros(loaded.rgb.shape[:2], bool)
    for y, x, h, w in holes:
        hole[y : y + h, x : x + w] = True
    result = filled(loaded.rgb, hole)
    out = block_save(tmp_path, loaded, result)
    plain = save_image(tmp_path / "plain.jpg", result, metadata=loaded.metadata, keep_jpeg_compression=True)
    near = near_changed_mcus(hole, MCU[2])
    np.testing.assert_array_equal(decode(out)[~near], decode(src)[~near])
    mcus = near_changed_mcus(hole, MCU[2], ring=0)[::16, ::16]
    for i, (s, o, p) in enumerate(zip(coefficients(src), coefficients(out), coefficients(plain))):
        inside = blocks_of(mcus, (2, 2) if i == 0 else (1, 1), s.shape)
        np.testing.assert_array_equal(o[~inside], s[~inside])
        np.testing.assert_array_equal(o[inside], p[inside])


# --- the header's marker segments (engine.jpeg_damage.header_segments) ----------------------


def segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", 2 + len(payload)) + payload


SOI, EOI = b"\xff\xd8", b"\xff\xd9"
COM, DQT = segment(0xFE, b"a comment"), segment(0xDB, b"\x00" + bytes(range(64)))
SOS = segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
SCAN = b"\x12\xff\x00\x34\xff\xd0\x56" + EOI  # coded data: a stuffed zero, a restart marker
PICTURE = SOI + DQT + SOS + SCAN  # what picture_data keeps of SOI + COM + DQT + SOS + SCAN
DAMAGED = "its header is damaged or truncated"


def header(between: bytes = b"") -> bytes:
    """SOI, a comment, ``between``, a table, the scan."""
    return SOI + COM + between + DQT + SOS + SCAN


def test_the_header_walk_gives_each_segment_up_to_the_scan_header():
    data = header()
    com, dqt, sos = 2, 2 + len(COM), 2 + len(COM) + len(DQT)
    walk = [(0xFE, com, dqt), (0xDB, dqt, sos), (0xDA, sos, sos + len(SOS))]
    assert list(header_segments(data)) == walk
    assert list(header_segments(data, lenient=True)) == walk
    assert _segments(data) == [(0xFE, COM), (0xDB, DQT), (0xDA, SOS)]
    assert picture_data(data) == PICTURE


@pytest.mark.parametrize(
    ("between", "strict_passes"),
    [
        pytest.param(b"\xff\xff\xff", True, id="fill-bytes"),
        pytest.param(b"\xff\xd0\xff\x01\xff\xd7", True, id="rst-and-tem"),
        pytest.param(b"\xff\xd0\xff\xff\xff\x01", True, id="rst-fill-tem"),
        pytest.param(b"\x00\x00", False, id="padding"),
        pytest.param(b"junk", False, id="junk"),
        pytest.param(b"\xff\x00", False, id="stuffed-zero"),
        pytest.param(SOI, False, id="second-soi"),
        pytest.param(b"\x00\xff\xff\xd0\x17", False, id="padding-fill-rst-junk"),
    ],
)
def test_what_lies_between_two_segments(between, strict_passes):
    """Fill bytes and markers without a length are passed over by both walks; stray bytes, a
    stuffed zero and a second SOI are skipped by the lenient walk (as libjpeg skips them) and
    refused by the strict one."""
    data = header(between)
    dqt = 2 + len(COM) + len(between)
    sos = dqt + len(DQT)
    walk = [(0xFE, 2, 2 + len(COM)), (0xDB, dqt, sos), (0xDA, sos, sos + len(SOS))]
    assert list(header_segments(data, lenient=True)) == walk
    assert picture_data(data) == PICTURE
    if strict_passes:
        assert list(header_segments(data)) == walk
        assert _segments(data) == [(0xFE, COM), (0xDB, DQT), (0xDA, SOS)]
    else:
        with pytest.raises(ValueError, match=DAMAGED):
            _segments(data)


@pytest.mark.parametrize(
    ("data", "lenient_walk"),
    [
        pytest.param(SOI + COM + DQT[:-10], [0xFE, 0xDB], id="segment-cut-short"),
        pytest.param(SOI + COM + DQT[:3], [0xFE], id="length-cut-short"),
        pytest.param(
            SOI + COM + b"\xff\xdb\xff\xf0" + DQT[4:] + SOS + SCAN, [0xFE, 0xDB], id="length-past-the-end"
        ),
        pytest.param(SOI + COM + DQT, [0xFE, 0xDB], id="no-scan-header"),
        pytest.param(SOI + COM + DQT + EOI, [0xFE, 0xDB], id="eoi-at-the-end"),
        pytest.param(SOI + COM + EOI + DQT + SOS + SCAN, [0xFE], id="eoi-before-the-scan-header"),
    ],
)
def test_a_truncated_header_or_eoi_before_the_scan_stops_the_lenient_walk_and_fails_the_strict(
    data, lenient_walk
):
    with pytest.raises(ValueError, match=DAMAGED):
        _segments(data)
    assert [m for m, _, _ in header_segments(data, lenient=True)] == lenient_walk  # no SOS, no EOI
    assert picture_data(data) is None


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(SOI + COM + b"\xff\xdb\x00\x01" + DQT[4:] + SOS + SCAN, id="table-length-1"),
        pytest.param(SOI + COM + DQT + b"\xff\xda\x00\x01" + SOS[4:] + SCAN, id="scan-header-length-1"),
        pytest.param(SOI + COM + DQT + SOS[:6], id="scan-header-cut-short"),
    ],
)
def test_a_length_under_two_or_past_the_end_is_refused_strictly(data):
    with pytest.raises(ValueError, match=DAMAGED):
        _segments(data)
    if data.startswith(SOI + COM + DQT):  # lenient: lengths unchecked, all from the scan header on kept
        assert picture_data(data) == SOI + DQT + data[len(SOI + COM + DQT) :]


def test_data_that_does_not_start_with_soi():
    for data in (COM + DQT + SOS + SCAN, b"", b"\xff"):
        with pytest.raises(ValueError, match="it does not start like a JPEG file"):
            _segments(data)
        assert list(header_segments(data, lenient=True)) == []
        assert picture_data(data) is None
