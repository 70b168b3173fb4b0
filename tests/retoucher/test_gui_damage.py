"""Tools > Find Damage: the detector runs in the worker (progress, cancel, errors), what it finds
is added to the brushed mask as one undo step, the sensitivity and grow re-tune that step from
the kept detection without running the network again, edits after it are never lost, and Fill
then fills the union.

Nothing here is timed: the fake detector waits at a gate in each of its passes until the test
lets it on (tests/retoucher/gui_fakes.py). Timeouts only bound a hang."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import threading

import numpy as np
import pytest
from gui_fakes import HANG_MS, FlatFill, Gate, GatedFill  # tests/retoucher/gui_fakes.py
from gui_input import drag
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QToolBar

from engine.damage import (
    DamageDetector,
    DamageMap,
    DamageNet,
    DamageNetConfig,
    DetectionCancelled,
    save_damage_weights,
)
from retoucher.damage import DEFAULT_DILATE
from retoucher.damage_review import SENSITIVITY_STEPS, add_damage, sensitivity_of
from retoucher.document import Document, Rect
from retoucher.qt.damage_worker import DetectorCache
from retoucher.qt.fill_worker import InpainterCache
from retoucher.qt.shortcuts_dialog import key_name, shortcut_groups
from retoucher.qt.tools import ToolKind

H, W = 96, 128


def _photo(seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def _probability() -> np.ndarray:
    """A faint scratch (0.3) in row 20, a strong one (0.9) in column 100, a speck (0.6)."""
    p = np.full((H, W), 0.02, np.float32)
    p[20, 10:90] = 0.3
    p[10:80, 100] = 0.9
    p[60, 30] = 0.6
    return p


class GatedDetector(Gate):
    """Stands in for the damage detector: each pass checks ``cancel``, reports progress and waits
    at the gate; then it returns :func:`_probability` at the threshold asked for (its own
    calibrated ``threshold`` when None). Counts its calls and records their thresholds."""

    name = "gated detector"

    def __init__(self, passes: int = 1, threshold: float = 0.5) -> None:
        super().__init__()
        self.passes = passes
        self.threshold = threshold
        self.calls: list[float | None] = []
        self.thread: threading.Thread | None = None
        self.saw_cancel = False

    def __call__(self, image, threshold=None, *, cancel=None, progress=None):
        self.thread = threading.current_thread()
        self.calls.append(threshold)
        assert image.shape == (H, W, 3) and image.dtype == np.uint8
        for i in range(self.passes):
            if cancel is not None and cancel():
                self.saw_cancel = True
                raise DetectionCancelled()
            if progress:
                progress(i / self.passes)
            self.pass_gate()
        t = self.threshold if threshold is None else threshold
        p = _probability()
        return DamageMap(p, t, p >= t)


@pytest.fixture
def make_window(shown_window):
    fakes: list[Gate] = []

    def make(detector=None, *, detectors=None, inpainter=None, rgb=None):
        detectors = detectors or DetectorCache()
        if detector is not None:
            detectors.set(detector)
            fakes.append(detector)
        cache = InpainterCache()
        if inpainter is not None:
            cache.set(inpainter)
        doc = Document(_photo() if rgb is None else rgb)
        return shown_window(doc, cache, size=(900, 650), detectors=detectors)

    yield make
    for fake in fakes:  # a test that failed half-way must not leave a worker waiting at the gate
        fake.finish()


def _brush(w) -> np.ndarray:
    """Two brushed rectangles, one over the strong scratch; returns the mask."""
    for rect in (Rect(0, 0, 12, 8), Rect(96, 40, 106, 50)):
        w._push_edit(w.doc.set_rect(rect))
    return w.doc.mask.copy()


def _wait(qtbot, w) -> None:
    qtbot.waitUntil(lambda: not w.busy, timeout=HANG_MS)


def _find(qtbot, w, fake: GatedDetector) -> None:
    """Find Damage through its action and let the fake through."""
    w.damage.action.trigger()
    fake.finish()
    _wait(qtbot, w)


def _expected(base: np.ndarray, threshold: float, grow: int = DEFAULT_DILATE) -> np.ndarray:
    return add_damage(base, _probability() >= threshold, grow)


def _slide(qtbot, panel, threshold: float) -> None:
    """Move the sensitivity slider to ``threshold`` and wait until the panel has reported it (a
    move is reported a moment later, coalesced with the moves after it)."""
    panel.slider.setValue(sensitivity_of(threshold))
    qtbot.waitUntil(lambda: not panel.pending, timeout=HANG_MS)


# --------------------------------------------------------------------------- running it
def test_find_damage_runs_in_the_worker_and_adds_to_the_brushed_mask_as_one_undo_step(qtbot, make_window):
    fake = GatedDetector(passes=2)
    w = make_window(fake)
    brushed = _brush(w)
    steps = w.undo_stack.count()
    QTest.keyClick(w.canvas, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)  # Ctrl+D
    assert w.busy and w.progress.isVisible() and "finding damage" in w.statusBar().currentMessage().lower()
    assert not w.damage.action.isEnabled() and not w.fill_action.isEnabled() and w.cancel_action.isEnabled()
    fake.wait_at_gate(qtbot, 1)  # the detector is held inside its first pass; the GUI runs on:
    ticks = []
    QTimer.singleShot(0, lambda: ticks.append(w.busy))
    qtbot.waitUntil(lambda: ticks == [True], timeout=HANG_MS)
    fake.step()
    fake.wait_at_gate(qtbot, 2)
    qtbot.waitUntil(lambda: w.progress.value() == 50, timeout=HANG_MS)
    assert np.array_equal(w.doc.mask, brushed)  # nothing changes before the result is in
    fake.finish()
    _wait(qtbot, w)
    assert fake.thread is not None and fake.thread is not threading.main_thread()
    assert fake.calls == [None]  # the detector's calibrated threshold, nothing remembered yet
    found = _expected(brushed, 0.5)
    assert np.array_equal(w.doc.mask, found) and (found & ~brushed).any()
    assert w.undo_stack.count() == steps + 1 and w.undo_stack.undoText() == "Find Damage"
    assert w.undo_action.text() == "&Undo Find Damage"
    assert not w.doc.dirty  # a mask change alone leaves the photo saved
    assert "added" in w.statusBar().currentMessage() and not w.progress.isVisible()
    assert w.damage.panel.isVisible() and w.damage.panel.slider.isEnabled()
    assert w.damage.panel.slider.value() == sensitivity_of(0.5) and w.damage.panel.grow.value() == 2
    w.undo()
    assert np.array_equal(w.doc.mask, brushed)
    w.redo()
    assert np.array_equal(w.doc.mask, found)


def test_the_found_damage_is_grown_in_the_worker_not_on_the_apps_thread(qtbot, make_window, monkeypatch):
    """Growing what was found over the whole photo ran on the app's thread as the result landed
    (0.1-0.2 s at 24 MP, with the threshold's second pass): the worker grows it now, and a later
    sensitivity or grow is still made here (the step stays adjustable)."""
    import retoucher.damage

    threads = []
    real = retoucher.damage.grown

    def recording(mask, radius):
        threads.append(threading.current_thread())
        return real(mask, radius)

    monkeypatch.setattr(retoucher.damage, "grown", recording)
    fake = GatedDetector()
    w = make_window(fake)
    brushed = _brush(w)
    _find(qtbot, w, fake)
    during = list(threads)
    assert during and threading.main_thread() not in during
    assert np.array_equal(w.doc.mask, _expected(brushed, 0.5))
    threads.clear()
    assert w.damage.adjust(0.5, 4)  # another grow: made here, from the kept detection
    assert threads == [threading.main_thread()]
    assert np.array_equal(w.doc.mask, _expected(brushed, 0.5, 4))
    assert w.damage.adjust(0.5, DEFAULT_DILATE)  # back: the same as the worker's
    assert np.array_equal(w.doc.mask, _expected(brushed, 0.5))


def test_the_detector_is_built_on_first_use_in_the_worker_and_kept(qtbot, make_window):
    built: list[tuple[object, str, threading.Thread]] = []
    fake = GatedDetector()
    fake.finish()

    def factory(weights, device):
        built.append((weights, device, threading.current_thread()))
        return fake

    w = make_window(detectors=DetectorCache(None, "cpu", factory))
    assert built == []  # opening the app loads no detector
    for _ in range(2):
        w.damage.find()
        _wait(qtbot, w)
    assert len(built) == 1 and built[0][:2] == (None, "cpu") and built[0][2] is not threading.main_thread()
    assert len(fake.calls) == 2


# --------------------------------------------------------------------------- adjusting it
def test_sensitivity_and_grow_retune_the_one_step_without_running_the_detector_again(qtbot, make_window):
    fake = GatedDetector()
    w = make_window(fake)
    brushed = _brush(w)
    _find(qtbot, w, fake)
    steps = w.undo_stack.count()
    panel = w.damage.panel
    assert not w.doc.mask[20, 10:90].all()  # the faint scratch is below the default threshold
    _slide(qtbot, panel, 0.25)  # more sensitive
    assert np.array_equal(w.doc.mask, _expected(brushed, 0.25)) and w.doc.mask[20, 10:90].all()
    panel.grow.setValue(0)
    assert np.array_equal(w.doc.mask, _expected(brushed, 0.25, 0))
    _slide(qtbot, panel, 0.95)  # less sensitive than anything found: only the brush
    assert np.array_equal(w.doc.mask, brushed)
    _slide(qtbot, panel, 0.75)
    assert np.array_equal(w.doc.mask, _expected(brushed, 0.75, 0))
    assert len(fake.calls) == 1  # every change came from the kept probability
    assert w.undo_stack.count() == steps and w.undo_stack.undoText() == "Find Damage"
    w.undo()  # one step takes back the find with all its adjustments
    assert np.array_equal(w.doc.mask, brushed)
    w.redo()
    assert np.array_equal(w.doc.mask, _expected(brushed, 0.75, 0))
    # Remembered for the next Find Damage, which asks the detector for that threshold.
    assert w.settings.damage_threshold == pytest.approx(0.75) and w.settings.damage_grow == 0
    w.damage.find()
    _wait(qtbot, w)
    assert fake.calls[-1] == pytest.approx(0.75) and panel.grow.value() == 0
    # Default goes back to the detector's calibrated threshold, and forgets the choice.
    panel.default_button.click()
    assert panel.slider.value() == sensitivity_of(0.5) and w.settings.damage_threshold is None


def test_a_slider_drag_applies_its_latest_value_coalesced_and_at_once_on_release(qtbot, make_window):
    """Each tick of a drag would re-threshold, grow and repaint the whole mask (long on a large
    scan): the ticks are coalesced into one report of the latest value, and releasing the slider
    reports a value still waiting at once."""
    fake = GatedDetector()
    w = make_window(fake)
    _find(qtbot, w, fake)
    panel = w.damage.panel
    none = np.zeros((H, W), bool)
    reported: list[float] = []
    panel.changed.connect(lambda threshold, grow: reported.append(threshold))
    panel.slider.setSliderDown(True)  # what a press on the handle does
    for threshold in (0.45, 0.4, 0.35, 0.3, 0.25):
        panel.slider.setValue(sensitivity_of(threshold))
    # No tick was applied on its own: the event loop has not run since.
    assert reported == [] and panel.pending and np.array_equal(w.doc.mask, _expected(none, 0.5))
    assert panel.value_label.text() == "75%"  # the value shown follows every tick
    qtbot.waitUntil(lambda: np.array_equal(w.doc.mask, _expected(none, 0.25)), timeout=HANG_MS)
    assert reported == [pytest.approx(0.25)] and not panel.pending
    panel.slider.setValue(sensitivity_of(0.7))
    assert panel.pending and np.array_equal(w.doc.mask, _expected(none, 0.25))
    panel.slider.setSliderDown(False)  # released: applied now, not a moment later
    assert not panel.pending and np.array_equal(w.doc.mask, _expected(none, 0.7))
    assert reported == [pytest.approx(0.25), pytest.approx(0.7)]
    assert w.undo_stack.count() == 1 and len(fake.calls) == 1


def test_retuning_until_nothing_is_added_takes_the_step_off_and_undo_goes_to_the_one_before(
    qtbot, make_window
):
    fake = GatedDetector()
    w = make_window(fake)
    brushed = _brush(w)
    first_rect = w.doc.mask.copy()
    first_rect[40:50, 96:106] = False
    _find(qtbot, w, fake)
    panel = w.damage.panel
    assert w.undo_stack.count() == 3 and w.undo_stack.undoText() == "Find Damage"
    _slide(qtbot, panel, 0.95)  # above everything found: the find adds nothing
    assert np.array_equal(w.doc.mask, brushed)
    assert w.undo_stack.count() == 2 and w.undo_stack.index() == 2 and w.undo_stack.undoText() == "Rectangle"
    assert not w.undo_stack.canRedo() and w.undo_action.text() == "&Undo Rectangle"
    assert panel.slider.isEnabled() and "no new damage" in panel.info.text().lower()  # still adjustable
    _slide(qtbot, panel, 0.5)  # finds again: the step is back, once
    assert np.array_equal(w.doc.mask, _expected(brushed, 0.5))
    assert w.undo_stack.count() == 3 and w.undo_stack.undoText() == "Find Damage"
    _slide(qtbot, panel, 0.95)
    assert w.undo_stack.count() == 2
    w.undo()  # the second rectangle, not an empty Find Damage
    assert np.array_equal(w.doc.mask, first_rect) and w.last_error is None
    assert not panel.slider.isEnabled()  # the history moved: the find is settled


def test_a_stroke_after_the_find_settles_it_and_is_never_lost(qtbot, make_window):
    fake = GatedDetector()
    w = make_window(fake)
    brushed = _brush(w)
    _find(qtbot, w, fake)
    panel = w.damage.panel
    w.set_tool(ToolKind.BRUSH)
    w.set_brush_size(6)
    drag(w, [(40.5, 70.5), (60.5, 70.5)])  # a missed scratch, brushed by hand
    stroked = w.doc.mask.copy()
    assert stroked[70, 45:55].all() and w.undo_stack.undoText() == "Brush stroke"
    assert not panel.slider.isEnabled() and "again" in panel.info.text()
    assert not w.damage.adjust(0.25, 0)  # the find is settled: nothing moves
    _slide(qtbot, panel, 0.25)
    assert np.array_equal(w.doc.mask, stroked) and len(fake.calls) == 1
    w.undo()  # the stroke, then the find, as they were
    assert np.array_equal(w.doc.mask, _expected(brushed, 0.5))
    w.undo()
    assert np.array_equal(w.doc.mask, brushed)
    assert not w.damage.adjust(0.25, 0)  # undo settles it too
    assert np.array_equal(w.doc.mask, brushed) and w.last_error is None


def test_a_polygon_being_clicked_is_closed_into_the_mask_before_the_find(qtbot, make_window):
    """Find Damage while the corners of a polygon are clicked: the polygon is its own step first
    (it was dropped), and the find stays adjustable on top of it."""
    from gui_input import view_point

    fake = GatedDetector()
    w = make_window(fake)
    w.set_tool(ToolKind.LASSO)
    for x, y in [(20, 60), (50, 60), (50, 90)]:
        QTest.mouseClick(
            w.canvas.viewport(),
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
            view_point(w, x, y),
        )
    assert w.canvas.shape_pending
    _find(qtbot, w, fake)
    assert [w.undo_stack.text(i) for i in range(w.undo_stack.count())] == ["Lasso", "Find Damage"]
    lasso = w.doc.mask.copy()
    w.undo()
    polygon = w.doc.mask.copy()
    assert polygon[61:89, 21:49].any() and np.array_equal(lasso, _expected(polygon, 0.5))
    w.redo()
    assert np.array_equal(w.doc.mask, lasso)


@pytest.mark.parametrize(
    "tool, points",
    [
        (ToolKind.BRUSH, [(100.5, 30.5), (100.5, 40.5)]),  # brushed again over the found scratch
        (ToolKind.ERASER, [(60.5, 85.5), (70.5, 85.5)]),  # erased where nothing is marked
    ],
    ids=["brush-over-found", "eraser-on-clean"],
)
def test_a_stroke_that_changes_no_pixel_leaves_the_find_adjustable(qtbot, make_window, tool, points):
    fake = GatedDetector()
    w = make_window(fake)
    brushed = _brush(w)
    _find(qtbot, w, fake)
    w.set_tool(tool)
    w.set_brush_size(1)
    steps = w.undo_stack.count()
    drag(w, points)  # a re-check of what was found: no pixel changes, no step, no settling
    assert np.array_equal(w.doc.mask, _expected(brushed, 0.5)) and w.undo_stack.count() == steps
    panel = w.damage.panel
    assert panel.slider.isEnabled() and w.damage.adjustable
    _slide(qtbot, panel, 0.25)
    assert np.array_equal(w.doc.mask, _expected(brushed, 0.25)) and w.last_error is None


def test_nothing_found_adds_no_step_until_a_higher_sensitivity_finds_some(qtbot, make_window):
    fake = GatedDetector(threshold=0.99)
    w = make_window(fake)
    _find(qtbot, w, fake)
    assert not w.doc.mask.any() and w.undo_stack.count() == 0
    assert "no new damage" in w.damage.panel.info.text().lower()
    _slide(qtbot, w.damage.panel, 0.5)
    assert np.array_equal(w.doc.mask, _expected(np.zeros((H, W), bool), 0.5))
    assert w.undo_stack.count() == 1 and w.undo_stack.undoText() == "Find Damage"
    _slide(qtbot, w.damage.panel, 0.4)  # still the same one step
    assert w.undo_stack.count() == 1
    w.undo()
    assert not w.doc.mask.any()


def test_a_new_find_adds_to_the_previous_one_which_stays_as_it_was(qtbot, make_window):
    fake = GatedDetector()
    w = make_window(fake)
    _find(qtbot, w, fake)
    w.damage.panel.grow.setValue(0)  # remembered: the second find grows by 0
    first = w.doc.mask.copy()
    assert np.array_equal(first, _probability() >= 0.5)
    w.damage.find()
    _wait(qtbot, w)
    assert w.undo_stack.count() == 1  # the same mask again: nothing to add, no step
    _slide(qtbot, w.damage.panel, 0.25)
    assert np.array_equal(w.doc.mask, first | (_probability() >= 0.25))
    assert w.undo_stack.count() == 2
    w.undo()
    assert np.array_equal(w.doc.mask, first)


# --------------------------------------------------------------------------- cancel, errors, busy
def test_cancel_leaves_the_mask_and_history_untouched(qtbot, make_window):
    fake = GatedDetector(passes=3)
    w = make_window(fake)
    brushed = _brush(w)
    steps = w.undo_stack.count()
    w.damage.find()
    fake.wait_at_gate(qtbot, 1)
    QTest.keyClick(w.canvas, Qt.Key.Key_Escape)
    assert "cancelling" in w.statusBar().currentMessage().lower()
    fake.step()  # on to the next check, where it stops
    _wait(qtbot, w)
    assert fake.saw_cancel
    assert np.array_equal(w.doc.mask, brushed) and w.undo_stack.count() == steps
    assert "cancelled" in w.statusBar().currentMessage().lower() and not w.damage.panel.isVisible()
    assert w.damage.action.isEnabled()


@pytest.mark.parametrize("broken", [False, True], ids=["missing", "broken"])
def test_a_missing_or_broken_bundled_detector_explains_and_changes_nothing(
    qtbot, make_window, tmp_path, monkeypatch, broken
):
    resources = tmp_path / "resources"
    (resources / "weights").mkdir(parents=True)
    if broken:
        (resources / "weights" / "damage.safetensors").write_bytes(b"not a weight file at all")
    monkeypatch.setenv("RETOUCHER_RESOURCES", str(resources))
    w = make_window(detectors=DetectorCache(None, "cpu"))  # the real factory, the bundled file
    brushed = _brush(w)
    w.damage.find()
    _wait(qtbot, w)
    title, text = w.last_error
    assert title == "No damage detector" and "damage.safetensors" in text and "Nothing was changed" in text
    assert np.array_equal(w.doc.mask, brushed) and w.undo_stack.count() == 2
    assert w.damage.action.isEnabled() and w.detectors.loaded is None


def test_the_bundled_detector_file_is_loaded_and_its_threshold_is_the_default(
    qtbot, make_window, tmp_path, monkeypatch
):
    import torch

    torch.manual_seed(0)
    net = DamageNet(DamageNetConfig(width=4))
    save_damage_weights(tmp_path / "resources" / "weights" / "damage.safetensors", net, {"threshold": 0.45})
    monkeypatch.setenv("RETOUCHER_RESOURCES", str(tmp_path / "resources"))
    w = make_window(detectors=DetectorCache(None, "cpu"))
    brushed = _brush(w)
    image = w.doc.image.copy()
    w.damage.find()
    _wait(qtbot, w)
    assert w.last_error is None
    probability = DamageDetector.from_model(net, "cpu").probability(image)
    assert np.array_equal(w.doc.mask, add_damage(brushed, probability >= 0.45, DEFAULT_DILATE))
    panel = w.damage.panel
    assert panel.default_threshold == pytest.approx(0.45) and panel.threshold == pytest.approx(0.45)


def test_a_detector_that_fails_shows_an_error_and_changes_nothing(qtbot, make_window):
    class Exploding(GatedDetector):
        def __call__(self, image, threshold=None, *, cancel=None, progress=None):
            raise RuntimeError("the GPU caught fire")

    w = make_window(Exploding())
    brushed = _brush(w)
    w.damage.find()
    _wait(qtbot, w)
    assert w.last_error == ("Find Damage failed", "RuntimeError: the GPU caught fire")
    assert np.array_equal(w.doc.mask, brushed) and w.undo_stack.count() == 2


def test_running_out_of_memory_applying_a_find_says_so_and_changes_nothing(qtbot, make_window, monkeypatch):
    """Only ValueError and RuntimeError were caught: out of memory went to stderr, no word."""
    from retoucher.damage_review import FoundDamage

    def out_of_memory(self, doc):
        raise MemoryError("Unable to allocate 183. MiB")

    monkeypatch.setattr(FoundDamage, "apply", out_of_memory)
    fake = GatedDetector()
    w = make_window(fake)
    brushed = _brush(w)
    _find(qtbot, w, fake)
    assert w.last_error[0] == "Find Damage failed" and "not enough memory" in w.last_error[1]
    assert np.array_equal(w.doc.mask, brushed) and w.undo_stack.count() == 2


def test_running_out_of_memory_showing_a_find_leaves_the_mask_as_it_was(qtbot, make_window, monkeypatch):
    """The mask was written, then the overlay's redraw ran out of memory: the error said
    "Nothing was changed" while the mask held the find with no undo step, for the next Fill."""
    fake = GatedDetector()
    w = make_window(fake)
    brushed = _brush(w)
    overlay = type(w.canvas.overlay)
    real = overlay.refresh

    def out_of_memory(self, mask, rect):
        raise MemoryError("Unable to allocate 183. MiB")

    monkeypatch.setattr(overlay, "refresh", out_of_memory)
    _find(qtbot, w, fake)
    monkeypatch.setattr(overlay, "refresh", real)
    assert w.last_error[0] == "Find Damage failed" and "Nothing was changed" in w.last_error[1]
    assert np.array_equal(w.doc.mask, brushed) and w.undo_stack.count() == 2


def test_a_finds_probability_map_is_not_history_the_budget_lets_older_steps_go_for(qtbot, make_window):
    """The map a find is adjusted from (4 bytes a pixel, gone when it settles) counted against
    the history's budget: a find let go the steps before it, and retuned until it added nothing,
    left Undo disabled for the last real edit."""
    fake = GatedDetector()
    w = make_window(fake)
    _brush(w)  # two rectangles: a few hundred bytes each
    w.history.budget = 40_000  # they fit many times over; the map (48 kB) does not
    _find(qtbot, w, fake)
    stack = w.undo_stack
    assert not any(stack.command(i).forgotten for i in range(stack.count()))
    _slide(qtbot, w.damage.panel, 0.95)  # the find adds nothing: taken off the history
    assert w.undo_action.isEnabled()
    w.undo()
    w.undo()
    assert not w.doc.mask.any()


def test_find_damage_needs_a_photo_and_waits_for_a_running_fill(qtbot, make_window):
    fill = GatedFill()
    fake = GatedDetector()
    w = make_window(fake, inpainter=fill)
    assert w.damage.action.isEnabled()
    _brush(w)
    w.fill()
    fill.wait_at_gate(qtbot, 1)
    assert not w.damage.action.isEnabled() and w.damage.find() is None and fake.calls == []
    fill.finish()
    _wait(qtbot, w)
    assert w.damage.action.isEnabled()
    w.damage.find()  # and a running search holds off Fill
    assert w.fill() is None and not w.fill_action.isEnabled()
    fake.finish()
    _wait(qtbot, w)
    w.set_document(None)
    assert not w.damage.action.isEnabled() and w.damage.find() is None


def test_a_result_for_a_photo_that_was_replaced_meanwhile_is_dropped(qtbot, make_window):
    fake = GatedDetector()
    w = make_window(fake)
    w.damage.find()
    fake.wait_at_gate(qtbot, 1)
    w.set_document(Document(_photo(seed=9)))  # e.g. a script; the menus refuse while busy
    fake.finish()
    _wait(qtbot, w)
    assert not w.doc.mask.any() and w.undo_stack.count() == 0
    assert "dropped" in w.statusBar().currentMessage()


def test_closing_while_searching_waits_and_applies_nothing(qtbot, make_window):
    fake = GatedDetector()
    w = make_window(fake)
    doc = w.doc
    w.damage.find()
    fake.wait_at_gate(qtbot, 1)
    fake.finish()
    w.close()
    assert not w.busy and not doc.mask.any()
    QTest.qWait(0)  # a result still queued for the closed window changes nothing either
    assert not doc.mask.any()


# --------------------------------------------------------------------------- then Fill, and the menus
def test_fill_after_find_damage_fills_the_brushed_and_the_found_pixels(qtbot, make_window):
    fake = GatedDetector()
    fill = GatedFill()
    w = make_window(fake, inpainter=fill)
    brushed = _brush(w)
    _find(qtbot, w, fake)
    hole = w.doc.mask.copy()
    assert np.array_equal(hole, _expected(brushed, 0.5))
    before = w.doc.image.copy()
    w.fill()
    fill.wait_at_gate(qtbot, 1)
    assert not w.damage.panel.slider.isEnabled()  # the mask must not change under a fill
    w.cancel_job()
    fill.step()
    _wait(qtbot, w)
    assert w.damage.panel.slider.isEnabled()  # a cancelled fill changed nothing: still adjustable
    fill.finish()
    w.fill()
    _wait(qtbot, w)
    assert (w.doc.image[hole] == 128).all() and np.array_equal(w.doc.image[~hole], before[~hole])
    assert not w.doc.mask.any() and not w.damage.panel.slider.isEnabled()  # the fill settles the find


def test_find_damage_is_in_the_tools_menu_the_toolbar_and_the_shortcuts_list(make_window):
    w = make_window(GatedDetector())
    tools = next(a.menu() for a in w.menuBar().actions() if a.text() == "&Tools")
    assert w.damage.action in tools.actions()
    assert w.damage.action in w.findChild(QToolBar, "tools").actions()
    rows = [row for _group, rows in shortcut_groups(w, False) for row in rows]
    assert ("Find Damage", key_name(QKeySequence("Ctrl+D"))) in rows
    assert ("Cancel", key_name(QKeySequence("Esc"))) in rows


class RecordingFlatFill(FlatFill):
    def __init__(self) -> None:
        self.holes: list[np.ndarray] = []

    def __call__(self, image, hole, **kw):
        self.holes.append(hole.copy())
        return super().__call__(image, hole, **kw)


def test_a_sensitivity_moved_just_before_fill_is_what_fills(qtbot, make_window):
    """A slider move is reported 80 ms later; Fill (or a new Find Damage) within those 80 ms
    dropped it: the fill used the old mask while the panel showed the new sensitivity."""
    fake, fill = GatedDetector(), RecordingFlatFill()
    w = make_window(fake, inpainter=fill)
    _brush(w)
    _find(qtbot, w, fake)
    panel = w.damage.panel
    panel.slider.setValue(sensitivity_of(0.25))  # would take the faint scratch in row 20
    assert panel.pending
    w.fill_action.trigger()
    _wait(qtbot, w)
    assert fill.holes and fill.holes[0][20, 10:90].all()
    assert w.settings.damage_threshold == pytest.approx(0.25)


def test_the_panels_grow_arrows_and_default_button_leave_the_keys_on_the_photo(qtbot, make_window):
    """A click on Default kept the keyboard on the button: Space+drag then painted (a new step
    that settled the find) instead of panning; a click on the Grow box's arrows kept it in the
    box: E (the eraser, for false finds) and Ctrl+Z went to the box."""
    from gui_input import drag_in_view
    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QApplication, QStyle, QStyleOptionSpinBox

    fake = GatedDetector()
    w = make_window(fake)
    brushed = _brush(w)
    _find(qtbot, w, fake)
    panel, canvas = w.damage.panel, w.canvas
    canvas.set_zoom(8.0)
    canvas.centerOn(w.doc.width / 2, w.doc.height / 2)
    canvas.setFocus()
    _slide(qtbot, panel, 0.9)
    QTest.mouseClick(panel.default_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.pending, timeout=HANG_MS)
    assert panel.slider.value() == sensitivity_of(0.5)
    steps, mask = w.undo_stack.index(), w.doc.mask.copy()
    h0 = canvas.horizontalScrollBar().value()
    QTest.keyPress(QApplication.focusWidget(), Qt.Key.Key_Space)
    drag_in_view(canvas.viewport(), [QPoint(300, 300), QPoint(330, 300)])
    QTest.keyRelease(QApplication.focusWidget(), Qt.Key.Key_Space)
    assert canvas.horizontalScrollBar().value() == h0 - 30
    assert w.undo_stack.index() == steps and np.array_equal(w.doc.mask, mask)

    opt = QStyleOptionSpinBox()
    panel.grow.initStyleOption(opt)
    up = panel.grow.style().subControlRect(
        QStyle.ComplexControl.CC_SpinBox, opt, QStyle.SubControl.SC_SpinBoxUp, panel.grow
    )
    grow = panel.grow.value()
    QTest.mouseClick(panel.grow, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, up.center())
    qtbot.waitUntil(lambda: not panel.pending, timeout=HANG_MS)
    assert panel.grow.value() == grow + 1
    QApplication.processEvents()
    QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_E)
    assert canvas.tool == ToolKind.ERASER
    QTest.keyClick(QApplication.focusWidget(), Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(w.doc.mask, brushed)  # the find undone


def test_the_find_is_retuned_with_the_keyboard_alone(qtbot, make_window):
    """The sensitivity slider and Default took no focus at all (no mouse, no retune), and Tab out
    of the Grow box went back to the photo instead of on; Enter in it still hands the keys back."""
    from PySide6.QtWidgets import QApplication

    fake = GatedDetector()
    w = make_window(fake)
    brushed = _brush(w)
    _find(qtbot, w, fake)
    panel, canvas = w.damage.panel, w.canvas
    canvas.setFocus()
    QTest.keyClick(canvas, Qt.Key.Key_S, Qt.KeyboardModifier.AltModifier)  # the label's Alt+S
    assert QApplication.focusWidget() is panel.slider and panel.slider.accessibleName() == "Sensitivity"
    start = panel.slider.value()
    assert not w.doc.mask[20, 10:90].all()  # the faint scratch, below the default threshold
    for _ in range(5):  # a page is 5% of the sensitivity: 0.5 -> 0.25
        QTest.keyClick(panel.slider, Qt.Key.Key_PageUp)
    qtbot.waitUntil(lambda: not panel.pending, timeout=HANG_MS)
    assert panel.slider.value() > start and w.doc.mask[20, 10:90].all()
    QTest.keyClick(panel.slider, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is panel.default_button
    QTest.keyClick(panel.default_button, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: not panel.pending, timeout=HANG_MS)
    assert panel.slider.value() == sensitivity_of(0.5) and np.array_equal(w.doc.mask, _expected(brushed, 0.5))
    QTest.keyClick(panel.default_button, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is panel.grow
    QTest.keyClick(panel.grow, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() not in (canvas, panel.grow)  # on to the next control
    panel.grow.setFocus()
    panel.grow.lineEdit().selectAll()
    QTest.keyClicks(panel.grow, "0")
    QTest.keyClick(panel.grow, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not panel.pending, timeout=HANG_MS)
    assert QApplication.focusWidget() is canvas and np.array_equal(w.doc.mask, _expected(brushed, 0.5, 0))


@pytest.mark.parametrize("view", ["mask hidden", "split"])
def test_what_was_found_is_shown_even_if_the_mask_was_hidden(qtbot, make_window, view):
    """With the mask hidden (H) or the split view on (Y) the find added its damage unseen while
    the panel said to review it; and after a slider move the status bar kept the first count."""
    fake = GatedDetector()
    w = make_window(fake)
    if view == "split":
        w.split_action.trigger()
        assert w.canvas.splitting
    else:
        w.masks.overlay_action.trigger()
        assert not w.masks.overlay_action.isChecked() and not w.canvas.overlay.isVisible()
    _find(qtbot, w, fake)
    assert w.doc.mask.any()
    assert w.canvas.overlay.isVisible() and not w.canvas.splitting
    assert w.masks.overlay_action.isChecked() and not w.split_action.isChecked()
    _slide(qtbot, w.damage.panel, 0.25)
    assert f"added {w.damage.found.added:,} px" in w.statusBar().currentMessage()


def test_a_fully_transparent_photo_is_not_searched(qtbot, make_window):
    """It was searched and said "raise the sensitivity to find fainter damage", which no
    sensitivity could."""
    fake = GatedDetector()
    w = make_window(fake)
    w.doc.alpha = np.zeros((H, W), np.uint8)
    assert w.damage.find() is None and not w.busy and fake.calls == []
    assert w.statusBar().currentMessage() == "Nothing to search: the whole photo is transparent"


def test_the_panel_before_any_find_shows_what_the_next_find_uses(qtbot, make_window, tmp_path, monkeypatch):
    """Opened from the View menu before a find, it showed 1% and "Grow by 0 px" whatever was
    remembered; the calibrated sensitivity is read from the detector file's header."""
    resources = tmp_path / "resources"
    save_damage_weights(
        resources / "weights" / "damage.safetensors", DamageNet(DamageNetConfig(width=4)), {"threshold": 0.3}
    )
    monkeypatch.setenv("RETOUCHER_RESOURCES", str(resources))
    w = make_window(GatedDetector())
    panel = w.damage.panel
    assert panel.grow.value() == w.settings.damage_grow == DEFAULT_DILATE
    assert panel.default_threshold == 0.3 and panel.threshold == 0.3 and not panel.slider.isEnabled()
    assert panel.value_label.text() == f"{100 * sensitivity_of(0.3) / SENSITIVITY_STEPS:.0f}%"
    w.settings.damage_threshold, w.settings.damage_grow = 0.25, 5
    again = make_window(GatedDetector())  # the next session
    assert again.damage.panel.grow.value() == 5
    assert again.damage.panel.slider.value() == sensitivity_of(0.25)


def test_about_names_the_damage_detector_and_keeps_long_provenance_short(make_window, tmp_path, monkeypatch):
    """About named no detector, and showed the model's provenance as ~20,000 characters of JSON
    (one line of 8,000: the species trained on)."""
    resources = tmp_path / "resources"
    save_damage_weights(
        resources / "weights" / "damage.safetensors",
        DamageNet(DamageNetConfig(width=4)),
        {"threshold": 0.3, "species": [f"{i:03d}.Bird_{i}" for i in range(155)]},
        name="retoucher-damage-test",
    )
    monkeypatch.setenv("RETOUCHER_RESOURCES", str(resources))
    w = make_window(GatedDetector())
    text = w.open_about().text.toPlainText()
    assert "Damage detector" in text and "retoucher-damage-test" in text and "Calibrated threshold" in text
    assert "0.3" in text and "155 items: 000.Bird_0, 001.Bird_1, 002.Bird_2" in text
    assert "154.Bird_154" not in text
