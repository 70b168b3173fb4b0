"""A photo whose colour profile is not sRGB is shown in the screen's (sRGB) colours; its own
numbers are what is filled and saved. The canvas drew the numbers as sRGB: an Adobe RGB photo
looked dull, a linear one dark (mid-grey 128 where a colour-managed viewer shows 188)."""

from __future__ import annotations

import io
import logging
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
from PIL import Image, ImageCms

from engine.metadata import PhotoMetadata
from retoucher.screen_colours import screen_colours
from tests.icc_profiles import SRGB, gray_profile, rgb_profile

LINEAR = rgb_profile(1.0, SRGB, "Test linear sRGB primaries")


def _reference(rgb: np.ndarray, profile: bytes, mode: str = "RGB") -> np.ndarray:
    """The photo in sRGB as LittleCMS converts it, all at once."""
    transform = ImageCms.buildTransform(
        ImageCms.ImageCmsProfile(io.BytesIO(profile)),
        ImageCms.createProfile("sRGB"),
        mode,
        "RGB",
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
        flags=ImageCms.Flags.BLACKPOINTCOMPENSATION,
    )
    source = Image.fromarray(rgb[..., 0] if mode == "L" else rgb)
    return np.asarray(ImageCms.applyTransform(source, transform))


def test_a_photo_without_a_profile_or_in_srgb_is_shown_as_it_is(caplog):
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    assert screen_colours(PhotoMetadata()) is None
    assert screen_colours(PhotoMetadata(icc_profile=srgb)) is None
    with caplog.at_level(logging.WARNING):
        assert screen_colours(PhotoMetadata(icc_profile=b"not a profile" * 20)) is None
    assert "cannot be used for display" in caplog.text


def test_linear_and_adobe_rgb_and_grey_photos_are_converted_as_littlecms_does():
    mid = np.full((2, 2, 3), 128, np.uint8)
    assert (screen_colours(PhotoMetadata(icc_profile=LINEAR))(mid) == 188).all()
    grey = screen_colours(PhotoMetadata(grey_icc_profile=gray_profile(1.0)))
    assert grey.name == "Test Gray" and (grey(mid) == 188).all()
    # a colour a fill added to a grey photo: each channel through the grey curve, not the red's
    curve = _reference(np.arange(256, dtype=np.uint8)[None, :, None].repeat(3, 2), gray_profile(1.0), "L")[
        0, :, 0
    ]
    assert grey(np.array([[[200, 40, 40]]], np.uint8)).tolist() == [[[curve[200], curve[40], curve[40]]]]
    adobe = screen_colours(PhotoMetadata(icc_profile=rgb_profile()))
    assert adobe.name == "Test Adobe RGB (1998)"
    rgb = np.random.default_rng(0).integers(0, 256, (1300, 70, 3), dtype=np.uint8)  # three bands
    shown = adobe(rgb)
    assert np.array_equal(shown, _reference(rgb, rgb_profile()))
    assert np.abs(shown.astype(int) - rgb).mean() > 3  # not the numbers themselves


def test_the_window_shows_the_screen_colours_and_fills_and_saves_the_photos_own(qtbot, tmp_path):
    from PySide6.QtWidgets import QApplication, QMessageBox

    from retoucher.document import Rect
    from retoucher.qt.fill_worker import InpainterCache
    from retoucher.qt.main_window import MainWindow
    from retoucher.qt.settings import Settings
    from tests.retoucher.gui_fakes import HANG_MS, FlatFill

    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[:, :30] = 64
    rgb[:, 30:] = (200, 100, 30)
    path = tmp_path / "linear.png"
    Image.fromarray(rgb).save(path, icc_profile=LINEAR)
    cache = InpainterCache()
    cache.set(FlatFill())  # the hole becomes 128
    w = MainWindow(Settings.from_file(tmp_path / "settings.ini"), cache)
    w.ask_unsaved_changes = lambda: QMessageBox.StandardButton.Discard
    qtbot.addWidget(w)
    w.show()
    assert w.open_path(path)
    assert (
        "colours shown converted from \u201cTest linear sRGB primaries\u201d"
        in w.statusBar().currentMessage()
    )
    w.canvas.set_zoom(w.canvas.actual_zoom)
    w.canvas.centerOn(30, 20)
    QApplication.processEvents()

    def shown(x: int, y: int) -> tuple[int, int, int]:
        w.canvas.cursor_item.setVisible(False)
        p = w.canvas.from_image(x + 0.5, y + 0.5).toPoint()
        c = w.canvas.viewport().grab().toImage().pixelColor(p)
        return c.red(), c.green(), c.blue()

    expected = _reference(rgb, LINEAR)
    assert shown(10, 10) == tuple(expected[10, 10]) and shown(50, 30) == tuple(expected[30, 50])
    assert shown(10, 10) != (64, 64, 64) and np.array_equal(w.doc.image, rgb)
    w._push_edit(w.doc.set_rect(Rect(5, 5, 15, 15)))
    w.fill()
    qtbot.waitUntil(lambda: not w.busy, timeout=HANG_MS)
    assert (w.doc.image[5:15, 5:15] == 128).all(), (w.last_error, w.statusBar().currentMessage())
    w.canvas.set_overlay_visible(False)
    assert shown(8, 8) == (188, 188, 188)  # the filled pixels in the screen's colours too
    w.canvas.set_comparing(True)
    assert shown(8, 8) == tuple(expected[8, 8])  # Compare: the original, converted alike
    w.canvas.set_comparing(False)
    assert w.save()
    with Image.open(path) as saved:
        assert saved.info.get("icc_profile") == LINEAR
        assert (np.asarray(saved)[5:15, 5:15] == 128).all() and np.array_equal(
            np.asarray(saved)[20:], rgb[20:]
        )
