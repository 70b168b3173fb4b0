"""A saturated colour's cast is taken off before the network and added back (engine.chroma)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import Inpainter
from engine.chroma import FREE, LEVEL_FREE, RING, cast_field, level_field, surround_field
from engine.convert import to_network

MAGENTA, BLUE, GREY = (230, 30, 200), (20, 40, 220), (128, 128, 128)


def _flat(colour: tuple[int, int, int], h: int = 96, w: int = 120) -> tuple[np.ndarray, np.ndarray]:
    image = np.empty((h, w, 3), np.uint8)
    image[:] = colour
    hole = np.zeros((h, w), bool)
    hole[30:60, 40:80] = True
    return image, hole


def _field(image: np.ndarray, hole: np.ndarray, **kw) -> np.ndarray:
    """The field in grey levels, (H, W, 3)."""
    return cast_field(*to_network(image, hole), **kw)[0].permute(1, 2, 0).numpy() * 127.5


def _cast(colour: tuple[int, int, int]) -> np.ndarray:
    mean = np.asarray(colour, float)
    return mean - mean.mean()


def test_a_saturated_surface_has_its_cast_taken_off_down_to_free_everywhere():
    image, hole = _flat(MAGENTA)
    field = _field(image, hole)
    cast = _cast(MAGENTA)
    want = cast * (1 - FREE * 127.5 / np.abs(cast).max())
    assert np.allclose(field, want, atol=1e-3)  # one colour all round: the same at every pixel
    left = (
        cast - field[0, 0]
    )  # what the network still sees: the cast's direction, FREE on its largest channel
    assert np.isclose(np.abs(left).max(), FREE * 127.5, atol=1e-3)
    assert np.abs(field.sum(-1)).max() < 1e-3  # brightness is the network's: only the cast moves


@pytest.mark.parametrize("colour", [GREY, (130, 125, 122), (5, 5, 5)])
def test_grey_and_a_slight_cast_are_left_to_the_network(colour):
    image, hole = _flat(colour)
    assert np.abs(_field(image, hole)).max() == 0.0


def test_the_cast_is_measured_near_the_hole_and_never_on_hole_pixels():
    image, hole = _flat(BLUE, w=160)  # the hole is at x 40-80
    want = _field(image, hole)
    other = image.copy()
    other[hole] = (255, 255, 0)  # hole pixels are not read
    other[:, : 40 - RING] = GREY  # nor known pixels farther than RING from the hole
    other[:, 80 + RING :] = GREY
    assert np.allclose(_field(other, hole)[hole], want[hole], atol=1e-3)
    other[30:60, 40 - RING] = GREY  # the ring's last column is read
    assert not np.allclose(_field(other, hole)[hole], want[hole], atol=0.5)


def test_holes_in_two_colours_each_get_their_own_cast():
    """One cast for the crop tinted a hole in a grey wall 15 grey levels pink when the same crop
    held a hole in a magenta one."""
    image = np.empty((240, 280, 3), np.uint8)
    image[:, :150], image[:, 150:] = MAGENTA, GREY
    magenta, grey = np.zeros((240, 280), bool), np.zeros((240, 280), bool)
    magenta[70:170, 20:120] = True
    grey[110:140, 200:240] = True
    field = _field(image, magenta | grey)
    assert np.abs(field[grey]).max() < 1.0
    # within 5% of its own (the grey ring is 64 px on, inside the Gaussian's reach)
    own = _field(image, magenta)[magenta].mean(0)
    assert np.abs(field[magenta].mean(0) - own).max() < 0.05 * np.abs(own).max()


def test_where_a_saturated_surface_meets_a_grey_one_the_cast_is_its_share():
    """A ring half magenta, half grey: the cast there is about a quarter of magenta's (half the
    pixels have it, and half of the cast is kept: the coherence), not the mean's half."""
    image = np.empty((96, 120, 3), np.uint8)
    image[:, :60], image[:, 60:] = MAGENTA, GREY
    hole = np.zeros((96, 120), bool)
    hole[44:52, 56:64] = True
    cast = _cast(MAGENTA)
    field = _field(image, hole, free=0.0)[hole].mean(0)
    assert np.allclose(field, cast * 0.25, atol=0.08 * np.abs(cast).max())


@pytest.mark.parametrize("extra", [1, 5, 37])
def test_the_field_stays_put_when_the_crop_is_not_a_whole_number_of_cells(extra):
    """Columns beyond the ring's reach change nothing at the hole: the cells were stretched over
    the crop (2.8 grey levels at a magenta/grey boundary for one more column) and a part cell at
    the border counted as a whole one."""

    def field(w: int) -> np.ndarray:
        image = np.empty((64, w, 3), np.uint8)
        image[:] = GREY
        image[:, :30] = MAGENTA
        hole = np.zeros((64, w), bool)
        hole[20:44, 22:40] = True
        return _field(image, hole)[hole]

    assert np.abs(field(64 + extra) - field(64)).max() < 0.2


def test_half_precision_gives_the_float32_field():
    image, hole = _flat(MAGENTA)
    x, valid = to_network(image, hole)
    want = cast_field(x, valid)
    for dtype in (torch.float16, torch.bfloat16):
        got = cast_field(x.to(dtype), valid.to(dtype))
        assert got.dtype == dtype
        assert torch.isfinite(got).all()
        assert (got.float() - want).abs().max() * 127.5 < 2.0  # the input's own rounding


def test_each_image_of_a_batch_has_its_own_cast():
    (a, hole), (b, _), (c, _) = _flat(MAGENTA), _flat(BLUE), _flat(GREY)
    x, valid = to_network(np.stack([a, b, c]), np.stack([hole] * 3))
    both = cast_field(x, valid).permute(0, 2, 3, 1).numpy() * 127.5
    assert np.allclose(both[0], _field(a, hole), atol=1e-3)
    assert np.allclose(both[1], _field(b, hole), atol=1e-3)
    assert np.abs(both[2]).max() == 0.0


def test_no_known_pixel_near_a_hole_gives_no_field():
    x = torch.full((1, 3, 8, 8), 0.5)
    assert cast_field(x, torch.zeros(1, 1, 8, 8)).abs().max() == 0.0  # all hole
    assert cast_field(x, torch.ones(1, 1, 8, 8)).abs().max() == 0.0  # no hole


@pytest.mark.slow
@pytest.mark.parametrize("colour", [MAGENTA, BLUE, (30, 200, 40), (20, 200, 210), (90, 30, 140)])
def test_the_bundled_model_fills_a_saturated_surface_in_its_own_colour(colour):
    """An 80x100 hole in flat magenta came out 65 grey levels off on average (blue, green, cyan,
    purple 16-22) without the cast taken off; each is within a few levels now."""
    rng = np.random.default_rng(0)
    image = np.clip(np.array(colour, float) + rng.normal(0, 3, (240, 280, 3)), 0, 255).astype(np.uint8)
    hole = np.zeros(image.shape[:2], bool)
    hole[80:160, 90:190] = True
    out = Inpainter(device="cpu")(image, hole)
    error = np.abs(out[hole].astype(float) - np.array(colour, float))
    assert error.mean() < 6.0, error.mean(0)


# ---- the brightness: a bright or dark surround's level taken off beyond LEVEL_FREE


def _level(image: np.ndarray, hole: np.ndarray, **kw) -> np.ndarray:
    """The level field in grey levels, (H, W)."""
    return level_field(*to_network(image, hole), **kw)[0, 0].numpy() * 127.5


@pytest.mark.parametrize("value", [255, 240, 15, 0])
def test_a_bright_or_dark_surround_has_its_level_taken_off_down_to_free(value):
    image, hole = _flat((value, value, value))
    level = (value - 127.5) / 127.5
    want = np.sign(level) * (abs(level) - LEVEL_FREE) * 127.5
    assert np.allclose(_level(image, hole), want, atol=1e-3)
    assert np.abs(_field(image, hole)).max() == 0.0  # grey: no cast, only the level


@pytest.mark.parametrize("value", [128, 90, 170])
def test_a_mid_grey_surround_is_left_to_the_network(value):
    image, hole = _flat((value, value, value))
    assert np.abs(_level(image, hole)).max() == 0.0


def test_the_level_is_measured_near_the_hole_never_on_its_pixels_and_not_without_known_ones():
    image, hole = _flat((250, 250, 250), w=160)
    want = _level(image, hole)
    other = image.copy()
    other[hole] = 0
    other[:, : 40 - RING] = 128
    other[:, 80 + RING :] = 128
    assert np.allclose(_level(other, hole)[hole], want[hole], atol=1e-3)
    x = torch.full((1, 3, 8, 8), 0.9)
    assert level_field(x, torch.zeros(1, 1, 8, 8)).abs().max() == 0.0
    assert level_field(x, torch.ones(1, 1, 8, 8)).abs().max() == 0.0
    assert level_field(x.half(), torch.zeros(1, 1, 8, 8).half()).dtype == torch.float16


@pytest.mark.slow
@pytest.mark.parametrize("value", [0, 20, 235, 255])
def test_the_bundled_model_fills_a_large_hole_in_a_bright_or_dark_surround_at_its_level(value):
    """A hole of 240 px across in a 512 px crop of flat white came out a grey blob (16 levels off
    on average; black 20, 235 7-11 and tinted); on a large photo (400 px across) 30-40. Within a
    few levels now."""
    rng = np.random.default_rng(0)
    size, r = 512, 120
    image = np.clip(value + rng.normal(0, 2, (size, size, 3)), 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[:size, :size]
    hole = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < r * r
    out = Inpainter(device="cpu")(image, hole)
    error = np.abs(out[hole].astype(float) - value)
    assert error.mean() < 5.0, error.mean(0)


@pytest.mark.parametrize("colour", [MAGENTA, (250, 250, 250), (20, 30, 25), GREY, (240, 200, 40)])
def test_the_fields_measured_in_one_pass_are_the_cast_and_the_level_bit_for_bit(colour):
    rng = np.random.default_rng(1)
    image = np.clip(np.array(colour, float) + rng.normal(0, 20, (150, 170, 3)), 0, 255).astype(np.uint8)
    hole = np.zeros(image.shape[:2], bool)
    hole[40:90, 30:120] = True
    x, valid = to_network(image, hole)
    assert torch.equal(surround_field(x, valid), cast_field(x, valid) + level_field(x, valid))
