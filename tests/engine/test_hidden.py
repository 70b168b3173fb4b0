"""engine.hidden: what the models read in place of a photo's fully transparent pixels."""

from __future__ import annotations

import numpy as np
import pytest

from engine.geometry import Rect
from engine.hidden import hidden_of, kept_hidden, revealed


def _gradient(h: int = 60, w: int = 90) -> np.ndarray:
    """A smooth photo: red rises left to right, green top to bottom, blue constant."""
    y, x = np.mgrid[0:h, 0:w]
    return np.dstack([40 + 2 * x, 30 + 3 * y, np.full_like(x, 90)]).clip(0, 255).astype(np.uint8)


def _hidden_left(image: np.ndarray, cut: int, under: int) -> tuple[np.ndarray, np.ndarray]:
    alpha = np.full(image.shape[:2], 255, np.uint8)
    alpha[:, :cut] = 0
    shown = image.copy()
    shown[:, :cut] = under  # what an editor leaves under transparency
    return shown, alpha


def test_hidden_pixels_continue_the_visible_ones_whatever_colour_they_hide():
    photo = _gradient()
    yy, xx = np.mgrid[0:60, 0:90]
    results = []
    for under in (0, 255, 77):
        shown, alpha = _hidden_left(photo, 30, under)
        alpha[(yy - 40) ** 2 + (xx - 65) ** 2 < 64] = 0  # and a hidden disc inside the picture
        shown[alpha == 0] = under
        out = revealed(shown, alpha)
        np.testing.assert_array_equal(out[alpha > 0], photo[alpha > 0])  # the visible pixels as they are
        results.append(out)
    np.testing.assert_array_equal(results[0], results[1])  # the hidden colour is never read
    np.testing.assert_array_equal(results[0], results[2])
    out = results[0]
    # smooth: the hidden column next to the visible part takes its neighbour's colour (black or
    # white would be 90-200 levels off), and the hidden disc that of the gradient around it
    assert np.abs(out[:, 29].astype(int) - photo[:, 30]).max() <= 6
    disc = (yy - 40) ** 2 + (xx - 65) ** 2 < 64
    assert np.abs(out[disc].astype(int) - photo[disc]).max() <= 16  # across a gradient of 2-3 a px


def test_nothing_hidden_or_nothing_visible_is_the_photo_itself():
    photo = _gradient()
    assert revealed(photo, None) is photo
    assert revealed(photo, np.full(photo.shape[:2], 1, np.uint8)) is photo  # faint is visible
    assert revealed(photo, np.zeros(photo.shape[:2], np.uint8)) is photo
    assert hidden_of(np.full((4, 5), 255, np.uint8), (4, 5)) is None
    with pytest.raises(ValueError, match="alpha channel is"):
        revealed(photo, np.zeros((5, 5), np.uint8))


@pytest.mark.parametrize("shape", [(1, 7), (7, 1), (3, 5), (5, 129), (2, 2)])
def test_any_size_one_visible_pixel_colours_every_hidden_one(shape):
    photo = np.zeros((*shape, 3), np.uint8)
    alpha = np.zeros(shape, np.uint8)
    alpha[-1, -1] = 255
    photo[-1, -1] = (200, 100, 50)
    out = revealed(photo, alpha)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert (out.reshape(-1, 3) == (200, 100, 50)).all()


def test_a_fill_gives_the_hidden_pixels_outside_the_hole_their_own_values_back():
    shown, alpha = _hidden_left(_gradient(), 30, 0)
    hole = np.zeros(alpha.shape, bool)
    hole[20:40, 25:45] = True  # across the edge of the transparent part
    fill = revealed(shown, alpha).copy()
    fill[hole] = 7
    out = kept_hidden(fill, shown, hole, alpha)
    np.testing.assert_array_equal(out[~hole], shown[~hole])
    assert (out[hole] == 7).all()  # the hole as filled, its hidden part included
    assert kept_hidden(fill, shown, hole, None) is fill


def test_a_fill_does_not_continue_the_hole_into_the_hidden_pixels():
    """An object brushed out beside the transparent part: the hidden pixels are continued from
    the photo outside the hole, not from the object, or the fill would read the object back."""
    photo = np.full((40, 60, 3), 150, np.uint8)
    alpha = np.full((40, 60), 255, np.uint8)
    alpha[:, :20] = 0
    photo[:, :20] = 0
    hole = np.zeros((40, 60), bool)
    hole[10:30, 20:34] = True
    photo[hole] = (250, 0, 0)  # the red object the hole removes
    out = revealed(photo, alpha, hole)
    assert (out[:, :20] == 150).all()
    assert (revealed(photo, alpha)[15:25, 15:20, 1] < 100).all()  # the object, counted as photo


def test_a_fill_reveals_only_what_its_crops_can_reach():
    photo = np.full((50, 400, 3), 90, np.uint8)
    alpha = np.full((50, 400), 255, np.uint8)
    alpha[:, :20] = alpha[:, 380:] = 0
    photo[alpha == 0] = 0
    hole = np.zeros((50, 400), bool)
    hole[20:30, 30:40] = True
    out = revealed(photo, alpha, hole, window=Rect.bounding(hole).grown(32).clip(400, 50))
    assert (out[:, :20] == 90).all()  # within reach of the hole's box
    assert (out[:, 380:] == 0).all()  # out of it: as it was
    assert (
        revealed(
            photo, np.full((50, 400), 255, np.uint8), hole, window=Rect.bounding(hole).grown(32).clip(400, 50)
        )
        is photo
    )
