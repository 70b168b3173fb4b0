"""engine.imageio: orientation, modes, metadata, alpha, size limit, bad files, masks, atomicity."""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import os
import struct
import warnings
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, JpegImagePlugin, PngImagePlugin, TiffImagePlugin

from engine import imageio as iio
from engine.imageio import (
    ImageNotFoundError,
    ImageReadError,
    ImageTooLargeError,
    PhotoMetadata,
    load_image,
    load_mask,
    save_image,
    save_mask,
)
from engine.metadata import PngColour
from tests.engine.jpeg_photos import block_save, scan_damaged
from tests.icc_profiles import gray_profile

ORIENTATION = 0x0112
MAKE = 0x010F
EXIF_IFD = 0x8769
DATE_TAKEN = 0x9003  # DateTimeOriginal, inside the Exif sub-IFD


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def rng_rgb(h: int = 32, w: int = 48, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def exif_with(**tags: object) -> bytes:
    ex = Image.Exif()
    ex[MAKE] = "TestCam"
    ex[EXIF_IFD] = {DATE_TAKEN: "2020:05:17 10:11:12"}
    for k, v in tags.items():
        ex[{"orientation": ORIENTATION}[k]] = v
    return ex.tobytes()


def parse_exif(data: bytes) -> Image.Exif:
    ex = Image.Exif()
    ex.load(data)
    return ex


SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


# --- orientation -----------------------------------------------------------------------------


def _landscape_with_white_left_band() -> np.ndarray:
    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[:, :10] = 255  # left band white
    return rgb


def test_exif_orientation_6_is_applied_and_not_applied_twice_after_resave(tmp_path):
    src = tmp_path / "rot6.jpg"
    Image.fromarray(_landscape_with_white_left_band()).save(src, exif=exif_with(orientation=6), quality=95)
    loaded = load_image(src)
    # Orientation 6: displayed rotated 90 degrees clockwise; the stored left band is on top.
    assert loaded.rgb.shape == (40, 20, 3)
    assert loaded.rgb[:8].mean() > 200 and loaded.rgb[12:].mean() < 30
    ex = parse_exif(loaded.metadata.exif)
    assert ex.get(ORIENTATION) == 1
    assert ex.get(MAKE) == "TestCam"
    assert ex.get_ifd(EXIF_IFD).get(DATE_TAKEN) == "2020:05:17 10:11:12"  # sub-IFD kept

    out = tmp_path / "resaved.jpg"
    save_image(out, loaded.rgb, metadata=loaded.metadata)
    with Image.open(out) as raw:  # stored upright, and the file does not ask for a rotation
        assert raw.size == (20, 40)
        assert raw.getexif().get(ORIENTATION, 1) == 1
        assert raw.getexif().get(MAKE) == "TestCam"
    again = load_image(out)
    assert again.rgb.shape == (40, 20, 3)
    assert np.abs(again.rgb.astype(int) - loaded.rgb.astype(int)).max() <= 8


@pytest.mark.parametrize(
    "orientation, band_where",
    [(1, "left"), (3, "right"), (8, "bottom"), (2, "right")],
)
def test_other_orientations(tmp_path, orientation, band_where):
    src = tmp_path / f"o{orientation}.png"
    Image.fromarray(_landscape_with_white_left_band()).save(src, exif=exif_with(orientation=orientation))
    rgb = load_image(src).rgb
    band = {
        "left": rgb[:, :10],
        "right": rgb[:, -10:],
        "bottom": rgb[-10:],
    }[band_where]
    assert band.min() == 255
    assert rgb.sum() == 255 * 3 * 10 * 20


@pytest.mark.parametrize("orientation", [0, 9])
def test_an_out_of_range_orientation_is_upright(tmp_path, orientation):
    """Orientation 0 (some phones write it) or 9: the picture is used as stored, and the save that
    rewrites only the changed blocks still applies (it refuses a rotated source)."""
    src = tmp_path / f"o{orientation}.jpg"
    Image.fromarray(rng_rgb(64, 64)).save(src, exif=exif_with(orientation=orientation), quality=90)
    loaded = load_image(src)
    with Image.open(src) as raw:
        assert np.array_equal(loaded.rgb, np.asarray(raw.convert("RGB")))
    assert loaded.source.orientation == 1
    rgb = loaded.rgb.copy()
    rgb[8:16, 8:16] = 0
    out = block_save(tmp_path, loaded, rgb)
    far = np.ones(rgb.shape[:2], bool)
    far[:32, :32] = False
    assert np.array_equal(np.asarray(Image.open(out).convert("RGB"))[far], loaded.rgb[far])


def test_an_orientation_stored_as_text_is_upright(tmp_path, caplog):
    """An orientation tag written as text ("6"): Pillow's exif_transpose (and strict viewers)
    leave the picture as stored; read as 6 it drew a warning that the blocks "do not line up
    with the upright one" and the JPEG was re-encoded whole, for a picture nothing turned."""
    text_6 = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x02\x00\x00\x00\x026\x00\x00\x00\x00\x00\x00\x00"
    src = tmp_path / "text.jpg"
    Image.fromarray(rng_rgb(64, 48)).save(src, exif=text_6, quality=90)
    with Image.open(src) as raw:
        assert raw.getexif().get(0x0112) == "6"  # the file holds what the test means
        stored = np.asarray(raw.convert("RGB"))
    with caplog.at_level(logging.WARNING):
        loaded = load_image(src)
    assert np.array_equal(loaded.rgb, stored) and loaded.source.orientation == 1
    assert "orientation is not a number" in caplog.text
    rgb = loaded.rgb.copy()
    rgb[8:16, 8:16] = 0
    out = block_save(tmp_path, loaded, rgb)  # the changed blocks only: it refuses a rotated source
    far = np.ones(rgb.shape[:2], bool)
    far[:32, :32] = False
    assert np.array_equal(np.asarray(Image.open(out).convert("RGB"))[far], loaded.rgb[far])


def test_save_never_writes_a_rotation(tmp_path):
    """Arrays are always upright, so EXIF handed to save_image is forced to orientation 1."""
    out = save_image(tmp_path / "x.jpg", rng_rgb(), metadata=PhotoMetadata(exif=exif_with(orientation=6)))
    with Image.open(out) as raw:
        assert raw.getexif().get(ORIENTATION) == 1
        assert raw.getexif().get(MAKE) == "TestCam"


# --- metadata --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "suffix, fmt", [(".jpg", "JPEG"), (".png", "PNG"), (".webp", "WEBP"), (".tif", "TIFF")]
)
def test_exif_and_icc_survive_load_save_load(tmp_path, suffix, fmt):
    src = tmp_path / f"src{suffix}"
    save_image(src, rng_rgb(), metadata=PhotoMetadata(exif=exif_with(), icc_profile=SRGB_ICC))
    first = load_image(src).metadata
    assert first.format == fmt
    assert first.icc_profile == SRGB_ICC
    assert parse_exif(first.exif).get(MAKE) == "TestCam"

    out = tmp_path / f"out{suffix}"
    save_image(out, load_image(src).rgb, metadata=first)
    second = load_image(out).metadata
    assert second.icc_profile == SRGB_ICC
    assert parse_exif(second.exif).get(MAKE) == "TestCam"
    assert parse_exif(second.exif).get_ifd(EXIF_IFD).get(DATE_TAKEN) == "2020:05:17 10:11:12"


def _exif_with_thumbnail(orientation: int, thumbnail: bytes) -> bytes:
    """A little-endian EXIF block: IFD0 (Make, Orientation) -> IFD1 holding a JPEG thumbnail."""
    ifd0 = 8
    ifd1 = ifd0 + 2 + 2 * 12 + 4
    thumb_at = ifd1 + 2 + 2 * 12 + 4
    t = b"II*\0" + struct.pack("<I", ifd0)
    t += struct.pack("<H", 2)
    t += struct.pack("<HHI4s", MAKE, 2, 4, b"Cam\0")
    t += struct.pack("<HHIHH", ORIENTATION, 3, 1, orientation, 0)
    t += struct.pack("<I", ifd1)
    t += struct.pack("<H", 2)
    t += struct.pack("<HHII", 0x0201, 4, 1, thumb_at)  # JPEGInterchangeFormat
    t += struct.pack("<HHII", 0x0202, 4, 1, len(thumbnail))  # ...Length
    t += struct.pack("<I", 0)
    return b"Exif\0\0" + t + thumbnail


@pytest.mark.parametrize("orientation", [1, 6])
def test_exif_thumbnail_of_the_original_is_not_carried_over(tmp_path, orientation):
    """The thumbnail shows the photo before retouching (the removed object): it must not reach the
    output, whatever the orientation; the rest of the EXIF is kept."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (255, 0, 0)).save(buf, "JPEG")
    thumbnail = buf.getvalue()
    src = tmp_path / f"thumb{orientation}.jpg"
    Image.new("RGB", (40, 20), (0, 0, 255)).save(src, exif=_exif_with_thumbnail(orientation, thumbnail))
    assert thumbnail in src.read_bytes()
    loaded = load_image(src)
    assert thumbnail not in loaded.metadata.exif
    out = save_image(tmp_path / "out.jpg", loaded.rgb, metadata=loaded.metadata)
    assert thumbnail not in out.read_bytes()
    with Image.open(out) as im:
        assert im.getexif().get(MAKE) == "Cam" and im.getexif().get(ORIENTATION) == 1
    # EXIF handed to save_image directly is cleaned the same way.
    direct = save_image(
        tmp_path / "direct.png", loaded.rgb, metadata=PhotoMetadata(exif=_exif_with_thumbnail(1, thumbnail))
    )
    assert thumbnail not in direct.read_bytes()
    assert parse_exif(load_image(direct).metadata.exif).get(MAKE) == "Cam"


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif"])
def test_xmp_thumbnails_of_the_original_are_not_carried_over(tmp_path, suffix):
    """XMP's own previews (xmp:Thumbnails, base64 JPEGs, as Lightroom and Bridge write them) went
    through untouched while the EXIF thumbnail was left out: the removed object stayed visible in
    catalogues. The rest of the packet is kept."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 12), (255, 0, 0)).save(buf, "JPEG")
    preview = base64.b64encode(buf.getvalue())
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="" xmlns:xap="http://ns.adobe.com/xap/1.0/" '
        b'xmlns:xapGImg="http://ns.adobe.com/xap/1.0/g/img/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        b"<dc:creator><rdf:Seq><rdf:li>J\xc3\xb6rg</rdf:li></rdf:Seq></dc:creator>"
        b'<xap:Thumbnails>\n <rdf:Alt><rdf:li rdf:parseType="Resource"><xapGImg:format>JPEG</xapGImg:format>'
        b"<xapGImg:image>" + preview + b"</xapGImg:image></rdf:li></rdf:Alt></xap:Thumbnails>"
        b"<xap:Rating>4</xap:Rating></rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    given = save_image(tmp_path / f"given{suffix}", rng_rgb(), metadata=PhotoMetadata(xmp=xmp))
    out = save_image(tmp_path / f"out{suffix}", rng_rgb(), metadata=load_image(given).metadata)
    for path in (given, out):
        data = path.read_bytes()
        assert preview[:60] not in data and b"Thumbnails" not in data, path.name
        assert b"<xap:Rating>4</xap:Rating>" in data and b"J\xc3\xb6rg" in data, path.name


def test_xmp_thumbnails_are_found_in_one_pass():
    """Each opening tag never closed made the search scan to the packet's end: 256 KB of them
    took 16 s (at load, and again at save)."""
    import time

    from engine.metadata import _without_thumbnails

    packet = b"<a>" + b"<xmp:Thumbnails>" * 16000 + b"</a>"
    t0 = time.perf_counter()
    assert _without_thumbnails(packet) == packet  # never closed: kept
    assert time.perf_counter() - t0 < 1
    kept = b"<xmp:ThumbnailsOld>a</xmp:ThumbnailsOld><xmp:Thumbnails-2>b</xmp:Thumbnails-2>"
    assert _without_thumbnails(
        b"<x><xap:Thumbnails a='1'>t</xap:Thumbnails><xmp:Thumbnails/>" + kept + b"</x>"
    ) == (b"<x>" + kept + b"</x>")


XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>'


@pytest.mark.parametrize("sampling", ["440", "411"])
def test_a_jpeg_of_a_sampling_pillow_cannot_write_is_written_4_4_4_with_its_tables(tmp_path, sampling):
    """4:4:0 (a lossless rotation of a 4:2:2 photo) and 4:1:1 came back 4:2:0: half of 4:4:0's
    horizontal chroma lost. 4:4:4 with the file's tables loses none of it."""
    import cv2

    flags = [cv2.IMWRITE_JPEG_QUALITY, 85, cv2.IMWRITE_JPEG_SAMPLING_FACTOR]
    flags.append(getattr(cv2, f"IMWRITE_JPEG_SAMPLING_FACTOR_{sampling}"))
    ok, data = cv2.imencode(".jpg", rng_rgb(64, 96), flags)
    src = tmp_path / f"s{sampling}.jpg"
    src.write_bytes(data.tobytes())
    loaded = load_image(src)
    assert loaded.metadata.jpeg_tables is not None and loaded.metadata.jpeg_tables.subsampling == 0
    out = save_image(tmp_path / "out.jpg", loaded.rgb, metadata=loaded.metadata, keep_jpeg_compression=True)
    with Image.open(src) as a, Image.open(out) as b:
        assert JpegImagePlugin.get_sampling(a) == -1  # none of 4:4:4, 4:2:2, 4:2:0
        assert b.quantization == a.quantization and JpegImagePlugin.get_sampling(b) == 0


def test_jpeg_tables_dpi_and_xmp_are_kept(tmp_path):
    """A JPEG written with the input's tables has the input's quantisation and subsampling
    (no fixed quality 95); DPI (swapped by a 90-degree orientation) and XMP survive."""
    src = tmp_path / "q70.jpg"
    Image.fromarray(rng_rgb(32, 48)).save(
        src, quality=70, subsampling=1, dpi=(300, 150), xmp=XMP, exif=exif_with(orientation=6)
    )
    loaded = load_image(src)
    meta = loaded.metadata
    assert meta.dpi == (150, 300) and meta.xmp == XMP
    assert meta.jpeg_tables is not None and meta.jpeg_tables.subsampling == 1
    out = save_image(tmp_path / "out.jpg", loaded.rgb, metadata=meta, keep_jpeg_compression=True)
    with Image.open(src) as a, Image.open(out) as b:
        assert b.quantization == a.quantization
        assert JpegImagePlugin.get_sampling(b) == 1
        assert b.info["dpi"] == (150, 300) and b.info["xmp"] == XMP
    dpi_xmp = PhotoMetadata(dpi=meta.dpi, xmp=meta.xmp)
    for suffix in (".png", ".tif", ".webp"):
        again = load_image(save_image(tmp_path / f"out{suffix}", loaded.rgb, metadata=dpi_xmp)).metadata
        assert again.xmp == XMP, suffix
        if suffix != ".webp":
            assert again.dpi is not None and np.allclose(again.dpi, (150, 300), atol=0.05), suffix
    plain = load_image(save_image(tmp_path / "x.tif", rng_rgb())).metadata
    assert plain.jpeg_tables is None and plain.dpi is None and plain.xmp is None
    exif_xmp = PhotoMetadata(exif=exif_with(), xmp=XMP)
    exif_too = load_image(save_image(tmp_path / "e.tif", rng_rgb(), metadata=exif_xmp)).metadata
    assert exif_too.xmp == XMP and parse_exif(exif_too.exif).get(MAKE) == "TestCam"


def png_chunks(path: Path) -> dict[bytes, bytes]:
    """A PNG's chunks by type (the last of each type), in a dict."""
    data, pos, out = Path(path).read_bytes(), 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        out[data[pos + 4 : pos + 8]] = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return out


GAMA = struct.pack(">I", 45455)
CHRM = struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000)


def test_png_colour_chunks_survive_load_save(tmp_path):
    """sRGB, gAMA and cHRM are read into the metadata and written again; with an ICC profile
    (iCCP) gAMA and cHRM stay beside it and sRGB is left out, as the PNG specification asks."""
    info = PngImagePlugin.PngInfo()
    info.add(b"sRGB", b"\x01")
    info.add(b"gAMA", GAMA)
    info.add(b"cHRM", CHRM)
    Image.fromarray(rng_rgb()).save(tmp_path / "in.png", pnginfo=info)
    loaded = load_image(tmp_path / "in.png")
    assert loaded.metadata.png_colour == PngColour(
        srgb=1, gamma=0.45455, chromaticity=(0.3127, 0.329, 0.64, 0.33, 0.3, 0.6, 0.15, 0.06)
    )
    out = png_chunks(save_image(tmp_path / "out.png", loaded.rgb, metadata=loaded.metadata))
    assert (out[b"sRGB"], out[b"gAMA"], out[b"cHRM"]) == (b"\x01", GAMA, CHRM)

    with_icc = replace(loaded.metadata, icc_profile=SRGB_ICC)
    out = png_chunks(save_image(tmp_path / "icc.png", loaded.rgb, metadata=with_icc))
    assert b"iCCP" in out and b"sRGB" not in out
    assert (out[b"gAMA"], out[b"cHRM"]) == (GAMA, CHRM)
    again = load_image(tmp_path / "icc.png").metadata
    assert again.icc_profile == SRGB_ICC and again.png_colour == PngColour(
        gamma=0.45455, chromaticity=(0.3127, 0.329, 0.64, 0.33, 0.3, 0.6, 0.15, 0.06)
    )

    only_gamma = PngImagePlugin.PngInfo()
    only_gamma.add(b"gAMA", GAMA)
    Image.fromarray(rng_rgb()[:, :, 0], "L").save(tmp_path / "grey.png", pnginfo=only_gamma)
    grey = load_image(tmp_path / "grey.png")
    out = png_chunks(save_image(tmp_path / "grey_out.png", grey.rgb, metadata=grey.metadata))
    assert out[b"gAMA"] == GAMA and b"sRGB" not in out and b"cHRM" not in out
    # Other formats cannot hold the chunks; a JPEG from that PNG has none of them.
    assert (
        load_image(save_image(tmp_path / "x.jpg", grey.rgb, metadata=grey.metadata)).metadata.png_colour
        is None
    )
    plain = load_image(save_image(tmp_path / "plain.png", rng_rgb())).metadata
    assert plain.png_colour is None


def test_invalid_png_colour_chunks_are_dropped_with_a_warning(tmp_path, caplog):
    info = PngImagePlugin.PngInfo()
    info.add(b"sRGB", b"\x07")
    info.add(b"gAMA", struct.pack(">I", 0))
    Image.fromarray(rng_rgb()).save(tmp_path / "odd.png", pnginfo=info)
    with caplog.at_level(logging.WARNING):
        assert load_image(tmp_path / "odd.png").metadata.png_colour is None
    assert "odd.png: its sRGB chunk" in caplog.text and "odd.png: its gAMA chunk" in caplog.text


def test_bmp_drops_metadata_it_cannot_hold_and_says_so(tmp_path, caplog):
    """It went without a word (Save As BMP of a JPEG with a colour profile changed its colours)."""
    meta = PhotoMetadata(exif=exif_with(), icc_profile=SRGB_ICC, xmp=b"<x:xmpmeta/>")
    with caplog.at_level(logging.WARNING, logger="engine"):
        out = save_image(tmp_path / "x.bmp", rng_rgb(), metadata=meta)
    loaded = load_image(out)
    assert loaded.metadata.format == "BMP" and loaded.metadata.exif is None
    np.testing.assert_array_equal(loaded.rgb, rng_rgb())
    assert "x.bmp: a BMP file cannot hold the photo's colour profile, EXIF and XMP" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="engine"):
        save_image(tmp_path / "x.png", rng_rgb(), metadata=replace(meta, iptc=_iptc_records(caption=b"a")))
        save_image(tmp_path / "y.png", rng_rgb(), metadata=meta)  # a PNG holds all three
    assert caplog.messages == [
        f"{tmp_path / 'x.png'}: a PNG file cannot hold the photo's IPTC records "
        "(captions, keywords); it is not written"
    ]


def test_jpeg_compression_is_kept_only_from_a_jpeg_to_a_jpeg_when_asked(tmp_path):
    """One rule (PhotoMetadata.jpeg_tables_for): the original's tables for a JPEG written from a
    JPEG with keep_jpeg_compression, else the quality."""
    src = tmp_path / "q40.jpg"
    Image.fromarray(rng_rgb(32, 48)).save(src, quality=40, subsampling=2)
    jpeg = load_image(src)
    png = load_image(save_image(tmp_path / "p.png", jpeg.rgb))
    kept = save_image(tmp_path / "kept.jpg", jpeg.rgb, metadata=jpeg.metadata, keep_jpeg_compression=True)
    not_asked = save_image(tmp_path / "q95.jpg", jpeg.rgb, metadata=jpeg.metadata)
    from_png = save_image(tmp_path / "png.jpg", png.rgb, metadata=png.metadata, keep_jpeg_compression=True)
    plain95 = save_image(tmp_path / "plain.jpg", jpeg.rgb)
    with Image.open(src) as a, Image.open(kept) as b, Image.open(not_asked) as c, Image.open(plain95) as d:
        assert b.quantization == a.quantization and JpegImagePlugin.get_sampling(b) == 2
        assert c.quantization == d.quantization != a.quantization
    with Image.open(from_png) as e, Image.open(plain95) as d:
        assert e.quantization == d.quantization
    assert jpeg.metadata.jpeg_tables_for("PNG", True) is None
    assert jpeg.metadata.jpeg_tables_for("JPEG", False) is None
    assert jpeg.metadata.jpeg_tables_for("JPEG", True) == jpeg.metadata.jpeg_tables


def test_a_colour_jpeg_with_one_shared_table_keeps_it(tmp_path):
    """One quantisation table for all three components is a colour JPEG's own choice: kept (only
    a greyscale JPEG's picture written in colour is written at the quality instead)."""
    table = list(range(1, 65))
    src = _save_pil(tmp_path, Image.fromarray(rng_rgb(32, 48)), "one.jpg", qtables=[table])
    loaded = load_image(src)
    assert len(loaded.metadata.jpeg_tables.qtables) == 1
    out = save_image(tmp_path / "out.jpg", loaded.rgb, metadata=loaded.metadata, keep_jpeg_compression=True)
    with Image.open(out) as written:
        assert [list(t) for t in written.quantization.values()] == [
            list(loaded.metadata.jpeg_tables.qtables[0])
        ]
    grey = replace(loaded.metadata, mode="L")
    assert grey.jpeg_tables_for("JPEG", True) is not None
    assert grey.jpeg_tables_for("JPEG", True, colour=True) is None


def test_metadata_as_written_describes_the_saved_file():
    tables = iio.JpegTables(((1,) * 64,), 2)
    meta = PhotoMetadata(exif=b"e", xmp=b"x", format="MPO", mode="CMYK", pages=3, jpeg_tables=tables)
    jpg = meta.as_written("JPEG", keep_jpeg_compression=True, alpha=False)
    assert (jpg.format, jpg.mode, jpg.pages, jpg.jpeg_tables) == ("JPEG", "RGB", 1, tables)
    assert (jpg.exif, jpg.xmp) == (b"e", b"x")
    png = meta.as_written("PNG", keep_jpeg_compression=True, alpha=True)
    assert (png.format, png.mode, png.jpeg_tables) == ("PNG", "RGBA", None)
    assert meta.as_written("JPEG", keep_jpeg_compression=False, alpha=False).jpeg_tables is None
    grey = PhotoMetadata(format="TIFF", mode="I;16")
    assert grey.is_greyscale and not meta.is_greyscale
    # a greyscale photo saved once is still greyscale for the next save (the app's Ctrl+S again)
    assert grey.as_written("PNG", keep_jpeg_compression=True, alpha=False).mode == "L"
    assert grey.as_written("PNG", keep_jpeg_compression=True, alpha=True).mode == "LA"
    # what is written where: JPEG and BMP no alpha; WebP has no grey (save_image writes it RGB),
    # yet the photo stays a greyscale one for the next save, its Gray profile with it
    assert grey.as_written("WEBP", keep_jpeg_compression=True, alpha=True).mode == "LA"
    assert grey.as_written("JPEG", keep_jpeg_compression=True, alpha=True).mode == "L"
    assert meta.as_written("BMP", keep_jpeg_compression=True, alpha=True).mode == "RGB"


# --- metadata that cannot be read: dropped, with a warning naming the file -------------------


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_damaged_exif_is_dropped_with_a_warning(tmp_path, caplog, suffix):
    src = tmp_path / f"damaged{suffix}"
    Image.fromarray(rng_rgb()).save(src, exif=b"Exif\x00\x00this is no TIFF header at all")
    with caplog.at_level(logging.WARNING):
        loaded = load_image(src)
    assert loaded.rgb.shape == (32, 48, 3) and loaded.metadata.exif is None
    assert f"damaged{suffix}: its EXIF block is damaged and is not copied to the output" in caplog.text
    if suffix == ".png":  # Pillow's PNG reader hands the damaged block to the orientation lookup too
        assert "damaged.png: its EXIF orientation cannot be read" in caplog.text
    assert all(r.levelno == logging.WARNING for r in caplog.records)


@pytest.mark.parametrize("big", ["maker note", "user comment"])
def test_a_jpeg_is_written_without_what_does_not_fit_its_segments(tmp_path, caplog, big):
    """EXIF or XMP larger than a JPEG's 64 KB segment (a large maker note, Photoshop's edit
    history) made the save fail: nothing was written. The JPEG is written with what fits."""
    exif = Image.Exif()
    exif[0x010F] = "Scanner Co"  # Make
    sub = {0x9003: "2001:02:03 04:05:06"}  # DateTimeOriginal
    sub[0x927C if big == "maker note" else 0x9286] = b"\x01" * 70_000
    exif[0x8769] = sub
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">' + b" " * 120_000 + b"</x:xmpmeta>"
    src = tmp_path / "big.png"
    Image.fromarray(rng_rgb()).save(src, exif=exif, pnginfo=_png_with_xmp(xmp))
    loaded = load_image(src)
    assert loaded.metadata.xmp and len(loaded.metadata.exif) > 70_000
    with caplog.at_level(logging.WARNING):
        out = save_image(tmp_path / "big.jpg", loaded.rgb, metadata=loaded.metadata)
    with Image.open(out) as im:
        assert im.size == (48, 32) and "xmp" not in im.info
        written = im.getexif()
    if big == "maker note":  # the rest of the EXIF stays
        assert written[0x010F] == "Scanner Co" and 0x927C not in written.get_ifd(0x8769)
        assert written.get_ifd(0x8769)[0x9003] == "2001:02:03 04:05:06"
        assert "big.jpg: its EXIF maker note (70," in caplog.text
    else:
        assert not written
        assert "big.jpg: its EXIF block (70," in caplog.text
    assert "big.jpg: its XMP packet (120," in caplog.text


def _png_with_xmp(xmp: bytes) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp.decode())
    return info


def test_png_text_chunks_and_a_jpeg_comment_are_kept(tmp_path):
    """A photographer's Author, Copyright and Description (PNG text chunks) and a scan's JPEG
    comment were dropped from every output."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jane Doe")
    info.add_text("Copyright", "(c) 2024 Jane Doe", zip=True)  # zTXt
    info.add_itxt("Description", "Grand-m\u00e8re, 1952 \u2014 \u0141\u00f3d\u017a")  # iTXt
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    info.add_text("Raw profile type exif", "\nexif\n   8\n4578696600004d4d\n")  # ImageMagick's copy
    info.add_text("Raw profile type iptc", "\nIPTC profile\n   4\n1c020000\n")  # a caption's block
    src = tmp_path / "p.png"
    Image.fromarray(rng_rgb()).save(src, pnginfo=info)
    loaded = load_image(src)
    assert dict(loaded.metadata.text) == {
        "Author": "Jane Doe",
        "Copyright": "(c) 2024 Jane Doe",
        "Description": "Grand-m\u00e8re, 1952 \u2014 \u0141\u00f3d\u017a",
        "Raw profile type iptc": "\nIPTC profile\n   4\n1c020000\n",
    }  # the XMP and the EXIF are kept on their own, not twice (the copy had the old orientation)
    out = save_image(tmp_path / "out.png", loaded.rgb, metadata=loaded.metadata)
    with Image.open(out) as im:
        im.load()
        assert {k: im.text[k] for k in dict(loaded.metadata.text)} == dict(loaded.metadata.text)
        assert im.info["XML:com.adobe.xmp"] == XMP.decode()
    jpg = tmp_path / "scan.jpg"
    Image.fromarray(rng_rgb()).save(jpg, quality=90, comment=b"Scanned by Jane, Epson V600")
    scan = load_image(jpg)
    changed = np.zeros(scan.rgb.shape[:2], bool)
    changed[:8, :8] = True
    for name, source in (("whole.jpg", None), ("blocks.jpg", scan.source)):  # re-encoded, or blocks kept
        out = save_image(
            tmp_path / name,
            scan.rgb,
            metadata=scan.metadata,
            keep_jpeg_compression=True,
            source=source,
            changed=changed,
        )
        with Image.open(out) as im:
            assert im.info["comment"] == b"Scanned by Jane, Epson V600", name
    as_png = load_image(save_image(tmp_path / "scan.png", scan.rgb, metadata=scan.metadata)).metadata
    assert dict(as_png.text) == {"Comment": "Scanned by Jane, Epson V600"}


def test_a_jpeg_comment_keeps_its_bytes_and_one_too_long_is_left_out(tmp_path, caplog):
    """A comment names no encoding: a Latin-1 one came back with U+FFFD for each accented
    letter, and then 3 bytes each, so that a 22 KB one no longer fitted its segment and the save
    failed. Its bytes are kept; a comment over 64 KB (from a PNG's text) is left out."""
    latin = "Caf\u00e9 M\u00fcller, 1952 ".encode("latin-1") * 1200  # 30 KB, not UTF-8
    src = tmp_path / "latin.jpg"
    Image.fromarray(rng_rgb()).save(src, quality=90, comment=latin)
    scan = load_image(src)
    assert scan.metadata.comment == latin
    with Image.open(save_image(tmp_path / "out.jpg", scan.rgb, metadata=scan.metadata)) as im:
        assert im.info["comment"] == latin
    as_png = load_image(save_image(tmp_path / "latin.png", scan.rgb, metadata=scan.metadata))
    assert dict(as_png.metadata.text)["Comment"] == latin.decode("latin-1")
    long = replace(scan.metadata, comment=None, text=(("Comment", "x" * 70_000),))
    with caplog.at_level(logging.WARNING):
        out = save_image(tmp_path / "long.jpg", scan.rgb, metadata=long)
    with Image.open(out) as im:
        assert "comment" not in im.info
    assert "long.jpg: its comment (70,000 bytes) does not fit" in caplog.text


def test_broken_icc_profile_is_dropped_with_a_warning(tmp_path, caplog):
    src = tmp_path / "badicc.png"
    Image.fromarray(rng_rgb()).save(src, icc_profile=b"not an ICC profile" * 8)
    with caplog.at_level(logging.WARNING):
        loaded = load_image(src)
    np.testing.assert_array_equal(loaded.rgb, rng_rgb())
    assert loaded.metadata.icc_profile is None
    assert "badicc.png: its ICC profile cannot be read and is not copied to the output" in caplog.text
    assert "OSError" in caplog.text


def test_cmyk_whose_profile_cannot_convert_falls_back_with_a_warning(tmp_path, caplog, monkeypatch):
    src = tmp_path / "print.jpg"
    Image.new("CMYK", (4, 4), (0, 255, 255, 0)).save(src, icc_profile=SRGB_ICC)
    monkeypatch.setattr(iio, "icc_colour_space", lambda icc, path: "CMYK")  # an RGB profile posing as CMYK
    with caplog.at_level(logging.WARNING):
        loaded = load_image(src)
    r, g, b = (int(v) for v in loaded.rgb[0, 0])
    assert r > 240 and g < 15 and b < 15  # Pillow's naive conversion
    assert loaded.metadata.icc_profile is None
    assert "print.jpg: its CMYK ICC profile cannot convert the picture to sRGB" in caplog.text


def test_unreadable_jpeg_tables_are_dropped_with_a_warning(tmp_path, caplog, monkeypatch):
    src = tmp_path / "odd.jpg"
    Image.fromarray(rng_rgb()).save(src, quality=50)

    def broken(im):
        raise IndexError("no such layer")

    monkeypatch.setattr(JpegImagePlugin, "get_sampling", broken)
    with caplog.at_level(logging.WARNING):
        loaded = load_image(src)
    assert loaded.metadata.jpeg_tables is None and loaded.metadata.format == "JPEG"
    assert "odd.jpg: its JPEG quantisation tables cannot be read" in caplog.text


def test_jpeg_defaults_quality_95_and_444(tmp_path):
    rgb = rng_rgb(64, 64)
    hi = save_image(tmp_path / "hi.jpg", rgb)
    lo = save_image(tmp_path / "lo.jpg", rgb, quality=50)
    with Image.open(hi) as im:
        assert JpegImagePlugin.get_sampling(im) == 0  # 4:4:4
    assert hi.stat().st_size > lo.stat().st_size
    err_hi = np.abs(load_image(hi).rgb.astype(int) - rgb).mean()
    err_lo = np.abs(load_image(lo).rgb.astype(int) - rgb).mean()
    assert err_hi < err_lo


def test_lossless_formats_round_trip_exactly(tmp_path):
    rgb = rng_rgb()
    for suffix in (".png", ".tif", ".bmp"):
        np.testing.assert_array_equal(load_image(save_image(tmp_path / f"a{suffix}", rgb)).rgb, rgb)


def test_explicit_format_overrides_suffix(tmp_path):
    out = save_image(tmp_path / "pic.dat", rng_rgb(), format="png")
    with Image.open(out) as im:
        assert im.format == "PNG"


# --- modes -----------------------------------------------------------------------------------


def _save_pil(tmp_path: Path, im: Image.Image, name: str, **kw) -> Path:
    p = tmp_path / name
    im.save(p, **kw)
    return p


def test_mode_L(tmp_path):
    g = np.arange(0, 256, dtype=np.uint8).reshape(16, 16)
    loaded = load_image(_save_pil(tmp_path, Image.fromarray(g, "L"), "g.png"))
    assert loaded.metadata.mode == "L" and loaded.alpha is None
    assert loaded.rgb.shape == (16, 16, 3)
    for c in range(3):
        np.testing.assert_array_equal(loaded.rgb[:, :, c], g)


def test_mode_1(tmp_path):
    bits = np.zeros((8, 8), bool)
    bits[2:4, 2:4] = True
    im = Image.fromarray(bits.astype(np.uint8) * 255, "L").convert("1")
    loaded = load_image(_save_pil(tmp_path, im, "b.png"))
    assert loaded.metadata.mode == "1"
    np.testing.assert_array_equal(loaded.rgb[:, :, 0] == 255, bits)
    assert set(np.unique(loaded.rgb)) <= {0, 255}


@pytest.mark.parametrize(
    "mode, name",
    [("L", "g.png"), ("L", "g.jpg"), ("LA", "g.png"), ("I", "g.png"), ("1", "g.tif")],
)
def test_a_greyscale_photo_is_written_greyscale_while_its_pixels_are(tmp_path, mode, name):
    """A grey file filled in grey (as the engine fills it) is written grey again, pixels exact
    where the format is lossless; once a pixel has colour it is written in colour: nothing lost."""
    g = rng_rgb(16, 24)[:, :, 0]
    im = Image.fromarray(g, "L")
    if mode == "LA":
        im = Image.merge("LA", [im, Image.fromarray(np.full((16, 24), 200, np.uint8))])
    elif mode == "I":
        im = Image.fromarray(g.astype(np.uint16) * 257)  # 16-bit grey, read as 8-bit
    elif mode == "1":
        im = im.convert("1")
    src = load_image(_save_pil(tmp_path, im, "src" + Path(name).suffix))
    assert src.metadata.mode.startswith(mode)
    out = tmp_path / "out" / name
    out.parent.mkdir()
    save_image(out, src.rgb, alpha=src.alpha, metadata=src.metadata)
    with Image.open(out) as written:
        assert written.mode == ("LA" if mode == "LA" else "L")
    back = load_image(out)
    if not name.endswith(".jpg"):
        np.testing.assert_array_equal(back.rgb, src.rgb)
    again = tmp_path / "again" / name  # saved from the written file's metadata: still grey
    again.parent.mkdir()
    written_meta = src.metadata.as_written(
        back.metadata.format, keep_jpeg_compression=False, alpha=src.alpha is not None
    )
    with Image.open(save_image(again, back.rgb, alpha=back.alpha, metadata=written_meta)) as w2:
        assert w2.mode == ("LA" if mode == "LA" else "L")
    coloured = src.rgb.copy()
    coloured[3:5, 4:6] = (200, 10, 10)
    save_image(out, coloured, alpha=src.alpha, metadata=src.metadata, keep_jpeg_compression=True)
    with Image.open(out) as written:
        assert written.mode in ("RGB", "RGBA")
    if name.endswith(".jpg"):  # not the grey file's one (luma) table for the colour: quality 95, 4:4:4
        r, g, b = (int(v) for v in load_image(out).rgb[3, 4])
        assert r > 170 and g < 40 and b < 40, (r, g, b)


@pytest.mark.parametrize("alpha", [False, True])
def test_a_lossless_webp_is_written_lossless_and_a_lossy_one_lossy(tmp_path, alpha):
    rgb = rng_rgb(24, 32)
    im = Image.fromarray(rgb)
    if alpha:
        im.putalpha(Image.fromarray(np.linspace(0, 255, 24 * 32).astype(np.uint8).reshape(24, 32)))
    im.save(tmp_path / "lossless.webp", lossless=True, exact=True)
    im.save(tmp_path / "lossy.webp", quality=80)
    src = load_image(tmp_path / "lossless.webp")
    assert src.metadata.lossless and not load_image(tmp_path / "lossy.webp").metadata.lossless
    filled = src.rgb.copy()
    filled[8:12, 8:12] = 0
    out = save_image(tmp_path / "out.webp", filled, alpha=src.alpha, metadata=src.metadata)
    back = load_image(out)
    assert back.metadata.lossless
    np.testing.assert_array_equal(back.rgb, filled)  # every pixel exact, not only the hole's
    if alpha:
        np.testing.assert_array_equal(back.alpha, src.alpha)
    assert src.metadata.as_written("WEBP", keep_jpeg_compression=True, alpha=alpha).lossless
    assert not src.metadata.as_written("PNG", keep_jpeg_compression=True, alpha=alpha).lossless
    lossy = load_image(tmp_path / "lossy.webp")
    again = load_image(
        save_image(tmp_path / "again.webp", lossy.rgb, alpha=lossy.alpha, metadata=lossy.metadata)
    )
    assert not again.metadata.lossless
    frames = [Image.fromarray(rng_rgb(24, 32, seed=k)) for k in (1, 2)]
    frames[0].save(tmp_path / "anim.webp", save_all=True, append_images=frames[1:], lossless=True)
    assert iio.read_webp_lossless(tmp_path / "anim.webp")  # the first frame's bitstream
    frames[0].save(tmp_path / "anim_lossy.webp", save_all=True, append_images=frames[1:], quality=80)
    assert not iio.read_webp_lossless(tmp_path / "anim_lossy.webp")
    (tmp_path / "not.webp").write_bytes(b"RIFF\x04\x00\x00\x00WEBP")  # truncated: not lossless
    assert not iio.read_webp_lossless(tmp_path / "not.webp")


@pytest.mark.parametrize("name", ["g.png", "g.jpg", "g.tif"])
def test_a_grey_files_gray_profile_is_written_back_with_its_grey_picture(tmp_path, name, caplog):
    gray = gray_profile()
    assert ImageCms.ImageCmsProfile(io.BytesIO(gray)).profile.xcolor_space.strip() == "GRAY"
    src = _save_pil(tmp_path, Image.fromarray(rng_rgb(16, 24)[:, :, 0], "L"), name, icc_profile=gray)
    loaded = load_image(src)
    assert loaded.metadata.icc_profile is None  # it does not describe the RGB pixels ...
    assert loaded.metadata.grey_icc_profile == gray  # ... but the grey ones it is written with
    out = save_image(tmp_path / ("out_" + name), loaded.rgb, metadata=loaded.metadata)
    with Image.open(out) as written:
        assert written.mode == "L" and written.info.get("icc_profile") == gray
    assert "Gray colour profile" not in caplog.text
    coloured = loaded.rgb.copy()
    coloured[2, 3] = (200, 10, 10)  # written RGB: the Gray profile would mislabel it
    with (
        caplog.at_level(logging.WARNING),
        Image.open(save_image(tmp_path / ("rgb_" + name), coloured, metadata=loaded.metadata)) as written,
    ):
        assert written.mode == "RGB" and not written.info.get("icc_profile")
    assert "Gray colour profile describes grey pixels" in caplog.text  # it went without a word
    assert "the retouched picture is not grey" in caplog.text


def test_a_grey_photo_written_as_webp_says_its_gray_profile_is_not_written(tmp_path, caplog):
    """WebP holds no grey pictures: written RGB, the Gray profile was dropped without a word
    (a linear grey's mid-grey 128, shown as 188, then read as sRGB 128)."""
    src = _save_pil(
        tmp_path, Image.fromarray(rng_rgb(16, 24)[:, :, 0], "L"), "g.png", icc_profile=gray_profile(1.0)
    )
    loaded = load_image(src)
    with caplog.at_level(logging.WARNING):
        out = save_image(tmp_path / "g.webp", loaded.rgb, metadata=loaded.metadata)
    with Image.open(out) as written:
        assert written.mode == "RGB" and not written.info.get("icc_profile")
    assert "a WebP file holds no grey pictures" in caplog.text


def test_a_16_bit_grey_png_with_alpha_is_a_greyscale_file(tmp_path):
    """Pillow opens a 16-bit grey PNG with alpha (colour type 4) as RGBA: it was written RGBA
    without its Gray profile, the README's promise for greyscale photos broken."""
    gray = gray_profile()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    g = (rng_rgb(16, 24)[:, :, 0].astype(np.uint16) * 257).astype(">u2")
    a = np.full((16, 24), 65535, ">u2")
    a[:2] = 0
    rows = b"".join(b"\0" + np.dstack([g, a])[y].tobytes() for y in range(16))
    src = tmp_path / "la16.png"
    src.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 24, 16, 16, 4, 0, 0, 0))
        + chunk(b"iCCP", b"gray\0\0" + zlib.compress(gray))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    loaded = load_image(src)
    meta = loaded.metadata
    assert meta.mode == "LA;16" and meta.is_greyscale and meta.bits_per_channel_lost
    assert meta.grey_icc_profile == gray and loaded.alpha is not None and not loaded.alpha[:2].any()
    with Image.open(
        save_image(tmp_path / "out.png", loaded.rgb, alpha=loaded.alpha, metadata=meta)
    ) as written:
        assert written.mode == "LA" and written.info.get("icc_profile") == gray
        np.testing.assert_array_equal(np.asarray(written)[:, :, 0], (g >> 8).astype(np.uint8))


def test_a_colour_photo_of_grey_pixels_stays_rgb(tmp_path):
    g = np.repeat(rng_rgb(16, 24)[:, :, :1], 3, axis=2)  # neutral pixels in an RGB file
    src = load_image(_save_pil(tmp_path, Image.fromarray(g, "RGB"), "rgb.png"))
    with Image.open(save_image(tmp_path / "out.png", src.rgb, metadata=src.metadata)) as written:
        assert written.mode == "RGB"


@pytest.mark.parametrize("transparent", [False, True])
def test_a_palette_file_of_grey_is_written_grey_and_one_of_colour_in_colour(tmp_path, transparent):
    """A palette file (mode P, neither grey nor RGB) whose picture is grey is written grey (L, LA
    with its transparency), pixels exact; once a pixel takes colour, RGB; a palette of colours
    stays RGB."""
    g = rng_rgb(16, 24)[:, :, 0] // 4 * 4
    grey = Image.fromarray(g, "L").convert("P")
    assert set(grey.getpalette()[0::3]) == set(grey.getpalette()[1::3])  # a grey palette
    if transparent:
        grey.info["transparency"] = int(grey.getpixel((0, 0)))
    src = load_image(_save_pil(tmp_path, grey, "grey.png"))
    assert src.metadata.mode == "P" and src.metadata.is_greyscale
    with Image.open(save_image(tmp_path / "out.png", src.rgb, alpha=src.alpha, metadata=src.metadata)) as w:
        assert w.mode == ("LA" if transparent else "L")
    back = load_image(tmp_path / "out.png")
    np.testing.assert_array_equal(back.rgb, src.rgb)
    if transparent:
        np.testing.assert_array_equal(back.alpha, src.alpha)
    coloured = src.rgb.copy()
    coloured[2, 3] = (200, 10, 10)
    with Image.open(save_image(tmp_path / "c.png", coloured, alpha=src.alpha, metadata=src.metadata)) as w:
        assert w.mode == ("RGBA" if transparent else "RGB")
    colour = load_image(_save_pil(tmp_path, _palette_image(), "p.png"))
    assert not colour.metadata.is_greyscale
    with Image.open(save_image(tmp_path / "p_out.png", colour.rgb, metadata=colour.metadata)) as w:
        assert w.mode == "RGB"
    # the written file's metadata says grey through its mode, not the flag; after a WebP (written
    # RGB) the photo is still a grey one for the next save
    assert src.metadata.as_written("PNG", keep_jpeg_compression=False, alpha=transparent).is_greyscale
    webp = src.metadata.as_written("WEBP", keep_jpeg_compression=False, alpha=transparent)
    assert webp.mode in ("L", "LA") and webp.is_greyscale and not webp.grey_palette


def test_a_grey_palette_file_with_an_rgb_profile_stays_rgb_with_it(tmp_path):
    """A palette file's ICC profile is an RGB one, which a grey file cannot carry: the grey
    picture is written RGB with the profile, as before, rather than grey without it."""
    g = rng_rgb(16, 24)[:, :, 0] // 4 * 4
    src_path = tmp_path / "grey_icc.png"
    Image.fromarray(g, "L").convert("P").save(src_path, icc_profile=SRGB_ICC)
    src = load_image(src_path)
    assert src.metadata.mode == "P" and src.metadata.icc_profile and not src.metadata.is_greyscale
    with Image.open(save_image(tmp_path / "out.png", src.rgb, metadata=src.metadata)) as w:
        assert w.mode == "RGB" and w.info.get("icc_profile") == src.metadata.icc_profile


def _palette_image() -> Image.Image:
    p = Image.new("P", (8, 8), 0)
    p.putpalette([200, 10, 20, 5, 250, 6] + [0] * (256 * 3 - 6))
    p.putpixel((1, 1), 1)
    return p


def test_mode_P(tmp_path):
    loaded = load_image(_save_pil(tmp_path, _palette_image(), "p.png"))
    assert loaded.metadata.mode == "P" and loaded.alpha is None
    assert tuple(loaded.rgb[0, 0]) == (200, 10, 20)
    assert tuple(loaded.rgb[1, 1]) == (5, 250, 6)


def test_mode_P_with_transparency_gives_alpha(tmp_path):
    loaded = load_image(_save_pil(tmp_path, _palette_image(), "pt.png", transparency=1))
    assert loaded.alpha is not None
    assert loaded.alpha[1, 1] == 0 and loaded.alpha[0, 0] == 255
    assert tuple(loaded.rgb[0, 0]) == (200, 10, 20)


def test_a_16_bit_grey_png_keeps_its_transparent_level(tmp_path):
    """A 16-bit grey PNG's tRNS chunk names one transparent level: alpha 0 there, as for 8 bits
    (it was dropped, and the file saved from it came out opaque)."""
    levels = (np.arange(36, dtype=np.uint16).reshape(6, 6) * 1000).astype(np.uint16)
    levels[2, 3] = 4321
    src = _save_pil(tmp_path, Image.fromarray(levels), "g16.png", transparency=4321)
    loaded = load_image(src)
    assert loaded.alpha is not None
    assert (loaded.alpha == 0).sum() == 1 and loaded.alpha[2, 3] == 0
    out = save_image(tmp_path / "out.png", loaded.rgb, metadata=loaded.metadata, alpha=loaded.alpha)
    with Image.open(out) as again:
        assert np.asarray(again.convert("RGBA"))[2, 3, 3] == 0


@pytest.mark.parametrize("suffix", [".tif", ".jpg", ".png"])
def test_a_turned_photo_s_resolution_is_turned_too(tmp_path, suffix):
    """Orientation 6 with 100 x 200 DPI: the upright picture is 200 x 100 DPI in every format
    (a TIFF kept 100 x 200: Pillow turns it upright as it decodes and drops the tag)."""
    src = tmp_path / f"o6{suffix}"
    Image.fromarray(_landscape_with_white_left_band()).save(
        src, exif=exif_with(orientation=6), dpi=(100, 200)
    )
    loaded = load_image(src)
    assert loaded.rgb.shape == (40, 20, 3) and loaded.rgb[:8].mean() > 200
    assert np.allclose(loaded.metadata.dpi, (200, 100), atol=0.01)


def test_mode_LA(tmp_path):
    la = np.zeros((6, 6, 2), np.uint8)
    la[..., 0] = 90
    la[..., 1] = np.arange(36, dtype=np.uint8).reshape(6, 6) * 7
    loaded = load_image(_save_pil(tmp_path, Image.fromarray(la, "LA"), "la.png"))
    assert loaded.metadata.mode == "LA"
    np.testing.assert_array_equal(loaded.alpha, la[..., 1])
    assert (loaded.rgb == 90).all()


def test_mode_RGBA_alpha_kept_and_restored(tmp_path):
    rgb = rng_rgb(16, 16)
    alpha = np.random.default_rng(1).integers(0, 256, (16, 16), dtype=np.uint8)
    src = tmp_path / "a.png"
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(src)
    loaded = load_image(src)
    assert loaded.metadata.mode == "RGBA"
    np.testing.assert_array_equal(loaded.alpha, alpha)
    np.testing.assert_array_equal(loaded.rgb, rgb)
    for suffix in (".png", ".tif", ".webp"):
        back = load_image(save_image(tmp_path / f"b{suffix}", loaded.rgb, alpha=loaded.alpha, quality=100))
        assert back.alpha is not None
        if suffix != ".webp":
            np.testing.assert_array_equal(back.alpha, alpha)
            np.testing.assert_array_equal(back.rgb, rgb)
        else:  # lossy rgb; alpha kept
            assert np.abs(back.alpha.astype(int) - alpha).max() <= 2


def test_alpha_flattened_on_white_for_jpeg_and_bmp(tmp_path, caplog):
    rgb = np.zeros((4, 4, 3), np.uint8)
    alpha = np.full((4, 4), 255, np.uint8)
    save_image(tmp_path / "opaque.jpg", rgb, alpha=alpha)
    assert not caplog.messages  # nothing transparent: nothing to say
    alpha[0, 0] = 0
    for suffix in (".jpg", ".bmp"):
        with caplog.at_level(logging.WARNING, logger="engine"):
            back = load_image(save_image(tmp_path / f"f{suffix}", rgb, alpha=alpha))
        assert (
            f"f{suffix}: a" in caplog.text
            and "holds no transparency; the picture is flattened onto white" in caplog.text
        )
        assert back.alpha is None
        assert back.rgb[0, 0].min() >= 240  # transparent -> white
        assert back.rgb[3, 3].max() <= 15  # opaque black stays black


def test_mode_CMYK_without_profile(tmp_path):
    im = Image.new("CMYK", (4, 4), (0, 255, 255, 0))  # pure red in naive conversion
    for name in ("c.jpg", "c.tif"):
        loaded = load_image(_save_pil(tmp_path, im, name))
        assert loaded.metadata.mode == "CMYK"
        r, g, b = (int(v) for v in loaded.rgb[0, 0])
        assert r > 240 and g < 15 and b < 15


def test_a_cmyk_jpeg_is_written_as_rgb_at_the_quality_with_full_chroma(tmp_path):
    """The ink file's tables and sampling do not describe the RGB JPEG written from it: that one
    is written at quality 95 with 4:4:4 chroma even when the original's compression is kept."""
    src = _save_pil(tmp_path, Image.fromarray(rng_rgb(32, 48)).convert("CMYK"), "c.jpg", quality=90)
    loaded = load_image(src)
    assert loaded.metadata.jpeg_tables is None
    out = save_image(tmp_path / "out.jpg", loaded.rgb, metadata=loaded.metadata, keep_jpeg_compression=True)
    with Image.open(out) as written:
        assert written.mode == "RGB" and JpegImagePlugin.get_sampling(written) == 0


def test_mode_16bit_gray_scaled_not_clipped(tmp_path):
    a = np.array([[0, 257 * 100, 32768, 65535]], dtype=np.uint16)
    src = tmp_path / "g16.png"
    Image.fromarray(a).save(src)
    loaded = load_image(src)
    assert loaded.metadata.mode.startswith("I")
    assert list(loaded.rgb[0, :, 0]) == [0, 100, 128, 255]


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_rgb_is_reported_as_such(tmp_path, suffix):
    import cv2

    a = np.zeros((4, 4, 3), np.uint16)
    a[..., 2] = 65535  # OpenCV writes BGR: this is red
    a[0, 0] = (0, 257 * 100, 0)
    src = tmp_path / f"rgb16{suffix}"
    assert cv2.imwrite(str(src), a)
    loaded = load_image(src)
    assert loaded.metadata.mode == "RGB;16"  # Pillow itself says "RGB": 8 bits would be written back
    assert loaded.rgb.dtype == np.uint8 and tuple(loaded.rgb[1, 1]) == (255, 0, 0)
    assert tuple(loaded.rgb[0, 0]) == (0, 100, 0)
    # an ordinary 8-bit file keeps Pillow's mode
    Image.fromarray(loaded.rgb).save(tmp_path / "rgb8.png")
    assert load_image(tmp_path / "rgb8.png").metadata.mode == "RGB"


def test_mode_F_and_I(tmp_path):
    f = np.array([[0.0, 0.5, 1.0]], np.float32)
    loaded = load_image(_save_pil(tmp_path, Image.fromarray(f, "F"), "f.tif"))
    assert list(loaded.rgb[0, :, 1]) == [0, 128, 255]
    i = np.array([[0, 1000, 65535]], np.int32)
    loaded = load_image(_save_pil(tmp_path, Image.fromarray(i, "I"), "i.tif"))
    assert list(loaded.rgb[0, :, 2]) == [0, 4, 255]


# --- bad input -------------------------------------------------------------------------------


def test_corrupt_bytes(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg" * 20)
    with pytest.raises(ImageReadError, match="broken.jpg"):
        load_image(bad)


def test_truncated_jpeg(tmp_path):
    src = tmp_path / "full.jpg"
    save_image(src, rng_rgb(128, 128))
    data = src.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ImageReadError, match="cut.jpg"):
        load_image(cut)


@pytest.mark.parametrize("progressive", [False, True])
def test_a_jpeg_missing_only_its_end_marker_loads_whole_with_a_warning(
    tmp_path, caplog, monkeypatch, progressive
):
    """Some cameras and interrupted copies leave a JPEG whose data is complete but for the
    two-byte end-of-image marker: Pillow refused it as truncated (batch, detect and the app),
    where browsers and OpenCV read it whole. It loads whole now, with a warning, the file as it
    was; a JPEG that lost one byte more is still refused. A JPEG written from it keeps the
    blocks that hold no filled pixel."""
    buf = io.BytesIO()
    Image.fromarray(rng_rgb(96, 128, seed=5)).save(buf, "JPEG", quality=90, progressive=progressive)
    data = buf.getvalue()
    intact, short = tmp_path / "intact.jpg", tmp_path / "short.jpg"
    intact.write_bytes(data)
    short.write_bytes(data[:-2])
    with caplog.at_level(logging.WARNING):
        loaded = load_image(short)
    assert np.array_equal(loaded.rgb, load_image(intact).rgb)
    assert "short.jpg: the JPEG ends without its end-of-image marker" in caplog.text
    assert short.read_bytes() == data[:-2]
    # Pillow's own pixel limit stays out of it, as for any load (ours is max_pixels): a large
    # photo read so raised DecompressionBombError
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    assert np.array_equal(load_image(short).rgb, loaded.rgb)
    monkeypatch.undo()
    lost = tmp_path / "lost.jpg"
    lost.write_bytes(data[:-3])
    with pytest.raises(ImageReadError, match="lost.jpg"):
        load_image(lost)

    filled = loaded.rgb.copy()
    filled[20:30, 20:30] = 0
    out = block_save(tmp_path, loaded, filled)
    again = load_image(out).rgb.astype(int)
    far = np.ones(filled.shape[:2], bool)
    far[8:40, 8:40] = False  # the changed blocks and their neighbours
    if not progressive:  # a progressive input is re-encoded whole (said in a warning)
        assert np.array_equal(again[far], loaded.rgb[far].astype(int))


@pytest.mark.parametrize("kind", ["baseline", "progressive", "grey", "cmyk"])
def test_a_jpeg_with_damaged_data_loads_with_a_warning_that_says_so(tmp_path, caplog, kind):
    """libjpeg decodes a damaged scan as far as it can and Pillow says nothing (garbled blocks
    from the damage on); the load names the file and the damage, and leaves the file as it was."""
    picture = Image.fromarray(rng_rgb(128, 160, seed=3))
    picture = {"grey": picture.convert("L"), "cmyk": picture.convert("CMYK")}.get(kind, picture)
    buf = io.BytesIO()
    picture.save(buf, "JPEG", quality=90, progressive=kind == "progressive")
    intact, damaged = tmp_path / "intact.jpg", tmp_path / "damaged.jpg"
    intact.write_bytes(buf.getvalue())
    damaged.write_bytes(scan_damaged(buf.getvalue()))
    before = sha(damaged)
    with caplog.at_level(logging.WARNING):
        good = load_image(intact)
    assert "is damaged" not in caplog.text  # an intact file: no word of damage (a CMYK one's colours)
    with caplog.at_level(logging.WARNING):
        bad = load_image(damaged)
    assert bad.size == good.size  # it still loads: a retoucher may want to mend it
    assert np.abs(bad.rgb.astype(int) - good.rgb).max() > 50  # Pillow did decode it garbled
    assert "damaged.jpg: the JPEG's compressed data is damaged" in caplog.text
    assert "libjpeg: Corrupt JPEG data" in caplog.text or "Premature end" in caplog.text
    assert sha(damaged) == before


def test_header_warnings_are_not_damage_and_do_not_hide_it(tmp_path, caplog):
    """An unknown JFIF version and padding between the header's segments are libjpeg warnings
    too, but not about the picture; libjpeg's strict decode stops at its first warning, so
    they must not keep it from reaching a damaged scan after them."""
    buf = io.BytesIO()
    Image.fromarray(rng_rgb(64, 64)).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    jfif = data.index(b"JFIF\x00")
    odd = data[: jfif + 5] + b"\x09" + data[jfif + 6 :]  # JFIF major version 9
    dqt = odd.index(b"\xff\xdb")
    odd = odd[:dqt] + b"\x00\x00" + odd[dqt:]  # two bytes of padding before the tables
    (tmp_path / "odd.jpg").write_bytes(odd)
    (tmp_path / "odd-damaged.jpg").write_bytes(scan_damaged(odd))
    with caplog.at_level(logging.WARNING):
        load_image(tmp_path / "odd.jpg")
    assert "damaged" not in caplog.text
    with caplog.at_level(logging.WARNING):
        load_image(tmp_path / "odd-damaged.jpg")
    assert "odd-damaged.jpg: the JPEG's compressed data is damaged" in caplog.text


def test_the_damage_check_can_be_left_out(tmp_path, caplog):
    """A reader that loads the same files over and over (the trainer's native crops) skips it."""
    buf = io.BytesIO()
    Image.fromarray(rng_rgb(64, 64)).save(buf, "JPEG", quality=90)
    (tmp_path / "d.jpg").write_bytes(scan_damaged(buf.getvalue()))
    with caplog.at_level(logging.WARNING):
        load_image(tmp_path / "d.jpg", check_jpeg_data=False)
    assert "damaged" not in caplog.text


def test_the_damage_check_runs_beside_the_decode(tmp_path, monkeypatch, caplog):
    """The check (a second decode) runs on its own thread while Pillow decodes: the decode here
    waits for the check to have started, which a check run after it never would; what the check
    finds is still logged by the load, and an error in it reaches the caller."""
    import threading
    import time

    buf = io.BytesIO()
    Image.fromarray(rng_rgb(64, 64)).save(buf, "JPEG", quality=90)
    (tmp_path / "d.jpg").write_bytes(buf.getvalue())
    started, threads = threading.Event(), []
    decode = iio._decode

    def check(data):
        threads.append(threading.current_thread())
        started.set()
        return "Corrupt JPEG data: a planted finding"

    def waiting_decode(im, path, what):
        assert started.wait(10), "the check did not start before the decode ended"
        decode(im, path, what)

    monkeypatch.setattr(iio, "jpeg_damage", check)
    monkeypatch.setattr(iio, "_decode", waiting_decode)
    with caplog.at_level(logging.WARNING):
        load_image(tmp_path / "d.jpg")
    assert threads and threads[0] is not threading.current_thread()
    assert (
        "d.jpg: the JPEG's compressed data is damaged (libjpeg: Corrupt JPEG data: a planted" in caplog.text
    )

    def failing(data):
        started.set()
        raise RuntimeError("the check broke")

    monkeypatch.setattr(iio, "jpeg_damage", failing)
    with pytest.raises(RuntimeError, match="the check broke"):
        load_image(tmp_path / "d.jpg")

    # a decode that fails waits for the check: nothing is left reading the file after the error
    finished = threading.Event()

    def slow_check(data):
        started.set()
        time.sleep(0.3)
        finished.set()

    def failing_decode(im, path, what):
        started.wait(10)
        raise iio.ImageReadError("the decode broke")

    monkeypatch.setattr(iio, "jpeg_damage", slow_check)
    monkeypatch.setattr(iio, "_decode", failing_decode)
    started.clear()
    with pytest.raises(iio.ImageReadError, match="the decode broke"):
        load_image(tmp_path / "d.jpg")
    assert finished.is_set()


@pytest.mark.parametrize("compression", ["tiff_lzw", "tiff_adobe_deflate"])
def test_a_compressed_tiff_with_descriptive_tags_stays_compressed(tmp_path, compression):
    """Nearly every TIFF names its Software, DateTime or Artist: any such tag made an LZW or
    Deflate TIFF come back uncompressed (1.5-4x its size). Only EXIF sub-directories (Exif, GPS),
    which libtiff's compressed writer cannot write, still need the uncompressed writer."""
    y, x = np.mgrid[0:60, 0:80]
    smooth = np.stack([x * 3, y * 4, x + y], -1).astype(np.uint8)
    tags = TiffImagePlugin.ImageFileDirectory_v2()
    tags[305] = "Scanner Software 2.1"  # Software
    tags[315] = "Jane"  # Artist
    src = tmp_path / "scan.tif"
    Image.fromarray(smooth).save(src, compression=compression, tiffinfo=tags)
    loaded = load_image(src)
    out = save_image(tmp_path / "out.tif", loaded.rgb, metadata=loaded.metadata)
    with Image.open(out) as im:
        assert im.info["compression"] == compression
        assert im.tag_v2[305] == "Scanner Software 2.1" and im.tag_v2[315] == "Jane"
        np.testing.assert_array_equal(np.asarray(im), smooth)
    with_sub = replace(loaded.metadata, exif=exif_with())  # a camera's EXIF: Exif sub-directory
    out = save_image(tmp_path / "sub.tif", loaded.rgb, metadata=with_sub)
    with Image.open(out) as im:
        assert im.info["compression"] == "raw" and im.getexif().get_ifd(EXIF_IFD)[DATE_TAKEN]


def test_multi_page_tiff_loads_the_first_page_and_says_so(tmp_path):
    pages = [Image.fromarray(np.full((8, 10, 3), 40 * (i + 1), np.uint8)) for i in range(3)]
    src = tmp_path / "multi.tif"
    pages[0].save(src, save_all=True, append_images=pages[1:])
    with pytest.warns(iio.MultiPageWarning, match=r"multi\.tif holds 3 pages"):
        loaded = load_image(src)
    assert loaded.metadata.pages == 3
    assert (loaded.rgb == 40).all()
    single = save_image(tmp_path / "one.tif", rng_rgb())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a single page: no warning
        assert load_image(single).metadata.pages == 1


def test_missing_file(tmp_path):
    with pytest.raises(ImageNotFoundError, match="nothere.png") as info:
        load_image(tmp_path / "nothere.png")
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(ImageReadError):
        load_image(tmp_path)  # a folder


def test_decompression_bomb_limit(tmp_path):
    src = save_image(tmp_path / "big.png", rng_rgb(100, 100))
    with pytest.raises(ImageTooLargeError, match="10,000 pixels"):
        load_image(src, max_pixels=9_999)
    assert load_image(src, max_pixels=10_000).rgb.shape == (100, 100, 3)


def _png_header_only(path: Path, width: int, height: int) -> None:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


def test_bomb_refused_from_header_with_default_limit(tmp_path):
    """A 900-megapixel header is refused before any decoding, and Pillow's global is untouched."""
    bomb = tmp_path / "bomb.png"
    _png_header_only(bomb, 30_000, 30_000)
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageTooLargeError, match="bomb.png"):
        load_image(bomb)
    with pytest.raises(ImageTooLargeError):
        load_mask(bomb)
    assert before == Image.MAX_IMAGE_PIXELS


def test_input_file_unchanged_by_load(tmp_path):
    src = tmp_path / "in.jpg"
    Image.fromarray(_landscape_with_white_left_band()).save(src, exif=exif_with(orientation=6))
    digest, mtime = sha(src), src.stat().st_mtime_ns
    load_image(src)
    load_mask(src)
    assert sha(src) == digest and src.stat().st_mtime_ns == mtime


# --- saving: validation and atomicity --------------------------------------------------------


@pytest.mark.parametrize(
    "array, kwargs, message",
    [
        (np.zeros((4, 4, 3), np.float32), {}, "uint8"),
        (np.zeros((4, 4), np.uint8), {}, "HxWx3"),
        (np.zeros((4, 4, 4), np.uint8), {}, "HxWx3"),
        ([[0]], {}, "numpy"),
        (np.zeros((4, 4, 3), np.uint8), {"alpha": np.zeros((3, 4), np.uint8)}, "alpha"),
        (np.zeros((4, 4, 3), np.uint8), {"alpha": np.zeros((4, 4), bool)}, "alpha"),
        (np.zeros((4, 4, 3), np.uint8), {"quality": 0}, "quality"),
    ],
)
def test_save_validates(tmp_path, array, kwargs, message):
    with pytest.raises(ValueError, match=message):
        save_image(tmp_path / "x.png", array, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_save_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match="suffix"):
        save_image(tmp_path / "x.unknownext", rng_rgb())


def test_atomic_save_leaves_no_temp_and_keeps_old_file_on_error(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    save_image(target, rng_rgb(seed=1))
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    digest = sha(target)

    real_save = Image.Image.save

    def failing_save(self, fp, *args, **kwargs):
        real_save(self, fp, *args, **kwargs)  # write a complete temp file, then fail
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_image(target, rng_rgb(seed=2))
    assert sha(target) == digest
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


# --- masks -----------------------------------------------------------------------------------


def test_mask_threshold_at_127(tmp_path):
    g = np.array([[0, 127, 128, 255]], np.uint8)
    p = tmp_path / "m.png"
    Image.fromarray(g, "L").save(p)
    np.testing.assert_array_equal(load_mask(p), [[False, False, True, True]])


def test_mask_from_rgb_and_from_alpha_only(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[1, 2] = 255
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    expected = np.zeros((4, 4), bool)
    expected[1, 2] = True
    np.testing.assert_array_equal(load_mask(tmp_path / "rgb.png"), expected)

    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = 255  # uniform white colour, strokes only in alpha
    rgba[1, 2, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    np.testing.assert_array_equal(load_mask(tmp_path / "alpha.png"), expected)


def _layer(colour, hidden, strokes, *, edge=None):
    """An RGBA mask 8x8: ``strokes`` (bool) opaque in ``colour``, the rest transparent hiding
    ``hidden``; ``edge``: (bool, colour, alpha) of antialiased pixels around the strokes."""
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = hidden
    rgba[strokes] = (*colour, 255)
    if edge is not None:
        where, c, a = edge
        rgba[where] = (*c, a)
    return rgba


@pytest.mark.parametrize(
    "colour, hidden",
    [
        ((255, 255, 255), (0, 0, 0)),  # white strokes on transparent black
        ((255, 0, 0), (255, 255, 255)),  # red strokes on transparent white: was read inside out
        ((0, 0, 0), (255, 255, 255)),  # black strokes on transparent white: likewise
        ((0, 0, 0), (0, 0, 0)),  # black on transparent black: one colour, strokes in alpha only
    ],
)
def test_strokes_on_a_transparent_layer_are_the_hole_whatever_their_colour(tmp_path, colour, hidden):
    strokes = np.zeros((8, 8), bool)
    strokes[2:4, 1:7] = True
    edge = np.zeros((8, 8), bool)
    edge[4, 1:7] = True  # an antialiased row: a little darker, half opaque
    darker = tuple(max(0, c - 40) for c in colour)
    Image.fromarray(_layer(colour, hidden, strokes, edge=(edge, darker, 160)), "RGBA").save(
        tmp_path / "m.png"
    )
    np.testing.assert_array_equal(load_mask(tmp_path / "m.png"), strokes | edge)


@pytest.mark.parametrize("hidden", [(255, 255, 255), (0, 0, 0)])
def test_strokes_of_a_faded_brush_are_the_hole(tmp_path, hidden):
    """Red strokes at 40% opacity (alpha 102, none above 127) were read by the brightness of
    every pixel: over hidden white the rest of the photo became the hole, over black nothing."""
    strokes = np.zeros((8, 8), bool)
    strokes[2:4, 1:7] = True
    edge = np.zeros((8, 8), bool)
    edge[4, 1:7] = True  # the brush's soft edge: fainter still
    rgba = _layer((255, 0, 0), hidden, strokes, edge=(edge, (255, 0, 0), 30))
    rgba[strokes, 3] = 102
    Image.fromarray(rgba, "RGBA").save(tmp_path / "m.png")
    np.testing.assert_array_equal(load_mask(tmp_path / "m.png"), strokes)


def _save_rgba(tmp_path, name, rgba):
    Image.fromarray(rgba, "RGBA").save(tmp_path / name)
    return load_mask(tmp_path / name)


def test_masks_that_are_not_strokes_on_a_transparent_layer_are_read_by_brightness(tmp_path):
    bw = np.zeros((8, 8), bool)
    bw[:, :4] = True  # white left half, black right half ...
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[bw] = (255, 255, 255, 255)
    rgba[~bw] = (0, 0, 0, 255)
    rgba[:2, :, 3] = 0  # ... and transparent top rows: two colours opaque
    np.testing.assert_array_equal(_save_rgba(tmp_path, "bw.png", rgba), bw)
    faded = rgba.copy()
    faded[..., 3] = 102  # a black-and-white layer exported at 40% opacity
    np.testing.assert_array_equal(_save_rgba(tmp_path, "faded.png", faded), bw)
    shades = np.zeros((8, 8, 4), np.uint8)
    shades[...] = (60, 60, 60, 255)  # a mostly opaque dark background ...
    shades[3, :] = (120, 120, 120, 255)  # ... with lighter strokes (within 64 grey levels)
    shades[0, :, 3] = 0  # and a transparent edge row hiding grey 60
    assert not _save_rgba(tmp_path, "shades.png", shades).any()  # nothing brighter than 127
    spots = np.zeros((8, 8, 4), np.uint8)
    spots[...] = (0, 0, 0, 255)  # a black layer ...
    spots[2:4, 2:4] = (255, 255, 255, 0)  # ... with erased spots hiding white
    want = np.zeros((8, 8), bool)
    want[2:4, 2:4] = True
    np.testing.assert_array_equal(_save_rgba(tmp_path, "spots.png", spots), want)


def test_mask_resized_nearest_to_shape(tmp_path):
    small = np.zeros((4, 6), bool)
    small[:2, :3] = True
    p = save_mask(tmp_path / "m.png", small)
    big = load_mask(p, shape=(8, 12))
    assert big.shape == (8, 12) and big.dtype == bool
    expected = np.zeros((8, 12), bool)
    expected[:4, :6] = True
    np.testing.assert_array_equal(big, expected)
    assert set(np.unique(np.asarray(Image.open(p)))) == {0, 255}
    # One pixel of rounding is not an aspect-ratio change (e.g. 63 vs 64 rows).
    assert load_mask(save_mask(tmp_path / "r.png", np.zeros((64, 64), bool)), shape=(63, 64)).shape == (
        63,
        64,
    )


def test_a_mask_shrunk_to_the_photo_keeps_its_thin_strokes(tmp_path):
    """A mask drawn at twice the photo's size: a 1 px scratch on any row must stay hole (nearest
    sampling kept every other row: the scratches on even rows vanished, the photo unchanged)."""
    big = np.zeros((400, 600), bool)
    big[100, :] = True  # 1 px, an even row
    big[:, 300] = True  # 1 px, an even column
    big[250:252, 40:50] = True
    got = load_mask(save_mask(tmp_path / "m.png", big), shape=(200, 300))
    assert got[50, :].all() and got[:, 150].all() and got[125, 20:25].all()
    # a hole pixel of the photo is one that a hole pixel of the mask lies on: nothing more
    expected = big.reshape(200, 2, 300, 2).any(axis=(1, 3))
    np.testing.assert_array_equal(got, expected)
    speck = np.zeros((320, 480), bool)
    speck[100, 200] = True  # one pixel of a mask 32 times the photo's size
    got = load_mask(save_mask(tmp_path / "s.png", speck), shape=(10, 15))
    assert got.sum() == 1 and got[3, 6]


def test_mask_of_another_aspect_ratio_is_refused(tmp_path):
    """A mask drawn on the stored 60x40 (landscape) pixels of a photo displayed upright as 40x60
    would be stretched and misplaced: refused with both sizes named."""
    p = save_mask(tmp_path / "landscape.png", np.eye(40, 60, dtype=bool))
    with pytest.raises(iio.MaskShapeError, match=r"60x40 .*40x60") as err:
        load_mask(p, shape=(60, 40))
    assert isinstance(err.value, ImageReadError) and "landscape.png" in str(err.value)
    assert load_mask(p, shape=(80, 120)).shape == (80, 120)  # same aspect: scaled


def test_mask_round_trip_and_validation(tmp_path):
    hole = np.random.default_rng(3).random((33, 17)) > 0.5
    p = save_mask(tmp_path / "hole.png", hole)
    np.testing.assert_array_equal(load_mask(p), hole)
    with pytest.raises(ValueError, match="bool"):
        save_mask(tmp_path / "x.png", hole.astype(np.uint8))
    with pytest.raises(ValueError, match="HxW"):
        save_mask(tmp_path / "x.png", np.zeros((2, 2, 2), bool))
    with pytest.raises(ValueError, match="PNG"):
        save_mask(tmp_path / "x.jpg", hole)
    with pytest.raises(ImageReadError, match="nomask.png"):
        load_mask(tmp_path / "nomask.png")


def test_suffix_and_format_helpers():
    assert iio.format_for_suffix(".JPEG") == "JPEG"
    assert iio.suffix_for_format("jpg") == ".jpg"
    assert iio.suffix_for_format("PNG") == ".png"
    assert iio.supports_alpha("png") and not iio.supports_alpha("JPEG")
    assert ".jpg" in iio.IMAGE_SUFFIXES and ".png" in iio.IMAGE_SUFFIXES


def test_readable_suffixes_are_what_pillow_opens():
    from engine.formats import is_readable_suffix

    for name in ("a.JPG", "b.jfif", "c.tiff", "d.gif", "e.psd", "dir/f.webp"):
        assert is_readable_suffix(name), name
    for name in ("notes.txt", "scan.pdf", "no_suffix", "archive.zip"):  # Pillow writes PDF only
        assert not is_readable_suffix(name), name


def _iptc_records(**fields: bytes) -> bytes:
    tags = {"caption": 120, "keyword": 25, "copyright": 116}
    return b"".join(b"\x1c\x02" + bytes([tags[k]]) + struct.pack(">H", len(v)) + v for k, v in fields.items())


def _photoshop_resource(rid: int, data: bytes) -> bytes:
    return (
        b"8BIM"
        + struct.pack(">H", rid)
        + b"\x00\x00"
        + struct.pack(">I", len(data))
        + data
        + b"\x00" * (len(data) & 1)
    )


def test_iptc_records_are_kept_in_jpeg_and_tiff_and_photoshops_thumbnail_is_not(tmp_path):
    """A JPEG's IPTC (APP13: caption, keywords, copyright, as photo libraries write them) and a
    TIFF's IPTC tag were dropped without a word. They are written back to JPEG and TIFF outputs;
    Photoshop's thumbnail resource beside them (the picture before retouching) is not."""
    from PIL import IptcImagePlugin

    records = _iptc_records(caption="Zürich, 1962".encode(), keyword=b"tram", copyright=b"(c) J. Muller")
    thumbnail = b"\xff\xd8OLD-PICTURE\xff\xd9"
    body = (
        b"Photoshop 3.0\x00" + _photoshop_resource(0x040C, thumbnail) + _photoshop_resource(0x0404, records)
    )
    plain = tmp_path / "plain.jpg"
    Image.fromarray(rng_rgb(32, 48)).save(plain, quality=90)
    data = plain.read_bytes()
    src = tmp_path / "src.jpg"
    src.write_bytes(data[:2] + b"\xff\xed" + struct.pack(">H", len(body) + 2) + body + data[2:])
    loaded = load_image(src)
    assert loaded.metadata.iptc == records
    expected = IptcImagePlugin.getiptcinfo(Image.open(src))
    for name in ("out.jpg", "out.tif"):
        out = save_image(tmp_path / name, loaded.rgb, metadata=loaded.metadata)
        assert thumbnail not in out.read_bytes() and records in out.read_bytes(), name
        with Image.open(out) as im:
            assert IptcImagePlugin.getiptcinfo(im) == expected, name
        again = load_image(out)
        assert again.metadata.iptc == records, name
    # the block-keeping JPEG path (only the changed blocks re-encoded) writes them too
    changed = loaded.rgb.copy()
    changed[:8, :8] = 0
    kept = save_image(tmp_path / "kept.jpg", changed, metadata=loaded.metadata, source=loaded.source,
                      changed=np.any(changed != loaded.rgb, axis=2))  # fmt: skip
    assert load_image(kept).metadata.iptc == records


def test_iptc_in_a_tiff_tag_typed_long_as_photoshop_writes_it(tmp_path):
    """Photoshop types the TIFF IPTC tag LONG (padded to 4 bytes): Pillow's value of it is its
    first number only, and the records were lost."""
    from PIL import IptcImagePlugin

    records = _iptc_records(caption=b"Caption!", keyword=b"tram")
    padded = records + b"\x00" * (-len(records) % 4)
    src = tmp_path / "ps.tif"
    Image.fromarray(rng_rgb(16, 16)).save(src, tiffinfo={33723: padded})  # little-endian, UNDEFINED
    data = bytearray(src.read_bytes())
    (ifd,) = struct.unpack_from("<I", data, 4)
    (n,) = struct.unpack_from("<H", data, ifd)
    for at in range(ifd + 2, ifd + 2 + 12 * n, 12):
        if struct.unpack_from("<H", data, at)[0] == 33723:
            struct.pack_into("<HI", data, at + 2, 4, len(padded) // 4)  # retyped LONG, same bytes
    src.write_bytes(bytes(data))
    with Image.open(src) as im:
        assert im.tag_v2.tagtype[33723] == 4 and IptcImagePlugin.getiptcinfo(im)[(2, 120)] == b"Caption!"
    assert load_image(src).metadata.iptc == records  # the padding left out


def test_a_tiff_written_in_its_own_process_leaves_the_callers_threads_running(tmp_path):
    """Pillow's libtiff encoder holds Python's lock for the whole write: a TIFF saved in the
    app's file worker froze the window (0.7 s at 24 MP). With ``own_process`` the encode runs
    in a child; the caller's main thread keeps running, and the file is the same."""
    import threading
    import time

    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 200, 4000, dtype=np.float32)[None, :, None]
    rgb = (ramp + rng.integers(0, 40, (2500, 4000, 3))).astype(np.uint8)  # 10 MP, grain on a ramp
    t = time.perf_counter()
    save_image(tmp_path / "here.tif", rgb)
    encode = time.perf_counter() - t  # the baseline: the whole encode in this process

    worker = threading.Thread(
        target=save_image, args=(tmp_path / "child.tif", rgb), kwargs={"own_process": True}
    )
    worker.start()
    longest = 0.0
    while worker.is_alive():
        t = time.perf_counter()
        time.sleep(0.002)
        longest = max(longest, time.perf_counter() - t)
    worker.join()
    assert longest < encode / 3, (longest, encode)
    assert (tmp_path / "child.tif").read_bytes() == (tmp_path / "here.tif").read_bytes()


def test_a_tiff_whose_child_process_cannot_write_it_is_written_here(tmp_path, monkeypatch, caplog):
    """A child that cannot start or import the engine (a frozen app) or dies: the photo is
    written in this process after all, with a warning; never lost. The write's own errors
    come back from the child as they are."""
    import sys

    from engine import imageio

    rgb = np.random.default_rng(1).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    missing = tmp_path / "gone" / "x.tif"
    with pytest.raises(FileNotFoundError, match="gone"):
        imageio._write_in_child(rgb, "RGB", missing, "TIFF", {"compression": "tiff_lzw"})
    monkeypatch.setattr(sys, "executable", "/bin/false" if os.path.exists("/bin/false") else "no-such-python")
    with caplog.at_level(logging.WARNING, logger="engine.imageio"):
        save_image(tmp_path / "x.tif", rgb, own_process=True)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "x.tif")), rgb)
    assert f"could not write {tmp_path / 'x.tif'} in a process of its own" in caplog.text
    assert "x.tif" in [p.name for p in tmp_path.iterdir()] and not [
        p for p in tmp_path.iterdir() if p.name.startswith(".")
    ]


def test_an_engine_folder_in_the_working_directory_is_not_the_childs(tmp_path, monkeypatch):
    """``python -c`` imports from the working directory first: a folder there with another
    ``engine`` (one whose writer writes nothing) left an empty file where the photo was saved.
    The child runs isolated (-P) and checks it imported this engine."""
    shadow = tmp_path / "work" / "engine"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("")
    (shadow / "imageio.py").write_text("def _child_writes():\n    pass\n")
    monkeypatch.chdir(shadow.parent)
    rgb = np.random.default_rng(2).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    save_image(tmp_path / "x.tif", rgb, own_process=True)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "x.tif")), rgb)


def _exif_with_interop() -> bytes:
    """A camera's EXIF block (little-endian): IFD0 (Make, the Exif pointer), the Exif directory
    (ColorSpace uncalibrated, the Interop pointer), the Interop directory (R03: Adobe RGB)."""

    def ifd(entries) -> bytes:
        out = struct.pack("<H", len(entries))
        for tag, kind, count, value in entries:
            out += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\0")
        return out + struct.pack("<I", 0)

    ifd0_at, exif_at = 8, 8 + 2 + 2 * 12 + 4
    interop_at = exif_at + 2 + 3 * 12 + 4
    make_at = interop_at + 2 + 2 * 12 + 4
    ifd0 = ifd([(0x010F, 2, 6, struct.pack("<I", make_at)), (0x8769, 4, 1, struct.pack("<I", exif_at))])
    exif = ifd([(0x9000, 7, 4, b"0230"), (0xA001, 3, 1, struct.pack("<H", 0xFFFF)), (0xA005, 4, 1, struct.pack("<I", interop_at))])  # fmt: skip
    interop = ifd([(0x0001, 2, 4, b"R03\0"), (0x0002, 7, 4, b"0100")])
    return b"Exif\0\0II*\0" + struct.pack("<I", ifd0_at) + ifd0 + exif + interop + b"Canon\0\0\0"


def test_a_camera_jpegs_interop_directory_survives_a_tiff(tmp_path):
    """Written to a TIFF, the Exif directory's Interop pointer was a plain number leading into
    other bytes: R03 (an in-camera Adobe RGB JPEG's colour space without a profile) was lost."""
    src = tmp_path / "camera.jpg"
    Image.fromarray(rng_rgb(16, 24)).save(src, quality=92, exif=_exif_with_interop())
    with Image.open(src) as im:
        assert dict(im.getexif().get_ifd(0xA005)) == {1: "R03", 2: b"0100"}
    loaded = load_image(src)
    first = save_image(tmp_path / "out.tif", loaded.rgb, metadata=loaded.metadata)
    again = load_image(first)
    second = save_image(tmp_path / "again.tif", again.rgb, metadata=again.metadata)
    for path in (first, second, save_image(tmp_path / "out.png", loaded.rgb, metadata=loaded.metadata)):
        with Image.open(path) as written:
            exif = written.getexif()
            assert exif.get_ifd(0x8769).get(0xA001) == 0xFFFF, path.name
            assert dict(exif.get_ifd(0xA005)) == {1: "R03", 2: b"0100"}, path.name


@pytest.mark.parametrize("suffix", [".jpg", ".tif", ".webp"])
def test_a_pngs_own_gamma_written_where_it_cannot_be_says_so(tmp_path, caplog, suffix):
    """A PNG of gamma 1.0 (no profile, no sRGB chunk) saved as JPEG, TIFF or WebP lost its gAMA
    without a word: its mid-grey, shown as 188, then read as 128. sRGB's own gamma loses
    nothing and says nothing."""
    for gamma, said in ((100000, True), (45455, False)):
        info = PngImagePlugin.PngInfo()
        info.add(b"gAMA", struct.pack(">I", gamma))
        Image.fromarray(rng_rgb()).save(tmp_path / "in.png", pnginfo=info)
        loaded = load_image(tmp_path / "in.png")
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            save_image(tmp_path / f"out{suffix}", loaded.rgb, metadata=loaded.metadata)
        assert ("cannot hold the PNG's colour chunks (gamma 1)" in caplog.text) == said, caplog.text


def test_an_iphone_heic_photo_is_named_not_called_corrupt(tmp_path):
    """A valid HEIC photo was 'unknown or corrupt'; Pillow does not read it here."""
    path = tmp_path / "IMG_0001.HEIC"
    path.write_bytes(struct.pack(">I", 24) + b"ftypheic" + b"\0\0\0\0mif1heic" + b"\0" * 64)
    with pytest.raises(ImageReadError, match="is a HEIC photo, which Retoucher cannot read: convert it"):
        load_image(path)
    (tmp_path / "x.bin").write_bytes(b"\0" * 80)
    with pytest.raises(ImageReadError, match="unknown or corrupt format"):
        load_image(tmp_path / "x.bin")


def test_a_grey_photo_saved_as_webp_is_still_grey_with_its_profile_at_the_next_save(tmp_path, caplog):
    """After a WebP copy (no grey pictures there) the photo's metadata said RGB: every later save
    wrote it in colour without its Gray profile, saying 'the retouched picture is not grey'."""
    src = _save_pil(
        tmp_path, Image.fromarray(rng_rgb(16, 24)[:, :, 0], "L"), "g.png", icc_profile=gray_profile(1.0)
    )
    loaded = load_image(src)
    save_image(tmp_path / "copy.webp", loaded.rgb, metadata=loaded.metadata)
    after = loaded.metadata.as_written("WEBP", keep_jpeg_compression=True, alpha=False)
    assert after.is_greyscale and after.grey_icc_profile == gray_profile(1.0)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        out = save_image(tmp_path / "again.png", loaded.rgb, metadata=after)
    with Image.open(out) as written:
        assert written.mode == "L" and written.info.get("icc_profile") == gray_profile(1.0)
    assert "not grey" not in caplog.text
