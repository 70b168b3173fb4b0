"""Mask operations without Qt: grow and shrink by a disc, polygon fill, invert, straight brush
lines and masks from a file, each one undo step (retoucher.mask_ops and the Document methods)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.imageio import MaskShapeError, load_mask
from retoucher import mask_ops
from retoucher.document import Document, MaskEdit, Rect


def _photo(h: int = 48, w: int = 64) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


# --------------------------------------------------------------------------- references
def _disc_dilate(mask: np.ndarray, r: int, outside: bool = False) -> np.ndarray:
    """Brute force: a pixel is set when a set pixel's centre lies within r of its own
    (``outside``: the value of the pixels beyond the array)."""
    h, w = mask.shape
    padded = np.pad(mask, r, constant_values=outside)
    out = np.zeros_like(mask)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dx * dx + dy * dy <= r * r:
                out |= padded[r + dy : r + dy + h, r + dx : r + dx + w]
    return out


def _apply(mask: np.ndarray, result) -> np.ndarray:
    out = mask.copy()
    if result is not None:
        box, new = result
        out[box.slices] = new
    return out


def _inside_polygon(points, w: int, h: int) -> np.ndarray:
    """Brute force over every pixel centre: nonzero winding number of the polygon around it,
    with a crossing exactly at the centre counted as left of it."""
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    winding = np.zeros((h, w), int)
    for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1]):
        if y0 == y1:
            continue
        crosses = (yy >= min(y0, y1)) & (yy < max(y0, y1))
        x_at = x0 + (yy - y0) * (x1 - x0) / (y1 - y0)
        winding += np.where(crosses & (x_at <= xx), 1 if y1 > y0 else -1, 0)
    return winding != 0


# --------------------------------------------------------------------------- grow and shrink
def test_disc_is_the_euclidean_one():
    assert mask_ops.disc_half_widths(0) == [0]
    assert mask_ops.disc_half_widths(1) == [0, 1, 0]  # a plus sign
    assert mask_ops.disc_half_widths(2) == [0, 1, 2, 1, 0]  # 13 pixels
    assert mask_ops.disc_half_widths(5) == [0, 3, 4, 4, 4, 5, 4, 4, 4, 3, 0]


@pytest.mark.parametrize("seed", range(6))
def test_grow_and_shrink_match_a_brute_force_disc(seed):
    rng = np.random.default_rng(seed)
    for _ in range(25):
        h, w = (int(v) for v in rng.integers(1, 50, 2))
        r = int(rng.integers(0, 14))
        mask = rng.random((h, w)) < rng.choice([0.002, 0.02, 0.2, 0.8])
        assert np.array_equal(_apply(mask, mask_ops.grow(mask, r)), _disc_dilate(mask, r)), (h, w, r)
        # Shrink: outside the photo counts as hole, so the edge does not eat into the hole.
        expected = mask & ~_disc_dilate(~mask, r, outside=False)
        assert np.array_equal(_apply(mask, mask_ops.shrink(mask, r)), expected), (h, w, r)


def test_grow_thickens_a_hairline_and_shrink_takes_it_back():
    mask = np.zeros((40, 300), bool)
    mask[20, 10:290] = True  # a one-pixel scratch
    grown = _apply(mask, mask_ops.grow(mask, 2))
    assert np.flatnonzero(grown[:, 150]).tolist() == [18, 19, 20, 21, 22]
    assert grown[20, 8:292].all() and not grown[20, 7] and not grown[19, 8]  # round ends
    assert np.array_equal(_apply(grown, mask_ops.shrink(grown, 2)), mask)
    assert not _apply(mask, mask_ops.shrink(mask, 1)).any()  # too thin to survive a shrink


def test_grow_works_only_around_the_hole_and_reaches_the_photo_edge():
    mask = np.zeros((1000, 1200), bool)
    mask[0, 600] = True
    box, new = mask_ops.grow(mask, 3)
    assert box == Rect(597, 0, 604, 4)  # the hole's box plus the radius, clipped to the photo
    # The lower half of the radius-3 disc: half widths 3, 2, 2, 0 on rows 0..3.
    assert new.sum(axis=1).tolist() == [7, 5, 5, 1]


def test_grow_and_shrink_refuse_bad_radii_and_do_nothing_without_a_hole():
    mask = np.zeros((10, 10), bool)
    assert mask_ops.grow(mask, 3) is None and mask_ops.shrink(mask, 3) is None
    mask[5, 5] = True
    assert mask_ops.grow(mask, 0) is None
    for bad in (-1, 2.5, mask_ops.MAX_RADIUS + 1):
        with pytest.raises(ValueError, match="radius"):
            mask_ops.grow(mask, bad)


def test_document_grow_shrink_are_one_undo_step_each():
    doc = Document(_photo())
    seen: list[Rect] = []
    doc.mask_changed.connect(seen.append)
    doc.set_rect(Rect(20, 20, 30, 24))
    before = doc.mask.copy()
    grow = doc.grow_mask(2)
    assert isinstance(grow, MaskEdit) and grow.label == "Grow mask 2 px"
    assert np.array_equal(doc.mask, _disc_dilate(before, 2))
    assert seen[-1] == grow.rect == Rect(18, 18, 32, 26)  # shown at once, only the ring stored
    grown = doc.mask.copy()
    shrink = doc.shrink_mask(1)
    assert shrink is not None and shrink.label == "Shrink mask 1 px"
    assert np.array_equal(doc.mask, grown & ~_disc_dilate(~grown, 1))
    doc.undo(shrink)
    assert np.array_equal(doc.mask, grown)
    doc.undo(grow)
    assert np.array_equal(doc.mask, before)
    doc.redo(grow)
    doc.redo(shrink)
    assert np.array_equal(doc.mask, grown & ~_disc_dilate(~grown, 1))
    assert not doc.dirty  # mask edits leave the photo saved


def test_grow_of_a_24_megapixel_hairline_stores_only_its_box():
    doc = Document(np.zeros((4000, 6000, 3), np.uint8), copy=False)
    doc.begin_stroke(True)
    doc.stroke_to(100.0, 2000.5, 0.5)
    doc.stroke_to(5900.0, 2100.5, 0.5)
    doc.end_stroke()
    painted = doc.mask.copy()
    edit = doc.grow_mask(2)
    assert edit is not None and edit.rect.height < 110 and edit.nbytes < 200_000
    box = Rect(0, 1990, 6000, 2112)
    assert np.array_equal(doc.mask[box.slices], _disc_dilate(painted[box.slices], 2))
    assert doc.mask.sum() == _disc_dilate(painted[box.slices], 2).sum()


# --------------------------------------------------------------------------- polygons
@pytest.mark.parametrize("seed", range(4))
def test_polygon_takes_the_pixels_whose_centre_is_inside(seed):
    rng = np.random.default_rng(seed)
    w, h = 40, 30
    for trial in range(60):
        n = int(rng.integers(3, 12))
        pts = [(float(x), float(y)) for x, y in rng.uniform(-5, 45, (n, 2)) * [1.0, 0.75]]
        if trial % 3 == 0:  # vertices on pixel corners
            pts = [(float(round(x)), float(round(y))) for x, y in pts]
        if trial % 3 == 1:  # vertices (and edges) through pixel centres
            pts = [(round(x) + 0.5, round(y) + 0.5) for x, y in pts]
        expected = _inside_polygon(pts, w, h)
        assert np.array_equal(_apply(np.zeros((h, w), bool), mask_ops.polygon(pts, w, h)), expected)


def test_polygon_pixel_centre_rule_on_simple_shapes():
    # A square with its corners on pixel corners covers exactly those pixels.
    box, inside = mask_ops.polygon([(2, 3), (7, 3), (7, 9), (2, 9)], 20, 20)
    full = _apply(np.zeros((20, 20), bool), (box, inside))
    expected = np.zeros((20, 20), bool)
    expected[3:9, 2:7] = True
    assert np.array_equal(full, expected)
    # Two squares sharing an edge share no pixel and leave no gap.
    a = _apply(np.zeros((20, 20), bool), mask_ops.polygon([(2, 2), (6.5, 2), (6.5, 8), (2, 8)], 20, 20))
    b = _apply(np.zeros((20, 20), bool), mask_ops.polygon([(6.5, 2), (11, 2), (11, 8), (6.5, 8)], 20, 20))
    assert not (a & b).any() and (a | b)[2:8, 2:11].all()
    # A sliver between pixel centres covers nothing; a shape off the photo covers nothing.
    assert mask_ops.polygon([(0, 5.6), (20, 5.6), (20, 5.9), (0, 5.9)], 20, 20) is None
    assert mask_ops.polygon([(-9, -9), (-1, -9), (-1, -1)], 20, 20) is None
    assert mask_ops.polygon([(1, 1), (5, 5)], 20, 20) is None  # fewer than 3 points


def test_self_crossing_outline_fills_every_loop():
    # A loop drawn twice around (a freehand lasso that overlaps itself) stays filled.
    ring = [(5, 5), (15, 5), (15, 15), (5, 15)]
    full = _apply(np.zeros((20, 20), bool), mask_ops.polygon(ring + ring, 20, 20))
    assert full[5:15, 5:15].all() and full.sum() == 100


def test_document_fill_polygon_adds_and_removes_in_one_step():
    doc = Document(_photo())
    square = [(10, 10), (30, 10), (30, 30), (10, 30)]
    add = doc.fill_polygon(square)
    assert add is not None and add.label == "Lasso" and doc.mask[10:30, 10:30].all() and doc.mask.sum() == 400
    remove = doc.fill_polygon([(15, 15), (25, 15), (25, 25), (15, 25)], value=False)
    assert remove is not None and remove.label == "Erase lasso" and doc.mask.sum() == 300
    assert doc.fill_polygon([(40, 40), (50, 40), (50, 45)], value=False) is None  # no hole there
    doc.undo(remove)
    assert doc.mask.sum() == 400
    doc.undo(add)
    assert not doc.mask.any()


# --------------------------------------------------------------------------- invert
def test_invert_is_one_exact_step_and_may_leave_all_hole():
    doc = Document(_photo())
    assert doc.invert_mask().label == "Invert mask"
    assert doc.mask.all()  # all hole: the app refuses to fill it (test_gui_mask_tools)
    edit = doc.invert_mask()
    assert not doc.mask.any()
    doc.set_rect(Rect(3, 4, 9, 12))
    before = doc.mask.copy()
    edit = doc.invert_mask()
    assert np.array_equal(doc.mask, ~before)
    doc.undo(edit)
    assert np.array_equal(doc.mask, before)


# --------------------------------------------------------------------------- straight brush lines
def test_stroke_from_a_start_point_draws_a_straight_line():
    doc = Document(_photo(48, 100))
    assert doc.last_point is None
    doc.begin_stroke(True)
    doc.stroke_to(10.0, 10.0, 2.0)
    first = doc.end_stroke()
    assert doc.last_point == (10.0, 10.0)
    doc.begin_stroke(True, "Brush line", start=doc.last_point)
    doc.stroke_to(80.0, 40.0, 2.0)
    line = doc.end_stroke()
    assert line is not None and line.label == "Brush line" and doc.last_point == (80.0, 40.0)
    yy, xx = np.mgrid[0:48, 0:100] + 0.5
    t = np.clip(((xx - 10) * 70 + (yy - 10) * 30) / (70**2 + 30**2), 0, 1)
    capsule = (xx - 10 - 70 * t) ** 2 + (yy - 10 - 30 * t) ** 2 <= 4.0
    assert np.array_equal(doc.mask, capsule)
    doc.undo(line)
    doc.undo(first)
    assert not doc.mask.any() and doc.last_point == (80.0, 40.0)  # undo keeps the last point


# --------------------------------------------------------------------------- masks from files
def test_loaded_mask_replaces_the_painted_one_in_one_step(tmp_path):
    doc = Document(_photo(40, 60))
    doc.set_rect(Rect(0, 0, 5, 5))
    painted = doc.mask.copy()
    small = np.zeros((20, 30), np.uint8)
    small[5:10, 10:20] = 255
    Image.fromarray(small, "L").save(tmp_path / "m.png")
    edit = doc.set_mask(load_mask(tmp_path / "m.png", (doc.height, doc.width)), "Load mask")
    expected = np.zeros((40, 60), bool)
    expected[10:20, 20:40] = True  # scaled 2x, nearest
    assert edit is not None and edit.label == "Load mask" and np.array_equal(doc.mask, expected)
    doc.undo(edit)
    assert np.array_equal(doc.mask, painted)
    Image.fromarray(np.zeros((40, 40), np.uint8), "L").save(tmp_path / "square.png")
    with pytest.raises(MaskShapeError):
        load_mask(tmp_path / "square.png", (doc.height, doc.width))


def test_growing_far_apart_specks_keeps_memory_to_a_few_rows_of_the_box():
    """Two specks in opposite corners of a 1500x2000 photo grown by 300 px: the packed box is
    0.4 MB a copy; the disc's ~180 half widths were kept all at once (~80 MB here, 1 GB for a
    24 MP photo at 500 px)."""
    import tracemalloc

    mask = np.zeros((1500, 2000), bool)
    mask[0, 0] = mask[-1, -1] = True
    tracemalloc.start()
    try:
        grown = mask_ops.grow(mask, 300)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert grown is not None and grown[1][299, 0] and not grown[1][301, 0]
    assert peak < 40e6, f"{peak / 1e6:.0f} MB"
