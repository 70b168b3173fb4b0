"""A grey photo gets a grey fill (engine.grey), through the Inpainter too."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from engine import Inpainter
from engine.crops import plan_regions
from engine.grey import GREY_TONE, grey_fill, grey_tone, is_grey
from engine.unet import PConvUNet, UNetConfig


def _grey_photo(h: int = 64, w: int = 80, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)
    return np.repeat(g[..., None], 3, axis=2)


def _hole(h: int = 64, w: int = 80) -> np.ndarray:
    hole = np.zeros((h, w), bool)
    hole[20:40, 25:55] = True
    return hole


def test_a_coloured_fill_of_a_grey_photo_becomes_its_luma():
    image, hole = _grey_photo(), _hole()
    fill = image.copy()
    fill[hole] = np.random.default_rng(1).integers(0, 256, (int(hole.sum()), 3), dtype=np.uint8)
    fill[~hole] = 7  # grey_fill touches hole pixels only
    out = grey_fill(fill, image, hole)
    want = np.asarray(Image.fromarray(fill).convert("L"))  # Pillow's ITU-R 601 luma
    assert np.array_equal(out[hole], np.repeat(want[hole][:, None], 3, axis=1))
    assert np.array_equal(out[~hole], fill[~hole])
    assert np.array_equal(grey_fill(image, image, hole), image)  # a grey pixel keeps its value


def test_a_colour_photo_keeps_its_fill_and_hole_pixels_are_never_read():
    image, hole = _grey_photo(), _hole()
    rng = np.random.default_rng(2)
    fill = np.full_like(image, 200)
    fill[hole] = (255, 0, 0)
    tinted = image.copy()
    tinted[..., 2] = np.clip(tinted[..., 2].astype(int) + 3 * GREY_TONE, 0, 255)  # a blue photo
    speckled = image.copy()
    known = np.flatnonzero(~hole.ravel())
    spots = rng.choice(known, size=len(known) // 40, replace=False)  # 2.5% of it in colour
    speckled.reshape(-1, 3)[spots] = (250, 20, 20)
    for colour in (rng.integers(0, 256, image.shape, dtype=np.uint8), tinted, speckled):
        assert grey_tone(colour, hole) is None and grey_fill(fill, colour, hole) is fill
    painted = image.copy()
    painted[hole] = (255, 0, 0)  # colour inside the hole only: still a grey photo
    assert is_grey(painted, hole) and grey_tone(painted, hole).tolist() == [0, 0, 0]
    assert not is_grey(image, np.ones(hole.shape, bool))  # nothing known
    assert grey_tone(image, np.ones(hole.shape, bool)) is None


def test_a_scan_read_in_colour_is_filled_grey_with_its_tone():
    """A black-and-white photo is not always R = G = B: a scan read in colour has sensor noise in
    each channel, a print's paper a faint tint, a corner a coloured speck. Its fill took the
    network's colour (blue and teal blotches, up to 24 levels across a large hole)."""
    image, hole = _grey_photo(), _hole()
    rng = np.random.default_rng(3)
    fill = image.copy()
    fill[hole] = rng.integers(0, 256, (int(hole.sum()), 3), dtype=np.uint8)
    luma = np.asarray(Image.fromarray(fill).convert("L")).astype(int)[hole]
    noisy = np.clip(image.astype(int) + rng.integers(-2, 3, image.shape), 0, 255).astype(np.uint8)
    warm = np.clip(image.astype(int) + (6, 1, -7) + rng.integers(-1, 2, image.shape), 0, 255).astype(np.uint8)
    stamped = image.copy()
    stamped[0, 0] = (250, 120, 0)  # one orange pixel of a date stamp
    # the warm tone from the luma: (6, 1, -7) less its own luma, 0.299 * 6 + 0.587 - 0.114 * 7 = 1.6
    for photo, tone in ((noisy, (0, 0, 0)), (warm, (4, -1, -9)), (stamped, (0, 0, 0))):
        out = grey_fill(fill, photo, hole)
        assert np.array_equal(out[hole], np.clip(luma[:, None] + tone, 0, 255)), tone
        assert np.array_equal(out[~hole], fill[~hole])


def test_the_inpainter_fills_a_grey_photo_in_grey_and_a_colour_one_in_colour():
    torch.manual_seed(0)
    model = PConvUNet(UNetConfig(widths=(8, 16, 16, 16), kernels=(7, 5, 3, 3), image_size=64))
    inp = Inpainter.from_model(model, name="tiny", precision="fp32", texture=0)
    image, hole = _grey_photo(), _hole()
    for out in (inp(image, hole), inp.inpaint_batch([image], [hole])[0], inp(image, hole, texture=1.0)):
        assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    colour = image.copy()
    colour[..., 0] = np.clip(colour[..., 0].astype(int) + 40, 0, 255)  # a red cast everywhere
    out = inp(colour, hole)
    assert (out[hole][:, 0] != out[hole][:, 1]).any()  # the colour photo's fill keeps colour


def test_a_coloured_object_in_a_grey_photo_keeps_its_colour_under_a_scratch():
    """A grey street with a small red car (under 1% of the crop: a grey photo) and a scratch
    across both: the scratch over the car was filled grey (a grey line through it)."""
    rng = np.random.default_rng(5)
    image = np.clip(rng.integers(-2, 3, (512, 512, 3)) + 120, 0, 255).astype(np.uint8)
    image[100:130, 60:100] = (200, 30, 30)  # the car: 1,200 of 262,144 pixels
    hole = np.zeros((512, 512), bool)
    hole[114:116, :] = True  # a 2 px scratch across the street and the car
    assert grey_tone(image, hole) is not None  # a grey photo...
    out = grey_fill(image, image, hole)  # a perfect fill: the truth
    np.testing.assert_array_equal(out[114:116, 60:100], image[114:116, 60:100])  # ...the car stays red
    street = hole.copy()
    street[:, 40:120] = False  # the scratch away from the car: grey
    assert (out[street][:, 0] == out[street][:, 1]).all() and (out[street][:, 1] == out[street][:, 2]).all()


def test_a_grey_scan_with_coloured_marks_on_two_columns_is_grey():
    """The quick colour check drew every n-th pixel: on a 2048x2048 crop that is columns 0 and
    1024 alone, and red and blue pen marks on them (0.07% of the scan) made it a colour photo."""
    rng = np.random.default_rng(6)
    image = np.repeat(rng.integers(60, 200, (2048, 2048, 1), dtype=np.uint8), 3, axis=2)
    image[:1024, 0], image[1024:, 0] = (220, 30, 30), (30, 30, 220)
    image[:512, 1024], image[512:1024, 1024] = (220, 30, 30), (30, 30, 220)
    hole = np.zeros((2048, 2048), bool)
    hole[1000:1003, 500:1500] = True
    assert grey_tone(image, hole) is not None


def test_specks_of_colour_leave_no_tinted_patch_inside_a_grey_fill():
    """Deep inside a round hole the 25x25 box around a pixel holds a few known pixels: one red
    speck among them counted as 'next to something coloured' and kept the network's tint there."""
    rng = np.random.default_rng(7)
    image = np.clip(rng.integers(-2, 3, (400, 400, 3)) + 128, 0, 255).astype(np.uint8)
    specks = rng.random((400, 400)) < 0.005
    image[specks] = (230, 20, 20)  # 0.5% of the photo: still a grey photo
    yy, xx = np.mgrid[0:400, 0:400]
    hole = (yy - 200) ** 2 + (xx - 200) ** 2 < 25**2
    fill = image.copy()
    fill[hole] = (90, 160, 200)  # the network's tint
    out = grey_fill(fill, image, hole)
    assert grey_tone(image, hole) is not None
    assert (out[hole][:, 0] == out[hole][:, 2]).all()


def test_a_grey_photo_is_told_on_the_whole_photo_not_a_crop_at_a_time():
    """A red disc over 1% of one crop but not of the photo made that crop a colour photo's: the
    stroke's fill in that crop kept the network's tint, up to the crop's straight edges, and
    the crops beside it were grey (12-13 levels of tint 60 px from a red object on a 1600x1200
    grey photo)."""
    torch.manual_seed(0)
    model = PConvUNet(UNetConfig(widths=(8, 16, 16, 16), kernels=(7, 5, 3, 3), image_size=64))
    inp = Inpainter.from_model(model, name="tiny", precision="fp32", texture=0, max_side=128)
    rng = np.random.default_rng(8)
    image = np.repeat(rng.integers(90, 160, (256, 512, 1), dtype=np.uint8), 3, axis=2)
    yy, xx = np.mgrid[0:256, 0:512]
    disc = (yy - 60) ** 2 + (xx - 200) ** 2 < 8**2
    image[disc] = (220, 30, 30)  # 0.15% of the photo, over 1% of the crops around it
    hole = np.zeros((256, 512), bool)
    hole[100:124, 8:504] = True  # a stroke 24 px wide (the network's fill), 32 px below the disc
    assert grey_tone(image, hole) is not None
    regions = plan_regions(hole, inp.max_side, inp.config.image_size, granularity=inp.config.granularity)
    alone = [grey_tone(image[r.crop.slices], hole[r.crop.slices]) for r in regions]
    assert any(t is None for t in alone) and any(
        t is not None for t in alone
    )  # crops with and without the disc
    out = inp(image, hole)
    fill = out[hole].astype(int)
    assert (fill[:, 0] == fill[:, 1]).all() and (fill[:, 1] == fill[:, 2]).all()
    assert np.array_equal(out[~hole], image[~hole])


def test_a_hole_inside_a_coloured_object_of_a_grey_photo_keeps_its_colour_deep_inside():
    """Told on the whole photo, a hand-tinted patch (0.75% of it) is part of a grey photo; an
    80x80 hole inside the patch was greyed over 12 px from its edge (no known pixel that near):
    a grey square with a red rim. Deep inside, the nearest known pixels tell."""
    rng = np.random.default_rng(9)
    image = np.repeat(rng.integers(100, 140, (1200, 1600, 1), dtype=np.uint8), 3, axis=2)
    image[500:620, 700:820] = (200, 60, 50)
    hole = np.zeros((1200, 1600), bool)
    hole[520:600, 720:800] = True
    fill = image.copy()  # the truth as the fill
    tone = grey_tone(image, hole)
    assert tone is not None
    crop = (slice(300, 812), slice(500, 1012))
    out = grey_fill(fill[crop], image[crop], hole[crop], tone)
    np.testing.assert_array_equal(out, fill[crop])
    street = hole.copy()  # the same hole in the grey part of the photo is greyed
    street[:] = False
    street[820:900, 720:800] = True
    painted = image.copy()
    painted[street] = (200, 60, 50)
    grey = grey_fill(painted, image, street, tone)[street]
    assert (grey[:, 0] == grey[:, 1]).all() and (grey[:, 1] == grey[:, 2]).all()


def test_pixels_that_are_no_photo_do_not_make_a_colour_photo_grey():
    """A colour subject on a canvas whose transparent part holds black: the whole photo is
    told without the hidden pixels, or it read as a grey photo (99% black) and a hole in the
    subject's grey part lost the colour its crop would have kept."""
    torch.manual_seed(0)
    model = PConvUNet(UNetConfig(widths=(8, 16, 16, 16), kernels=(7, 5, 3, 3), image_size=64))
    inp = Inpainter.from_model(model, name="tiny", precision="fp32", texture=0, max_side=128)
    rng = np.random.default_rng(10)
    image = np.zeros((600, 800, 3), np.uint8)  # the transparent canvas's black
    image[270:330, 350:400] = rng.integers(0, 256, (60, 50, 3), dtype=np.uint8)  # the subject's colour
    image[270:330, 400:450] = 128  # and its grey part
    hidden = np.ones((600, 800), bool)
    hidden[270:330, 350:450] = False
    hole = np.zeros((600, 800), bool)
    hole[290:310, 425:445] = True  # a hole in the grey part, 25 px from the colour
    assert grey_tone(image, hole) is not None  # the black canvas makes the photo read grey
    out = inp(image, hole, hidden=hidden)[hole].astype(int)
    assert (out[:, 0] != out[:, 1]).any()  # the fill keeps the network's colour, as its crop's


def test_specks_on_a_tinted_grey_scan_are_filled_in_its_tone_in_their_own_windows():
    """Dust on a sepia-ish scan: each speck is filled from the photo alone in its own window
    (Inpainter._thin_only), and made grey in the photo's tone there as a crop's fill is."""
    torch.manual_seed(0)
    model = PConvUNet(UNetConfig(widths=(8, 16, 16, 16), kernels=(7, 5, 3, 3), image_size=64))
    inp = Inpainter.from_model(model, name="tiny", precision="fp32", texture=0, max_side=128)
    rng = np.random.default_rng(11)
    g = rng.integers(60, 200, (300, 400), dtype=np.int32)
    image = np.clip(np.stack([g + 6, g, g - 8], -1), 0, 255).astype(np.uint8)  # a warm tone
    image[..., 0] = np.clip(
        image[..., 0].astype(int) + rng.integers(-2, 3, (300, 400)), 0, 255
    )  # sensor noise
    hole = np.zeros((300, 400), bool)
    for y, x in zip(rng.integers(10, 290, 60), rng.integers(10, 390, 60)):
        hole[y - 2 : y + 2, x - 3 : x + 3] = True  # 60 specks of 4x6 px
    tone = grey_tone(image, hole)
    assert tone is not None and tone.tolist() != [0, 0, 0]
    out = inp(image, hole)
    fill = out[hole].astype(int)
    luma = np.asarray(Image.fromarray(out).convert("L"))[hole].astype(int)
    assert (np.abs(fill - luma[:, None] - tone) <= 1).all()  # luma plus the tone (clipping, rounding)
    assert np.array_equal(out[~hole], image[~hole])


def test_a_colour_photo_s_crops_still_decide_one_at_a_time():
    """A colour photo whose right part is a grey wall: a hole in the wall is filled grey (its
    crop is grey), one in the coloured part keeps the network's colour."""
    torch.manual_seed(0)
    model = PConvUNet(UNetConfig(widths=(8, 16, 16, 16), kernels=(7, 5, 3, 3), image_size=64))
    inp = Inpainter.from_model(model, name="tiny", precision="fp32", texture=0, max_side=128)
    rng = np.random.default_rng(12)
    image = rng.integers(0, 256, (300, 600, 3), dtype=np.uint8)  # colour
    image[:, 300:] = np.repeat(rng.integers(100, 160, (300, 300, 1), dtype=np.uint8), 3, axis=2)  # the wall
    wall, colour = np.zeros((300, 600), bool), np.zeros((300, 600), bool)
    wall[130:170, 430:470] = True
    colour[130:170, 100:140] = True
    assert grey_tone(image, wall | colour) is None  # a colour photo
    out = inp(image, wall | colour)
    grey = out[wall].astype(int)
    assert (grey[:, 0] == grey[:, 1]).all() and (grey[:, 1] == grey[:, 2]).all()
    kept = out[colour].astype(int)
    assert (kept[:, 0] != kept[:, 1]).any()


def test_the_tone_from_histograms_is_numpy_s_median_and_percentile():
    """grey_tone reads the median and the 99th percentile off histograms of the small integer
    differences (quicker than sorting): the same decisions as np.median / np.percentile on the
    known pixels, on scans with noise, tints and coloured specks around the limits."""
    from engine.grey import GREY_NOISE, LUMA, _median, _over_percentile

    def _offset(rgb):  # each channel's difference from the rounded 16-bit fixed-point luma
        rgb = rgb.astype(np.int64)
        luma = (rgb @ np.array([round(w * 65536) for w in LUMA]) + 32768) >> 16
        return rgb - luma[:, None]

    rng = np.random.default_rng(5)
    for n in [*range(1, 40), 1000, 1001, 4097]:
        small = rng.integers(0, int(rng.integers(1, 14)), n)
        assert _over_percentile(small, 99, GREY_NOISE) == (np.percentile(small, 99) > GREY_NOISE)
        signed = rng.integers(-255, 256, n) if n % 2 else rng.integers(-3, 4, n)
        assert _median(signed.astype(np.int16)) == np.median(signed)
    decided = {True: 0, False: 0}
    for _ in range(300):
        h, w = (int(v) for v in rng.integers(8, 90, 2))
        noise = float(rng.choice([0.0, 0.5, 1.0, 1.5, 2.0, 3.0]))
        tint = rng.integers(-GREY_TONE - 2, GREY_TONE + 3, 3)
        base = rng.integers(20, 236, (h, w, 1))
        image = np.clip(base + tint + rng.normal(0, noise, (h, w, 3)).round(), 0, 255).astype(np.uint8)
        spots = rng.integers(0, h * w, int(rng.integers(0, h * w // 50 + 1)))
        image.reshape(-1, 3)[spots] = rng.integers(0, 256, (len(spots), 3))
        hole = rng.random((h, w)) < 0.3
        offset = _offset(image[~hole])
        tone = np.round(np.median(offset, axis=0)).astype(np.int32)
        grey = (
            np.abs(tone).max() <= GREY_TONE
            and np.percentile(np.abs(offset - tone).max(axis=1), 99) <= GREY_NOISE
        )
        got = grey_tone(image, hole)
        assert (got is not None) == grey and (got is None or got.tolist() == tone.tolist())
        decided[grey] += 1
    assert min(decided.values()) > 60  # both outcomes were tested
