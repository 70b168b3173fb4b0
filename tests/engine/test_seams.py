"""engine.seams: the membrane interpolation and the edge matching of a fill, alone and through
the Inpainter."""

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine import Inpainter
from engine.chroma import spread_field
from engine.convert import from_network, to_network
from engine.seams import (
    CLAMP,
    FLAT_FLOOR,
    PLATE,
    RAMP,
    THIN,
    edge_window,
    match_edges,
    membrane,
    photo_fill,
    smooth_fill,
    square_max,
    thin_fill,
    thin_plate,
    wide_parts,
)
from engine.unet import PConvUNet, UNetConfig


def _hole(h: int, w: int) -> torch.Tensor:
    hole = torch.zeros(1, 1, h, w, dtype=torch.bool)
    hole[..., 20:44, 15:70] = True  # a block
    hole[..., 50:53, 5:90] = True  # a thin scratch
    return hole


def test_membrane_keeps_known_values_and_reproduces_a_plane():
    h, w = 64, 96
    yy, xx = torch.meshgrid(
        torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij"
    )
    plane = torch.stack([0.01 * xx - 0.3, -0.02 * yy + 0.5, 0.005 * (xx + yy)])[None]
    hole = _hole(h, w)
    known = (~hole).float()
    got = membrane(plane * known, known)
    assert torch.equal(got[~hole.expand_as(got)], plane[~hole.expand_as(plane)])
    # A plane is harmonic: the membrane of its edge values is the plane itself.
    err = (got - plane).abs()[hole.expand_as(got)]
    assert err.max() < 0.02 * float(plane.abs().max()), float(err.max())


def test_membrane_is_smooth_between_unequal_edges():
    known = torch.zeros(1, 1, 32, 32)
    known[..., :, 0] = known[..., :, -1] = 1
    values = torch.zeros(1, 1, 32, 32)
    values[..., :, -1] = 1.0
    got = membrane(values * known, known, iterations=200)
    row = got[0, 0, 16]
    assert row[0] == 0 and row[-1] == 1
    assert bool((row[1:] >= row[:-1] - 1e-6).all()), "monotone from one edge to the other"
    assert abs(float(row[16]) - 16 / 31) < 0.05  # close to the linear profile


def test_a_strip_along_the_photo_s_border_takes_the_colour_beside_it_not_the_edge_s_mean():
    """A 5 px strip down the right border of a photo dark above and light below: the membrane's
    window is a few pixels wide and the photo long, and it started the strip from the mean of the
    whole edge, which its few sweeps left 39-54 grey levels off; it goes on coarsening along the
    strip's length now."""
    h, w = 300, 40
    photo = torch.full((1, 3, h, w), 50.0 / 127.5 - 1)
    photo[..., h // 2 :, :] = 200.0 / 127.5 - 1
    valid = torch.ones(1, 1, h, w)
    valid[..., :, -5:] = 0
    # even a network that gives the photo back exactly got the strip wrong
    got = (match_edges(photo.clone(), photo * valid, valid)[0, 0] + 1) * 127.5
    error = (got[:, -5:] - torch.where(torch.arange(h)[:, None] < h // 2, 50.0, 200.0)).abs().amax(1)
    # within 15 grey levels 50 rows from the step (39-54 before), in the outermost column too,
    # which the thin plate, free at the photo's border, leaves furthest off
    assert float(error[:100].max()) < 15 and float(error[200:].max()) < 15, error
    # a square window is solved as before: coarsened on both sides together
    square = torch.rand(1, 3, 40, 40)
    hole = torch.zeros(1, 1, 40, 40)
    hole[..., 10:30, 12:25] = 1
    assert torch.allclose(
        membrane(square * (1 - hole), 1 - hole), _square_membrane(square * (1 - hole), 1 - hole)
    )


def _square_membrane(values, known, iterations=8):
    """The membrane as it was for windows whose sides reach the coarsest level together."""
    import torch.nn.functional as F

    if min(values.shape[-2:]) > 8:
        count = F.avg_pool2d(known, 2, ceil_mode=True)
        ck = (count > 0).float()
        coarse = _square_membrane(
            F.avg_pool2d(values * known, 2, ceil_mode=True) / count.clamp(min=1e-6) * ck, ck
        )
        start = F.interpolate(coarse, size=values.shape[-2:], mode="bilinear", align_corners=False)
    else:
        start = (
            (values * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True).clamp(min=1)
        ).expand_as(values)
    fixed, free = values * known, 1 - known
    x = fixed + free * start
    for _ in range(iterations):
        p = F.pad(x, (1, 1, 1, 1), mode="replicate")
        x = torch.addcmul(
            fixed, free, (p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:]) * 0.25
        )
    return x


def test_match_edges_removes_an_offset_and_keeps_the_fill_s_detail():
    torch.manual_seed(0)
    h, w = 64, 96
    image = torch.rand(1, 3, h, w) * 0.2 - 0.1
    hole = _hole(h, w)
    valid = (~hole).float()
    detail = torch.randn(1, 3, h, w) * 0.05
    truth_fill = image + detail * hole  # what the right fill would be
    out = truth_fill + 0.3  # the network got everything 0.3 too bright
    fixed = match_edges(out, image * valid, valid, thin=False)
    inside = hole.expand_as(out)
    assert torch.allclose(fixed[inside], truth_fill[inside], atol=1e-3)
    assert torch.equal(fixed[~inside], out[~inside])  # valid pixels untouched (never pasted)
    # An exact fill around the hole means nothing to correct.
    assert torch.equal(match_edges(truth_fill, image * valid, valid, thin=False), truth_fill)


def test_match_edges_never_reads_hole_pixels_and_skips_trivial_masks():
    torch.manual_seed(1)
    out, image = torch.rand(2, 3, 32, 48), torch.rand(2, 3, 32, 48)
    hole = torch.zeros(2, 1, 32, 48, dtype=torch.bool)
    hole[0, :, 5:20, 5:30] = True
    hole[1, :, 10:12, :] = True
    valid = (~hole).float()
    scrambled = torch.where(hole, torch.rand_like(image), image)
    assert torch.equal(match_edges(out, image, valid), match_edges(out, scrambled, valid))
    # per image in a batch: each is corrected by its own edge
    one = match_edges(out[1:], image[1:], valid[1:])
    assert torch.equal(match_edges(out, image, valid)[1:], one)
    ones = torch.ones(1, 1, 32, 48)
    assert torch.equal(match_edges(out[:1], image[:1], ones), out[:1])  # no hole
    assert torch.equal(match_edges(out[:1], image[:1], 0 * ones), out[:1])  # nothing known


def test_thin_parts_are_filled_from_the_photo_and_wide_parts_by_the_network():
    torch.manual_seed(2)
    h, w = 64, 96
    hole = _hole(h, w)  # a 24x55 block and a 3-px scratch
    valid = (~hole).float()
    wide = wide_parts(valid)
    assert torch.equal(wide[~hole], torch.ones_like(wide[~hole]))
    assert bool((wide[..., 50:53, 5:90] == 0).all()), "the scratch is thin"
    assert bool(
        (wide[..., 20 + THIN + RAMP : 44 - THIN - RAMP, 15 + THIN + RAMP : 70 - THIN - RAMP] == 1).all()
    )
    block = wide[..., 20:44, 15:70]  # ramps in from its edge (its outermost pixels 0 with THIN 5)
    assert bool(((block > 0) & (block < 1)).any()) and wide[..., 20, 40] < 1
    yy, xx = torch.meshgrid(
        torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij"
    )
    image = torch.stack([0.01 * xx - 0.3, -0.02 * yy + 0.5, 0.005 * (xx + yy)])[None]  # smooth
    out = image + torch.randn(1, 3, h, w) * 0.2  # a noisy fill: detail the photo does not have
    got = match_edges(out, image * valid, valid)
    plain = match_edges(out, image * valid, valid, thin=False)
    scratch = (..., slice(50, 53), slice(5, 90))
    assert (got[scratch] - image[scratch]).abs().max() < 0.02  # the photo's own membrane
    assert (plain[scratch] - image[scratch]).abs().mean() > 0.1  # the network's noise
    core = (..., slice(20 + THIN + RAMP, 44 - THIN - RAMP), slice(15 + THIN + RAMP, 70 - THIN - RAMP))
    assert torch.allclose(got[core], plain[core], atol=1e-5)  # deep in the block: the network
    assert torch.equal(got[~hole.expand_as(got)], out[~hole.expand_as(out)])


@pytest.mark.parametrize("edges", [True, False])
def test_the_inpainter_matches_edges_unless_told_not_to(edges):
    torch.manual_seed(0)
    model = PConvUNet(UNetConfig(widths=(8, 16, 16, 16), kernels=(7, 5, 3, 3), image_size=64)).eval()
    model.register_forward_hook(lambda _m, _i, out: out + 0.4)  # a fill far too bright
    inp = Inpainter.from_model(
        model, precision="fp32", edges=edges, texture=0, mirror=False
    )  # the fill alone
    rng = np.random.default_rng(0)
    image = np.clip(120 + rng.normal(0, 8, (64, 96, 3)), 0, 255).astype(np.uint8)
    hole = np.zeros((64, 96), bool)
    hole[20:40, 30:60] = True
    out = inp(image, hole)
    with torch.no_grad():
        x, valid = to_network(image, hole)
        raw = model(x, valid)
    expected = from_network(match_edges(raw, x, valid, spread=spread_field(x, valid)) if edges else raw)[0]
    assert np.array_equal(out[hole], expected[hole])
    assert np.array_equal(out[~hole], image[~hole])
    # Matched, the fill's pixels along the hole's edge are close to the photo's (grey 120 +- 8).
    edge = hole & ~(np.pad(hole, 1)[2:, 1:-1] & np.pad(hole, 1)[:-2, 1:-1])
    step = np.abs(out[edge].astype(int) - 120).mean()
    assert (step < 12) == edges, step


def test_a_thin_scratch_along_the_padded_border_is_filled_from_the_photo():
    """An odd-sized photo is padded to the network's granularity; the padding is no part of the
    hole, so a thin scratch along the right or bottom border stays thin: its fill comes from the
    photo's edge, whatever the network."""
    cfg = UNetConfig(widths=(8, 16, 16, 16), kernels=(7, 5, 3, 3), image_size=64)
    rng = np.random.default_rng(5)
    image = np.clip(100 + rng.normal(0, 20, (37, 53, 3)), 0, 255).astype(np.uint8)
    right = np.zeros((37, 53), bool)
    right[3:34, -2:] = True
    bottom = np.zeros((37, 53), bool)
    bottom[-3:, 4:50] = True
    for hole in (right, bottom):
        fills = []
        for seed in (0, 1):
            torch.manual_seed(seed)
            model = PConvUNet(cfg).eval()
            fills.append(Inpainter.from_model(model, precision="fp32")(image, hole))
        assert np.array_equal(fills[0], fills[1])
        assert not np.array_equal(fills[0][hole], image[hole])


def _quadratic(h: int, w: int) -> torch.Tensor:
    """Shading with curvature (a cheek, a vignetted sky): biharmonic, not harmonic."""
    yy, xx = torch.meshgrid(
        torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij"
    )
    return torch.stack(
        [0.1 * ((yy - 25) / 8) ** 2 - 0.5, 0.3 - 0.05 * ((yy - 10) / 8) ** 2, (yy * xx) / 3000 - 0.4]
    )[None]


def test_the_thin_plate_carries_the_slopes_across_a_scratch_where_the_membrane_does_not():
    h, w = 48, 64
    truth = _quadratic(h, w)
    hole = torch.zeros(1, 1, h, w, dtype=torch.bool)
    hole[..., 22:28, 4:60] = True  # a 6 px scratch across the shading
    known = (~hole).float()
    start = membrane(truth * known, known)
    plate = thin_plate(torch.where(hole, start, truth), hole.float(), iterations=64)
    inside = hole.expand_as(truth)
    assert torch.equal(plate[~inside], truth[~inside])  # the fixed pixels stay
    membrane_error = (start - truth).abs()[inside].max()
    plate_error = (plate - truth).abs()[inside].max()
    assert membrane_error > 0.01, float(membrane_error)  # the membrane is flat across the scratch
    assert plate_error < 0.1 * membrane_error, (float(plate_error), float(membrane_error))
    # a few steps already move most of the way (the default count is enough for a scratch)
    few = thin_plate(torch.where(hole, start, truth), hole.float())
    assert (few - truth).abs()[inside].max() < 0.2 * membrane_error


def test_the_thin_plate_is_the_least_squared_laplacian_solved_on_the_free_pixels_only():
    """Against a direct least-squares solve: free pixels inside, on the border and in a corner
    (which no interior Laplacian reads: it keeps its start), in two images and two channels."""
    h, w = 9, 11
    gen = torch.Generator().manual_seed(5)
    values = torch.rand(2, 2, h, w, generator=gen, dtype=torch.float64)
    free = torch.zeros(2, 1, h, w, dtype=torch.float64)
    free[0, 0, 3:6, 2:9] = 1
    free[0, 0, 0, 0] = 1  # a corner
    free[1, 0, 4, :] = 1  # a line through to both borders
    free[1, 0, 1:8, 5] = 1
    got = thin_plate(values, free, iterations=400)
    # the interior 5-point Laplacian as a matrix: one row per interior pixel
    lap = torch.zeros((h - 2) * (w - 2), h * w, dtype=torch.float64)
    for k, (y, x) in enumerate((y, x) for y in range(1, h - 1) for x in range(1, w - 1)):
        lap[k, y * w + x] = -4
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            lap[k, (y + dy) * w + x + dx] = 1
    for i in range(2):
        is_free = free[i, 0].flatten() > 0
        read = is_free & (lap.abs().sum(0) > 0)
        for c in range(2):
            v = values[i, c].flatten()
            rhs = -(lap[:, ~is_free] @ v[~is_free])
            expected = v.clone()
            expected[read] = torch.linalg.lstsq(lap[:, read], rhs[:, None]).solution[:, 0]
            assert torch.allclose(got[i, c].flatten(), expected, atol=1e-6)
    assert got[0, 0, 0, 0] == values[0, 0, 0, 0]  # the corner keeps its start


def test_the_thin_plate_keeps_images_with_nothing_to_solve_as_they_are():
    """In a batch: an image with no free pixel, and one whose only free pixel is a corner (read by
    no interior Laplacian), keep their values; the image beside them is still solved."""
    gen = torch.Generator().manual_seed(6)
    values = torch.rand(3, 3, 8, 9, generator=gen)
    free = torch.zeros(3, 1, 8, 9)
    free[1, 0, 0, 8] = 1  # a corner only
    free[2, 0, 3:5, 2:7] = 1
    got = thin_plate(values, free)
    assert torch.equal(got[:2], values[:2])
    assert not torch.equal(got[2], values[2])
    assert torch.equal(got[2][:, free[2, 0] == 0], values[2][:, free[2, 0] == 0])


def test_the_thin_fill_is_the_clamped_plate_blended_with_the_membrane_and_never_overshoots():
    torch.manual_seed(3)
    h, w = 48, 64
    hole = torch.zeros(1, 1, h, w, dtype=torch.bool)
    hole[..., 22:26, 4:60] = True  # a 4 px scratch
    valid = (~hole).float()
    # a steep ramp that ends at the scratch (a dark edge meeting a bright flat area): the plate
    # alone would carry the ramp's slope on and overshoot the bright side
    yy = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w)
    photo = torch.where(yy < 22, (yy - 22) * 0.08 + 0.5, torch.full_like(yy, 0.5)).expand(1, 3, h, w).clone()
    photo = photo + torch.rand(1, 3, h, w) * 0.01
    start = membrane(photo * valid, valid)
    got = smooth_fill(photo * valid, valid, start)
    inside = hole.expand_as(photo)
    assert torch.equal(got[~inside], start[~inside])
    big = photo.max() + 1
    low = -torch.nn.functional.max_pool2d(torch.where(valid > 0, -photo, -big), 2 * CLAMP + 1, 1, CLAMP)
    high = torch.nn.functional.max_pool2d(torch.where(valid > 0, photo, -big), 2 * CLAMP + 1, 1, CLAMP)
    assert bool((got[inside] <= high[inside] + 1e-5).all())
    assert bool((got[inside] >= low[inside] - 1e-5).all())
    plate = thin_plate(torch.where(hole, start, photo), hole.float())
    expected = start + PLATE * (torch.minimum(torch.maximum(plate, low), high) - start)
    assert torch.allclose(got[inside], expected[inside], atol=1e-5)
    assert bool((plate[inside] > high[inside] + 1e-3).any()), "the unclamped plate overshoots here"
    # the hole's pixels are never read
    scrambled = torch.where(hole, torch.rand_like(photo), photo)
    assert torch.equal(smooth_fill(scrambled, valid, start), got)


def test_known_specks_inside_a_hole_do_not_turn_its_fill_into_flat_squares():
    """A hole dotted with single known pixels (a soft brush's or a thresholded mask's specks, a
    lone pixel left by a damage find) is thin everywhere; the thin plate was clamped to the
    range of the known pixels within 4 px, which around a lone speck is that speck's value: a
    flat 9x9 square round each. Over a ramp the fill between the specks now follows the ramp (the
    plate reproduces it, and a speck's range is taken wider)."""
    h, w = 64, 96
    xx = torch.arange(w, dtype=torch.float32)[None, :].expand(h, w)
    photo = ((xx - w / 2) * 0.02).expand(1, 3, h, w).clone()  # a ramp of 0.02 a pixel
    hole = torch.zeros(1, 1, h, w, dtype=torch.bool)
    hole[..., 8:56, 8:88] = True
    hole[..., 12:56:10, 12:88:10] = False  # specks on a 10 px grid
    valid = (~hole).float()
    start = membrane(photo * valid, valid)
    got = smooth_fill(photo * valid, valid, start)
    # away from the hole's own edge (whose range, a ramp across it, clamps as for any scratch)
    inner = (got - photo)[..., 14:50, 14:82]
    assert float(inner.abs().max()) < 0.02  # within a pixel's step of the ramp
    # flat squares: along a row through a speck, the fill beside it equals the speck's value
    row = got[0, 0, 12, 20:35]
    assert float((row[1:] - row[:-1]).abs().min()) > 0.005


@pytest.mark.parametrize("radius", [0, 1, 2, 3, 4, 7])
def test_square_max_is_max_pooling_with_the_outside_not_counted(radius):
    gen = torch.Generator().manual_seed(radius)
    x = torch.randn(2, 3, 13, 9, generator=gen) - 5.0  # all negative: a zero padding would show
    expected = torch.nn.functional.max_pool2d(x, 2 * radius + 1, 1, radius)
    assert torch.equal(square_max(x, radius), expected)


def test_a_large_window_is_matched_one_channel_at_a_time_with_the_same_result(monkeypatch):
    """A window over ``_PLANE`` pixels is solved one channel at a time (memory: below); the
    membrane bit for bit, the whole match to float rounding (the thin plate's sums run over one
    channel instead of three)."""
    import engine.seams as seams

    rng = np.random.default_rng(5)
    h, w = 90, 120
    yy, xx = np.mgrid[0:h, 0:w]
    hole = ((yy - 45) ** 2 + (xx - 60) ** 2) < 30**2
    hole[44:47, :] = True  # a thin scratch into the blob
    valid = torch.from_numpy(~hole)[None, None].float()
    values = torch.from_numpy(rng.standard_normal((1, 6, h, w)).astype(np.float32))
    out, image = values[:, :3], values[:, 3:] * 0.5
    together = membrane(values, valid), match_edges(out, image, valid)
    monkeypatch.setattr(seams, "_PLANE", 1000)  # every window here is "large"
    calls = []
    real = seams._matched
    monkeypatch.setattr(seams, "_matched", lambda o, *a: calls.append(o.shape[1]) or real(o, *a))
    alone = membrane(values, valid), match_edges(out, image, valid)
    assert calls == [1, 1, 1]
    assert torch.equal(alone[0], together[0])
    assert torch.allclose(alone[1], together[1], atol=1e-5)
    assert not torch.equal(alone[1][:, :, 44:47], out[:, :, 44:47])  # matched, not left as it was


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc and /proc/self")
def test_matching_a_large_window_takes_a_bounded_number_of_image_planes():
    """The edge match of an object at full resolution took 55 float planes of its window
    (+1.1 GB for a 10% blob on a 24 MP photo, +4.6 GB at 100 MP): the membrane's sweeps made a
    new image per operation, for six channels at once. Measured in a fresh process, every large
    allocation its own mapping so that the peak resident size follows the live tensors."""
    code = textwrap.dedent(
        """
        import torch
        from engine.seams import match_edges
        def status(key):  # this process's own (VmHWM: its peak), in bytes
            line = next(x for x in open("/proc/self/status") if x.startswith(key + ":"))
            return int(line.split()[1]) * 1024
        torch.set_num_threads(1)
        n = 1400
        yy, xx = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        hole = ((yy - n / 2) ** 2 + (xx - n / 2) ** 2) < (0.45 * n) ** 2
        hole[n // 2 : n // 2 + 3, :] = True
        valid = (~hole).float()[None, None]
        image, out = torch.rand(1, 3, n, n) * valid, torch.rand(1, 3, n, n)
        del yy, xx, hole
        open("/proc/self/clear_refs", "w").write("5")  # the peak from here on
        base = status("VmRSS")
        with torch.inference_mode():
            match_edges(out, image, valid)
        print((status("VmHWM") - base) / (n * n * 4))
        """
    )
    root = str(Path(__file__).resolve().parents[2])  # this checkout's engine
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "PYTHONPATH": root}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    planes = float(done.stdout.split()[-1])
    assert planes < 24, planes  # 16.5 here (3 of them the result), 55 before


def test_the_edge_window_is_the_same_for_a_tensor_and_any_numpy_layout():
    """``edge_window`` takes the Inpainter's numpy masks as they come: a flipped (negative
    strides) mask raised in torch, a read-only one warned."""
    hole = np.zeros((30, 40), bool)
    hole[5:9, 10:12] = True
    want = (slice(0, 17), slice(2, 20))
    assert edge_window(hole) == edge_window(torch.from_numpy(hole)) == want
    assert edge_window(np.asfortranarray(hole)) == want
    assert edge_window(hole[::-1, ::-1]) == (slice(13, 30), slice(20, 38))
    frozen = hole.copy()
    frozen.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert edge_window(frozen) == want
    assert edge_window(np.zeros((4, 4), bool)) is None and edge_window(np.ones((4, 4), bool)) is None


def test_a_flat_surround_holds_the_fill_to_the_photo_s_smooth_continuation():
    """What the network makes up inside a hole in a flat surface (a blurred rectangle 40 grey
    levels off in a clear sky) is held to the surround's spread: within FLAT_FLOOR of the flat
    colour there, unchanged (to tanh's curvature) where the surround varies."""
    h, w = 48, 64
    hole = torch.zeros(1, 1, h, w, dtype=torch.bool)
    hole[..., 12:36, 16:48] = True
    valid = (~hole).float()
    flat = torch.tensor([-0.3, 0.1, 0.55]).view(1, 3, 1, 1).expand(1, 3, h, w).clone()
    bump = torch.zeros(1, 3, h, w)
    bump[..., 18:30, 24:40] = 0.3  # the made-up shape, well inside the hole
    inside = hole.expand(1, 3, h, w)
    loose = match_edges(flat + bump, flat, valid, thin=False)
    assert float((loose - flat)[inside].abs().max()) > 0.25  # the edge match leaves it
    held = match_edges(flat + bump, flat, valid, thin=False, spread=spread_field(flat, valid))
    assert float((held - flat)[inside].abs().max()) <= FLAT_FLOOR + 1e-3  # float rounding of a flat spread
    # a surround that varies as much as the shape does, cell by cell (8 px): the shape passes,
    # a little softened
    rng = torch.Generator().manual_seed(1)
    busy = flat + F.interpolate(torch.randn(1, 3, h // 8, w // 8, generator=rng) * 0.3, scale_factor=8)
    free = match_edges(flat + bump, busy, valid, thin=False)
    kept = match_edges(flat + bump, busy, valid, thin=False, spread=spread_field(busy, valid))
    assert float((kept - free)[inside].abs().max()) < 0.05
    assert float((kept - free)[..., 18:30, 24:40].mean()) > -0.05
    # the held fill never reads the hole's pixels
    scrambled = torch.where(inside, torch.rand(1, 3, h, w), flat)
    again = match_edges(flat + bump, scrambled, valid, thin=False, spread=spread_field(scrambled, valid))
    assert torch.equal(again, held)


def test_grain_or_a_gradient_around_a_hole_is_no_variation_the_fill_may_follow():
    """The spread was the pixels' own standard deviation: a grain of 6 levels gave a flat dark
    surface a spread of 6, an allowance of 20 levels through which the network's blob came 5
    levels brighter; a clean sky gradient's slope counted as variation too (its fill up to 17
    levels off). The spread is the cells' means' (8 px), less what a plane explains: what
    varies at the scale the network paints its shapes."""
    h, w = 192, 256
    valid = torch.ones(1, 1, h, w)
    valid[..., 48:144, 64:192] = 0.0
    rng = torch.Generator().manual_seed(3)
    flat = torch.tensor([-0.8, -0.75, -0.7]).view(1, 3, 1, 1).expand(1, 3, h, w)
    grainy = flat + torch.randn(1, 1, h, w, generator=rng) * (6 / 127.5)
    yy = torch.linspace(-0.6, 0.6, h).view(1, 1, h, 1)  # 77 levels over the height
    sky = (
        torch.tensor([-0.1, 0.2, 0.7]).view(1, 3, 1, 1) + yy * torch.tensor([1.0, 0.8, 0.3]).view(1, 3, 1, 1)
    ).expand(1, 3, h, w)
    blocks = flat + F.interpolate(
        torch.randn(1, 3, h // 16, w // 16, generator=rng) * (6 / 127.5), scale_factor=16
    )
    levels = {
        name: float(spread_field(x, valid).max()) * 127.5
        for name, x in (("grainy", grainy), ("sky", sky), ("blocks", blocks))
    }
    assert levels["grainy"] < 1.5 and levels["sky"] < 2.5, levels  # 6 and 21 with the pixels' deviation
    assert levels["blocks"] > 3.0, levels  # the same 6 levels, in shapes 16 px across: variation
    bump = torch.zeros(1, 3, h, w)
    bump[..., 72:120, 96:160] = 0.2  # the network's blob, 25 levels
    inside = (valid < 1).expand(1, 3, h, w)
    for name, x in (("grainy", grainy), ("sky", sky)):
        held = match_edges(x + bump, x, valid, thin=False, spread=spread_field(x, valid))
        base = membrane(x * valid, valid)  # the photo's smooth continuation over the hole
        departure = float((held - base)[inside].abs().max()) * 127.5
        assert departure < {"grainy": 6.0, "sky": 9.0}[name], (name, departure)  # 22 and 24 before


def test_the_inpainter_fills_a_hole_in_a_flat_colour_flat_whatever_the_network_paints():
    torch.manual_seed(0)
    model = PConvUNet(UNetConfig(widths=(8, 16, 16, 16), kernels=(7, 5, 3, 3), image_size=64)).eval()
    yy = torch.linspace(-1, 1, 64)[:, None]

    def shapes(_m, _i, out):  # a rectangle and bands of its own
        return out + 0.3 * torch.sign(torch.sin(6 * yy[: out.shape[-2]])).to(out.dtype)

    model.register_forward_hook(shapes)
    inp = Inpainter.from_model(model, precision="fp32", texture=0, mirror=False)
    image = np.empty((64, 96, 3), np.uint8)
    image[:] = (90, 140, 200)
    hole = np.zeros((64, 96), bool)
    hole[12:52, 20:76] = True
    out = inp(image, hole)
    assert np.abs(out[hole].astype(int) - (90, 140, 200)).max() <= 3
    raw = Inpainter.from_model(model, precision="fp32", texture=0, mirror=False, edges=False)(image, hole)
    assert np.abs(raw[hole].astype(int) - (90, 140, 200)).max() > 20  # what it would have been


def test_the_photo_s_own_fill_finds_the_thin_parts_once(monkeypatch):
    """photo_fill is "is every part thin?" and match_edges(image, image, ...) in one: the same fill
    where every part is thin, None where one is wide, the thin parts found once an image (twice
    before, a tenth of a dense dust's fill)."""
    import engine.seams as seams

    rng = torch.Generator().manual_seed(5)
    image = torch.rand(2, 3, 40, 60, generator=rng) * 2 - 1
    valid = torch.ones(2, 1, 40, 60)
    valid[0, :, 10:14, 5:55] = 0  # a scratch
    valid[1, :, 20:26, 30:36] = 0  # a speck
    calls = []
    real = seams.wide_parts
    monkeypatch.setattr(seams, "wide_parts", lambda *a, **k: calls.append(1) or real(*a, **k))
    fill = photo_fill(image, valid)
    assert len(calls) == 2  # one an image
    monkeypatch.undo()
    assert fill is not None and torch.equal(fill, match_edges(image, image, valid, thin=True))
    valid[1, :, 5:35, 5:25] = 0  # a wide part in the second image
    assert photo_fill(image, valid) is None


def test_the_thin_plate_solves_each_separate_part_as_if_it_were_alone():
    """Parts of a window more than 2 px apart are separate systems (no Laplacian reads two of
    them): each is solved with its own step sizes, as it would be alone. Solved as one system
    (one step size for all), 32 steps left a group of specks less converged than each speck's own
    window did, and a speck's fill depended on what else its window held: up to 1.5 grey levels
    from its fill alone on these parts, 30x what the test allows."""
    rng = torch.Generator().manual_seed(3)
    values = torch.rand(1, 3, 64, 96, generator=rng)
    parts = [(slice(6, 12), slice(6, 10)), (slice(24, 27), slice(10, 90)), (slice(40, 58), slice(40, 44))]
    free = torch.zeros(1, 1, 64, 96)
    for part in parts:
        free[(..., *part)] = 1
    together = thin_plate(values, free)
    for part in parts:
        alone = torch.zeros_like(free)
        alone[(..., *part)] = 1
        assert torch.allclose(together[(..., *part)], thin_plate(values, alone)[(..., *part)], atol=2e-4)


def test_the_thin_fill_tells_which_parts_are_thin_and_fills_those_from_the_photo():
    """engine.seams.thin_fill: a speck's fill is the photo's own even with a wide hole in its
    window (the network's output would be replaced on each of its pixels); a part with a wide
    pixel is not (the network fills it), and with no thin part nothing is solved."""
    rng = torch.Generator().manual_seed(6)
    image = torch.rand(1, 3, 80, 100, generator=rng) * 2 - 1
    valid = torch.ones(1, 1, 80, 100)
    speck, blob = (slice(10, 14), slice(10, 15)), (slice(30, 60), slice(50, 90))
    valid[(0, 0, *speck)] = 0
    valid[(0, 0, *blob)] = 0
    fill, thin = thin_fill(image, valid, [(slice(5, 20), slice(5, 20)), blob])  # boxes round each
    assert thin == [True, False]
    only = valid.clone()
    only[(0, 0, *blob)] = 1  # the speck alone in the photo
    alone = match_edges(image, image, only, thin=True)
    assert (fill - alone)[(..., *speck)].abs().max() < 0.05  # the same but for the window's membrane
    assert thin_fill(image, valid, [blob]) is None


def test_the_thin_plate_finds_the_parts_of_winding_hairs_in_few_rounds():
    """engine.seams._blocks: the same parts as a union-find, for a spiral, a serpentine and a
    scatter of pixels (hooking roots: taking the least label from the neighbours alone took a
    round per 2 px of a winding part, 260 rounds and 2.2 s for a serpentine of 83k px, now 94
    ms)."""
    from engine.seams import _blocks, _stencil_tables

    def union_find(reads: torch.Tensor, n: int) -> int:
        parent = list(range(n))

        def find(a: int) -> int:
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        for col in reads.T.tolist():
            read = [i for i in col if i < n]
            for i in read[1:]:
                parent[find(read[0])] = find(i)
        return len({find(i) for i in range(n)})

    spiral = torch.zeros(120, 120, dtype=torch.bool)
    lo, hi = 1, 118
    while hi - lo > 6:
        spiral[lo, lo : hi + 1] = spiral[lo : hi + 1, hi] = spiral[hi, lo : hi + 1] = True
        spiral[lo + 3 : hi + 1, lo] = spiral[lo + 3, lo : lo + 4] = True
        lo, hi = lo + 3, hi - 3
    snake = torch.zeros(200, 200, dtype=torch.bool)
    for k, c in enumerate(range(1, 196, 3)):
        snake[1:199, c] = True
        snake[198 if k % 2 == 0 else 1, c : c + 4] = True
    scatter = torch.rand(150, 150, generator=torch.Generator().manual_seed(0)) < 0.3
    for free in (spiral, snake, scatter):
        ys, xs, reads, read_by = _stencil_tables(free)
        block, count = _blocks(reads, read_by)
        assert count == union_find(reads, ys.numel())
        firsts = {}
        for b, i in zip(block.tolist(), range(ys.numel())):
            firsts.setdefault(b, i)
        assert sorted(firsts) == list(range(count))  # numbered 0 .. count - 1
