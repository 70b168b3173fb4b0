"""Filling through the worker thread: only hole pixels change, the UI keeps running, cancel,
undo/redo, several fills, missing weights, compare with the original.

Nothing here is timed: the fake engine waits at a gate in each of its passes until the test lets
it on, so the test knows where the worker is. Timeouts only bound a hang."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import threading
from pathlib import Path

import numpy as np
import pytest
from gui_fakes import HANG_MS, FlatFill, Gate
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest

import engine
from engine import Inpainter, UNetConfig, create_model
from retoucher.document import Document, Rect
from retoucher.qt.dialogs import OWN_TEXTURE
from retoucher.qt.fill_worker import FillJob, InpainterCache
from retoucher.qt.main_window import MainWindow
from retoucher.qt.settings import Settings


class GatedFake(Gate):
    """Stands in for an Inpainter that the test drives pass by pass, as the engine runs network
    passes. Each pass checks ``cancel`` (the engine checks between passes), reports progress,
    then waits at the gate until the test lets it through (:meth:`step`, :meth:`finish`). After
    its last pass it paints the hole a fixed colour. Records the thread it ran on, how often it
    checked ``cancel`` and whether it saw the cancel."""

    name = "gated fake"
    device_name = "CPU"
    info = None

    def __init__(self, passes: int = 1, colour=(0, 255, 0)) -> None:
        super().__init__()
        self.passes = passes
        self.colour = np.array(colour, np.uint8)
        self.thread: threading.Thread | None = None
        self.cancel = None  # the cancel callable of the latest call
        self.saw_cancel = False
        self.calls = 0
        self.checks = 0
        self.texture = "never called"  # the strength the latest call was given
        self.mirror = "never called"  # and its mirror= choice

    def __call__(self, image, hole, *, cancel=None, progress=None, texture=None, mirror=None):
        self.thread = threading.current_thread()
        self.cancel = cancel
        self.texture = texture
        self.mirror = mirror
        self.calls += 1
        for i in range(self.passes):
            self.checks += 1
            if cancel is not None and cancel():
                self.saw_cancel = True
                raise engine.InpaintCancelled()
            if progress:
                progress(i / self.passes)
            self.pass_gate()
        out = image.copy()
        out[hole] = self.colour
        return out


def _photo(h=96, w=128, seed=3):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture
def make_window(shown_window):
    fakes = []

    def make(inpainter=None, cache=None, rgb=None):
        cache = cache or InpainterCache()
        if inpainter is not None:
            cache.set(inpainter)
        if isinstance(inpainter, GatedFake):
            fakes.append(inpainter)
        return shown_window(Document(_photo() if rgb is None else rgb), cache, size=(900, 650))

    yield make
    for fake in fakes:  # a test that failed half-way must not leave a worker waiting at the gate
        fake.finish()


@pytest.fixture(scope="module")
def tiny_inpainter():
    import torch

    torch.manual_seed(0)
    return Inpainter.from_model(
        create_model(UNetConfig(widths=(8, 16, 16, 16), kernels=(7, 5, 3, 3))), name="tiny-random"
    )


def _paint_rect(w: MainWindow, rect: Rect) -> None:
    w._push_edit(w.doc.set_rect(rect))


def _wait_fill(qtbot, w: MainWindow, timeout=20000) -> None:
    qtbot.waitUntil(lambda: not w.busy, timeout=timeout)


def test_fill_with_a_tiny_model_changes_only_hole_pixels_and_is_one_undo_step(
    qtbot, make_window, tiny_inpainter
):
    w = make_window(tiny_inpainter)
    before = w.doc.image.copy()
    _paint_rect(w, Rect(30, 20, 70, 50))
    hole = w.doc.mask.copy()
    steps = w.undo_stack.count()
    QTest.keyClick(w.canvas, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)  # Ctrl+Return
    assert w.busy
    _wait_fill(qtbot, w)
    after = w.doc.image.copy()
    assert np.array_equal(after[~hole], before[~hole])
    assert (after[hole] != before[hole]).any()
    assert not w.doc.mask.any()  # the filled hole is cleared
    assert w.undo_stack.count() == steps + 1 and w.undo_stack.undoText() == "Fill"
    assert w.doc.dirty and w.isWindowModified()
    # The status bar now names the engine that ran.
    assert w.device_label.text() == "Device: CPU" and "tiny-random" in w.model_label.text()
    w.undo_stack.undo()
    assert np.array_equal(w.doc.image, before) and np.array_equal(w.doc.mask, hole)
    assert not w.doc.dirty
    w.undo_stack.redo()
    assert np.array_equal(w.doc.image, after) and not w.doc.mask.any()


def test_several_fills_in_a_row_then_undo_everything(qtbot, make_window, tiny_inpainter):
    w = make_window(tiny_inpainter)
    original = w.doc.image.copy()
    results = []
    for rect in (Rect(5, 5, 40, 30), Rect(20, 15, 90, 60), Rect(100, 70, 128, 96)):
        _paint_rect(w, rect)
        w.fill_action.trigger()
        _wait_fill(qtbot, w)
        results.append(w.doc.image.copy())
    assert w.undo_stack.count() == 6
    assert not np.array_equal(results[0], results[1])
    for i in (1, 0):
        w.undo_stack.undo()  # the fill
        w.undo_stack.undo()  # its rectangle
        assert np.array_equal(w.doc.image, results[i])
    w.undo_stack.undo()
    w.undo_stack.undo()
    assert np.array_equal(w.doc.image, original) and not w.doc.mask.any()


def test_event_loop_keeps_running_while_the_worker_fills(qtbot, make_window):
    fake = GatedFake(passes=2)
    w = make_window(fake)
    _paint_rect(w, Rect(10, 10, 30, 30))
    w.fill_button.click()  # returns at once: were the engine called here, it would wait at its gate
    assert w.busy and not w.fill_action.isEnabled() and w.cancel_action.isEnabled()
    assert w.progress.isVisible()
    # The engine is held inside its first pass; meanwhile the GUI thread handles events:
    fake.wait_at_gate(qtbot, 1)
    ticks = []
    QTimer.singleShot(0, lambda: ticks.append(w.busy))
    qtbot.waitUntil(lambda: ticks == [True], timeout=HANG_MS)
    # ... and shows the progress the worker reports while it is still working.
    fake.step()
    fake.wait_at_gate(qtbot, 2)
    qtbot.waitUntil(lambda: w.progress.value() == 50, timeout=HANG_MS)
    assert w.busy and w.progress.isVisible()
    fake.finish()
    _wait_fill(qtbot, w)
    assert fake.thread is not None and fake.thread is not threading.main_thread()
    assert (w.doc.image[10:30, 10:30] == (0, 255, 0)).all()
    assert not w.progress.isVisible() and w.fill_action.isEnabled()


def test_the_toolbar_fits_a_1100_px_window_and_cancel_shows_while_a_fill_runs(qtbot, make_window):
    """1366 x 768 at 125% is a window 1093 px wide: Compare, Split, Fit and 100% were behind the
    toolbar's >> beside a Cancel that had nothing to stop; Cancel shows while a job runs."""
    from PySide6.QtWidgets import QApplication, QToolBar

    fake = GatedFake(passes=2)
    w = make_window(fake)
    w.resize(1100, 650)
    QApplication.processEvents()
    tb = w.findChild(QToolBar)

    def out_of_sight() -> list[str]:
        QApplication.processEvents()
        return [
            a.iconText()
            for a in tb.actions()
            if a.isVisible() and not a.isSeparator() and not tb.widgetForAction(a).isVisible()
        ]

    button = tb.widgetForAction(w.cancel_tool)
    assert not button.isVisible() and out_of_sight() == []
    assert w.cancel_action in w.menuBar().actions()[1].menu().actions()  # Edit > Cancel stays
    _paint_rect(w, Rect(10, 10, 30, 30))
    w.fill()
    fake.wait_at_gate(qtbot, 1)
    assert w.cancel_action.isEnabled() and button.isVisible(), out_of_sight()
    QTest.mouseClick(button, Qt.MouseButton.LeftButton)  # it cancels
    fake.finish()
    qtbot.waitUntil(lambda: not w.busy, timeout=HANG_MS)
    assert "cancelled" in w.statusBar().currentMessage()
    assert not button.isVisible() and out_of_sight() == []


def test_closing_during_a_fill_that_cannot_stop_yet_closes_at_once_and_applies_nothing(qtbot, make_window):
    """The close waited up to 30 s on the window's thread for the fill to stop (a whole
    24-megapixel photo checks its cancel 24-34 s apart on a CPU): a frozen window after its close
    button. It closes after a moment; the fill's outcome is dropped when the worker returns."""
    import time

    from gui_fakes import GatedFill

    fill = GatedFill()
    cache = InpainterCache()
    cache.set(fill)
    w = make_window(cache=cache)
    doc = w.doc
    _paint_rect(w, Rect(10, 10, 30, 30))
    image, mask = doc.image.copy(), doc.mask.copy()
    w.fill()
    fill.wait_at_gate(qtbot, 1)  # in the engine, which ignores cancel until its pass ends
    try:
        start = time.perf_counter()
        assert w.close()
        assert time.perf_counter() - start < 3.0 and not w.isVisible()
    finally:
        fill.finish()
    assert w.jobs.pool.waitForDone(HANG_MS)
    QTest.qWait(50)  # an outcome queued for the closed window changes nothing
    assert np.array_equal(doc.image, image) and np.array_equal(doc.mask, mask) and not w.busy


def test_running_out_of_memory_applying_a_fill_says_so_and_the_photo_stays(qtbot, make_window, monkeypatch):
    """The error went to stderr alone and the status bar said "Filling..." for good."""
    from retoucher.document import Document

    real = Document.apply_fill
    calls = []

    def out_of_memory_once(self, result, hole, label="Fill"):
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError("Unable to allocate 183. MiB")
        return real(self, result, hole, label)

    monkeypatch.setattr(Document, "apply_fill", out_of_memory_once)
    cache = InpainterCache()
    cache.set(FlatFill())
    w = make_window(cache=cache)
    _paint_rect(w, Rect(10, 10, 30, 30))
    image, mask, steps = w.doc.image.copy(), w.doc.mask.copy(), w.undo_stack.count()
    w.fill()
    _wait_fill(qtbot, w)
    assert w.last_error[0] == "Cannot apply the fill" and "not enough memory" in w.last_error[1]
    assert "Filling" not in w.statusBar().currentMessage()
    assert np.array_equal(w.doc.image, image) and np.array_equal(w.doc.mask, mask)
    assert w.undo_stack.count() == steps and not w.doc.dirty
    w.fill()  # and the next fill goes through
    _wait_fill(qtbot, w)
    assert (w.doc.image[10:30, 10:30] == 128).all() and w.undo_stack.count() == steps + 1


def test_a_bug_applying_a_fill_is_shown_and_its_traceback_printed(qtbot, make_window, monkeypatch, capsys):
    """Caught to show it, an error of an unexpected kind left no traceback anywhere."""
    from retoucher.document import Document

    def bug(self, result, hole, label="Fill"):
        raise KeyError("a bug")

    monkeypatch.setattr(Document, "apply_fill", bug)
    cache = InpainterCache()
    cache.set(FlatFill())
    w = make_window(cache=cache)
    _paint_rect(w, Rect(10, 10, 30, 30))
    w.fill()
    _wait_fill(qtbot, w)
    assert w.last_error == (
        "Cannot apply the fill",
        "KeyError: 'a bug'\nThe photo and its hole are as they were.",
    )
    err = capsys.readouterr().err
    assert "Traceback" in err and "KeyError: 'a bug'" in err


def test_cancel_takes_effect_at_the_next_check_and_leaves_everything_as_it_was(qtbot, make_window):
    fake = GatedFake(passes=3)
    w = make_window(fake)
    _paint_rect(w, Rect(10, 10, 30, 30))
    image, mask, steps = w.doc.image.copy(), w.doc.mask.copy(), w.undo_stack.count()
    w.fill()
    fake.wait_at_gate(qtbot, 1)  # the engine is inside its first pass, past its first check
    assert fake.checks == 1 and not fake.cancel()
    QTest.keyClick(w.canvas, Qt.Key.Key_Escape)
    assert fake.cancel()  # Esc reached the engine's cancel check at once
    assert w.busy and "cancelling" in w.statusBar().currentMessage().lower()
    fake.step()  # let the engine on to its next check: it stops there
    _wait_fill(qtbot, w)
    assert fake.saw_cancel and fake.checks == 2
    assert np.array_equal(w.doc.image, image) and np.array_equal(w.doc.mask, mask)
    assert w.undo_stack.count() == steps
    assert "cancelled" in w.statusBar().currentMessage().lower()
    # And the next fill works.
    fake.finish()
    w.fill()
    _wait_fill(qtbot, w)
    assert not fake.cancel() and fake.checks == 5
    assert (w.doc.image[10:30, 10:30] == (0, 255, 0)).all()
    assert w.undo_stack.count() == steps + 1


def test_cancel_after_the_engines_last_check_still_drops_the_result(qtbot, make_window):
    fake = GatedFake(passes=1)
    w = make_window(fake)
    _paint_rect(w, Rect(10, 10, 30, 30))
    image, mask, steps = w.doc.image.copy(), w.doc.mask.copy(), w.undo_stack.count()
    w.fill()
    fake.wait_at_gate(qtbot, 1)  # past its only check: the engine will return a result
    w.cancel_action.trigger()
    fake.finish()
    _wait_fill(qtbot, w)
    assert not fake.saw_cancel and fake.checks == 1
    assert np.array_equal(w.doc.image, image) and np.array_equal(w.doc.mask, mask)
    assert w.undo_stack.count() == steps
    assert "cancelled" in w.statusBar().currentMessage().lower()


def test_canvas_does_not_edit_while_filling(qtbot, make_window):
    fake = GatedFake(passes=1)
    w = make_window(fake)
    _paint_rect(w, Rect(10, 10, 20, 20))
    w.fill()
    fake.wait_at_gate(qtbot, 1)  # the fill is running until the test lets it finish
    vp = w.canvas.viewport()
    p = w.canvas.from_image(80, 60).toPoint()
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p)
    assert not w.doc.mask[50:70, 70:90].any()
    assert not w.undo_action.isEnabled()
    fake.finish()
    _wait_fill(qtbot, w)
    assert w.undo_action.isEnabled()
    # With the fill done, the same click paints.
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, p)
    assert w.doc.mask[50:70, 70:90].any()


def test_missing_default_weights_opens_the_app_and_explains_on_fill(
    qtbot, make_window, tmp_path, monkeypatch
):
    monkeypatch.setenv("RETOUCHER_RESOURCES", str(tmp_path / "no-resources"))
    w = make_window()  # the real factory: Inpainter() with the (missing) default weights
    assert "none" in w.model_label.text().lower()
    _paint_rect(w, Rect(10, 10, 20, 20))
    image = w.doc.image.copy()
    w.fill()
    _wait_fill(qtbot, w)
    assert w.last_error is not None
    title, text = w.last_error
    assert title == "No usable model"
    assert "default.safetensors" in text and "Preferences" in text
    assert np.array_equal(w.doc.image, image) and w.doc.mask[10:20, 10:20].all()


def test_a_fill_passes_the_texture_and_mirror_settings_to_its_call(qtbot, make_window, tmp_path):
    """The window's settings reach an injected cache too, and each fill's call gets the
    strength and mirrored pass in force when it started."""
    settings = Settings.from_file(tmp_path / "settings.ini")  # the file the window reads
    settings.texture = 0.5
    settings.mirror = False
    settings.q.sync()
    fake = GatedFake()
    w = make_window(fake)
    assert w.inpainters.texture == 0.5 and w.inpainters.mirror is False
    _paint_rect(w, Rect(10, 10, 30, 30))
    fake.finish()
    w.fill()
    _wait_fill(qtbot, w)
    assert w.last_error is None and fake.calls == 1 and fake.texture == 0.5 and fake.mirror is False


def test_a_fill_job_keeps_the_strength_in_force_when_it_was_made():
    """A strength chosen while a fill waits for the worker applies to the next fill, not to it."""
    fake = GatedFake()
    fake.finish()
    cache = InpainterCache(texture=0.5)
    cache.set(fake)
    hole = np.zeros((8, 8), bool)
    hole[2:5, 2:5] = True
    job = FillJob(np.zeros((8, 8, 3), np.uint8), hole, cache)
    cache.configure(None, "auto", texture=1.0, mirror=False)  # same weights and device: the engine stays
    job.work()
    assert fake.texture == 0.5 and fake.mirror is True
    FillJob(np.zeros((8, 8, 3), np.uint8), hole, cache).work()
    assert fake.texture == 1.0 and fake.mirror is False and fake.calls == 2


def test_weights_chosen_in_preferences_are_loaded_in_the_worker(
    qtbot, make_window, tiny_weights, tmp_path, monkeypatch
):
    monkeypatch.setenv("RETOUCHER_RESOURCES", str(tmp_path / "no-resources"))
    w = make_window()
    dlg = w.open_preferences()
    dlg.weights.setText(str(tiny_weights))
    dlg.device.setCurrentIndex(dlg.device.findData("cpu"))
    dlg.quality.setValue(80)
    assert dlg.keep_jpeg.isChecked()
    dlg.keep_jpeg.setChecked(False)
    dlg.brush.setValue(25)
    # unset: the model's own strength (the bundled model is missing: no number to show)
    assert dlg.texture_own.isChecked() and not dlg.texture.isEnabled()
    assert dlg.texture_own.text() == OWN_TEXTURE
    dlg.texture_own.setChecked(False)
    assert dlg.texture.isEnabled() and dlg.texture.text() == "Off"
    dlg.texture.setValue(0.75)
    dlg.accept()
    assert w.settings.weights == str(tiny_weights) and w.settings.device == "cpu"
    assert w.settings.texture == 0.75
    assert w.settings.jpeg_quality == 80 and w.canvas.brush_size == 25
    assert w.settings.jpeg_keep_original is False
    assert w.model_label.text() == "Model: tiny-random"  # read from the file header
    assert w.inpainters.loaded is None  # not loaded until a fill needs it
    _paint_rect(w, Rect(40, 30, 60, 50))
    before, hole = w.doc.image.copy(), w.doc.mask.copy()
    w.fill()
    _wait_fill(qtbot, w)
    assert w.last_error is None
    loaded = w.inpainters.loaded
    assert loaded is not None and loaded.name == "tiny-random"
    # the fill is the Inpainter's at the chosen strength (the texture adds the photo's grain)
    want = Inpainter(tiny_weights, device="cpu", texture=0.75)(before, hole)
    assert np.array_equal(w.doc.image, want)
    assert not np.array_equal(want, Inpainter(tiny_weights, device="cpu")(before, hole))
    # another strength keeps the loaded model and reaches the next fill
    dlg = w.open_preferences()
    assert not dlg.texture_own.isChecked() and dlg.texture.value() == 0.75
    assert dlg.texture_own.text() == OWN_TEXTURE + " (0)"  # the loaded file names none
    dlg.texture.setValue(0.0)
    dlg.accept()
    assert w.inpainters.texture == 0.0 and w.inpainters.loaded is loaded
    _paint_rect(w, Rect(10, 60, 30, 80))
    before, hole = w.doc.image.copy(), w.doc.mask.copy()
    w.fill()
    _wait_fill(qtbot, w)
    assert w.inpainters.loaded is loaded
    assert np.array_equal(w.doc.image, Inpainter(tiny_weights, device="cpu", texture=0.0)(before, hole))
    # one network pass, chosen in Preferences, keeps the loaded model and fills as the engine's
    dlg = w.open_preferences()
    assert dlg.mirror.isChecked()  # the mirrored pass is the default
    dlg.mirror.setChecked(False)
    dlg.accept()
    assert w.settings.mirror is False and w.inpainters.mirror is False and w.inpainters.loaded is loaded
    _paint_rect(w, Rect(50, 10, 70, 30))
    before, hole = w.doc.image.copy(), w.doc.mask.copy()
    w.fill()
    _wait_fill(qtbot, w)
    want = Inpainter(tiny_weights, device="cpu", texture=0.0, mirror=False)(before, hole)
    assert np.array_equal(w.doc.image, want)
    assert not np.array_equal(want, Inpainter(tiny_weights, device="cpu", texture=0.0)(before, hole))
    assert not w.open_preferences().mirror.isChecked()
    # The About dialog shows the weight file's provenance.
    about = w.open_about()
    html = about.text.toPlainText()
    assert "tiny-random" in html and "random initialisation, for tests" in html
    about.close()


def test_the_models_own_texture_fills_unless_the_user_sets_another(
    qtbot, make_window, tiny_textured_weights, tiny_weights, tmp_path
):
    """A weight file that names its strength (as the bundled model does) fills at it while the
    setting is "the model's own"; Preferences shows the number and keeps the setting unset."""
    settings = Settings.from_file(tmp_path / "settings.ini")  # the file the window reads
    settings.weights, settings.device = str(tiny_textured_weights), "cpu"
    settings.q.sync()
    w = make_window(cache=InpainterCache(str(tiny_textured_weights), "cpu"))
    dlg = w.open_preferences()
    assert dlg.texture_own.isChecked() and dlg.texture_own.text() == OWN_TEXTURE + " (1)"
    assert dlg.texture.value() == 1.0 and not dlg.texture.isEnabled()
    dlg.accept()
    assert w.settings.texture is None and w.inpainters.texture is None
    about = w.open_about()
    assert "Own texture strength\n1\n" in about.text.toPlainText()
    about.close()
    _paint_rect(w, Rect(40, 30, 60, 50))
    before, hole = w.doc.image.copy(), w.doc.mask.copy()
    w.fill()
    _wait_fill(qtbot, w)
    assert w.last_error is None
    want = Inpainter(tiny_weights, device="cpu", texture=1.0)(before, hole)  # the same tensors
    assert np.array_equal(w.doc.image, want)
    assert not np.array_equal(want, Inpainter(tiny_weights, device="cpu")(before, hole))
    # the dialog follows the weights file shown; re-ticking "own" shows the model's strength again
    dlg = w.open_preferences()
    dlg.weights.setText(str(tiny_weights))
    dlg.weights.editingFinished.emit()
    assert dlg.texture_own.text() == OWN_TEXTURE + " (0)" and dlg.texture.value() == 0.0
    dlg.weights.setText(str(tiny_textured_weights))
    dlg.weights.editingFinished.emit()
    assert dlg.texture_own.text() == OWN_TEXTURE + " (1)" and dlg.texture.value() == 1.0
    dlg.texture_own.setChecked(False)
    dlg.texture.setValue(2.0)
    dlg.texture_own.setChecked(True)
    assert dlg.texture.value() == 1.0 and not dlg.texture.isEnabled()
    dlg.texture_own.setChecked(False)
    dlg.accept()  # a strength equal to the model's, chosen: stored, and stays when the model changes
    assert w.settings.texture == 1.0
    dlg = w.open_preferences()
    assert not dlg.texture_own.isChecked() and dlg.texture.value() == 1.0 and dlg.texture.isEnabled()
    # the user's own choice wins over the model's
    dlg.texture.setValue(0.0)
    dlg.accept()
    assert w.settings.texture == 0.0 and w.inpainters.texture == 0.0
    _paint_rect(w, Rect(10, 60, 30, 80))
    before, hole = w.doc.image.copy(), w.doc.mask.copy()
    w.fill()
    _wait_fill(qtbot, w)
    assert np.array_equal(w.doc.image, Inpainter(tiny_weights, device="cpu", texture=0.0)(before, hole))


def test_hold_backslash_to_compare_with_the_original(qtbot, make_window):
    rgb = np.full((96, 128, 3), (200, 30, 30), np.uint8)
    w = make_window(GatedFake(passes=0, colour=(0, 0, 255)), rgb=rgb)
    _paint_rect(w, Rect(40, 30, 90, 70))
    w.fill()
    _wait_fill(qtbot, w)
    centre = w.canvas.from_image(64, 50).toPoint()

    def shown():
        return w.canvas.viewport().grab().toImage().pixelColor(centre).getRgb()[:3]

    assert shown() == (0, 0, 255)
    QTest.keyPress(w.canvas, Qt.Key.Key_Backslash)
    assert w.canvas.comparing and w.compare_action.isChecked()
    assert shown() == (200, 30, 30)
    QTest.keyRelease(w.canvas, Qt.Key.Key_Backslash)
    assert not w.canvas.comparing and not w.compare_action.isChecked()
    assert shown() == (0, 0, 255)
    w.compare_action.trigger()  # the toolbar toggle does the same
    assert shown() == (200, 30, 30)
    w.compare_action.trigger()
    assert shown() == (0, 0, 255)


def test_compare_switched_on_during_a_fill_goes_off_when_the_fill_lands(qtbot, make_window):
    """The result must show when it arrives (it landed under the original, and the status bar
    said "Filled" over a photo that looked unchanged)."""
    rgb = np.full((96, 128, 3), (200, 30, 30), np.uint8)
    fake = GatedFake(passes=1, colour=(0, 0, 255))
    w = make_window(fake, rgb=rgb)
    _paint_rect(w, Rect(40, 30, 90, 70))
    w.fill()
    w.compare_action.trigger()  # Before/After while the fill runs
    assert w.canvas.comparing
    fake.finish()
    _wait_fill(qtbot, w)
    centre = w.canvas.from_image(64, 50).toPoint()
    assert not w.canvas.comparing and not w.compare_action.isChecked()
    assert w.canvas.viewport().grab().toImage().pixelColor(centre).getRgb()[:3] == (0, 0, 255)


def test_a_finished_fill_job_is_freed_with_its_copy_of_the_photo(qtbot, make_window):
    """The runner's slots held the job and the job's signals held the slots, a cycle through Qt
    the collector cannot see: every fill stayed in memory with its copy of the photo and hole
    (96 MB a fill of a 24-megapixel photo)."""
    import gc
    import weakref

    w = make_window(FlatFill())
    jobs = []
    for i in range(3):
        _paint_rect(w, Rect(10 + 20 * i, 10, 25 + 20 * i, 30))
        jobs.append(weakref.ref(w.fill()))
        _wait_fill(qtbot, w)
    gc.collect()
    assert w.undo_stack.count() == 6 and [j() for j in jobs] == [None, None, None]


def test_fill_with_nothing_painted_only_says_so(qtbot, make_window):
    fake = GatedFake(passes=0)
    w = make_window(fake)
    assert w.fill() is None and not w.busy and fake.calls == 0
    assert "paint" in w.statusBar().currentMessage().lower()


def test_a_photo_that_is_all_hole_is_refused_before_any_engine_runs(make_window):
    w = make_window()  # no engine: a fill that started would fail the fixture
    _paint_rect(w, Rect(0, 0, w.doc.width, w.doc.height))
    assert w.fill() is None
    assert not w.busy
    title, text = w.last_error
    assert title == "Cannot fill" and "whole image is marked as hole" in text and text[0].isupper()
    assert w.doc.mask.all() and w.undo_stack.count() == 1  # the mask stays for the user to fix


def test_the_engine_is_loaded_ahead_of_the_first_fill_and_again_after_a_new_choice(qtbot, make_window):
    """warm_up (the app's start) loads the engine in a thread of its own: the first fill does not
    wait for torch and the model (1.9 s of 2.4 s here), and a new device chosen in Preferences
    is loaded ahead too. The status bar says the device once it is loaded."""
    loads = []

    def factory(weights, device):
        loads.append((weights, device, threading.current_thread()))
        return FlatFill()

    cache = InpainterCache(factory=factory)
    w = make_window(cache=cache)
    assert "loads on first fill" in w.device_label.text() and not loads
    w.filler.warm_up()
    assert w.device_label.text() == "Device: auto (loading\u2026)"  # until the load reports
    qtbot.waitUntil(lambda: w.device_label.text() == "Device: CPU", timeout=HANG_MS)
    assert [(wt, d) for wt, d, _t in loads] == [(None, "auto")]
    assert loads[0][2] is not threading.main_thread()
    _paint_rect(w, Rect(10, 10, 20, 20))
    w.fill()
    _wait_fill(qtbot, w)
    assert len(loads) == 1 and w.doc.image[15, 15].tolist() == [128, 128, 128]  # no second load
    w.settings.device = "cpu"
    cache.configure(None, "cpu", texture=None, mirror=False)
    w.filler.reconfigured()
    qtbot.waitUntil(lambda: len(loads) == 2, timeout=HANG_MS)
    assert loads[1][:2] == (None, "cpu")


def test_an_engine_that_cannot_load_ahead_is_reported_by_the_first_fill(qtbot, make_window):
    def factory(weights, device):
        raise engine.WeightsError("not a weight file")

    w = make_window(cache=InpainterCache(factory=factory))
    w.filler.warm_up()
    assert "loading" in w.device_label.text()
    qtbot.waitUntil(lambda: "loads on first fill" in w.device_label.text(), timeout=HANG_MS)
    assert w.last_error is None  # nothing said yet: the user has not asked for a fill
    _paint_rect(w, Rect(10, 10, 20, 20))
    w.fill()
    _wait_fill(qtbot, w)
    assert w.last_error[0] == "No usable model" and "not a weight file" in w.last_error[1]


def test_a_new_choice_does_not_wait_for_a_model_loading_and_the_stale_one_is_not_kept():
    """Preferences' OK during the warm-up's load (seconds on a first CUDA start) froze the window
    until the load ended: configure waited on the lock the load held."""
    from retoucher.qt.worker import EngineCache

    loading = threading.Event()
    release = threading.Event()
    built = []

    def factory(weights, device):
        built.append(device)
        if device == "auto":
            loading.set()
            assert release.wait(HANG_MS / 1000)
        return f"engine for {device}"

    cache = EngineCache(None, "auto", factory)
    got = []
    first = threading.Thread(target=lambda: got.append(cache.get()))
    first.start()
    assert loading.wait(HANG_MS / 1000)
    changer = threading.Thread(target=cache.configure, args=(None, "cpu"))
    changer.start()
    changer.join(2.0)
    assert not changer.is_alive()  # did not wait for the load
    assert cache.loaded is None
    release.set()
    first.join(HANG_MS / 1000)
    assert got == ["engine for auto"]  # its caller gets what it asked for...
    assert cache.loaded is None  # ...but it is not kept for the new choice
    assert cache.get() == "engine for cpu" and built == ["auto", "cpu"]
    assert cache.get() == "engine for cpu" and built == ["auto", "cpu"]


def test_a_weights_file_written_again_is_loaded_again(tmp_path):
    """Trained further and exported over the same file: fills went on with the model loaded
    before until the app restarted (Preferences' OK with the same path changed nothing)."""
    from retoucher.qt.worker import EngineCache

    path = tmp_path / "mine.safetensors"
    path.write_bytes(b"first export")
    built = []

    def factory(weights, device):
        built.append(Path(weights).read_bytes())
        return f"engine {len(built)}"

    cache = EngineCache(str(path), "cpu", factory, watch=lambda w: Path(w))
    assert cache.get() == "engine 1" and cache.get() == "engine 1" and cache.loaded == "engine 1"
    path.write_bytes(b"second export, longer")
    assert cache.loaded is None  # the labels say the file's model, not the stale engine's
    assert cache.get() == "engine 2" and built == [b"first export", b"second export, longer"]
    assert cache.get() == "engine 2" and len(built) == 2  # once
    path.unlink()  # a file that cannot be read keeps the engine that works
    assert cache.get() == "engine 2" and len(built) == 2
    cache.set("given")  # a given engine is no file's: never reloaded
    path.write_bytes(b"third")
    assert cache.get() == "given"


def test_the_app_caches_watch_their_weights_files(tmp_path):
    from retoucher.qt.damage_worker import DetectorCache

    path = tmp_path / "m.safetensors"
    for cache in (
        InpainterCache(str(path), "cpu", factory=lambda w, d: object()),
        DetectorCache(str(path), "cpu", factory=lambda w, d: object()),
    ):
        path.write_bytes(b"a")
        first = cache.get()
        path.write_bytes(b"bb")
        assert cache.get() is not first


def test_a_device_this_machine_lacks_is_worded_for_the_app(qtbot, make_window, monkeypatch):
    """CUDA chosen in Preferences on a machine without it: "Cannot fill ... use --device cpu or
    auto", a command line's flag, under a title that blamed the photo."""
    import torch

    from retoucher.qt.worker import describe_error

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(engine.DeviceError) as caught:
        engine.select_device("cuda")
    assert "--device" in str(caught.value)  # the command lines keep their advice
    w = make_window(
        cache=InpainterCache(None, "cuda", factory=lambda weights, device: engine.select_device(device))
    )
    _paint_rect(w, Rect(10, 10, 30, 30))
    w.fill()
    _wait_fill(qtbot, w)
    title, text = w.last_error
    assert title == "No usable device" and "no CUDA GPU is usable here" in text
    assert "Preferences" in text and "--device" not in text
    assert describe_error(caught.value) == w.last_error


def test_preferences_refuses_a_weights_file_that_cannot_fill(qtbot, make_window, tiny_weights, tmp_path):
    """A missing file, a corrupt one or the damage detector's were stored on OK without a word;
    the first Fill, after the hole was painted, said so."""
    from engine.damage import DamageNet, DamageNetConfig, save_damage_weights

    w = make_window()
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00" * 100)
    detector = save_damage_weights(tmp_path / "damage.safetensors", DamageNet(DamageNetConfig(width=4)))
    for bad, words in (
        (tmp_path / "gone.safetensors", "gone.safetensors"),
        (corrupt, "corrupt.safetensors"),
        (detector, "damage"),
    ):
        dlg = w.open_preferences()
        dlg.weights.setText(str(bad))
        dlg.accept()
        assert dlg.isVisible() and dlg.problem and words in dlg.problem
        assert w.settings.weights == ""  # not stored
        dlg.reject()
    dlg = w.open_preferences()
    dlg.weights.setText(str(tiny_weights))
    dlg.accept()
    assert not dlg.isVisible() and dlg.problem is None and w.settings.weights == str(tiny_weights)
    dlg = w.open_preferences()
    dlg.weights.setText("")  # the bundled model: never refused here
    dlg.accept()
    assert not dlg.isVisible() and w.settings.weights == ""


def test_preferences_with_a_stored_weights_file_gone_still_take_other_changes(
    qtbot, make_window, tiny_weights, tmp_path
):
    """A weights file chosen once and gone since (a drive unplugged) refused every OK, so the
    Device could not be changed after a device error."""
    import shutil

    kept = tmp_path / "kept.safetensors"
    shutil.copy(tiny_weights, kept)
    w = make_window()
    dlg = w.open_preferences()
    dlg.weights.setText(str(kept))
    dlg.accept()
    assert w.settings.weights == str(kept)
    kept.unlink()
    dlg = w.open_preferences()
    dlg.device.setCurrentIndex(dlg.device.findData("cpu"))
    dlg.accept()
    assert not dlg.isVisible() and w.settings.device == "cpu"
