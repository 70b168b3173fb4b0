"""The batch dialog runs retoucher.batch.run_batch in a worker: outputs, a bad file, cancel."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import threading
import time

import numpy as np
import pytest
import pytestqt  # noqa: F401 - the qtbot plugin, a dev dependency: a missing install must fail, not skip
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

    def __call__(self, image, hole, *, cancel=None, progress=None):
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
