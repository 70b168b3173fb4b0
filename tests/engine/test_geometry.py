"""engine.geometry.Rect: the one pixel box of the engine and the app."""

from __future__ import annotations

import numpy as np

from engine.geometry import Rect


def test_rect_sizes_slices_and_containment():
    r = Rect(x0=2, y0=1, x1=7, y1=4)
    assert (r.width, r.height, r.empty) == (5, 3, False)
    a = np.arange(50).reshape(5, 10)
    assert a[r.slices].shape == (3, 5) and a[r.slices][0, 0] == a[1, 2]
    assert r.contains(Rect(3, 2, 7, 4)) and not r.contains(Rect(1, 2, 7, 4))
    assert Rect(5, 5, 3, 9).empty and Rect(5, 5, 3, 9).width == 0


def test_rect_translate_union_clip_bounding():
    r = Rect(2, 1, 7, 4)
    assert r.translated(10, -1) == Rect(12, 0, 17, 3)
    assert r.translated(-2, -1).translated(2, 1) == r
    assert r.union(None) == r and r.union(Rect(0, 0, 0, 5)) == r
    assert r.union(Rect(0, 3, 3, 9)) == Rect(0, 1, 7, 9)
    assert Rect(-3, -2, 20, 20).clip(8, 6) == Rect(0, 0, 8, 6)
    assert r.grown(2) == Rect(0, -1, 9, 6) and r.grown(2).grown(-2) == r
    assert r.grown(-2).empty  # 3 rows less 4 leave none
    mask = np.zeros((6, 8), bool)
    assert Rect.bounding(mask) is None
    mask[2, 3] = mask[4, 5] = True
    assert Rect.bounding(mask) == Rect(3, 2, 6, 5)


def test_per_cell_gives_one_bounding_box_for_each_grid_square_with_pixels():
    rng = np.random.default_rng(0)
    mask = np.zeros((700, 900), bool)
    mask[rng.integers(0, 700, 60), rng.integers(0, 900, 60)] = True
    mask[250:260, 240:270] = True  # across a cell's edge: split at it
    ys, xs = np.nonzero(mask)
    order = rng.permutation(len(ys))  # any order of the pixels
    boxes = Rect.per_cell(ys[order], xs[order], 256)
    expected = []
    for cy in range(0, 700, 256):
        for cx in range(0, 900, 256):
            box = Rect.bounding(mask[cy : cy + 256, cx : cx + 256])
            if box is not None:
                expected.append(box.translated(cx, cy))
    assert boxes == expected
    assert Rect.per_cell(np.array([], int), np.array([], int), 256) == []
    # dense (a large fill: a map instead of a sort), off the grid's origin, any order
    mask = np.zeros((1100, 1300), bool)
    mask[300:1000, 270:1290] = rng.random((700, 1020)) < 0.5
    mask[5, 5] = True
    for part in (mask, mask[300:, 270:]):
        ys, xs = np.nonzero(part)
        expected = []
        for cy in range(0, part.shape[0], 256):
            for cx in range(0, part.shape[1], 256):
                box = Rect.bounding(part[cy : cy + 256, cx : cx + 256])
                if box is not None:
                    expected.append(box.translated(cx, cy))
        order = rng.permutation(len(ys))
        assert Rect.per_cell(ys[order], xs[order], 256) == expected
