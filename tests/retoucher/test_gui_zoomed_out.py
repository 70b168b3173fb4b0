"""The photo zoomed out: drawn from halved copies (retoucher.qt.pyramid), so that a thin scratch
stays visible at Fit, and the copies follow the document's changes."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from retoucher.document import Document, Rect
from retoucher.qt.pyramid import Pyramid, halved, halved_any, level_for


def test_halved_is_the_mean_of_each_2x2_block_and_of_what_there_is_of_it_at_an_odd_edge():
    a = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    got = halved(a)
    assert got.shape == (3, 4, 3) and got.flags.c_contiguous and got.flags.writeable
    f = a.astype(float)
    for y, x in ((0, 0), (1, 2), (2, 1), (0, 3), (2, 3)):  # inside, the last row, column, corner
        block = f[2 * y : 2 * y + 2, 2 * x : 2 * x + 2].reshape(-1, 3)
        assert np.abs(got[y, x].astype(int) - block.mean(0)).max() <= 0.5 + 1e-9, (y, x)


@pytest.mark.parametrize(
    ("scale", "level"), [(2.0, 0), (1.0, 0), (0.75, 0), (0.5, 1), (0.3, 1), (0.25, 2), (0.15, 2), (0.1, 3)]
)
def test_the_level_keeps_at_least_one_pixel_of_the_copy_per_screen_pixel(scale, level):
    assert level_for(scale) == level


def test_the_copies_follow_a_change_inside_a_box_as_if_made_anew():
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (101, 203, 3), dtype=np.uint8)
    pyramid = Pyramid(base)
    pyramid.image(4)  # made
    base[37:62, 150:203] = rng.integers(0, 256, (25, 53, 3), dtype=np.uint8)
    pyramid.changed(Rect(150, 37, 203, 62))
    fresh = Pyramid(base.copy())
    for level in range(1, 5):
        shown, _ = pyramid.image(level)
        made, _ = fresh.image(level)
        assert shown == made, level


def test_the_copies_remake_only_the_boxes_that_changed_and_stay_exact():
    """Two specks changed in opposite corners: the copies remade the box around both (the
    whole photo); each box alone now, and as many boxes as MAX_STALE merge into one, exactly."""
    import retoucher.qt.pyramid as pyramid_module

    rng = np.random.default_rng(2)
    base = rng.integers(0, 256, (512, 768, 3), dtype=np.uint8)
    remade: list[tuple[int, int]] = []

    def counting(array):
        remade.append(array.shape[:2])
        return halved(array)

    pyramid = Pyramid(base, reduce=counting)
    pyramid.image(3)
    remade.clear()
    for box in (Rect(3, 2, 11, 10), Rect(757, 502, 765, 510), Rect(3, 2, 11, 10)):  # the first again
        base[box.slices] = 255 - base[box.slices]
        pyramid.changed(box)
    fresh = Pyramid(base.copy())
    for level in range(1, 4):
        assert pyramid.image(level)[0] == fresh.image(level)[0], level
    assert sum(h * w for h, w in remade) < 3 * 2 * 16 * 16  # a few blocks a level, not the photo
    assert len(remade) == 3 * 2  # each box once a level (an undo and redo queued it twice)
    for i in range(pyramid_module.MAX_STALE + 5):  # many small changes: merged, still exact
        y, x = divmod(i * 7919 % (512 * 768), 768)
        base[y, x] = 255 - base[y, x]
        pyramid.changed(Rect(x, y, x + 1, y + 1))
    fresh = Pyramid(base.copy())
    for level in range(1, 4):
        assert pyramid.image(level)[0] == fresh.image(level)[0], level


def _grab(w) -> np.ndarray:
    img = w.canvas.viewport().grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    h, width, bpl = img.height(), img.width(), img.bytesPerLine()
    return (
        np.frombuffer(img.constBits(), np.uint8, count=bpl * h)
        .reshape(h, bpl)[:, : width * 3]
        .reshape(h, width, 3)
        .copy()
    )


def test_one_pixel_scratches_show_along_their_whole_length_at_fit(shown_window):
    """At Fit (here 22 %) Qt's bilinear filter alone sampled the photo: a 1 px scratch that fell
    between its samples vanished (on a 6000x4000 photo at 15 %, on 610 of 613 screen rows)."""
    h, w = 3000, 4400
    rgb = np.full((h, w, 3), 220, np.uint8)
    columns = [1000 + 23 * i for i in range(12)]  # at every phase against the screen's pixels
    rgb[:, columns] = 20
    win = shown_window(Document(rgb))
    canvas = win.canvas
    assert canvas.zoom < 0.25
    shown = _grab(win)
    top, bottom = int(canvas.from_image(0, 0).y()) + 2, int(canvas.from_image(0, h).y()) - 2
    assert bottom - top > 300
    for c in columns:
        x = int(canvas.from_image(c + 0.5, 0).x())
        darkest = shown[top:bottom, x - 1 : x + 2, 0].min(1)
        assert darkest.max() < 210, (c, int(darkest.min()), int(darkest.max()))


def test_a_fill_and_its_undo_show_at_fit(shown_window):
    h, w = 2400, 3600
    rgb = np.full((h, w, 3), 200, np.uint8)
    win = shown_window(Document(rgb))
    canvas = win.canvas
    assert canvas.zoom < 0.5  # drawn from a halved copy
    hole = np.zeros((h, w), bool)
    hole[800:1600, 1200:2400] = True
    edit = win.doc.apply_fill(np.zeros_like(rgb), hole)
    QApplication.processEvents()
    centre = canvas.from_image(1800, 1200)
    assert tuple(_grab(win)[int(centre.y()), int(centre.x())]) == (0, 0, 0)
    win.doc.undo(edit)
    QApplication.processEvents()
    assert tuple(_grab(win)[int(centre.y()), int(centre.x())]) == (200, 200, 200)


def test_halved_any_marks_a_pixel_where_any_of_its_block_is_hole():
    tile = np.zeros((5, 7, 4), np.uint8)
    tile[4, 6] = (200, 30, 60, 140)  # the last odd corner
    tile[1, 2] = (200, 30, 60, 140)
    got = halved_any(tile)
    assert got.shape == (3, 4, 4) and got.flags.c_contiguous
    assert {(y, x) for y, x in zip(*np.nonzero(got[..., 3]))} == {(2, 3), (0, 1)}
    assert tuple(got[0, 1]) == (200, 30, 60, 140)  # the colour, not a quarter of it


def test_a_one_pixel_hole_line_shows_along_its_whole_length_at_fit(shown_window):
    """Find Damage's thin scratches at Fit: the overlay's tiles sampled by Qt's bilinear filter
    alone left most of a 1 px line undrawn; halved by "any" they draw it on every screen row."""
    h, w = 3000, 4400
    win = shown_window(Document(np.full((h, w, 3), 220, np.uint8)))
    canvas = win.canvas
    columns = [1000 + 23 * i for i in range(12)]
    mask = np.zeros((h, w), bool)
    mask[:, columns] = True
    win.doc.set_mask(mask)
    canvas.photo.setVisible(False)  # the overlay over the view's background alone
    QApplication.processEvents()
    assert canvas.zoom < 0.25
    shown = _grab(win)
    tinted = (shown != (46, 46, 50)).any(-1)
    top, bottom = int(canvas.from_image(0, 0).y()) + 2, int(canvas.from_image(0, h).y()) - 2
    for c in columns:
        x = int(canvas.from_image(c + 0.5, 0).x())
        assert tinted[top:bottom, x - 1 : x + 2].any(1).all(), c
    # and a change of the mask within the same tiles shows there at once
    moved = np.zeros((h, w), bool)
    moved[:, 1100] = True  # in a tile that had lines before
    win.doc.set_mask(moved)
    QApplication.processEvents()
    tinted = (_grab(win) != (46, 46, 50)).any(-1)
    x = int(canvas.from_image(1100.5, 0).x())
    assert tinted[top:bottom, x - 1 : x + 2].any(1).all()
    assert tinted[top:bottom].any(0).sum() <= 3  # the old lines are gone


def test_a_one_pixel_photo_and_a_one_pixel_corner_tile_are_drawn_as_they_are(shown_window):
    """Nothing to halve: the photo (or the tile) itself (the pyramid asked for a level it never
    made, and the paint failed on every repaint, then crashed the app)."""
    image, level = Pyramid(np.zeros((1, 1, 3), np.uint8)).image(3)
    assert level == 0 and image.width() == 1
    win = shown_window(Document(np.full((257, 257, 3), 200, np.uint8)))
    mask = np.zeros((257, 257), bool)
    mask[256, 256] = True  # the corner tile is one pixel
    win.doc.set_mask(mask)
    win.canvas.set_zoom(0.1)
    QApplication.processEvents()
    tile, image = win.canvas.overlay._tiles[(1, 1)]
    assert win.canvas.overlay._tile_halved((1, 1), tile, image, 3) == (image, 0)
    _grab(win)  # paints without an error


def test_the_overlay_rewrites_what_changed_and_its_halved_copies_follow_only_there(qapp):
    """A fill of specks spread over the photo (and its undo) changes the mask in a box as large as
    the photo: the tiles and their halved copies are brought up to date where the mask changed,
    the same as made anew, and the others stay as they are (a whole-photo redraw at Fit was 0.25 s
    a change at 24 MP)."""
    from retoucher.qt.canvas_items import MaskOverlayItem

    rng = np.random.default_rng(7)
    mask = rng.random((600, 900)) < 0.01
    item = MaskOverlayItem()
    item.reset(mask)
    for key, (data, image) in list(item._tiles.items()):
        item._tile_halved(key, data, image, 3)
    before = dict(item._halved)
    new = mask.copy()
    new[20:30, 40:45] = True  # in tile (0, 0)
    new[300, 600] = not new[300, 600]  # in tile (1, 2)
    new[512:600, 768:900] = False  # tile (2, 3) emptied
    item.refresh(new, Rect(0, 0, 900, 600))
    changed = {(0, 0), (1, 2), (2, 3)}
    assert all(item._halved.get(k) is p for k, p in before.items() if k not in changed)
    fresh = MaskOverlayItem()
    fresh.reset(new)
    assert item._tiles.keys() == fresh._tiles.keys()
    for key, (data, image) in item._tiles.items():
        assert np.array_equal(data, fresh._tiles[key][0]), key
        for level in (1, 2, 3):
            got, done = item._tile_halved(key, data, image, level)
            want, want_done = fresh._tile_halved(key, *fresh._tiles[key], level)
            assert done == want_done and got == want, (key, level)
