import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine import InpaintCancelled, Inpainter, WeightsError, save_weights
from engine.chroma import surround_fields
from engine.convert import composite, from_network, to_network
from engine.crops import SPECK, Region, group_specks, plan_regions, share_crops
from engine.geometry import Rect
from engine.inpainter import select_device
from engine.seams import match_edges
from engine.unet import PConvUNet, UNetConfig

TINY = UNetConfig(widths=(8, 16, 16, 16), kernels=(7, 5, 3, 3), image_size=64)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return PConvUNet(TINY).eval()


@pytest.fixture()
def inpainter(model):
    # the network's fill alone, one pass: these tests follow it pixel for pixel (test_texture
    # covers texture, the mirror test below the second pass)
    return Inpainter.from_model(model, max_side=128, precision="fp32", texture=0, mirror=False)


def _within(a, b, hole, most, mean):
    """Whether fills ``a`` and ``b`` are equal outside ``hole`` and within ``most`` grey levels
    (``mean`` on average) in it."""
    d = np.abs(a.astype(int) - b.astype(int))
    return not d[~hole].any() and d.max() <= most and d[hole].mean() <= mean


def _photo(h, w, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (h + w)], -1)
    return np.clip(base + rng.normal(0, 10, (h, w, 3)), 0, 255).astype(np.uint8)


def test_only_hole_pixels_change_and_all_come_from_the_network(inpainter, model):
    image = _photo(64, 96)
    hole = np.zeros((64, 96), bool)
    hole[10:30, 20:60] = True
    hole[50:55, 5:90] = True
    before = image.copy()
    out = inpainter(image, hole)
    assert np.array_equal(image, before), "input must not be modified"
    assert out.dtype == np.uint8 and out.shape == image.shape
    assert np.array_equal(out[~hole], image[~hole])
    # Every hole pixel is the network's output for this image and mask (its colour cast beyond
    # engine.chroma.FREE and its level beyond LEVEL_FREE taken off before and added back after),
    # matched at the edge and held to the surround's spread.
    with torch.no_grad():
        x, valid = to_network(image, hole)
        cast, spread = surround_fields(x, valid)
        net = model((x - cast) * valid, valid) + cast
        expected = from_network(match_edges(net, x, valid, spread=spread))[0]
    assert np.array_equal(out[hole], expected[hole])
    # The hole's original content has no influence.
    scrambled = image.copy()
    scrambled[hole] = 255 - scrambled[hole]
    assert np.array_equal(inpainter(scrambled, hole)[hole], out[hole])


def test_the_fill_is_the_mean_of_the_networks_fills_of_the_image_and_its_mirror_image(model):
    options = dict(max_side=128, precision="fp32", texture=0, edges=False)
    one = Inpainter.from_model(model, mirror=False, **options)
    both = Inpainter.from_model(model, **options)
    assert both.mirror  # the default
    image = _photo(64, 96)  # a multiple of the model's granularity: no padding to mirror
    hole = np.zeros((64, 96), bool)
    hole[10:30, 20:50] = True
    hole[50:55, 5:90] = True
    plain = one(image, hole).astype(float)
    mirrored = one(image[:, ::-1].copy(), hole[:, ::-1].copy())[:, ::-1].astype(float)
    got = both(image, hole)
    assert np.abs(got[hole] - (plain[hole] + mirrored[hole]) / 2).max() <= 1.0  # each rounded once
    assert np.abs(plain[hole] - mirrored[hole]).mean() > 2  # the model is not mirror-symmetric
    assert np.array_equal(got[~hole], image[~hole])
    batch = both.inpaint_batch([image, image[::-1].copy()], [hole, hole[::-1].copy()])
    assert np.array_equal(batch[0], got)  # the batch entry point mirrors the same way
    # A call's own mirror= overrides the Inpainter's, either way, on both entry points.
    assert np.array_equal(one(image, hole, mirror=True), got)
    assert np.array_equal(both(image, hole, mirror=False), plain.astype(np.uint8))
    assert np.array_equal(one.inpaint_batch([image], [hole], mirror=True)[0], got)
    assert np.array_equal(both.inpaint_batch([image], [hole], mirror=False)[0], plain.astype(np.uint8))


def test_small_odd_sized_image_is_padded(inpainter):
    image = _photo(37, 53)
    hole = np.zeros((37, 53), bool)
    hole[0:10, 40:53] = True  # touching the border
    out = inpainter(image, hole)
    assert out.shape == (37, 53, 3)
    assert np.array_equal(out[~hole], image[~hole])


def test_empty_mask_returns_copy_without_running_the_model(inpainter, monkeypatch):
    image = _photo(32, 32)
    monkeypatch.setattr(inpainter, "_fill", lambda *a: pytest.fail("model must not run"))
    out = inpainter(image, np.zeros((32, 32), bool))
    assert np.array_equal(out, image) and out is not image


def test_bad_inputs_give_clear_errors(inpainter):
    image = _photo(32, 32)
    with pytest.raises(ValueError, match="whole image"):
        inpainter(image, np.ones((32, 32), bool))
    with pytest.raises(ValueError, match="same size"):
        inpainter(image, np.zeros((32, 31), bool))
    with pytest.raises(ValueError, match="uint8 HxWx3"):
        inpainter(image.astype(np.float32), np.zeros((32, 32), bool))
    with pytest.raises(ValueError, match="uint8 HxWx3"):
        inpainter(image[..., :1], np.zeros((32, 32), bool))


def _spy_fill(inpainter, monkeypatch):
    shapes = []
    real = inpainter._fill
    monkeypatch.setattr(
        inpainter, "_fill", lambda im, v, *rest: shapes.append(tuple(im.shape)) or real(im, v, *rest)
    )
    return shapes


def test_large_image_uses_one_crop_per_separate_hole(model, monkeypatch):
    inpainter = Inpainter.from_model(model, max_side=256, precision="fp32")
    image = _photo(600, 900, seed=1)
    hole = np.zeros((600, 900), bool)
    hole[50:80, 60:100] = True
    hole[400:460, 700:800] = True
    g = TINY.granularity
    regions = plan_regions(hole, inpainter.max_side, TINY.image_size, granularity=g)
    assert len(regions) == 2
    for r in regions:  # each crop holds its hole with context around it, at full resolution
        assert not r.scaled and r.crop.contains(r.core)
        assert max(r.crop.height, r.crop.width) <= inpainter.max_side
        # cut to the network's granularity: no padding, no resampling
        assert r.crop.height % g == 0 and r.crop.width % g == 0
        sub = hole[r.crop.slices]
        assert sub.any() and not sub[0].any() and not sub[:, 0].any()
    covered = np.zeros_like(hole)
    for r in regions:
        covered[r.core.slices] = True
    assert covered[hole].all(), "every hole pixel lies in some region's core"
    shapes = _spy_fill(inpainter, monkeypatch)
    out = inpainter(image, hole)
    assert len(shapes) == 2 and all(max(s[-2:]) <= inpainter.max_side for s in shapes)
    assert np.array_equal(out[~hole], image[~hole])
    assert (out[hole] != image[hole]).mean() > 0.5


def test_large_solid_hole_is_scaled_uniformly(inpainter, monkeypatch):
    image = _photo(700, 900, seed=2)
    hole = np.zeros((700, 900), bool)
    hole[200:500, 250:450] = True
    (region,) = plan_regions(hole, inpainter.max_side, TINY.image_size, granularity=TINY.granularity)
    assert region.scaled
    shapes = _spy_fill(inpainter, monkeypatch)
    out = inpainter(image, hole)
    assert len(shapes) == 1
    fed_h, fed_w = shapes[0][-2:]
    assert max(fed_h, fed_w) == inpainter.max_side
    # one scale for both axes (the network input may be padded up to the granularity only)
    s = inpainter.max_side / max(region.crop.height, region.crop.width)
    assert abs(fed_h - region.crop.height * s) < TINY.granularity
    assert abs(fed_w - region.crop.width * s) < TINY.granularity
    assert np.array_equal(out[~hole], image[~hole])
    assert (out[hole] != image[hole]).mean() > 0.5


def test_a_thin_part_is_measured_on_its_own_pixels_not_its_boxs(inpainter):
    """Specks of dust inside the box of three crossing scratches counted as the scratches' width:
    on a 6000x4000 scan the whole part became one solid crop scaled down, filled and matched at
    full resolution (7.4 GB, 120 s, no progress). Its own pixels make it a thin part, tiled."""
    rng = np.random.default_rng(4)
    hole = np.zeros((900, 1200), bool)
    hole[440:443, :] = True  # a scratch across
    hole[:, 600:603] = True  # and one down
    for y, x in zip(rng.integers(0, 895, 1500), rng.integers(0, 1195, 1500)):
        hole[y : y + 4, x : x + 4] = True  # dust all over
    regions = plan_regions(hole, inpainter.max_side, TINY.image_size, granularity=TINY.granularity)
    assert not any(r.scaled for r in regions)


def _brushed(h: int, w: int, points, width: int) -> np.ndarray:
    from PIL import Image, ImageDraw

    m = Image.new("L", (w, h))
    ImageDraw.Draw(m).line(points, fill=255, width=width, joint="curve")
    return np.asarray(m) > 127


@pytest.mark.parametrize("angle", [0, 30, 45, 90])
def test_a_strokes_width_is_measured_at_any_angle(angle):
    """The width was the part's pixels over its longest side: 1.4x too wide for a diagonal
    stroke (a 52 px brush across a photo measured 66 and was filled in one crop scaled 3.9x
    down instead of full-resolution tiles: 25.5 -> 23.3 dB, streaks along it)."""
    from engine.crops import hole_components, stroke_width

    r = np.radians(angle)
    dx, dy = 1200 * np.cos(r), 1200 * np.sin(r)
    for width in (20, 64, 100):
        hole = _brushed(2000, 3000, [(1500 - dx, 1000 - dy), (1500 + dx, 1000 + dy)], width)
        (part,) = hole_components(hole, 5)
        assert 0.85 * width <= stroke_width(hole, part, 5) <= 1.02 * width, (angle, width)
    band = np.zeros((40, 3000), bool)
    band[:, :600] = True  # a band over a strip's whole height: the photo's border is its edge
    (part,) = hole_components(band, 5)
    assert 36 <= stroke_width(band, part, 5) <= 40


def test_strokes_up_to_a_fifth_of_the_working_size_are_tiled_wider_ones_scaled():
    from engine.crops import STROKE_TILES

    limit = 512 / STROKE_TILES
    for width, scaled in ((52, False), (int(0.9 * limit), False), (int(1.3 * limit), True)):
        for points in ([(150, 150), (1850, 1550)], [(100, 850), (700, 300), (1300, 1400), (1900, 500)]):
            hole = _brushed(1700, 2000, points, width)  # a diagonal and a zigzag across the photo
            regions = plan_regions(hole, 512, 256, granularity=128)
            assert {r.scaled for r in regions} == {scaled}, (width, points)


def _network_everywhere(monkeypatch) -> None:
    """The network runs for every region, as before the photo-only paths (a crop whose hole is
    thin everywhere; a region's, or a group of specks', thin pixels)."""
    import engine.inpainter as ei

    monkeypatch.setattr(ei, "photo_fill", lambda *a, **k: None)
    monkeypatch.setattr(ei, "thin_fill", lambda *a, **k: None)


def test_holes_that_are_thin_everywhere_skip_the_network(inpainter, monkeypatch):
    """A thin part's fill is the photo's own (the clamped thin plate): the network's output for
    it was computed and thrown away, one pass a speck (1,000 specks on a 12 MP scan: 145 s). The
    network no longer runs for a crop whose hole is thin everywhere, and the result is what
    it was; a crop with a wide part still runs it."""
    import engine.inpainter as ei

    image = _photo(300, 400, seed=9)
    thin = np.zeros((300, 400), bool)
    thin[50:54, 30:370] = True  # a 4 px scratch
    thin[100:106, 200:206] = True  # a speck
    calls = []
    real = ei.Inpainter._network
    monkeypatch.setattr(ei.Inpainter, "_network", lambda self, *a: calls.append(1) or real(self, *a))
    fast = inpainter(image, thin)
    assert not calls
    _network_everywhere(monkeypatch)  # the full path, as before
    full = inpainter(image, thin)
    # the same fill, to the membrane's few sweeps: the thin part's own window, not the crop's
    assert calls and _within(fast, full, thin, 2, 0.2)
    monkeypatch.undo()
    wide = thin.copy()
    wide[150:190, 100:150] = True  # a 40x50 blob: the network fills it
    calls.clear()
    monkeypatch.setattr(ei.Inpainter, "_network", lambda self, *a: calls.append(1) or real(self, *a))
    inpainter(image, wide)
    assert calls


def test_specks_are_grouped_where_one_window_costs_less_than_a_window_each():
    """engine.crops.group_specks: dense specks share a window, a speck far from the rest keeps
    its own (a window of the whole gap would cost more than two small ones), a tile of a long
    part or a large part is never a speck, each region comes once, and a group takes its first
    member's place in the plan."""

    def speck(x, y, side=6, part=True):
        core = Rect(x, y, x + side, y + side)
        return Region(core.grown(100), core, part=part)

    dense = [speck(40 + 30 * i, 40 + 30 * j) for j in range(4) for i in range(4)]  # 30 px apart
    far = speck(3000, 2500)  # alone in its tile
    pair = [speck(1200, 100), speck(1400, 400)]  # two specks 300 px apart: cheaper alone
    tile = speck(60, 60, part=False)  # a tile of a long scratch
    big = speck(900, 900, side=SPECK + 1)
    plan = [far, *dense[:8], tile, *pair, big, *dense[8:]]
    groups = group_specks(plan, 8)
    assert sorted(id(r) for g in groups for r in g) == sorted(id(r) for r in plan)
    assert tuple(dense) in groups  # all 16 together, in the plan's order
    for alone in (far, tile, big, *pair):
        assert (alone,) in groups
    order = [plan.index(g[0]) for g in groups]
    assert order == sorted(order)


def test_specks_near_each_other_are_filled_together_in_one_window(inpainter, monkeypatch):
    """Dense dust: each speck is a region, and a window of its own for each (a few dozen pixels)
    cost about 4 ms each in the same small steps (3000 specks on a 12 MP scan: 11.5 s). Specks
    near each other are filled from the photo in one window (engine.crops.group_specks), each
    as it would be alone in the photo to a few grey levels (the window's membrane; the thin
    plate solves each speck's system on its own), and nothing outside the holes changes."""
    import engine.seams as seams
    from engine.seams import MARGIN

    image = _photo(320, 320, seed=4)
    dust = np.zeros((320, 320), bool)
    centres = [(y, x) for y in range(20, 300, 20) for x in range(20, 300, 20)]
    for y, x in centres:
        dust[y - 2 : y + 3, x - 1 : x + 2] = True  # 196 specks of 5x3 px, 20 px apart: 9 a crop
    windows = []  # the windows the edge match solves
    real = seams._matched
    monkeypatch.setattr(
        seams, "_matched", lambda out, *a, **k: windows.append(out.shape[-2:]) or real(out, *a, **k)
    )
    out = inpainter(image, dust)
    assert len(windows) == 1  # one match for all of them...
    assert max(windows[0]) <= 280 + 5 + 2 * MARGIN  # ...in their own box, not the photo
    monkeypatch.undo()
    for y, x in centres[::13]:
        alone = np.zeros_like(dust)
        alone[y - 2 : y + 3, x - 1 : x + 2] = True
        box = (slice(y - 2, y + 3), slice(x - 1, x + 2))
        assert _within(out[box], inpainter(image, alone)[box], np.ones((5, 3), bool), 4, 1.5), (y, x)
    assert np.array_equal(out[~dust], image[~dust])


def test_a_wide_speck_among_dust_is_the_networks_and_the_rest_stay_grouped(inpainter, monkeypatch):
    """A group of specks with one too wide for the photo's own fill (a 16 px square): the thin
    ones are filled together, the wide one alone in its own crop by the network, as a region
    of its own; the result is the same as each filled on its own to the thin fill's few levels."""
    import engine.inpainter as ei

    image = _photo(320, 320, seed=5)
    dust = np.zeros((320, 320), bool)
    for y in range(30, 300, 40):
        for x in range(30, 300, 40):
            dust[y - 1 : y + 2, x - 2 : x + 2] = True
    dust[150:166, 150:166] = True  # wide: its middle is over THIN px from its edge
    groups, passes = [], []
    real_fill, real_net = ei.thin_fill, ei.Inpainter._network
    monkeypatch.setattr(
        ei, "thin_fill", lambda x, v, parts, *a: groups.append(len(parts)) or real_fill(x, v, parts, *a)
    )
    monkeypatch.setattr(ei.Inpainter, "_network", lambda self, *a: passes.append(1) or real_net(self, *a))
    alone, real_photo = [], ei.photo_fill
    monkeypatch.setattr(ei, "photo_fill", lambda *a: alone.append(1) or real_photo(*a))
    out = inpainter(image, dust)
    # one window for the dust, its thin specks filled though the window holds a wide one (none
    # was filled one at a time: photo_fill asked once, for the wide one), one network pass
    assert groups == [49] and alone == [1] and len(passes) == 1
    _network_everywhere(monkeypatch)
    assert _within(out, inpainter(image, dust), dust, 6, 1.0)


def test_wide_specks_near_each_other_share_a_network_crop():
    """engine.crops.share_crops: a speck the network fills gets a crop of at least the model's
    training size round a few dozen pixels; specks near each other share one that holds the
    context each wants (its core grown by three quarters of its side and 16 px), sized and cut
    as a part's own crop is, where it has fewer pixels than theirs apart; a speck far from them
    keeps its own crop; each speck comes once, each crop at its first speck's place."""
    h, w, max_side, min_side, g = 2000, 3000, 512, 256, 128

    def speck(x, y, side=16):
        (region,) = plan_regions(_square(h, w, x, y, side), max_side, min_side, granularity=g)
        return region

    near = [speck(400, 300), speck(460, 330), speck(380, 400, side=24)]  # within 100 px
    far = speck(2000, 1500)
    edge = [speck(2980, 5), speck(2900, 60)]  # at the photo's corner: crops cut to the photo
    crops = share_crops([near[0], far, *near[1:], *edge], h, w, max_side, min_side, g)
    assert sorted(id(r) for _, m in crops for r in m) == sorted(id(r) for r in [*near, far, *edge])
    assert [m for _, m in crops] == [tuple(near), (far,), tuple(edge)]
    assert crops[1][0] == far.crop  # alone: its own crop, as the plan cut it
    for crop, members in (crops[0], crops[2]):
        assert crop.x0 >= 0 and crop.y0 >= 0 and crop.x1 <= w and crop.y1 <= h
        assert max(crop.width, crop.height) <= max_side
        for r in members:  # each with the context it wants, as far as the photo has it
            side = max(r.core.width, r.core.height)
            assert crop.contains(r.core.grown(int(0.75 * side) + 16).clip(w, h))
        assert crop.width * crop.height < sum(r.crop.width * r.crop.height for r in members)
    # too far apart to be cheaper as one (a crop of 512x256 against two of 256x256): apart
    pair = [speck(1000, 1000), speck(1400, 1000)]
    assert [m for _, m in share_crops(pair, h, w, max_side, min_side, g)] == [(pair[0],), (pair[1],)]
    # a crop of several grows only where that adds fewer pixels than the speck's own crop: four
    # in one 256x256 crop, and a fifth 300 px away would take it to 512x512 (+196k px for its
    # own 65k): apart (the sum of the four's own crops was no measure of what the crop costs)
    four = [speck(1000 + dx, 1000 + dy) for dx in (0, 60) for dy in (0, 60)]
    fifth = speck(1300, 1300)
    crops = share_crops([*four, fifth], h, w, max_side, min_side, g)
    assert [m for _, m in crops] == [tuple(four), (fifth,)]
    assert (crops[0][0].width, crops[0][0].height) == (256, 256)
    # a speck joins the crop it grows least, not the first it fits
    left, right = speck(1000, 1600), speck(1330, 1600)
    middle = speck(1290, 1600)
    crops = share_crops([left, right, middle], h, w, max_side, min_side, g)
    assert [m for _, m in crops] == [(left,), (right, middle)]


def _square(h, w, x, y, side):
    hole = np.zeros((h, w), bool)
    hole[y : y + side, x : x + side] = True
    return hole


def test_wide_specks_near_each_other_are_filled_in_one_network_pass(monkeypatch):
    """Specks too wide for the photo's own fill, near each other: one network pass for the
    crop they share (engine.crops.share_crops), not one each (about 50 ms a speck with the
    bundled model: half a dusty scan's time went on them); each fill is close to the speck's
    own crop's, and nothing outside the holes changes."""
    import engine.inpainter as ei

    torch.manual_seed(1)
    config = UNetConfig(widths=(8, 16, 16, 16), kernels=(7, 5, 3, 3), image_size=128)
    inpainter = Inpainter.from_model(
        PConvUNet(config).eval(), max_side=256, precision="fp32", texture=0, mirror=False
    )
    image = _photo(400, 600, seed=7)
    dust = np.zeros((400, 600), bool)
    for y, x in [(100, 100), (120, 160), (170, 110), (150, 170)]:
        dust[y : y + 16, x : x + 16] = True  # four wide specks within a 128 px crop
    dust[300:316, 500:516] = True  # and one far from them
    passes = []
    real = ei.Inpainter._network
    monkeypatch.setattr(ei.Inpainter, "_network", lambda self, *a: passes.append(1) or real(self, *a))
    seen = []
    out = inpainter(image, dust, progress=seen.append)
    assert len(passes) == 2
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert np.array_equal(out[~dust], image[~dust])
    # each speck in its own crop, as before: the same fill to a few grey levels
    monkeypatch.setattr(ei, "share_crops", lambda specks, *a: [(r.crop, (r,)) for r in specks])
    passes.clear()
    apart = inpainter(image, dust)
    assert len(passes) == 5
    assert _within(out, apart, dust, 8, 1.0)  # measured: 4 at most, 0.33 on average
    assert np.array_equal(out[300:316, 500:516], apart[300:316, 500:516])  # the far one: its own


def test_grouped_specks_report_progress_to_the_end_and_stop_at_cancel(inpainter, monkeypatch):
    """Progress counts a group's specks when it is filled: it rises and ends at 1. Cancel is
    asked before a group and before each crop of the specks it left (a wide one, for the
    network): pressed after the group, the network does not run (the first crop left was not
    asked about, and its network pass ran before the fill stopped)."""
    import engine.inpainter as ei

    image = _photo(320, 320, seed=6)
    dust = np.zeros((320, 320), bool)
    for y in range(20, 300, 20):
        for x in range(20, 300, 20):
            dust[y - 1 : y + 2, x - 1 : x + 2] = True
    dust[150:170, 40:60] = True  # wide: its own crop, after the group
    seen = []
    inpainter(image, dust, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) >= 2
    asked, passes = [], []
    real = ei.Inpainter._network
    monkeypatch.setattr(ei.Inpainter, "_network", lambda self, *a: passes.append(1) or real(self, *a))
    with pytest.raises(InpaintCancelled):
        inpainter(image, dust, cancel=lambda: asked.append(1) or len(asked) > 1)
    assert len(asked) == 2 and not passes  # the group's check, then the wide speck's


def test_a_scaled_crop_runs_the_network_even_where_its_small_hole_is_thin(inpainter, monkeypatch):
    """A net of 12 px lines on a photo larger than the working size is filled in one crop scaled
    down, where every line is thin; the network's fill there is upscaled and matched at full
    resolution, where the lines are wide, so it must run (the first version of the thin-only
    path skipped it and changed such fills by up to 49 grey levels). Thin everywhere at full
    resolution, the scaled crop is not needed at all."""
    import engine.inpainter as ei

    image = _photo(400, 400, seed=11)
    net = np.zeros((400, 400), bool)
    for k in range(10, 390, 40):
        net[k : k + 12, 10:390] = True
        net[10:390, k : k + 12] = True
    fast = inpainter(image, net)
    _network_everywhere(monkeypatch)
    assert np.array_equal(fast, inpainter(image, net))
    monkeypatch.undo()
    fine = np.zeros((400, 400), bool)
    for k in range(10, 390, 40):
        fine[k : k + 3, 10:390] = True
        fine[10:390, k : k + 3] = True
    calls = []
    real = ei.Inpainter._network
    monkeypatch.setattr(ei.Inpainter, "_network", lambda self, *a: calls.append(1) or real(self, *a))
    thin_fill = inpainter(image, fine)
    assert not calls
    _network_everywhere(monkeypatch)
    assert _within(thin_fill, inpainter(image, fine), fine, 2, 0.2)  # each line's own window


def test_long_thin_stroke_is_tiled_at_full_resolution(inpainter, monkeypatch):
    image = _photo(400, 1200, seed=3)
    hole = np.zeros((400, 1200), bool)
    hole[200:206, 20:1180] = True  # a wire across the photo
    regions = plan_regions(hole, inpainter.max_side, TINY.image_size, granularity=TINY.granularity)
    assert len(regions) > 3 and not any(r.scaled for r in regions)
    shapes = _spy_fill(inpainter, monkeypatch)
    out = inpainter(image, hole)
    assert all(max(s[-2:]) <= inpainter.max_side for s in shapes)
    assert np.array_equal(out[~hole], image[~hole])
    assert (out[hole] != image[hole]).mean() > 0.5


def test_neighbouring_holes_get_their_own_crops():
    hole = np.zeros((1000, 1000), bool)
    hole[100:120, 100:120] = True
    hole[100:120, 160:180] = True  # near: the crops overlap, but are not merged into one
    hole[800:820, 800:820] = True
    regions = plan_regions(hole, 128, 64, granularity=16)
    assert len(regions) == 3
    assert all(max(r.crop.height, r.crop.width) <= 128 and not r.scaled for r in regions)


def test_padding_counts_as_hole(inpainter, model):
    """An odd-sized image is padded to the granularity, and the padding is a hole (like the
    border), not black valid pixels: the result equals a manual run with that padding."""
    image = _photo(37, 53)
    hole = np.zeros((37, 53), bool)
    hole[5:20, 10:30] = True
    out = inpainter(image, hole)
    padded = np.zeros((48, 64, 3), np.uint8)
    padded[:37, :53] = image
    padded_hole = np.ones((48, 64), bool)  # the padding is hole
    padded_hole[:37, :53] = hole
    with torch.no_grad():
        x, valid = to_network(padded, padded_hole)
        c = (..., slice(0, 37), slice(0, 53))  # edges are matched on the image, not the padding
        cast, spread = surround_fields(x[c], valid[c])  # the cast, level and spread measured there
        net = model(F.pad(x[c] - cast, (0, 11, 0, 11)) * valid, valid)[c] + cast
        expected = from_network(match_edges(net, x[c], valid[c], spread=spread))[0]
    assert np.array_equal(out[hole], expected[hole])


def test_batch_equals_single_calls(inpainter):
    images = [_photo(64, 64, seed=s) for s in range(5)]
    holes = []
    for s in range(5):
        h = np.zeros((64, 64), bool)
        h[s * 5 : s * 5 + 20, 10:40] = True
        holes.append(h)
    holes[3][:] = False  # an empty mask inside a batch
    inpainter.batch_size = 2
    batch = inpainter.inpaint_batch(images, holes)
    for im, ho, out in zip(images, holes, batch):
        assert np.array_equal(out, inpainter(im, ho))
    assert np.array_equal(batch[3], images[3])
    with pytest.raises(ValueError, match="one size"):
        inpainter.inpaint_batch([images[0], _photo(32, 32)], [holes[0], np.zeros((32, 32), bool)])
    with pytest.raises(ValueError, match="item 1"):
        inpainter.inpaint_batch(images[:2], [holes[0], np.ones((64, 64), bool)])
    stacked = inpainter.inpaint_batch(np.stack(images), np.stack(holes))  # arrays work too
    assert all(np.array_equal(a, b) for a, b in zip(stacked, batch))


def test_cancel_and_progress(inpainter):
    image = _photo(600, 900)
    hole = np.zeros((600, 900), bool)
    hole[50:80, 60:100] = True
    hole[400:460, 700:800] = True
    seen = []
    inpainter(image, hole, progress=seen.append)
    regions = plan_regions(hole, inpainter.max_side, TINY.image_size, granularity=TINY.granularity)
    assert [r.scaled for r in regions] == [False, True]  # the tiny model's working size is small
    assert seen == [0.5, 0.75, 1.0]  # the scaled one says half-way before its texture
    with pytest.raises(InpaintCancelled):
        inpainter(image, hole, cancel=lambda: True)
    # Cancelled after the first region: still an exception, never a half-filled result.
    with pytest.raises(InpaintCancelled):
        inpainter(image, hole, cancel=lambda: len(seen) > 2, progress=seen.append)
    # One large hole is one scaled region: half-way is told before its texture (a 10% blob on a
    # 24 MP photo showed nothing for 6 s, then 100%)
    big = np.zeros((600, 900), bool)
    big[100:550, 150:800] = True
    seen = []
    inpainter(image, big, progress=seen.append)
    assert seen == [0.5, 1.0]


def test_loads_weight_file_and_reports_name(tmp_path, model):
    path = save_weights(tmp_path / "w.safetensors", model, {"steps": 3}, name="unit-model")
    ip = Inpainter(path, device="cpu")
    assert ip.name == "unit-model" and ip.device_name == "CPU"
    assert ip.info.provenance == {"steps": 3}
    image = _photo(64, 64)
    hole = np.zeros((64, 64), bool)
    hole[20:40, 20:40] = True
    assert np.array_equal(ip(image, hole), Inpainter.from_model(model)(image, hole))


def test_the_weight_files_texture_strength_is_the_inpainters_default(tmp_path, model):
    """Inpainter(file) fills at the strength the file names; a strength given to the Inpainter or
    to a call wins over it."""
    image = _photo(64, 64)
    hole = np.zeros((64, 64), bool)
    hole[20:40, 18:42] = True  # wide enough for texture (a thin part gets none)
    own = Inpainter(save_weights(tmp_path / "own.safetensors", model, texture=1.0), device="cpu")
    plain = Inpainter(save_weights(tmp_path / "plain.safetensors", model), device="cpu")
    assert own.texture == 1.0 and plain.texture == 0.0
    textured = Inpainter.from_model(model, texture=1.0)(image, hole)
    assert np.array_equal(own(image, hole), textured)
    assert not np.array_equal(textured, plain(image, hole))  # the strength shows in the fill
    assert np.array_equal(own(image, hole, texture=0.0), plain(image, hole))
    made_off = Inpainter(tmp_path / "own.safetensors", device="cpu", texture=0.0)
    assert made_off.texture == 0.0 and np.array_equal(made_off(image, hole), plain(image, hole))


def test_missing_default_model_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("RETOUCHER_RESOURCES", str(tmp_path))
    with pytest.raises(WeightsError, match="default model is missing"):
        Inpainter()


def test_device_selection():
    assert select_device("cpu").type == "cpu"
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            select_device("cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(model):
    image = _photo(64, 64)
    hole = np.zeros((64, 64), bool)
    hole[10:40, 10:40] = True
    cpu = Inpainter.from_model(model, "cpu")(image, hole)
    gpu = Inpainter.from_model(copy.deepcopy(model), "cuda")(image, hole)
    assert np.array_equal(gpu[~hole], image[~hole])
    assert np.abs(gpu.astype(int) - cpu.astype(int)).max() <= 2


def test_conversion_round_trip_and_composite():
    image = _photo(20, 30)
    hole = np.zeros((20, 30), bool)
    hole[5:9, 3:20] = True
    x, valid = to_network(image, hole)
    assert x.shape == (1, 3, 20, 30) and valid.shape == (1, 1, 20, 30)
    assert float(x.min()) >= -1 and float(x.max()) <= 1
    assert (x[0][:, torch.from_numpy(hole)] == 0).all(), "hole pixels are zeroed"
    assert torch.equal(valid[0, 0], torch.from_numpy(~hole).float())
    back = from_network(x)[0]
    assert np.array_equal(back[~hole], image[~hole]), "uint8 -> network -> uint8 is exact"
    other = 255 - image
    comp = composite(image, other, hole)
    assert np.array_equal(comp[hole], other[hole]) and np.array_equal(comp[~hole], image[~hole])


def test_precision_choice_and_bf16_output(model):
    from engine.inpainter import bf16_supported, inference_dtype

    cpu = torch.device("cpu")
    assert inference_dtype(cpu, "fp32") is None
    assert inference_dtype(cpu, "auto") == (torch.bfloat16 if bf16_supported(cpu) else None)
    with pytest.raises(ValueError, match="precision"):
        inference_dtype(cpu, "fp8")
    if not bf16_supported(cpu):
        with pytest.raises(ValueError, match="not supported"):
            inference_dtype(cpu, "bf16")
        pytest.skip("no native bf16 on this CPU")
    image = _photo(64, 64)
    hole = np.zeros((64, 64), bool)
    hole[16:48, 10:40] = True
    full = Inpainter.from_model(model, precision="fp32")(image, hole)
    half = Inpainter.from_model(model, precision="bf16")(image, hole)
    assert np.array_equal(half[~hole], image[~hole]), "outside the hole stays bit-identical"
    assert np.abs(half.astype(int) - full.astype(int)).max() <= 4


def test_a_model_with_a_refinement_head_fills_only_holes_and_ignores_their_content():
    import dataclasses

    torch.manual_seed(1)
    model = PConvUNet(dataclasses.replace(TINY, refine=4)).eval()
    with torch.no_grad():
        model.refine.conv2.weight.normal_(std=0.2)  # a trained head, not the zero start
    inpainter = Inpainter.from_model(model, max_side=128, precision="fp32", mirror=False)
    image = _photo(64, 64, seed=3)
    hole = np.zeros((64, 64), bool)
    hole[20:36, 5:60] = True  # wide: a thin part would be filled from the photo's edge alone
    out = inpainter(image, hole)
    assert np.array_equal(out[~hole], image[~hole])
    # the head masks the image itself: even a caller that does not zero the hole cannot leak it
    x, valid = to_network(image, hole)
    raw = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1.0
    with torch.no_grad():
        assert torch.equal(model(raw, valid), model(x, valid))
        assert not torch.equal(raw, x)
    with torch.no_grad():
        plain = copy.deepcopy(model)
        plain.refine.conv2.weight.zero_()
    assert not np.array_equal(Inpainter.from_model(plain, max_side=128, precision="fp32")(image, hole), out)


def test_a_scaled_fill_meets_the_photo_at_full_resolution(inpainter):
    """A hole too large for the working size is filled scaled down; the upscaled fill is then
    matched to the photo at the photo's own resolution: no step at the hole's edge, and a thin
    wire joined to the hole is filled from its own edges, not from the upscaled blur."""
    yy, xx = np.mgrid[0:300, 0:900]
    image = np.dstack([40 + xx * 0.2, 60 + yy * 0.3, 150 - xx * 0.05]).astype(np.uint8)  # smooth
    image[:, 300:] += 25  # and a sharp vertical edge the wire crosses
    hole = np.zeros((300, 900), bool)
    hole[60:240, 380:560] = True
    hole[150:152, :] = True  # a 2 px wire across the photo, through the block
    (region,) = plan_regions(hole, inpainter.max_side, TINY.image_size, granularity=TINY.granularity)
    assert region.scaled
    out = inpainter(image, hole).astype(int)
    # the block's left and right edges: the first hole column against the photo beside it
    rows = np.r_[62:148, 154:238]
    steps = [np.abs(out[rows, 380] - out[rows, 379]).mean(), np.abs(out[rows, 559] - out[rows, 560]).mean()]
    assert max(steps) < 1, steps  # the photo changes by 0.2 a column here; 6.2 unmatched
    wire = np.r_[0:370, 570:900]  # away from the block: filled from the rows above and below
    assert np.abs(out[150:152, wire] - image[150:152, wire]).mean() < 0.8  # 1.6 upscaled


def test_a_tile_whose_crop_is_all_hole_is_filled_after_its_neighbours():
    """A thick stroke at the end of a narrow photo: the tiles whose crops hold photo come first,
    then the blind ones nearest them first, so that each has filled pixels as its context."""
    hole = np.zeros((40, 3000), bool)
    hole[:, :600] = True  # the left 600 columns of a 40 px strip
    regions = plan_regions(hole, 512, 256, granularity=128)  # the app's working size
    assert len(regions) >= 3 and not any(r.scaled for r in regions)
    filled = ~hole
    for r in regions:
        assert filled[r.crop.slices].any(), f"{r.crop} is filled from nothing"
        filled[r.core.slices] |= hole[r.core.slices]
    assert filled.all()


def test_tiles_blind_to_the_photo_continue_the_fills_around_them_without_drifting(inpainter):
    """A hole across a narrow photo's whole width: the tiles whose crops are all hole took the
    network's guess from the earlier fills around them, a few levels off each, which the next
    tile took for the photo (the shipped model on a flat 60x3000 strip: 37 levels off mid-hole,
    and 194 at the far end of a 20000x40 strip with one pixel known). They are the smooth
    continuation of those fills now: a flat strip stays its colour however long the chain."""
    colour = np.array([90, 140, 60])
    image = np.broadcast_to(colour.astype(np.uint8), (20, 1500, 3)).copy()
    hole = np.zeros((20, 1500), bool)
    hole[:, 100:1400] = True
    regions = plan_regions(hole, inpainter.max_side, TINY.image_size, granularity=TINY.granularity)
    assert sum(hole[r.crop.slices].all() for r in regions) >= 10  # a long chain of blind tiles
    out = inpainter(image, hole).astype(int)
    seen = [r.core for r in regions if not hole[r.crop.slices].all()]
    blind = np.zeros_like(hole)
    for r in regions:
        if hole[r.crop.slices].all():
            blind[r.core.slices] = True
    drift = np.abs(out[blind] - colour).max()
    worst_seen = max(np.abs(out[c.slices][hole[c.slices]] - colour).max() for c in seen)
    assert drift <= worst_seen, (drift, worst_seen)


def test_a_scaled_fill_can_be_cancelled_before_its_full_resolution_match(inpainter, monkeypatch):
    """The match at full resolution of a hole over most of a large photo is its longest step:
    a cancel asked during the scaled network pass stops the fill before it."""
    import engine.inpainter as ei

    image = _photo(700, 900, seed=2)
    hole = np.zeros((700, 900), bool)
    hole[100:600, 150:750] = True
    asked = []
    real_fill = ei.Inpainter._fill

    def fill_then_cancel(self, *args, **kwargs):
        out = real_fill(self, *args, **kwargs)
        asked.append(True)  # the user pressed Esc while the network ran
        return out

    monkeypatch.setattr(ei.Inpainter, "_fill", fill_then_cancel)
    sides = []  # of each match: the scaled crop's, then the full resolution's
    real_match = ei.match_edges
    monkeypatch.setattr(
        ei, "match_edges", lambda out, *a, **k: sides.append(out.shape[-1]) or real_match(out, *a, **k)
    )
    with pytest.raises(InpaintCancelled):
        inpainter(image, hole, cancel=lambda: bool(asked))
    assert sides and max(sides) <= inpainter.max_side  # the full-resolution match never started


def test_a_large_fill_can_be_cancelled_before_its_texture(inpainter, monkeypatch):
    """After the full-resolution match of a hole over most of a 24-megapixel photo comes the
    texture, as long again (about 12 s on a 2-core CPU): a cancel asked during the match stops
    the fill before it."""
    import engine.inpainter as ei

    image = _photo(700, 900, seed=2)
    hole = np.zeros((700, 900), bool)
    hole[100:600, 150:750] = True
    asked = []
    real_match = ei.match_edges

    def match_then_cancel(out, *args, **kwargs):
        fixed = real_match(out, *args, **kwargs)
        if out.shape[-1] > inpainter.max_side:  # the full-resolution match
            asked.append(True)  # the user pressed Esc while it ran
        return fixed

    monkeypatch.setattr(ei, "match_edges", match_then_cancel)
    textured = []
    real_texture = ei.add_texture
    monkeypatch.setattr(ei, "add_texture", lambda *a, **k: textured.append(1) or real_texture(*a, **k))
    with pytest.raises(InpaintCancelled):
        inpainter(image, hole, cancel=lambda: bool(asked))
    assert asked and not textured  # the texture never started


def test_a_scaled_crop_is_matched_at_full_resolution_over_the_hole_s_window_alone(inpainter, monkeypatch):
    """The edge match at full resolution reads and changes only the hole's box with a margin:
    float copies of the whole crop (12 bytes a pixel each, three of them) held gigabytes for an
    object on a large photo. The fill is the same as when the whole crop is converted."""
    import engine.inpainter as ei

    image = _photo(600, 800, seed=12)
    hole = np.zeros((600, 800), bool)
    hole[150:420, 300:520] = True
    hole[280:283, 100:300] = True  # a scratch into it: its thin part is filled from the photo
    (region,) = plan_regions(hole, inpainter.max_side, TINY.image_size, granularity=TINY.granularity)
    assert region.scaled and region.crop.height * region.crop.width > 400 * 500
    shapes = []
    real = ei.match_edges
    monkeypatch.setattr(ei, "match_edges", lambda y, *a, **k: shapes.append(y.shape[-2:]) or real(y, *a, **k))
    windowed = inpainter(image, hole)
    assert tuple(shapes[-1]) == (420 - 150 + 16, 520 - 100 + 16)  # the box and 8 px around it
    monkeypatch.setattr(ei, "edge_window", lambda hole: None)  # the whole crop, as before
    assert np.array_equal(windowed, inpainter(image, hole))
    assert tuple(shapes[-1]) == (region.crop.height, region.crop.width)


def test_the_mirror_pass_working_size_and_batch_size_are_checked_where_given(model):
    """``mirror="False"``, ``-1`` or NaN turned the second pass on without a word (twice the
    network's time); ``max_side=200.0`` was taken and failed deep in a call (only where a thin
    stroke needed tiles), ``batch_size=2.0`` in ``inpaint_batch``; ``max_side=0`` meant the default
    and a negative one the granularity."""
    image = _photo(32, 32)
    hole = np.zeros((32, 32), bool)
    hole[10:20, 10:20] = True
    for bad in ("False", "no", float("nan"), -1, 1, None):
        if bad is not None:
            with pytest.raises(ValueError, match="mirror must be True or False"):
                Inpainter.from_model(model, mirror=bad)
        ip = Inpainter.from_model(model, texture=0)
        if bad is not None:
            with pytest.raises(ValueError, match="mirror must be True or False"):
                ip(image, hole, mirror=bad)
    assert Inpainter.from_model(model, mirror=np.bool_(False)).mirror is False
    for name in ("max_side", "batch_size"):
        for bad in (200.0, 0, -64, True, "512"):
            with pytest.raises(ValueError, match=f"{name} must be a whole number of at least 1"):
                Inpainter.from_model(model, **{name: bad})
    ip = Inpainter.from_model(model, max_side=np.int64(100), batch_size=np.int64(3))
    assert ip.max_side == 112 and ip.batch_size == 3 and type(ip.batch_size) is int


@pytest.mark.parametrize(
    ("capability", "native"), [((7, 5), False), ((7, 0), False), ((8, 0), True), ((9, 0), True)]
)
def test_bf16_on_a_gpu_is_native_from_ampere_on_for_the_device_asked(monkeypatch, capability, native):
    """torch.cuda.is_bf16_supported() counts emulation by default: it said yes on every CUDA card
    (a T4, a V100, an RTX 20xx, where cuDNN has no bf16 convolutions), so the app's "auto" filled
    in emulated bf16 there; and it answered for the current GPU, not the one asked about."""
    from engine.inpainter import bf16_supported, inference_dtype

    asked = []

    def capability_of(device=None):
        asked.append(device)
        return capability

    monkeypatch.setattr(torch.cuda, "get_device_capability", capability_of)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # what it said
    gpu = torch.device("cuda", 1)
    assert bf16_supported(gpu) is native and asked == [gpu]
    assert inference_dtype(gpu, "auto") == (torch.bfloat16 if native else None)
