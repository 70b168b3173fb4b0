"""The undo history within its memory budget: the oldest steps' data goes first, the latest step
is always kept whole, Undo stops before a step let go and says why. It had no limit: a whole-photo
fill of a 24-megapixel photo holds 137 MB, and 50 of them filled a 16 GB machine."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np

from retoucher.document import Document, Rect
from retoucher.edits import GIB, history_budget


def _fill(w, rect: Rect, value: int) -> None:
    """A fill of ``rect`` with ``value``, pushed as the fill's result is."""
    w._push_edit(w.doc.set_rect(rect))
    result = w.doc.image.copy()
    result[rect.slices] = value
    w._push_edit(w.doc.apply_fill(result, w.doc.mask.copy()))


def test_the_oldest_steps_go_first_and_undo_stops_before_them(shown_window):
    rng = np.random.default_rng(0)
    w = shown_window(Document(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)))
    w.history.budget = 3 * 6 * 40 * 40 + 20_000  # three 40x40 fills and their masks
    states = [w.doc.image.copy()]
    for k in range(6):
        _fill(w, Rect(10 * k, 5 * k, 10 * k + 40, 5 * k + 40), 20 * k + 7)
        states.append(w.doc.image.copy())
    stack = w.undo_stack
    commands = [stack.command(i) for i in range(stack.count())]
    kept = [c for c in commands if not c.forgotten]
    assert sum(c.edit.nbytes for c in kept) <= w.history.budget
    assert commands[-1] in kept and commands[0] not in kept  # the oldest went, the latest stayed
    assert [c.forgotten for c in commands] == sorted((c.forgotten for c in commands), reverse=True)
    undone = 0
    while w.undo_action.isEnabled():
        w.undo_action.trigger()
        undone += 1
    assert 0 < undone < stack.count() and undone == len(kept)
    assert w.undo_action.text() == "&Undo"  # not the name of the step let go
    image_now = w.doc.image.copy()
    w.undo()  # refused, and it says why
    assert np.array_equal(w.doc.image, image_now) and "let go" in w.statusBar().currentMessage()
    fills_undone = undone // 2
    assert np.array_equal(w.doc.image, states[6 - fills_undone])
    while stack.canRedo():
        w.redo()
    assert np.array_equal(w.doc.image, states[6])


def test_the_latest_step_is_undone_even_when_larger_than_the_whole_budget(shown_window):
    w = shown_window(Document(np.zeros((80, 100, 3), np.uint8)))
    w.history.budget = 1000
    before = w.doc.image.copy()
    _fill(w, Rect(0, 0, 100, 80), 200)  # 48 kB: the rectangle before it is let go
    assert w.undo_action.isEnabled()
    w.undo()
    assert np.array_equal(w.doc.image, before) and w.doc.mask.all()
    assert not w.undo_action.isEnabled()
    w.redo()
    assert (w.doc.image == 200).all() and not w.doc.mask.any()


def test_the_budget_is_a_quarter_of_the_memory_within_1_and_4_gib(monkeypatch):
    pages = {"SC_PAGE_SIZE": 4096}
    monkeypatch.setattr(os, "sysconf", lambda name: pages.get(name, 0))
    for memory, budget in ((2 * GIB, GIB), (8 * GIB, 2 * GIB), (64 * GIB, 4 * GIB)):
        pages["SC_PHYS_PAGES"] = memory // 4096
        assert history_budget() == budget
