"""A saturated colour's cast is taken off before the network and added back (engine.chroma)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import Inpainter
from engine.chroma import FREE, RING, cast_offset
from engine.convert import to_network
from engine.weights import default_weights_path


def _flat(colour: tuple[int, int, int], h: int = 96, w: int = 120) -> tuple[np.ndarray, np.ndarray]:
    image = np.empty((h, w, 3), np.uint8)
    image[:] = colour
    hole = np.zeros((h, w), bool)
    hole[30:60, 40:80] = True
    return image, hole


def _offset(image: np.ndarray, hole: np.ndarray, **kw) -> np.ndarray:
    return cast_offset(*to_network(image, hole), **kw)[:, :, 0, 0].numpy()


def test_a_saturated_cast_is_taken_off_down_to_free():
    image, hole = _flat((230, 30, 200))
    mean = np.array([230, 30, 200]) / 127.5 - 1.0
    cast = mean - mean.mean()
    size = np.abs(cast).max()
    (offset,) = _offset(image, hole)
    assert np.allclose(offset, cast * (1 - FREE / size), atol=1e-6)
    left = cast - offset  # what the network still sees: the cast's direction, FREE on its largest channel
    assert np.isclose(np.abs(left).max(), FREE, atol=1e-6)
    assert abs(offset.sum()) < 1e-6  # brightness is the network's: only the cast moves


@pytest.mark.parametrize("colour", [(128, 128, 128), (130, 125, 122), (5, 5, 5)])
def test_grey_and_a_slight_cast_are_left_to_the_network(colour):
    image, hole = _flat(colour)
    assert np.abs(_offset(image, hole)).max() == 0.0


def test_the_cast_is_measured_near_the_hole_and_never_on_hole_pixels():
    image, hole = _flat((20, 40, 220))
    want = _offset(image, hole)
    other = image.copy()
    other[hole] = (255, 255, 0)  # hole pixels are not read
    other[:, : 40 - RING - 1] = (0, 255, 0)  # nor known pixels farther than RING from the hole
    other[:, 80 + RING + 1 :] = (255, 0, 0)
    assert np.allclose(_offset(other, hole), want, atol=1e-6)
    other[30:60, 40 - RING] = (0, 255, 0)  # the ring's last column is read
    assert not np.allclose(_offset(other, hole), want, atol=1e-3)


def test_each_image_of_a_batch_has_its_own_cast():
    (a, hole), (b, _), (c, _) = _flat((230, 30, 200)), _flat((20, 40, 220)), _flat((128, 128, 128))
    x, valid = to_network(np.stack([a, b, c]), np.stack([hole] * 3))
    both = cast_offset(x, valid)[:, :, 0, 0].numpy()
    assert np.allclose(both[0], _offset(a, hole), atol=1e-6)
    assert np.allclose(both[1], _offset(b, hole), atol=1e-6)
    assert np.abs(both[2]).max() == 0.0


def test_no_known_pixel_near_the_hole_gives_no_offset():
    x = torch.zeros(1, 3, 8, 8)
    valid = torch.zeros(1, 1, 8, 8)
    assert cast_offset(x, valid).abs().max() == 0.0


@pytest.mark.slow
@pytest.mark.parametrize(
    "colour", [(230, 30, 200), (20, 40, 220), (30, 200, 40), (20, 200, 210), (90, 30, 140)]
)
def test_the_bundled_model_fills_a_saturated_surface_in_its_own_colour(colour):
    """An 80x100 hole in flat magenta came out 65 grey levels off on average (blue, green, cyan,
    purple 16-22) without the cast taken off; each is within a few levels now."""
    rng = np.random.default_rng(0)
    image = np.clip(np.array(colour, float) + rng.normal(0, 3, (240, 280, 3)), 0, 255).astype(np.uint8)
    hole = np.zeros(image.shape[:2], bool)
    hole[80:160, 90:190] = True
    out = Inpainter(default_weights_path(), device="cpu")(image, hole)
    error = np.abs(out[hole].astype(float) - np.array(colour, float))
    assert error.mean() < 6.0, error.mean(0)
