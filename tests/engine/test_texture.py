"""engine.texture: the photo's texture synthesised from around the hole, alone and through the
Inpainter."""

import numpy as np
import pytest
import torch

from engine import Inpainter
from engine.crops import plan_regions
from engine.texture import add_texture, texture_for
from engine.texture_strength import check_texture
from engine.unet import PConvUNet, UNetConfig

FLAT = np.array([120, 100, 80], np.float32)


def _grainy(h: int, w: int, sigma: float, seed: int = 0) -> np.ndarray:
    """A flat colour with luminance grain of standard deviation ``sigma`` grey levels."""
    rng = np.random.default_rng(seed)
    return np.clip(FLAT + rng.normal(0, sigma, (h, w, 1)), 0, 255).astype(np.uint8)


def _hole(h: int, w: int) -> np.ndarray:
    hole = np.zeros((h, w), bool)
    hole[60:140, 70:170] = True
    return hole


def _smooth_fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    fill = image.copy()
    fill[hole] = FLAT.astype(np.uint8)
    return fill


def _tensors(*arrays: np.ndarray) -> list[torch.Tensor]:
    return [
        torch.from_numpy(a).permute(2, 0, 1).float() if a.ndim == 3 else torch.from_numpy(a) for a in arrays
    ]


def test_the_fill_gets_the_grain_of_its_surroundings_and_only_hole_pixels_change():
    image = _grainy(200, 240, 8.0)
    hole = _hole(200, 240)
    fill = _smooth_fill(image, hole)
    out = add_texture(fill, image, hole, 1.0)
    assert out.dtype == np.uint8 and out.shape == fill.shape
    assert np.array_equal(out[~hole], fill[~hole])
    truth_std, fill_std, out_std = (a[hole].astype(float).std(0).max() for a in (image, fill, out))
    assert fill_std == 0
    assert 0.8 * truth_std < out_std < 1.1 * truth_std, (out_std, truth_std)
    # the grain is added around the fill's colour, not a shift of it
    assert np.abs(out[hole].mean(0) - FLAT).max() < 1.0
    half = add_texture(fill, image, hole, 0.5)
    assert 0.4 * out_std < half[hole].astype(float).std(0).max() < 0.6 * out_std


def test_a_hole_thin_everywhere_gets_no_texture_and_is_told_at_once():
    """Thin parts get no grain (their fill is the photo's own); the Inpainter skips the network
    for a crop whose hole is thin everywhere, which holds only while the texture adds nothing
    there either. A wide part beside them gets its grain."""
    image = _grainy(200, 240, 8.0)
    thin = np.zeros((200, 240), bool)
    thin[50:54, 20:220] = True  # a scratch
    thin[120:126, 100:106] = True  # a speck
    fill = _smooth_fill(image, thin)
    assert texture_for(*_tensors(fill, image, thin)) is None
    assert add_texture(fill, image, thin, 1.0) is fill
    import engine.texture as texture_module

    calls = []
    real = texture_module.wide_parts
    with pytest.MonkeyPatch.context() as mp:  # found out once: twice a speck, 20% of a dusty scan's time
        mp.setattr(texture_module, "wide_parts", lambda *a, **k: calls.append(1) or real(*a, **k))
        assert add_texture(fill, image, thin, 1.0, whole=thin) is fill
    assert len(calls) == 1
    both = thin | _hole(200, 240)
    out = add_texture(_smooth_fill(image, both), image, both, 1.0)
    assert out[_hole(200, 240)].astype(float).std(0).max() > 4


def test_a_wide_hole_gets_its_grain_up_to_its_edge():
    """The rim of a wide hole took the thin parts' ramp: a band 4 px wide along every wide
    hole's edge with a fifth to three quarters of the grain (2.3, 1.8, 3.1, 4.5 levels against
    5.9 in a grainy photo), a smooth line round the fill. Its grain now matches the middle's,
    and a thin scratch joined to the hole still gets none."""
    image = _grainy(200, 240, 8.0, seed=2)
    hole = _hole(200, 240)  # rows 60-139, columns 70-169
    hole[98:102, 170:230] = True  # a 4 px scratch out of its right side
    out = add_texture(_smooth_fill(image, hole), image, hole, 1.0).astype(float)

    def grain(pixels: np.ndarray) -> float:  # the largest channel's deviation
        return float(pixels.reshape(-1, 3).std(0).max())

    middle = grain(out[80:120, 90:150])
    for depth in range(4):  # each of the rim's rows and columns on its own (0, 1.8, 4.0, 5.3 before)
        for rim in (out[60 + depth, 80:160], out[139 - depth, 80:160], out[70:130, 70 + depth]):
            assert grain(rim) > 0.75 * middle, (depth, grain(rim), middle)
    assert grain(out[98:102, 180:230]) == 0  # the scratch: the flat fill


def test_the_synthesised_texture_has_no_seam_between_patches():
    """Overlap-added patches keep the donors' variance at every phase of the patch grid: a
    plain average of the overlaps would halve it where two patches meet."""
    image = _grainy(200, 240, 8.0, seed=1)
    hole = _hole(200, 240)
    fill, photo, mask = _tensors(_smooth_fill(image, hole), image, hole)
    tex = texture_for(fill, photo, mask)[0, 60:140, 70:170]
    for rows in (tex, tex.T):
        by_phase = torch.stack([rows[i::8].std() for i in range(8)])
        assert float(by_phase.max() / by_phase.min()) < 1.15, by_phase


def test_hole_pixels_of_the_photo_are_never_read_and_the_result_is_deterministic():
    image = _grainy(200, 240, 6.0)
    hole = _hole(200, 240)
    fill = _smooth_fill(image, hole)
    other = image.copy()
    other[hole] = 255 - other[hole]
    first = add_texture(fill, image, hole, 1.0)
    assert np.array_equal(first, add_texture(fill, other, hole, 1.0))
    assert np.array_equal(first, add_texture(fill, image, hole, 1.0))
    assert not np.array_equal(first, add_texture(fill, image, hole, 1.0, seed=1))


def test_nothing_is_added_without_texture_strength_or_donors():
    image = _grainy(200, 240, 8.0)
    hole = _hole(200, 240)
    fill = _smooth_fill(image, hole)
    assert add_texture(fill, image, hole, 0.0) is fill
    flat = np.broadcast_to(FLAT.astype(np.uint8), image.shape).copy()
    assert np.array_equal(add_texture(_smooth_fill(flat, hole), flat, hole, 1.0), flat)
    almost_all = np.ones((200, 240), bool)
    almost_all[0, 0] = False  # one valid pixel: no donor patch fits
    assert add_texture(fill, image, almost_all, 1.0) is fill


def test_each_part_of_the_fill_takes_the_texture_of_the_same_colour():
    """Left: dark and grainy; right: bright and smooth. A hole across both gets grain on the
    dark side only, the fill's blurred colour choosing the donors."""
    rng = np.random.default_rng(2)
    h, w = 160, 320
    image = np.full((h, w, 3), 200, np.float32)
    image[:, : w // 2] = 60 + rng.normal(0, 10, (h, w // 2, 1))
    image = np.clip(image, 0, 255).astype(np.uint8)
    hole = np.zeros((h, w), bool)
    hole[50:110, 100:220] = True
    fill = image.copy()
    fill[hole] = np.where(np.arange(w)[None, :, None] < w // 2, 60, 200).repeat(h, 0)[hole]
    out = add_texture(fill, image, hole, 1.0)
    dark, bright = (
        out[55:105, cols].reshape(-1, 3).astype(float).std(0).max()
        for cols in (slice(108, 150), slice(170, 212))
    )
    assert dark > 7.0, dark
    assert bright < 1.5, bright


def _inpainter(texture: float, max_side: int | None = None) -> Inpainter:
    torch.manual_seed(0)
    model = PConvUNet(UNetConfig(widths=(8, 16, 16, 16), kernels=(7, 5, 3, 3), image_size=64))
    return Inpainter.from_model(model, name="tiny", texture=texture, max_side=max_side)


def test_the_inpainter_adds_texture_to_hole_pixels_only_and_batches_like_single_calls():
    image = _grainy(96, 128, 8.0, seed=3)
    hole = np.zeros((96, 128), bool)
    hole[30:70, 40:90] = True
    plain, textured = _inpainter(0.0)(image, hole), _inpainter(1.0)(image, hole)
    assert np.array_equal(plain[~hole], image[~hole]) and np.array_equal(textured[~hole], image[~hole])
    grads = [
        np.abs(np.diff(r[hole.nonzero()[0].min() : 70, 40:90].astype(float), axis=1)).mean()
        for r in (plain, textured, image)
    ]
    assert grads[1] > grads[0] + 0.5 * (grads[2] - grads[0]), grads
    inp = _inpainter(1.0)
    other = _grainy(96, 128, 8.0, seed=4)
    batch = inp.inpaint_batch([image, other], [hole, hole])
    assert np.array_equal(batch[0], inp(image, hole)) and np.array_equal(batch[1], inp(other, hole))


def test_a_calls_texture_overrides_the_inpainters_own():
    """One loaded model fills at any strength: a call's ``texture=`` is what an Inpainter made
    with that strength gives, for single calls and batches; None keeps the Inpainter's."""
    image = _grainy(96, 128, 8.0, seed=3)
    other = _grainy(96, 128, 8.0, seed=4)
    hole = np.zeros((96, 128), bool)
    hole[30:70, 40:90] = True
    plain, textured = _inpainter(0.0), _inpainter(1.0)
    assert np.array_equal(plain(image, hole, texture=1.0), textured(image, hole))
    assert np.array_equal(textured(image, hole, texture=0.0), plain(image, hole))
    assert np.array_equal(textured(image, hole, texture=None), textured(image, hole))
    assert not np.array_equal(plain(image, hole), textured(image, hole))
    batch = plain.inpaint_batch([image, other], [hole, hole], texture=1.0)
    assert np.array_equal(batch[0], textured(image, hole)) and np.array_equal(batch[1], textured(other, hole))
    assert plain.texture == 0.0  # the call changed nothing of the Inpainter
    # images larger than max_side: the batch falls back to one cropped call each, same strength
    small_plain, small_textured = _inpainter(0.0, max_side=64), _inpainter(1.0, max_side=64)
    batch = small_plain.inpaint_batch([image], [hole], texture=1.0)
    assert np.array_equal(batch[0], small_textured(image, hole))
    assert not np.array_equal(batch[0], small_plain(image, hole))


@pytest.mark.parametrize("bad", [-0.1, 5.0, float("nan"), "1"])
def test_the_inpainter_refuses_a_texture_strength_out_of_range(bad):
    with pytest.raises(ValueError, match="texture"):
        _inpainter(bad)
    hole = np.zeros((16, 16), bool)
    hole[4:8, 4:8] = True
    with pytest.raises(ValueError, match="texture"):
        _inpainter(0.0)(np.zeros((16, 16, 3), np.uint8), hole, texture=bad)
    with pytest.raises(ValueError, match="texture"):
        _inpainter(0.0).inpaint_batch([np.zeros((16, 16, 3), np.uint8)], [hole], texture=bad)


@pytest.mark.parametrize("good", [np.float32(0.5), np.float64(1.0), np.int64(1)])
def test_numpy_numbers_are_strengths_too(good):
    """A strength computed with numpy (a sweep over np.linspace) was refused as no number."""
    assert check_texture(good) == float(good)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), np.float64("nan"), np.bool_(True)])
def test_add_texture_refuses_what_the_inpainter_refuses(bad):
    """Called directly, NaN turned the whole hole black and a negative strength did nothing."""
    image = np.full((64, 64, 3), 128, np.uint8)
    hole = np.zeros((64, 64), bool)
    hole[20:40, 20:40] = True
    with pytest.raises(ValueError, match="texture"):
        add_texture(image, image, hole, bad)


def test_pixels_that_are_no_photo_give_no_grain_and_take_none_from_the_fill():
    """Beside a transparent part (continued smoothly by the caller, engine.hidden), the smooth
    pixels were donors and set the texture level: the fill got a third of the photo's grain.
    Told, whatever the hidden pixels hold makes no difference to the fill; untold, a loud
    pattern there comes in as grain."""
    rng = np.random.default_rng(0)
    image = np.clip(np.array([120, 100, 80]) + rng.normal(0, 8, (200, 240, 1)), 0, 255).astype(np.uint8)
    hole = np.zeros((200, 240), bool)
    hole[60:140, 100:180] = True
    hidden = np.zeros_like(hole)
    hidden[:, :90] = True  # 10 px left of the hole
    seen = image.copy()
    seen[hidden] = (120, 100, 80)  # what a smooth continuation leaves there
    fill = seen.copy()
    fill[hole] = (120, 100, 80)

    def grain(out):
        return float((out.astype(float) - fill)[hole].std())

    opaque = grain(add_texture(fill, image, hole, 1.0))
    told = add_texture(fill, seen, hole, 1.0, hidden=hidden)
    assert grain(told) > 0.8 * opaque  # 7.3 against 7.3 opaque
    loud = seen.copy()
    yy, xx = np.mgrid[:200, :240]
    checks = np.where((yy // 2 + xx // 2) % 2, 40, -40)[..., None]  # a 4 px checkerboard
    loud[hidden] = np.clip(np.array([120, 100, 80]) + checks, 0, 255)[hidden]
    assert np.array_equal(add_texture(fill, loud, hole, 1.0, hidden=hidden), told)
    assert grain(add_texture(fill, loud, hole, 1.0)) > 1.15 * grain(told)  # 9.2 untold
    assert np.array_equal(told[~hole], fill[~hole])  # the hidden pixels themselves untouched
    # and through the Inpainter, a call and a batch alike
    inp = _inpainter(1.0, max_side=256)
    one = inp(seen, hole, hidden=hidden)
    assert np.array_equal(inp.inpaint_batch([seen], [hole], hidden=[hidden])[0], one)
    assert not np.array_equal(inp(seen, hole), one)


def test_a_hidden_mask_must_be_bool_and_the_holes_size():
    """An alpha channel passed as ``hidden`` by mistake would read as its opposite."""
    image = np.full((32, 32, 3), 128, np.uint8)
    hole = np.zeros((32, 32), bool)
    hole[8:16, 8:16] = True
    alpha = np.full((32, 32), 255, np.uint8)
    for bad in (alpha, np.zeros((40, 40), bool), np.zeros((31, 32), bool)):
        with pytest.raises(ValueError, match="hidden"):
            add_texture(image, image, hole, 1.0, hidden=bad)
        with pytest.raises(ValueError, match="hidden"):
            _inpainter(1.0)(image, hole, hidden=bad)
        with pytest.raises(ValueError, match="hidden"):
            _inpainter(1.0).inpaint_batch([image], [hole], hidden=[bad])


def test_a_long_stroke_filled_in_tiles_has_its_grain_at_every_tile_seam():
    """A later tile sees the earlier tiles' fill as photo: its hole's edge there was taken for a
    thin part's edge, which gets the photo's smooth fill and no texture (a band of 3-4 columns
    with a fifth of the grain at every seam). Its thin parts are the whole stroke's now."""
    rng = np.random.default_rng(0)
    image = np.clip(np.array([120, 100, 80]) + rng.normal(0, 8, (200, 1400, 1)), 0, 255).astype(np.uint8)
    hole = np.zeros((200, 1400), bool)
    hole[86:114, 20:1380] = True  # 28 px wide: no thin part of its own, tiled (not scaled)
    inp = _inpainter(1.0, max_side=256)
    regions = plan_regions(hole, inp.max_side, inp.config.image_size, granularity=inp.config.granularity)
    seams = sorted({r.core.x0 for r in regions} - {min(r.core.x0 for r in regions)})
    assert len(seams) >= 5 and not any(r.scaled for r in regions)
    out = inp(image, hole)[90:110, :, 1].astype(float)
    grain = np.abs(out[1:-1] - 0.5 * (out[:-2] + out[2:])).mean(0)  # per column, inside the stroke
    typical = np.median(grain[40:1360])
    at_seams = [grain[x : x + 3].mean() for x in seams]  # the 3 columns after each seam
    assert min(at_seams) > 0.6 * typical, (np.round(at_seams, 2), typical)


def test_a_tile_whose_crop_is_all_hole_still_gets_the_grain_of_the_fills_beside_it():
    """With earlier fills no donors, a tile seeing nothing but them got no grain at all (the end
    of a thick stroke along a narrow photo): their grain, which came from the photo, is used."""
    rng = np.random.default_rng(1)
    image = np.clip(np.array([120, 100, 80]) + rng.normal(0, 8, (40, 1500, 1)), 0, 255).astype(np.uint8)
    hole = np.zeros((40, 1500), bool)
    hole[:, :700] = True  # the left 700 columns of a 40 px strip: its first tile sees no photo
    inp = _inpainter(1.0, max_side=512)
    regions = plan_regions(hole, inp.max_side, inp.config.image_size, granularity=inp.config.granularity)
    assert any(hole[r.crop.slices].all() for r in regions)
    out = inp(image, hole)[:, :, 1].astype(float)

    def grain(cols):
        part = out[5:-5, cols]
        return float(np.abs(part[1:-1] - 0.5 * (part[:-2] + part[2:])).mean())

    assert grain(slice(0, 150)) > 0.3 * grain(slice(800, 1500))  # 0.1 against 7 without


def test_a_chain_of_tiles_seeing_only_earlier_fills_keeps_the_grain_s_level():
    """Tiles whose crops are all hole (a hole across a narrow photo's whole width, over 2,400 px)
    take their grain from the tiles filled before them, which hold the strength already: scaled
    by it again, the grain grew to the strength's power along the chain (strength 2: a grain of 6
    levels at the ends, saturated noise of 40-64 in the middle)."""
    rng = np.random.default_rng(0)
    image = np.clip(np.array([120, 150, 90]) + rng.normal(0, 3, (40, 3000, 3)), 0, 255).astype(np.uint8)
    hole = np.zeros((40, 3000), bool)
    hole[:, 300:2700] = True
    inp = _inpainter(2.0, max_side=512)
    regions = plan_regions(hole, inp.max_side, inp.config.image_size, granularity=inp.config.granularity)
    assert sum(hole[r.crop.slices].all() for r in regions) >= 4  # a chain of tiles blind to the photo
    out = inp(image, hole)[:, :, 1].astype(float)

    def grain(cols):
        part = out[5:-5, cols]
        return float(np.abs(part[1:-1] - 0.5 * (part[:-2] + part[2:])).mean())

    ends = max(grain(slice(300, 500)), grain(slice(2500, 2700)))
    middle = max(grain(slice(a, a + 200)) for a in range(900, 2100, 200))
    assert 0.3 * ends < middle < 1.6 * ends, (middle, ends)


def test_an_edge_around_the_hole_does_not_come_in_as_an_outline():
    """A wire crossing the surroundings is a minority of each donor patch's pixels: clipped to
    the patch's own grain, it does not reappear as bright lines in the fill."""
    image = _grainy(200, 240, 4.0, seed=5).astype(np.int16)
    image[40, :] += 90  # a thin bright wire 20 px above the hole
    image[:, 40] += 90  # and one 30 px left of it
    image = np.clip(image, 0, 255).astype(np.uint8)
    hole = _hole(200, 240)
    fill = image.copy()
    fill[hole] = FLAT.astype(np.uint8)
    added = add_texture(fill, image, hole, 1.0).astype(float)[hole] - FLAT
    assert np.abs(added).max() < 6 * 4.0 + 1, np.abs(added).max()
    assert added.std() > 2.0  # the grain still comes in


def test_thin_parts_of_the_hole_get_no_texture():
    """A 4 px scratch is the photo's own membrane's (engine.seams): no grain is added there,
    while the wide part of the same hole gets it."""
    image = _grainy(200, 240, 8.0, seed=6)
    hole = _hole(200, 240)
    scratch = np.zeros_like(hole)
    scratch[170:174, 20:220] = True  # 4 px across, far from the wide part
    fill = _smooth_fill(image, hole | scratch)
    out = add_texture(fill, image, hole | scratch, 1.0)
    assert np.array_equal(out[scratch], fill[scratch])
    assert out[hole].astype(float).std(0).max() > 5.0


def test_donors_crossed_by_an_edge_the_fill_lacks_are_not_chosen(monkeypatch):
    """A thin dark line runs 17-20 px above the hole, within the donors' reach. Donor patches
    crossed by it off their centre have the plain colour at the centre but carry the line's
    ringing (photo minus blur) as texture; the fill is flat there, so their blurred content does
    not match it and they are not chosen. The clip, the second guard, is lifted to see the
    choice alone: the fill gets the plain grain only."""
    import engine.texture

    monkeypatch.setattr(engine.texture, "CLIP", 1e6)
    sigma = 4.0
    image = _grainy(200, 240, sigma, seed=7).astype(np.int16)
    image[40:43, :] -= 70
    image = np.clip(image, 0, 255).astype(np.uint8)
    hole = _hole(200, 240)
    added = add_texture(_smooth_fill(image, hole), image, hole, 1.0).astype(float)[hole] - FLAT
    grain = image[120:200].astype(float) - FLAT  # the same grain far from the line
    assert (np.abs(added) > 3 * sigma).mean() < 2 * (np.abs(grain) > 3 * sigma).mean() + 1e-3
    assert np.abs(added).max() < 6 * sigma
    assert added.std() > 0.5 * sigma  # the grain still comes in


def test_a_sharp_donor_brings_no_more_grain_than_the_fills_surroundings_have():
    """Left: a fine, sharp pattern (a 1 px checkerboard, which the blur removes entirely);
    right: the same colour nearly smooth (an out-of-focus background beside a sharp subject).
    A hole in the smooth part has sharp donors within reach that its blurred content cannot
    tell apart; each patch is brought down to the texture level around its place, so the fill
    is as smooth as its surroundings, not patterned."""
    rng = np.random.default_rng(8)
    h, w = 200, 320
    yy, xx = np.mgrid[:h, :w]
    sharp = 12.0 * np.where((yy + xx) % 2 == 0, 1.0, -1.0)
    smooth = rng.normal(0, 1.0, (h, w))
    image = FLAT + np.where(xx < 160, sharp, smooth)[..., None]
    image = np.clip(image, 0, 255).astype(np.uint8)
    hole = np.zeros((h, w), bool)
    hole[60:140, 185:265] = True
    out = add_texture(_smooth_fill(image, hole), image, hole, 1.0)
    inside = out[70:130, 195:255].reshape(-1, 3).astype(float).std(0).max()
    around = image[70:130, 275:315].reshape(-1, 3).astype(float).std(0).max()
    assert inside < 1.5 * around + 0.5, (inside, around)
    assert inside > 0.3 * around  # its own faint grain still comes in


@pytest.mark.parametrize("corner", [False, True])
def test_the_texture_made_from_the_holes_window_is_the_texture_made_from_the_whole_photo(corner):
    """add_texture works on the hole's box grown by MARGIN px only (the cost follows the hole,
    not the photo). Every donor and every pixel its blur reads lie in that window, so the
    result is the whole-photo synthesis's: the same donors, picks and patches; the texture level
    far inside the hole (the membrane of the levels around it, whose coarse levels depend on the
    window's size) may move a pixel by one grey level."""
    rng = np.random.default_rng(9)
    h, w = 360, 420
    xx = np.arange(w)[None, :, None]
    image = np.clip(120 + 40 * np.sin(xx / 17.0) + rng.normal(0, 9, (h, w, 3)), 0, 255).astype(np.uint8)
    hole = np.zeros((h, w), bool)
    if corner:
        hole[5:60, 380:415] = True
    else:
        hole[150:230, 170:260] = True
        hole[240:244, 100:300] = True  # a scratch below: a thin part in the same window
    fill = _smooth_fill(image, hole)
    out = add_texture(fill, image, hole, 1.0)
    f, x, m = _tensors(fill, image, hole)
    whole = (f + texture_for(f, x, m)).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    diff = np.abs(out.astype(int) - np.where(hole[..., None], whole, fill).astype(int))
    assert out[hole].astype(float).std() > 5.0  # texture did come in
    moved = (diff.max(2) > 0)[hole].mean()
    assert diff.max() <= 1 and moved < 0.1, (diff.max(), moved)  # 0.06 in the corner


def test_the_dilation_is_a_square_grown_by_the_radius():
    from engine.texture import _dilate

    rng = np.random.default_rng(10)
    mask = rng.random((37, 53)) < 0.02
    for radius in (0, 1, 5, 40):
        for anchor in (False, True):
            lo, hi = (0, radius) if anchor else (radius, radius)
            want = np.zeros_like(mask)
            for y, x in zip(*np.nonzero(mask)):
                want[max(0, y - hi) : y + lo + 1, max(0, x - hi) : x + lo + 1] = True
            got = _dilate(torch.from_numpy(mask), radius, anchor_start=anchor).numpy()
            assert np.array_equal(got, want), (radius, anchor)


def test_the_target_patches_are_made_a_chunk_at_a_time_with_the_same_result(monkeypatch):
    """A large hole's patches are synthesised CHUNK at a time (at once, their gathers took about
    200 bytes a pixel of the hole's box): the same sums in the same order, bit for bit."""
    import engine.texture as texture

    image = _grainy(200, 240, 6.0)
    hole = _hole(200, 240)
    fill = _smooth_fill(image, hole)
    whole = add_texture(fill, image, hole, 1.0, seed=4)
    assert not np.array_equal(whole, fill)  # it added texture
    calls = []
    patches = texture._patches

    def counted(*args, **kwargs):
        out = patches(*args, **kwargs)
        calls.append(out[0].shape[1])
        return out

    monkeypatch.setattr(texture, "_patches", counted)
    monkeypatch.setattr(texture, "CHUNK", 37)
    assert np.array_equal(add_texture(fill, image, hole, 1.0, seed=4), whole)
    assert len(calls) > 3 and max(calls) == 37


def test_a_hole_across_a_grainy_and_a_clean_half_takes_each_side_s_grain():
    """One flat colour, grainy on the left and clean on the right, a disc across both. Deep
    inside, the level was a wide average (then the window's mean), and donors were chosen by
    colour alone: clean donors diluted the grainy side (0.4 of the photo's 5.9 at strength 1,
    with a flat fill) and grain reached the clean one. The level is now carried in from each
    side's own edge (a membrane), and a donor with less grain than its place expects costs
    like a colour that is off."""
    rng = np.random.default_rng(7)
    h = w = 400
    image = np.zeros((h, w, 3)) + np.array([110, 140, 170.0])
    image[:, :200] += rng.normal(0, 6, (h, 200, 1))
    image = np.clip(np.round(image), 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[:h, :w]
    hole = (yy - 200) ** 2 + (xx - 200) ** 2 <= 120**2
    fill = image.copy()
    fill[hole] = (110, 140, 170)
    grain = _high_pass(add_texture(fill, image, hole, 1.0))
    deep = (yy - 200) ** 2 + (xx - 200) ** 2 <= 110**2
    photo = float(_high_pass(image)[:, :180].std())  # 5.9
    assert grain[deep & (xx < 180)].std() > 0.6 * photo  # 4.6 (0.4 before)
    assert grain[deep & (xx > 220)].std() < 0.15 * photo  # 0.5


def _high_pass(image: np.ndarray) -> np.ndarray:
    """The mean of the channels less its 5x5 box mean (edges replicated)."""
    f = image.astype(float).mean(-1)
    p = np.pad(f, 2, mode="edge")
    h, w = f.shape
    box = sum(p[dy : dy + h, dx : dx + w] for dy in range(5) for dx in range(5)) / 25
    return f - box
