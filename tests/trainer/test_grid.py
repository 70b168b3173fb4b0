"""The evaluation grids' column titles stay inside their columns."""

import numpy as np
from PIL import Image

from trainer.grid import draw_grid


def test_a_long_column_title_is_cut_before_the_next_column(tmp_path):
    tile = np.full((120, 100, 3), 255, np.uint8)  # white tiles: only the titles draw
    long = "retoucher-cub-small-v6 (one pass, THIN 3) and then some more words"
    path = draw_grid([long, "", "Original"], [[tile, tile, tile]], tmp_path / "grid.png")
    grid = np.asarray(Image.open(path).convert("L"))
    header = 18  # draw_grid's header height for 120 px tiles
    first, second, third = (grid[:header, 2 + j * 102 : 2 + (j + 1) * 102 - 2] for j in range(3))
    assert (first < 128).any() and (third < 128).any()  # both titles are drawn
    assert (second == 255).all()  # the long title did not run into the untitled column
    assert (first[:, -4:] == 255).all()  # and leaves its own column's right edge clear
