"""The batch dialog runs retoucher.batch.run_batch in a worker: outputs, a bad file, cancel."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import threading
import time

import numpy as np
import pytest
import shiboken6
from gui_fakes import FlatFill, GatedFill  # tests/retoucher/gui_fakes.py
from PIL import Image

import engine
from engine import Inpainter, UNetConfig, create_model
from retoucher.qt.batch_dialog import BatchDialog
from retoucher.qt.fill_worker import InpainterCache
from retoucher.qt.settings import Settings


@pytest.fixture
def photos(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(7)
    arrays = {}
    for name in ("a.png", "b.png", "c.jpg"):
        arr = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        Image.fromarray(arr).save(src / name)
        arrays[name] = arr
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    return src, arrays


def _dialog(qtbot, tmp_path, inpainter):
    cache = InpainterCache()
    cache.set(inpainter)
    dlg = BatchDialog(Settings.from_file(tmp_path / "settings.ini"), cache)
    qtbot.addWidget(dlg)
    dlg.show()
    return dlg


def test_batch_dialog_writes_outputs_and_reports_the_bad_file(qtbot, tmp_path, photos):
    import torch

    torch.manual_seed(0)
    inp = Inpainter.from_model(create_model(UNetConfig(widths=(8, 16, 16, 16), kernels=(7, 5, 3, 3))))
    src, arrays = photos
    out = tmp_path / "out"
    dlg = _dialog(qtbot, tmp_path, inp)
    dlg.input_edit.setText(str(src))
    dlg.output_edit.setText(str(out))
    dlg.set_mask_kind("center")
    dlg.center_spins[0].setValue(16)
    dlg.center_spins[1].setValue(12)
    job = dlg.start()
    assert job is not None and dlg.running and not dlg.run_button.isEnabled()
    qtbot.waitUntil(lambda: not dlg.running, timeout=30000)
    report = dlg.report
    assert report is not None
    assert sorted(p.name for p in report.done) == ["a.png", "b.png", "c.jpg"]
    assert [p.name for p, _ in report.failed] == ["broken.jpg"]
    for name in ("a.png", "b.png", "c.jpg"):
        assert (out / name).is_file()
    # PNG outputs: outside the centred 16x12 hole every pixel is the input's.
    result = np.asarray(Image.open(out / "a.png").convert("RGB"))
    hole = np.zeros((48, 64), bool)
    hole[18:30, 24:40] = True
    assert np.array_equal(result[~hole], arrays["a.png"][~hole])
    assert not np.array_equal(result[hole], arrays["a.png"][hole])
    text = dlg.summary.toPlainText()
    assert "done 3" in text and "failed 1" in text and "broken.jpg" in text
    assert dlg.progress.value() == dlg.progress.maximum() == 4
    assert dlg.run_button.isEnabled() and dlg.close_button.isEnabled()
    # The folders are remembered for next time.
    assert dlg.settings.value("batch/input") == str(src)


class _SlowFake:
    name = "slow"
    device_name = "CPU"
    info = None

    def __init__(self):
        self.calls = 0
        self.thread = None

    def __call__(self, image, hole, *, cancel=None, progress=None, texture=None, mirror=None):
        self.calls += 1
        self.thread = threading.current_thread()
        for _ in range(50):
            if cancel is not None and cancel():
                raise engine.InpaintCancelled()
            time.sleep(0.02)
        out = image.copy()
        out[hole] = 0
        return out


def test_batch_dialog_cancel_stops_and_keeps_finished_outputs(qtbot, tmp_path, photos):
    src, _ = photos
    fake = _SlowFake()
    dlg = _dialog(qtbot, tmp_path, fake)
    dlg.input_edit.setText(str(src))
    dlg.output_edit.setText(str(tmp_path / "out"))
    dlg.set_mask_kind("rect")
    for spin, v in zip(dlg.rect_spins, (4, 4, 10, 10)):
        spin.setValue(v)
    dlg.start()
    qtbot.waitUntil(lambda: fake.calls >= 1, timeout=10000)
    dlg.cancel_button.click()
    qtbot.waitUntil(lambda: not dlg.running, timeout=5000)
    assert fake.thread is not threading.main_thread()
    report = dlg.report
    assert report is not None and report.cancelled
    assert len(report.done) < 3
    assert "Cancelled" in dlg.summary.toPlainText()


def _start_stuck(qtbot, dlg, fill, src, out) -> None:
    """Start a centre-hole batch (a close waits 50 ms); return once ``fill`` holds its first photo."""
    dlg.CLOSE_WAIT_MS = 50
    dlg.input_edit.setText(str(src))
    dlg.output_edit.setText(str(out))
    dlg.set_mask_kind("center")
    for spin in dlg.center_spins:
        spin.setValue(8)
    dlg.start()
    fill.wait_at_gate(qtbot, 1)


def test_closing_waits_for_a_step_that_ignores_cancel(qtbot, tmp_path, photos):
    """After the close's wait the dialog gave up, said nothing and let a second batch start
    beside the first (two threads on one engine); now it stays until the step ends."""
    src, _ = photos
    fill = GatedFill()
    dlg = _dialog(qtbot, tmp_path, fill)
    _start_stuck(qtbot, dlg, fill, src, tmp_path / "out")
    try:
        assert not dlg.close()
        assert dlg.isVisible() and dlg.running and "Stopping" in dlg.current_label.text()
    finally:
        fill.finish()
    qtbot.waitUntil(lambda: not dlg.isVisible(), timeout=10000)  # it closes itself then
    assert dlg.report is not None and dlg.report.cancelled and not dlg.running


def test_the_app_does_not_close_under_a_batch_still_stopping(qtbot, tmp_path, photos, shown_window):
    """Quitting closed the main window while the batch dialog stayed up and running over it."""
    from retoucher.document import Document

    src, _ = photos
    fill = GatedFill()
    cache = InpainterCache()
    cache.set(fill)
    w = shown_window(Document(np.zeros((8, 8, 3), np.uint8)), cache)
    dlg = w.open_batch_dialog()
    _start_stuck(qtbot, dlg, fill, src, tmp_path / "out")
    try:
        assert not w.close()
        assert w.isVisible() and dlg.isVisible() and "stopping" in w.statusBar().currentMessage()
    finally:
        fill.finish()
    # it closes itself, and goes (a finished dialog is deleted, not kept by the window)
    qtbot.waitUntil(lambda: not shiboken6.isValid(dlg) or not dlg.isVisible(), timeout=10000)
    assert w.close()


def test_photo_pixels_are_crisp_from_100_percent_of_the_screen_up(qapp):
    """On a 2x screen the view's scale 0.5 is 100 %: drawn crisp, not smoothed (it compared
    the view's scale with 1)."""
    from PySide6.QtGui import QImage, QPainter

    from retoucher.qt.canvas_items import _smooth_when_shrunk

    image = QImage(16, 16, QImage.Format.Format_ARGB32_Premultiplied)
    image.setDevicePixelRatio(2.0)
    painter = QPainter(image)
    try:
        smooth = []
        for scale in (0.5, 0.8, 0.45):
            painter.resetTransform()
            painter.scale(scale, scale)
            _smooth_when_shrunk(painter)
            smooth.append(bool(painter.renderHints() & QPainter.RenderHint.SmoothPixmapTransform))
    finally:
        painter.end()
    assert smooth == [False, False, True]


def test_a_batch_with_nothing_to_fill_loads_no_model(qtbot, tmp_path):
    """A re-run whose outputs all exist: the command skips them without a model; the dialog
    loaded the app's model first and failed the whole batch when it could not."""
    src, out = tmp_path / "in", tmp_path / "out"
    for folder in (src, out):
        folder.mkdir()
        for name in ("a.png", "b.png"):
            Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(folder / name)

    def broken(*_a, **_kw):
        raise engine.WeightsError("weight file not found: /gone.safetensors")

    dlg = BatchDialog(Settings.from_file(tmp_path / "s.ini"), InpainterCache(factory=broken))
    qtbot.addWidget(dlg)
    dlg.show()
    dlg.set_mask_kind("center")
    _run(qtbot, dlg, src, out)
    assert len(dlg.report.skipped) == 2


def test_batch_dialog_explains_an_incomplete_form_and_a_missing_folder(qtbot, tmp_path):
    dlg = _dialog(qtbot, tmp_path, _SlowFake())
    assert dlg.start() is None
    assert "folder of photos" in dlg.summary.toPlainText()
    dlg.input_edit.setText(str(tmp_path / "nope"))
    dlg.output_edit.setText(str(tmp_path / "out"))
    dlg.set_mask_kind("center")
    dlg.start()
    qtbot.waitUntil(lambda: not dlg.running, timeout=5000)
    assert "input folder not found" in dlg.summary.toPlainText()


def _run(qtbot, dlg, src, out):
    dlg.input_edit.setText(str(src))
    dlg.output_edit.setText(str(out))
    assert dlg.start() is not None
    qtbot.waitUntil(lambda: not dlg.running, timeout=30000)
    assert dlg.report is not None and not dlg.report.failed, dlg.summary.toPlainText()


class _MirrorRecorder(FlatFill):
    """FlatFill that records each call's mirror= (the batch fills one by one or in groups)."""

    def __init__(self):
        self.mirrors = []

    def __call__(self, image, hole, *, mirror=None, **kwargs):
        self.mirrors.append(mirror)
        return super().__call__(image, hole, **kwargs)

    def inpaint_batch(self, images, holes, *, mirror=None, **kwargs):
        self.mirrors.extend([mirror] * len(images))
        return [super(_MirrorRecorder, self).__call__(im, ho) for im, ho in zip(images, holes)]


def test_the_mirror_preference_reaches_the_apps_engine_in_a_batch(qtbot, tmp_path, photos):
    """The app's loaded engine fills the batch with the mirrored pass exactly when Preferences
    ask for it, and the summary says so."""
    src, arrays = photos
    for mirror in (False, True):
        fake = _MirrorRecorder()
        dlg = _dialog(qtbot, tmp_path, fake)
        dlg.settings.mirror = mirror
        dlg.set_mask_kind("rect")
        for spin, v in zip(dlg.rect_spins, (8, 8, 16, 16)):
            spin.setValue(v)
        dlg.input_edit.setText(str(src))
        dlg.output_edit.setText(str(tmp_path / f"out-{mirror}"))
        assert dlg.options().mirror is mirror
        assert dlg.start() is not None
        qtbot.waitUntil(lambda d=dlg: not d.running, timeout=30000)
        assert fake.mirrors == [mirror] * len(arrays)  # every photo but the broken one
        assert ("one network pass" in dlg.summary.toPlainText()) is not mirror


def test_a_jpeg_keeps_its_own_compression_unless_a_quality_is_set(qtbot, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    arr = np.random.default_rng(4).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(arr).save(src / "scan.jpg", quality=70, subsampling=2)
    with Image.open(src / "scan.jpg") as im:
        tables = im.quantization
    dlg = _dialog(qtbot, tmp_path, FlatFill())
    dlg.settings.jpeg_quality = 95  # the preference for saves that do not keep the compression
    dlg.set_mask_kind("rect")
    for spin, v in zip(dlg.rect_spins, (8, 8, 16, 16)):
        spin.setValue(v)
    _run(qtbot, dlg, src, tmp_path / "kept")
    with Image.open(tmp_path / "kept" / "scan.jpg") as im:
        assert im.quantization == tables  # as `retoucher batch` without --quality
    assert dlg.options().quality is None
    assert not dlg.quality_check.isChecked() and not dlg.quality_spin.isEnabled()  # the default
    # An explicit quality re-encodes with it.
    dlg.quality_check.setChecked(True)
    dlg.quality_spin.setValue(40)
    assert dlg.quality_spin.isEnabled() and dlg.options().quality == 40
    _run(qtbot, dlg, src, tmp_path / "q40")
    with Image.open(tmp_path / "q40" / "scan.jpg") as im:
        assert im.quantization != tables
    # Asked in the preferences not to keep a JPEG's compression, the dialog starts with the
    # quality preference set.
    dlg.settings.jpeg_keep_original = False
    again = _dialog(qtbot, tmp_path, FlatFill())
    assert again.quality_check.isChecked() and again.quality_spin.value() == 95
    assert again.quality_spin.isEnabled()


def test_the_mask_row_is_labelled_and_the_masks_are_remembered(qtbot, tmp_path, photos):
    src, _ = photos
    masks = tmp_path / "masks"
    masks.mkdir()
    dlg = _dialog(qtbot, tmp_path, _SlowFake())
    label = dlg.layout().itemAt(0).layout().labelForField(dlg.mask_stack)
    labels = {}
    for kind in ("dir", "file", "rect", "center"):
        dlg.set_mask_kind(kind)
        labels[kind] = label.text() if label is not None else None
    assert labels == {
        "dir": "Mask folder:",
        "file": "Mask file:",
        "rect": "Rectangle (px):",
        "center": "Hole size (px):",
    }
    dlg.set_mask_kind("file")
    dlg.mask_file_edit.setText(str(tmp_path / "scratch.png"))
    dlg.set_mask_kind("dir")
    dlg.mask_dir_edit.setText(str(masks))
    for spin, v in zip(dlg.rect_spins, (1, 2, 30, 40)):
        spin.setValue(v)
    dlg.center_spins[0].setValue(20)
    dlg.input_edit.setText(str(src))
    dlg.output_edit.setText(str(tmp_path / "out"))
    dlg.format_combo.setCurrentIndex(dlg.format_combo.findData("png"))
    dlg.overwrite_check.setChecked(True)
    dlg.recursive_check.setChecked(True)
    dlg.start()  # (no masks in the folder: the photos fail; the form is remembered all the same)
    qtbot.waitUntil(lambda: not dlg.running, timeout=10000)
    again = _dialog(qtbot, tmp_path, _SlowFake())
    # the output choices too (the format and sub-folders were forgotten); not "redo": it writes
    # over outputs, chosen each time
    assert again.format_combo.currentData() == "png"
    assert again.recursive_check.isChecked() and not again.overwrite_check.isChecked()
    assert again.mask_kind.currentData() == "dir" and again.mask_stack.currentIndex() == 0
    assert again.mask_dir_edit.text() == str(masks)
    assert again.mask_file_edit.text() == str(tmp_path / "scratch.png")
    assert [s.value() for s in again.rect_spins] == [1, 2, 30, 40]
    assert [s.value() for s in again.center_spins] == [20, 64]
    assert again.layout().itemAt(0).layout().labelForField(again.mask_stack).text() == "Mask folder:"
    # A damaged entry keeps the defaults.
    again.settings.set_value("batch/rect", "1,two,3")
    again.settings.set_value("batch/mask_kind", "nonsense")
    third = _dialog(qtbot, tmp_path, _SlowFake())
    assert [s.value() for s in third.rect_spins] == [0, 0, 64, 64]
    assert third.mask_kind.currentData() == "dir"


def test_find_damage_fills_what_the_app_detector_finds_alone_or_with_a_rectangle(qtbot, tmp_path):
    """The dialog's Find damage option is `retoucher batch --find-damage` with the app's own
    (cached) detector at the Find Damage sensitivity and grow; with masks the union is filled."""
    from retoucher.qt.damage_worker import DetectorCache
    from tests.retoucher.damage_fakes import FakeFactory, RecordingFill

    src = tmp_path / "in"
    src.mkdir()
    rgb = np.random.default_rng(3).integers(0, 100, (32, 40, 3), dtype=np.uint8)
    rgb[5, 6, 0] = rgb[20, 30, 0] = 250  # two spots the fake detector finds at 0.9 (p = red)
    rgb[10, 10, 0] = 200  # found at the detector's own 0.5, not at the app's 0.9
    Image.fromarray(rgb).save(src / "a.png")
    spots = np.zeros((32, 40), bool)
    spots[5, 6] = spots[20, 30] = True

    factory = FakeFactory()
    detectors = DetectorCache(None, "cpu", factory)
    fill = RecordingFill()
    cache = InpainterCache()
    cache.set(fill)
    settings = Settings.from_file(tmp_path / "settings.ini")
    settings.damage_grow = 0
    settings.damage_threshold = 0.9  # the sensitivity last used in Find Damage
    dlg = BatchDialog(settings, cache, detectors=detectors)
    qtbot.addWidget(dlg)
    dlg.set_mask_kind("none")
    dlg.input_edit.setText(str(src))
    dlg.output_edit.setText(str(tmp_path / "out"))
    # No masks and no damage to find: nothing says where the holes are.
    assert dlg.start() is None and "Find dust and scratches" in dlg.summary.toPlainText()

    dlg.find_damage_check.setChecked(True)
    _run(qtbot, dlg, src, tmp_path / "out")
    assert factory.calls == [(None, "cpu")]  # the app's detector, built once through its cache
    assert len(fill.holes) == 1 and np.array_equal(fill.holes[0], spots)
    result = np.asarray(Image.open(tmp_path / "out" / "a.png").convert("RGB"))
    assert (result[spots] == (255, 0, 255)).all() and np.array_equal(result[~spots], rgb[~spots])
    assert dlg.report.detector is not None

    # A rectangle and the damage together: the union is filled.
    dlg.set_mask_kind("rect")
    for spin, v in zip(dlg.rect_spins, (0, 0, 4, 3)):
        spin.setValue(v)
    _run(qtbot, dlg, src, tmp_path / "both")
    rect = np.zeros_like(spots)
    rect[0:3, 0:4] = True
    assert np.array_equal(fill.holes[-1], spots | rect)
    assert factory.calls == [(None, "cpu")]

    # The choice is remembered; an unticked box is too.
    again = BatchDialog(settings, cache, detectors=detectors)
    qtbot.addWidget(again)
    assert again.find_damage_check.isChecked() and again.mask_kind.currentData() == "rect"
    again.find_damage_check.setChecked(False)
    assert not again.options().find_damage and again.options().masks is not None


def test_the_summary_says_what_the_command_line_warns_about(qtbot, tmp_path):
    """`retoucher batch` prints a warning for a 16-bit photo written with 8 bits and for a JPEG
    whose data is damaged; the dialog said only "done 2"."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    Image.fromarray((np.arange(48 * 48).reshape(48, 48) * 28).astype(np.uint16)).save(src / "scan16.png")
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
        src / "damaged.jpg", quality=90
    )
    data = bytearray((src / "damaged.jpg").read_bytes())
    data[len(data) // 2 : len(data) // 2 + 200] = bytes(200)  # zeroed compressed data
    (src / "damaged.jpg").write_bytes(bytes(data))
    dlg = _dialog(qtbot, tmp_path, FlatFill())
    dlg.set_mask_kind("center")
    dlg.center_spins[0].setValue(16)
    dlg.center_spins[1].setValue(12)
    _run(qtbot, dlg, src, out)
    assert len(dlg.report.done) == 2
    text = dlg.summary.toPlainText()
    assert "Notes (2):" in text
    assert "more than 8 bits per channel" in text and "scan16.png" in text
    assert "damaged.jpg" in text and "damaged" in text.split("Notes (2):")[1]


def test_a_device_the_machine_lacks_is_worded_for_the_app(qtbot, tmp_path, monkeypatch):
    """The Batch dialog said "...; use --device cpu or auto", a command line's flag (a fill says
    to choose Automatic or CPU in Preferences)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(src / "a.png")
    dlg = _dialog(qtbot, tmp_path, FlatFill())
    dlg.settings.device = "cuda"
    dlg.set_mask_kind("center")
    dlg.center_spins[0].setValue(8)
    dlg.center_spins[1].setValue(8)
    dlg.input_edit.setText(str(src))
    dlg.output_edit.setText(str(tmp_path / "out"))
    assert dlg.start() is not None
    qtbot.waitUntil(lambda: not dlg.running, timeout=30000)
    text = dlg.summary.toPlainText()
    assert "no CUDA GPU is usable here" in text and "Preferences" in text and "--device" not in text
