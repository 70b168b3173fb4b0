"""Find Damage's mask change without Qt: composing the mask (only ever adding), the sensitivity
scale, and the one re-tunable edit (retoucher.damage_review)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.damage import DamageMap
from retoucher.damage import DEFAULT_DILATE
from retoucher.damage_review import (
    MAX_DAMAGE_GROW,
    SENSITIVITY_STEPS,
    FoundDamage,
    add_damage,
    sensitivity_of,
    threshold_of,
)
from retoucher.document import Document, Rect

H, W = 40, 56


def _photo() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)


def _probability() -> np.ndarray:
    """A faint scratch (0.3) in row 10, a strong one (0.9) in column 40, a speck (0.6)."""
    p = np.full((H, W), 0.02, np.float32)
    p[10, 5:30] = 0.3
    p[5:35, 40] = 0.9
    p[30, 10] = 0.6
    return p


def _detection(threshold: float = 0.5) -> DamageMap:
    p = _probability()
    return DamageMap(p, threshold, p >= threshold)


class _Counted:
    """A detection that counts its re-thresholds (``at``)."""

    def __init__(self, detection: DamageMap) -> None:
        self.detection = detection
        self.threshold = detection.threshold
        self.probability = detection.probability
        self.calls: list[float] = []

    def at(self, threshold: float) -> DamageMap:
        self.calls.append(threshold)
        return self.detection.at(threshold)


def _disc_grow(mask: np.ndarray, r: int) -> np.ndarray:
    """Brute force: a pixel is set when a set pixel's centre lies within r of its own."""
    padded = np.pad(mask, r)
    out = np.zeros_like(mask)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dx * dx + dy * dy <= r * r:
                out |= padded[r + dy : r + dy + H, r + dx : r + dx + W]
    return out


def _brushed(doc: Document) -> np.ndarray:
    doc.set_rect(Rect(0, 0, 8, 6))
    doc.set_rect(Rect(38, 20, 44, 24), value=True)  # overlaps the strong scratch
    return doc.mask.copy()


# --------------------------------------------------------------------------- the scale
def test_sensitivity_is_one_minus_the_threshold_and_the_default_position_is_the_threshold():
    assert sensitivity_of(0.5) == SENSITIVITY_STEPS // 2 and threshold_of(SENSITIVITY_STEPS // 2) == 0.5
    assert sensitivity_of(0.37) == 630 and threshold_of(630) == pytest.approx(0.37)
    assert sensitivity_of(0.2) > sensitivity_of(0.8)  # more sensitive = a lower threshold
    # The ends stay inside the detector's (0, 1] so that every position is a valid threshold.
    assert sensitivity_of(0.0) == SENSITIVITY_STEPS - 1 and sensitivity_of(1.0) == 1
    assert 0.0 < threshold_of(10**6) < threshold_of(-5) < 1.0


# --------------------------------------------------------------------------- composing
def test_add_damage_keeps_every_hole_pixel_and_adds_the_damage_grown_by_a_disc():
    mask = np.zeros((H, W), bool)
    mask[0:6, 0:8] = True
    damage = _probability() >= 0.5
    mask_in, damage_in = mask.copy(), damage.copy()
    for grow in (0, 1, DEFAULT_DILATE, 5):
        out = add_damage(mask, damage, grow)
        assert np.array_equal(out, mask | _disc_grow(damage, grow))
    assert np.array_equal(mask, mask_in) and np.array_equal(damage, damage_in)  # inputs untouched
    speck = np.zeros((H, W), bool)
    speck[20, 20] = True
    assert add_damage(np.zeros((H, W), bool), speck, 2).sum() == 13  # the radius-2 disc


def test_add_damage_refuses_a_damage_mask_of_another_size_or_a_bad_grow():
    with pytest.raises(ValueError, match="56x40"):
        add_damage(np.zeros((H, W), bool), np.zeros((H, W + 1), bool))
    with pytest.raises(ValueError, match="radius"):
        add_damage(np.zeros((H, W), bool), np.ones((H, W), bool), -1)


# --------------------------------------------------------------------------- the edit
def test_find_damage_adds_to_the_brushed_mask_as_one_edit_with_exact_undo_and_redo():
    doc = Document(_photo())
    before = _brushed(doc)
    found = FoundDamage(_detection(0.5), grow=1)
    assert found.apply(doc)
    expected = before | _disc_grow(_probability() >= 0.5, 1)
    assert np.array_equal(doc.mask, expected)
    assert found.added == int(expected.sum() - before.sum()) > 0
    assert found.label == "Find Damage" and found.changed_mask
    doc.undo(found)
    assert np.array_equal(doc.mask, before)
    doc.redo(found)
    assert np.array_equal(doc.mask, expected)


def test_retuning_reuses_the_detection_and_stays_one_edit_from_the_mask_before_the_find():
    doc = Document(_photo())
    before = _brushed(doc)
    detection = _Counted(_detection(0.5))
    found = FoundDamage(detection, grow=0)
    found.apply(doc)
    assert not doc.mask[10, 5:30].any()  # the faint scratch is below 0.5
    found.apply(doc, threshold=0.25)
    assert np.array_equal(doc.mask, before | (_probability() >= 0.25))
    assert doc.mask[10, 5:30].all() and found.threshold == 0.25
    found.apply(doc, grow=2)
    assert np.array_equal(doc.mask, before | _disc_grow(_probability() >= 0.25, 2))
    assert detection.calls == [0.5, 0.25, 0.25] and found.grow == 2
    # Lower the sensitivity again: the faint scratch goes, the brushed pixels on it stay.
    found.apply(doc, threshold=0.95, grow=0)
    assert np.array_equal(doc.mask, before) and not found.changed_mask and found.added == 0
    found.apply(doc, threshold=0.5, grow=0)
    doc.undo(found)  # one step takes back every re-tune
    assert np.array_equal(doc.mask, before)


@pytest.mark.parametrize(
    "value, points, outside",
    [
        (False, [(40.5, 20.5)], False),  # a false find on the strong scratch erased
        (True, [(W - 2.0, 2.0), (W - 2.0, H - 2.0)], True),  # a missed scratch brushed right of all found
    ],
    ids=["erased-inside-its-box", "brushed-outside-its-box"],
)
def test_a_mask_changed_after_the_find_is_never_overwritten(value, points, outside):
    doc = Document(_photo())
    found = FoundDamage(_detection(0.5), grow=0)
    found.apply(doc)
    box = Rect.bounding(doc.mask)
    doc.begin_stroke(value)
    for x, y in points:
        doc.stroke_to(x, y, 2)
    stroke = doc.end_stroke()
    assert stroke is not None and (stroke.rect.x0 >= box.x1) == outside
    after_stroke = doc.mask.copy()
    with pytest.raises(RuntimeError, match="changed since"):
        found.apply(doc, threshold=0.25)
    assert np.array_equal(doc.mask, after_stroke)


def test_settled_foreign_or_bad_requests_leave_the_mask_as_it_was():
    doc = Document(_photo())
    found = FoundDamage(_detection(0.5))
    found.apply(doc)
    shown = doc.mask.copy()
    with pytest.raises(ValueError, match="threshold"):
        found.apply(doc, threshold=0.0)
    with pytest.raises(ValueError, match="grow"):
        found.apply(doc, grow=MAX_DAMAGE_GROW + 1)
    with pytest.raises(RuntimeError, match="another photo"):
        found.apply(Document(_photo()))
    assert np.array_equal(doc.mask, shown) and found.threshold == 0.5
    found.settle()
    assert not found.adjustable and found.damage is None
    with pytest.raises(RuntimeError, match="settled"):
        found.apply(doc, threshold=0.25)
    doc.undo(found)  # a settled find is still an undo step
    assert not doc.mask.any()


def test_a_detection_of_another_size_is_refused_before_the_mask_changes():
    doc = Document(_photo())
    p = np.ones((H + 1, W), np.float32)
    with pytest.raises(ValueError, match="56x41"):
        FoundDamage(DamageMap(p, 0.5, p >= 0.5)).apply(doc)
    assert not doc.mask.any()


def test_nothing_found_changes_nothing_until_a_higher_sensitivity_finds_something():
    doc = Document(_photo())
    found = FoundDamage(_detection(0.99))
    assert not found.apply(doc) and not doc.mask.any() and found.added == 0
    assert found.apply(doc, threshold=0.5) and doc.mask[5:35, 40].all()


def test_a_find_that_added_nothing_refuses_once_the_mask_changed():
    doc = Document(_photo())
    found = FoundDamage(_detection(0.99))
    assert not found.apply(doc)
    edit = doc.set_rect(Rect(0, 0, 4, 4))
    with pytest.raises(RuntimeError, match="changed since"):
        found.apply(doc, threshold=0.5)
    doc.undo(edit)  # back to the very mask the find saw, but through another change: still refused
    with pytest.raises(RuntimeError, match="changed since"):
        found.apply(doc, threshold=0.5)
    assert not doc.mask.any()


def test_after_its_own_undo_and_redo_the_find_can_be_retuned_again():
    doc = Document(_photo())
    found = FoundDamage(_detection(0.5), grow=0)
    found.apply(doc)
    doc.undo(found)
    with pytest.raises(RuntimeError, match="changed since"):  # not shown: nothing to re-tune
        found.apply(doc, threshold=0.25)
    doc.redo(found)
    assert found.apply(doc, threshold=0.25)
    assert np.array_equal(doc.mask, _probability() >= 0.25)


def test_a_bad_stored_grow_is_named_in_the_error():
    doc = Document(_photo())
    with pytest.raises(ValueError, match=f"not {MAX_DAMAGE_GROW + 5}$"):
        FoundDamage(_detection(0.5), grow=MAX_DAMAGE_GROW + 5).apply(doc)
    assert not doc.mask.any()


def test_fully_transparent_pixels_are_never_added():
    """Rows 0-14 are transparent. Column 40 (a strong scratch) runs into them: none of it is marked
    there, nor what grows from the rest of it; a find inside them at their edge (row 14) does not
    grow into the photo either. The pixels brushed there by hand stay."""
    alpha = np.full((H, W), 255, np.uint8)
    alpha[0:15, :] = 0
    alpha[20, 20] = 1  # almost transparent is still part of the photo
    doc = Document(_photo(), alpha=alpha)
    doc.set_rect(Rect(0, 0, 3, 3))  # brushed by hand inside the transparent band
    brushed = doc.mask.copy()
    p = _probability()
    p[20, 20] = 0.9
    p[14, 10] = 0.9
    found = FoundDamage(DamageMap(p, 0.5, p >= 0.5), grow=2)
    found.apply(doc)
    opaque = alpha > 0
    assert np.array_equal(doc.mask, brushed | (_disc_grow((p >= 0.5) & opaque, 2) & opaque))
    assert not (doc.mask & ~opaque & ~brushed).any() and not doc.mask[15:17, 10].any()
    assert doc.mask[20, 20] and doc.mask[15:35, 40].all()
    assert add_damage(np.zeros((H, W), bool), p >= 0.5, 2, alpha)[0:17, 10].sum() == 0
