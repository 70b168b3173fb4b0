"""Random, seeded sequences of the app's edits, fills, saves, undos and redos: after each, undoing
everything gives back the photo as opened with no hole, redoing everything gives back the state
before, a saved PNG reads back as the photo, and the photo is never called saved while it
differs from its file. (A fresh-eyes fuzzer of 820 sequences found these to hold; this keeps a
small seeded share of it in the suite.)"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from retoucher.document import Rect
from retoucher.qt.fill_worker import InpainterCache

H, W = 61, 97  # odd sizes: no power-of-two luck


class RandomFill:
    """An instant fill that writes values drawn from its own generator (a fill differs each time)."""

    name = "random"
    device_name = "CPU"
    info = None

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def __call__(self, image, hole, *, cancel=None, progress=None, texture=None, mirror=None, hidden=None):
        out = image.copy()
        out[hole] = self.rng.integers(0, 256, (int(hole.sum()), 3), dtype=np.uint8)
        return out


def _state(w):
    return w.doc.image.copy(), w.doc.mask.copy(), w.doc.dirty, w.undo_stack.index()


def _check_history(w, opened: np.ndarray) -> None:
    before = _state(w)
    steps = w.undo_stack.index()
    for _ in range(steps):
        w.undo()
    assert np.array_equal(w.doc.image, opened) and not w.doc.mask.any()
    for _ in range(steps):
        w.redo()
    after = _state(w)
    assert all(np.array_equal(a, b) for a, b in zip(before, after))


@pytest.mark.parametrize("seed", range(8))
def test_random_edit_sequences_keep_the_history_exact(shown_window, qtbot, tmp_path, seed):
    rng = np.random.default_rng(seed)
    photo = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(photo)
    cache = InpainterCache()
    cache.set(RandomFill(seed))
    w = shown_window(None, cache)
    assert w.open_path(photo)
    opened = w.doc.image.copy()
    saved = opened.copy()  # what the photo's file holds

    def push(edit):
        if edit is not None:  # an edit that changed nothing is none (the app pushes none either)
            w._push_edit(edit)

    def rect():
        x, y = int(rng.integers(0, W - 2)), int(rng.integers(0, H - 2))
        return Rect(x, y, x + int(rng.integers(1, W - x)), y + int(rng.integers(1, H - y)))

    def stroke():
        doc = w.doc
        doc.begin_stroke(bool(rng.integers(0, 2)))
        for _ in range(int(rng.integers(1, 5))):
            doc.stroke_to(float(rng.uniform(0, W)), float(rng.uniform(0, H)), float(rng.uniform(0.5, 6)))
        push(doc.end_stroke())

    def fill():
        if w.doc.has_hole and not w.doc.mask.all():
            w.fill()
            qtbot.waitUntil(lambda: not w.busy, timeout=10000)

    def save():
        nonlocal saved
        w.ask_save_path = lambda *a: str(photo)
        if w.save_as():
            saved = w.doc.image.copy()
            assert np.array_equal(np.asarray(Image.open(photo).convert("RGB")), saved)

    actions = [
        lambda: push(w.doc.set_rect(rect(), bool(rng.integers(0, 2)))),
        stroke,
        lambda: push(w.doc.fill_polygon([tuple(rng.uniform(0, [W, H])) for _ in range(4)])),
        lambda: push(w.doc.grow_mask(int(rng.integers(1, 4)))),
        lambda: push(w.doc.shrink_mask(int(rng.integers(1, 4)))),
        lambda: push(w.doc.invert_mask()),
        w.clear_mask,
        fill,
        fill,
        save,
        w.undo,
        w.undo,
        w.redo,
    ]
    for _ in range(24):
        actions[int(rng.integers(0, len(actions)))]()
        if not np.array_equal(w.doc.image, saved):
            assert w.doc.dirty  # never called saved while it differs from its file
        _check_history(w, opened)
