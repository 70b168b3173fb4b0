"""PartialConv2d against a slow reference written straight from the paper's equations (1)-(2)."""

import itertools

import pytest
import torch

from engine.layers import PartialConv2d, add_upsampled_conv, box_sum


def reference_pconv(layer: PartialConv2d, x: torch.Tensor, mask: torch.Tensor):
    """Loop over every output position; zero padding of X and M (outside = hole)."""
    n, c, h, w = x.shape
    k, s, p = layer.kernel_size, layer.stride, layer.padding
    if mask.shape[1] == 1:
        mask = mask.expand(n, c, h, w)
    xp = torch.nn.functional.pad(x, (p, p, p, p)).double()
    mp = torch.nn.functional.pad(mask, (p, p, p, p)).double()
    weight = layer.weight.double()
    bias = (
        layer.bias.double()
        if layer.bias is not None
        else torch.zeros(layer.out_channels, dtype=torch.float64)
    )
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    out = torch.zeros(n, layer.out_channels, ho, wo, dtype=torch.float64)
    new_mask = torch.zeros(n, 1, ho, wo, dtype=torch.float64)
    sum_one = c * k * k
    for b, i, j in itertools.product(range(n), range(ho), range(wo)):
        xw = xp[b, :, i * s : i * s + k, j * s : j * s + k]
        mw = mp[b, :, i * s : i * s + k, j * s : j * s + k]
        sum_m = mw.sum()
        if sum_m > 0:
            conv = (weight * (xw * mw)[None]).sum(dim=(1, 2, 3))
            out[b, :, i, j] = conv * sum_one / sum_m + bias
            new_mask[b, 0, i, j] = 1
    return out, new_mask


CASES = [
    # cin, cout, k, stride, padding, bias, per-channel mask
    (3, 4, 3, 1, 1, True, False),
    (3, 5, 7, 2, 3, True, False),
    (2, 3, 5, 2, 2, False, False),
    (4, 2, 3, 1, 0, True, True),
    (5, 6, 3, 2, 1, False, True),
    (1, 2, 1, 1, 0, True, False),
    (2, 3, 3, 1, 2, True, False),  # padding beyond half the kernel (sum pooling could not)
]


@pytest.mark.parametrize("cin,cout,k,stride,padding,bias,per_channel", CASES)
def test_matches_reference(cin, cout, k, stride, padding, bias, per_channel):
    torch.manual_seed(cin * 100 + k * 10 + stride)
    layer = PartialConv2d(cin, cout, k, stride=stride, padding=padding, bias=bias).double()
    x = torch.randn(2, cin, 11, 13, dtype=torch.float64)
    mask_c = cin if per_channel else 1
    mask = (torch.rand(2, mask_c, 11, 13) > 0.6).double()
    mask[1, :, 0:10, 0:12] = 0  # a block hole large enough that some windows see no valid pixel
    out, new_mask = layer(x, mask)
    ref_out, ref_mask = reference_pconv(layer, x, mask)
    assert new_mask.shape == ref_mask.shape
    assert torch.equal(new_mask, ref_mask)
    torch.testing.assert_close(out, ref_out, rtol=1e-10, atol=1e-10)
    if k > 1:
        assert (ref_mask == 0).any(), "the case must exercise windows without valid pixels"


def reference_box_sum(x: torch.Tensor, size: int, stride: int, padding: int) -> torch.Tensor:
    xp = torch.nn.functional.pad(x.double(), (padding,) * 4)
    ho, wo = (xp.shape[-2] - size) // stride + 1, (xp.shape[-1] - size) // stride + 1
    out = torch.zeros(*x.shape[:2], ho, wo, dtype=torch.float64)
    for i, j in itertools.product(range(ho), range(wo)):
        out[..., i, j] = xp[..., i * stride : i * stride + size, j * stride : j * stride + size].sum((-2, -1))
    return out


@pytest.mark.parametrize(
    "size,stride,padding,h,w",
    [
        (7, 2, 3, 13, 10),
        (5, 2, 2, 9, 9),
        (3, 1, 1, 6, 11),
        (5, 1, 2, 8, 7),
        (3, 2, 0, 7, 8),
        (3, 1, 3, 4, 5),
        (1, 1, 0, 3, 4),
    ],
)
@pytest.mark.parametrize("channels_last", [False, True])
def test_box_sum_is_every_windows_sum(size, stride, padding, h, w, channels_last):
    torch.manual_seed(size * 10 + stride + padding)
    x = torch.randn(2, 3, h, w)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    got = box_sum(x, size, stride, padding)
    assert got.dtype == torch.float32
    torch.testing.assert_close(
        got.double(), reference_box_sum(x, size, stride, padding), rtol=1e-6, atol=1e-5
    )
    counts = (torch.rand(2, 1, h, w) > 0.3).float() * 517  # integer counts: exact, as the layer needs
    assert torch.equal(
        box_sum(counts, size, stride, padding).double(), reference_box_sum(counts, size, stride, padding)
    )


def test_box_sum_refuses_what_has_no_window():
    with pytest.raises(ValueError, match="does not fit a 4x4 input padded by 1"):
        box_sum(torch.ones(1, 1, 4, 4), 7, 1, 1)
    with pytest.raises(ValueError, match="stride"):
        box_sum(torch.ones(1, 1, 4, 4), 3, 0, 1)


def test_float32_matches_reference():
    torch.manual_seed(0)
    layer = PartialConv2d(3, 8, 5, stride=2, padding=2)
    x = torch.randn(1, 3, 16, 16)
    mask = (torch.rand(1, 1, 16, 16) > 0.5).float()
    out, new_mask = layer(x, mask)
    ref_out, ref_mask = reference_pconv(layer, x, mask)
    torch.testing.assert_close(out.double(), ref_out, rtol=1e-5, atol=1e-5)
    assert torch.equal(new_mask.double(), ref_mask)


def test_mask_update_grows_valid_region():
    layer = PartialConv2d(1, 1, 3, padding=1)
    mask = torch.zeros(1, 1, 9, 9)
    mask[0, 0, 4, 4] = 1
    _, m1 = layer(torch.randn(1, 1, 9, 9), mask)
    assert m1[0, 0, 3:6, 3:6].eq(1).all() and m1.sum() == 9
    _, m2 = layer(torch.randn(1, 1, 9, 9), m1)
    assert m2.sum() == 25


def test_all_hole_window_outputs_zero_even_with_bias():
    layer = PartialConv2d(2, 3, 3, padding=1)
    with torch.no_grad():
        layer.bias.fill_(5.0)
    mask = torch.zeros(1, 1, 6, 6)
    mask[..., 0, 0] = 1
    out, new_mask = layer(torch.randn(1, 2, 6, 6), mask)
    far = new_mask[0, 0] == 0
    assert far.any()
    assert (out[0][:, far] == 0).all()
    assert (out[0][:, ~far] != 0).any()


def test_border_is_treated_as_hole_not_zero():
    """A constant image must give a constant response at the border too: the padded taps are
    holes and the remaining taps are re-weighted (zero padding would darken the border)."""
    layer = PartialConv2d(1, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(1.0 / 9)
    x = torch.full((1, 1, 6, 6), 2.0)
    out, new_mask = layer(x, torch.ones(1, 1, 6, 6))
    torch.testing.assert_close(out, torch.full_like(out, 2.0))
    assert new_mask.eq(1).all()
    plain = torch.nn.functional.conv2d(x, layer.weight, padding=1)
    assert plain[0, 0, 0, 0] < 1.9  # what zero padding would have given


def test_hole_content_is_ignored():
    torch.manual_seed(1)
    layer = PartialConv2d(3, 4, 3, padding=1)
    x = torch.randn(1, 3, 8, 8)
    mask = torch.ones(1, 1, 8, 8)
    mask[..., 2:5, 2:6] = 0
    y = x.clone()
    y[..., 2:5, 2:6] = 1000.0
    torch.testing.assert_close(layer(x, mask)[0], layer(y, mask)[0])


def test_stateless_and_buffer_not_persistent():
    layer = PartialConv2d(2, 2, 3, padding=1)
    assert "mask_kernel" not in layer.state_dict()
    x = torch.randn(1, 2, 5, 5)
    m1 = (torch.rand(1, 1, 5, 5) > 0.5).float()
    a, _ = layer(x, m1)
    layer(x, torch.ones(1, 1, 5, 5))
    layer(torch.randn(3, 2, 7, 7), torch.zeros(3, 1, 7, 7))
    b, _ = layer(x, m1)
    assert torch.equal(a, b)


def test_bad_mask_shape_is_a_clear_error():
    layer = PartialConv2d(3, 4, 3, padding=1)
    with pytest.raises(ValueError, match="mask"):
        layer(torch.randn(1, 3, 8, 8), torch.ones(1, 2, 8, 8))
    with pytest.raises(ValueError, match="mask"):
        layer(torch.randn(1, 3, 8, 8), torch.ones(1, 1, 4, 4))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_keeps_mask_counts_exact(dtype):
    """Under autocast the counts must stay exact: with a per-channel mask over 512 channels a 3x3
    window counts up to 4608, and odd counts such as 4607 are not representable in fp16/bf16."""
    torch.manual_seed(2)
    layer = PartialConv2d(512, 4, 3, padding=1)
    x = torch.randn(1, 512, 6, 6)
    mask = torch.ones(1, 512, 6, 6)
    mask[0, 7, 2, 2] = 0  # one channel of one pixel: the windows around it count 4607
    ref, ref_m = layer(x, mask)
    scale_ref, _ = layer.mask_update(mask)
    assert scale_ref.dtype == torch.float32
    assert scale_ref[0, 0, 2, 2].item() == (torch.tensor(4608.0) / torch.tensor(4607.0)).item()
    with torch.autocast("cpu", dtype=dtype):
        scale, m = layer.mask_update(mask)
        out, m2 = layer(x, mask)
    assert torch.equal(scale, scale_ref), "mask arithmetic must not run in reduced precision"
    assert torch.equal(m2, ref_m)
    torch.testing.assert_close(out.float(), ref, rtol=0.05, atol=0.1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    torch.manual_seed(3)
    layer = PartialConv2d(3, 8, 5, stride=2, padding=2)
    x = torch.randn(2, 3, 32, 32)
    mask = (torch.rand(2, 1, 32, 32) > 0.5).float()
    ref, ref_m = layer(x, mask)
    layer = layer.cuda()
    out, m = layer(x.cuda(), mask.cuda())
    torch.testing.assert_close(out.cpu(), ref, rtol=1e-3, atol=1e-3)
    assert torch.equal(m.cpu(), ref_m)
    with torch.autocast("cuda", dtype=torch.float16):
        out16, m16 = layer(x.cuda(), mask.cuda())
    assert torch.equal(m16.cpu(), ref_m)
    torch.testing.assert_close(out16.float().cpu(), ref, rtol=0.02, atol=0.05)


@pytest.mark.parametrize("h, w", [(1, 1), (5, 7), (8, 8)])
def test_upsampled_conv_at_low_resolution_equals_upsampling_then_convolving(h, w):
    """The four 2x2 phase kernels give exactly the 3x3 convolution of the nearest x2 upsampled
    input (padding 1: the border rows and columns included), added to what ``out`` held."""
    g = torch.Generator().manual_seed(h * 10 + w)
    x = torch.randn(2, 3, h, w, generator=g, dtype=torch.float64)
    weight = torch.randn(4, 3, 3, 3, generator=g, dtype=torch.float64)
    start = torch.randn(2, 4, 2 * h, 2 * w, generator=g, dtype=torch.float64)
    up = torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
    want = start + torch.nn.functional.conv2d(up, weight, padding=1)
    got = add_upsampled_conv(start.clone(), x, weight)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="3x3 kernel"):
        add_upsampled_conv(start, x, weight[..., :1, :1])
    with pytest.raises(ValueError, match="out must have shape"):
        add_upsampled_conv(start[..., :-1], x, weight)
