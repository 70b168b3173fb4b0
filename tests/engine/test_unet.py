import copy

import pytest
import torch

from engine.unet import MODEL_PRESETS, PConvUNet, UNetConfig, create_model, paper_kernels

TINY = UNetConfig(widths=(8, 16, 16, 16), kernels=(7, 5, 3, 3), image_size=64)


def test_paper_configuration():
    cfg = UNetConfig.paper(256)
    assert cfg.depth == 7 and cfg.granularity == 128
    assert cfg.kernels == (7, 5, 5, 3, 3, 3, 3)
    assert cfg.widths == (64, 128, 256, 512, 512, 512, 512)
    cfg512 = UNetConfig.paper(512)
    assert cfg512.depth == 8 and cfg512.kernels[-1] == 3 and cfg512.widths[-1] == 512
    model = PConvUNet(cfg)
    # First encoder layer has no BatchNorm (and therefore a bias); the others have BatchNorm.
    assert model.encoder[0].bn is None and model.encoder[0].pconv.bias is not None
    assert all(b.bn is not None and b.pconv.bias is None for b in model.encoder[1:])
    assert [b.pconv.kernel_size for b in model.encoder] == list(cfg.kernels)
    assert all(b.pconv.stride == 2 for b in model.encoder)
    # Decoder: 3x3, concatenation of upsampled and skip channels; last layer outputs RGB.
    assert all(b.pconv.kernel_size == 3 for b in model.decoder)
    assert model.decoder[0].pconv.in_channels == 512 + 512
    assert model.decoder[-1].pconv.in_channels == 64 + 3
    assert model.decoder[-1].pconv.out_channels == 3
    assert model.decoder[-1].bn is None and model.decoder[-1].act is None
    assert isinstance(model.decoder[0].act, torch.nn.LeakyReLU)
    assert model.decoder[0].act.negative_slope == pytest.approx(0.2)


def test_paper_kernels_for_any_depth():
    assert [paper_kernels(d) for d in (1, 2, 3, 4, 8)] == [
        (7,),
        (7, 5),
        (7, 5, 5),
        (7, 5, 5, 3),
        (7, 5, 5, 3, 3, 3, 3, 3),
    ]
    assert UNetConfig.scaled(16, depth=5).kernels == paper_kernels(5)


def test_config_round_trip_and_validation():
    cfg = UNetConfig.scaled(16, depth=5, image_size=128)
    assert UNetConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError):
        UNetConfig(widths=(8, 16), kernels=(3,))
    with pytest.raises(ValueError):
        UNetConfig.from_dict({**cfg.to_dict(), "colour": 1})
    with pytest.raises(ValueError, match="unknown model"):
        create_model("huge")
    assert set(MODEL_PRESETS) >= {"paper", "paper512", "small", "tiny"}


def test_forward_shapes_and_granularity():
    model = PConvUNet(TINY).eval()
    x = torch.randn(2, 3, 32, 48)
    mask = torch.ones(2, 1, 32, 48)
    with torch.no_grad():
        assert model(x, mask).shape == (2, 3, 32, 48)
    with pytest.raises(ValueError, match="multiples of 16"):
        model(torch.randn(1, 3, 30, 32), torch.ones(1, 1, 30, 32))


def test_output_does_not_depend_on_hole_content():
    torch.manual_seed(0)
    model = PConvUNet(TINY).eval()
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    mask = torch.ones(1, 1, 64, 64)
    mask[..., 20:40, 16:50] = 0
    y = x.clone()
    y[..., 20:40, 16:50] = torch.randn(1, 3, 20, 34) * 50
    with torch.no_grad():
        torch.testing.assert_close(model(x, mask), model(y, mask))


@pytest.mark.parametrize("scope", ["encoder", "all"])
def test_frozen_batchnorm_survives_train_mode(scope):
    torch.manual_seed(0)
    model = PConvUNet(TINY)
    model.freeze_bn(scope)
    model.train()
    bns = {name: m for name, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    before = {name: bn.running_mean.clone() for name, bn in bns.items()}
    model(torch.randn(2, 3, 64, 64), torch.ones(2, 1, 64, 64))
    for name, bn in bns.items():
        frozen = scope == "all" or name.startswith("encoder.")
        assert bn.training is not frozen, name
        assert bn.weight.requires_grad is not frozen, name
        assert torch.equal(bn.running_mean, before[name]) is frozen, name  # the others learn
    assert any(name.startswith("decoder.") for name in bns)
    with pytest.raises(ValueError, match="scope"):
        model.freeze_bn("decoder")
    if scope == "all":  # a narrower scope later gives the decoder back its learning
        model.freeze_bn("encoder")
        assert model.decoder[0].bn.training and model.decoder[0].bn.weight.requires_grad
        assert not model.encoder[1].bn.training


def test_decoder_counts_skip_masks_per_channel():
    """The decoder's broadcast masking equals a partial convolution over the concatenation
    with an explicit one-mask-per-channel tensor (the paper's definition)."""
    torch.manual_seed(4)
    model = PConvUNet(TINY).eval()
    block = model.decoder[1]
    x = torch.randn(1, block.cin_up, 8, 8)
    m = (torch.rand(1, 1, 8, 8) > 0.5).float()
    skip = torch.randn(1, block.cin_skip, 16, 16)
    skip_m = (torch.rand(1, 1, 16, 16) > 0.3).float()
    with torch.no_grad():
        got, got_m = block(x, m, skip, skip_m)
        up = torch.nn.functional.interpolate(x, scale_factor=2.0)
        up_m = torch.nn.functional.interpolate(m, scale_factor=2.0)
        full_mask = torch.cat(
            [up_m.expand(1, block.cin_up, 16, 16), skip_m.expand(1, block.cin_skip, 16, 16)], 1
        )
        ref, ref_m = block.pconv(torch.cat([up, skip], 1), full_mask)
        ref = block.act(block.bn(ref))
    assert torch.equal(got_m, ref_m)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    assert not torch.equal(up_m, skip_m), "the case must have different masks on both sides"


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_decoder_at_low_resolution_matches_upsampling_and_concatenating(training, dtype, monkeypatch):
    """The decoder's default path (the upsampled features convolved at their own size, the skip
    apart) gives the outputs and gradients of upsampling and concatenating, in training (batch
    statistics) and in inference (BatchNorm folded); in float64 to the last digits (the sums'
    order does not show), in float32, the inference dtype, within its rounding."""
    import engine.unet as unet

    torch.manual_seed(6)
    model = PConvUNet(TINY).to(dtype).train(training)
    x = torch.randn(2, 3, 64, 64, dtype=dtype)
    m = (torch.rand(2, 1, 64, 64) > 0.3).to(dtype)
    tol, rtol = (1e-10, 0.0) if dtype == torch.float64 else (2e-5, 2e-5)
    results = []
    for subpixel in (True, False):
        monkeypatch.setattr(unet._DecoderBlock, "subpixel", subpixel)
        model.zero_grad()
        inp = x.clone().requires_grad_()
        out = model(inp * m, m)
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view(out.shape)).sum().backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        results.append((out.detach(), inp.grad.clone(), grads))
    (out_a, gx_a, gp_a), (out_b, gx_b, gp_b) = results
    torch.testing.assert_close(out_a, out_b, rtol=rtol, atol=tol)
    torch.testing.assert_close(gx_a, gx_b, rtol=rtol, atol=tol)
    assert len(gp_a) == len(gp_b) == len(list(model.parameters()))
    for ga, gb in zip(gp_a, gp_b):
        torch.testing.assert_close(ga, gb, rtol=100 * tol, atol=100 * tol)


def test_inference_keeps_the_decoder_kernels_until_the_weights_change(monkeypatch):
    """At inference the decoder derives its phase kernels once and keeps them; any change of the
    weights or BatchNorm statistics (in place, a new storage, a dtype round trip) is seen, and the
    output always equals a fresh model's with the same state. Training keeps nothing."""
    import engine.unet as unet

    calls = []
    derive = unet.phase_kernels
    monkeypatch.setattr(unet, "phase_kernels", lambda w: calls.append(1) or derive(w))
    torch.manual_seed(8)
    model = PConvUNet(TINY).eval()
    blocks = len(model.decoder)
    x = torch.randn(2, 3, 64, 64)
    m = (torch.rand(2, 1, 64, 64) > 0.3).float()

    def fresh(state):
        other = PConvUNet(TINY).eval()
        other.load_state_dict(state)
        with torch.no_grad():
            return other(x * m, m)

    with torch.inference_mode():
        first = model(x * m, m)
        assert len(calls) == blocks
        torch.testing.assert_close(model(x * m, m), first, rtol=0, atol=0)
        assert len(calls) == blocks, "the second call derives nothing"
    changes = [
        lambda: model.decoder[0].pconv.conv.weight.mul_(1.5),  # an optimiser step
        lambda: model.decoder[1].bn.running_var.mul_(3.0),  # new statistics
        lambda: model.load_state_dict(PConvUNet(TINY).state_dict()),  # other weights
        lambda: model.half().float(),  # new storages, rounded values
    ]
    for change in changes:
        with torch.no_grad():
            change()
        n = len(calls)
        with torch.inference_mode():
            got = model(x * m, m)
        assert len(calls) > n
        torch.testing.assert_close(got, fresh(model.state_dict()), rtol=1e-6, atol=1e-6)
    # a copy keeps nothing of the original's (its key would name the original's storages)
    twin = copy.deepcopy(model)
    assert all(b._kept is not None for b in model.decoder)
    assert all(b._kept is None for b in twin.decoder)
    with torch.no_grad():
        model.decoder[2].pconv.conv.weight.data.mul_(0.5)  # around the tensor: not seen...
    model.forget_kernels()  # ...so the caller says so
    with torch.inference_mode():
        torch.testing.assert_close(model(x * m, m), fresh(model.state_dict()), rtol=1e-6, atol=1e-6)
    model.to(torch.float64)  # a move lets the old storages go at once
    assert all(b._kept is None for b in model.decoder)
    model.float()
    with torch.no_grad():
        model(x * m, m)  # only inference mode keeps them
    model.train()
    model(x * m, m)
    assert all(b._kept is None for b in model.decoder)


def test_a_decoder_kernel_other_than_3_upsamples_and_concatenates():
    """Only 3x3 decoder kernels take the low-resolution path; a 5x5 model still runs and still
    ignores what the hole held."""
    torch.manual_seed(7)
    cfg = UNetConfig(widths=(8, 16, 16), kernels=(7, 5, 3), decoder_kernel=5, image_size=32)
    model = PConvUNet(cfg).eval()
    x = torch.randn(1, 3, 32, 32)
    m = (torch.rand(1, 1, 32, 32) > 0.3).float()
    with torch.no_grad():
        a = model(x * m, m)
        b = model(x * m + (x + 5) * (1 - m) * 3, m)
    assert a.shape == (1, 3, 32, 32)
    torch.testing.assert_close(a, b)


def test_inference_batchnorm_folding_matches_unfolded():
    torch.manual_seed(5)
    model = PConvUNet(TINY)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-1, 1)
                mod.running_var.uniform_(0.5, 2)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.5, 0.5)
    model.eval()
    block = model.encoder[1]
    x = torch.randn(2, 8, 32, 32)
    m = (torch.rand(2, 1, 32, 32) > 0.4).float()
    with torch.no_grad():
        got, got_m = block(x, m)  # folded path
        ref, ref_m = block.pconv(x, m)
        ref = block.act(block.bn(ref))
    assert torch.equal(got_m, ref_m)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_refine_head_starts_as_identity_and_learns():
    import dataclasses

    from engine.unet import PConvUNet, UNetConfig

    base = create_model("tiny").eval()
    cfg = dataclasses.replace(base.config, refine=8)
    assert UNetConfig.from_json(cfg.to_json()) == cfg
    old_file_config = base.config.to_dict()
    assert "refine" not in old_file_config  # written only when there is a head
    assert UNetConfig.from_dict(old_file_config).refine == 0
    assert "refine" in cfg.to_dict()
    with pytest.raises(ValueError, match="whole number"):
        UNetConfig.from_dict({**cfg.to_dict(), "refine": 2.5})
    with pytest.raises(ValueError, match="whole number"):
        UNetConfig.from_dict({**cfg.to_dict(), "refine": True})
    import numpy as np  # numpy integers are whole numbers (a config built from arrays)

    assert UNetConfig.from_dict({**cfg.to_dict(), "refine": np.int64(8)}) == cfg
    grown = PConvUNet(cfg)
    missing, unexpected = grown.load_state_dict(base.state_dict(), strict=False)
    assert sorted(missing) == [
        "refine.conv1.bias",
        "refine.conv1.weight",
        "refine.conv2.bias",
        "refine.conv2.weight",
        "refine.linear.bias",
        "refine.linear.weight",
    ]
    assert not unexpected
    grown.eval()
    x = torch.rand(2, 3, 128, 128) * 2 - 1
    m = (torch.rand(2, 1, 128, 128) > 0.2).float()
    with torch.no_grad():
        assert torch.equal(grown(x * m, m), base(x * m, m))
    # the head sees the hole map: once its last layer is non-zero, the output depends on it
    torch.nn.init.normal_(grown.refine.conv2.weight, std=0.1)
    with torch.no_grad():
        y = grown(x * m, m)
    assert not torch.allclose(y, base(x * m, m))
    with pytest.raises(ValueError, match="refine"):
        UNetConfig(refine=-1)


def test_refine_head_features_let_a_linear_blend_fill_thin_holes_from_their_neighbours():
    from engine.unet import RefineHead

    head = RefineHead(3, 3, 4)
    image = torch.full((1, 3, 16, 16), 0.5)
    mask = torch.ones(1, 1, 16, 16)
    mask[..., 8, 3:12] = 0.0  # a 1-px line
    mask[..., 0:2, 0:2] = 0.0  # a corner block: (0, 0) still has valid pixels in its 5x5 window
    out = torch.full((1, 3, 16, 16), -0.2)  # what a network pulled towards grey would give
    f = head.features(out, image, mask)
    hole, near, near_mean, near_out = f[:, 6], f[:, 7], f[:, 8:11], f[:, 11:14]
    assert torch.equal(hole[0] > 0, mask[0, 0] == 0)
    assert torch.equal(near, hole)  # every hole pixel here is within 2 px of a valid one
    assert torch.allclose(near_mean[0, :, 8, 5], torch.full((3,), 0.5))  # the valid neighbours' mean
    assert torch.all(near_mean[0, :, 4, 4] == 0) and torch.all(near_out[0, :, 4, 4] == 0)  # valid pixel
    # out + (N * local mean - N * out): the line takes its neighbours' value, valid pixels keep out
    with torch.no_grad():
        head.linear.weight.zero_()
        for c in range(3):
            head.linear.weight[c, 8 + c] = 1.0
            head.linear.weight[c, 11 + c] = -1.0
        y = head(out, image, mask)
    assert torch.allclose(y[0, :, 8, 3:12], torch.full((3, 9), 0.5))
    assert torch.allclose(y[0, :, 4, 4], torch.full((3,), -0.2))
    # far inside a big hole there is no valid neighbour: N = 0 there
    big = torch.ones(1, 1, 16, 16)
    big[..., 2:14, 2:14] = 0.0
    assert head.features(out, image, big)[0, 7, 8, 8] == 0


@pytest.mark.parametrize("channels_last", [False, True])
def test_the_refine_heads_local_mean_is_the_mean_of_the_valid_pixels_around(channels_last):
    """The head's ``N * local mean`` feature: on a hole pixel with a valid pixel within RADIUS,
    the mean of the valid pixels of its (2 RADIUS + 1)^2 window (outside the image counts as
    neither), else 0; whatever the memory layout of the image."""
    from engine.unet import RefineHead

    torch.manual_seed(9)
    head = RefineHead(3, 3, 4).double()
    image = torch.rand(2, 3, 20, 24, dtype=torch.float64)
    mask = (torch.rand(2, 1, 20, 24) > 0.4).double()
    mask[0, :, 5:15, 6:18] = 0  # a hole wider than the window: its middle has no valid pixel near
    if channels_last:
        image = image.contiguous(memory_format=torch.channels_last)
    feats = head.features(torch.zeros_like(image), image, mask)
    near_mean = feats[:, 3 + 3 + 1 + 1 : 3 + 3 + 1 + 1 + 3]
    r = RefineHead.RADIUS
    want = torch.zeros_like(near_mean)
    for n in range(2):
        for y in range(20):
            for x in range(24):
                if mask[n, 0, y, x]:
                    continue
                win = (slice(max(0, y - r), y + r + 1), slice(max(0, x - r), x + r + 1))
                valid = mask[n, 0][win] > 0
                if valid.any():
                    want[n, :, y, x] = image[n][:, win[0], win[1]][:, valid].mean(1)
    torch.testing.assert_close(near_mean, want, rtol=0, atol=1e-6)  # the head works in float32
    assert (near_mean[0, :, 9:11, 11:13] == 0).all() and want[0].abs().sum() > 0
    # the features come in the network output's layout: joined channels-first, each of the
    # head's two convolutions converted them to channels-last again
    assert feats.is_contiguous(
        memory_format=torch.channels_last if channels_last else torch.contiguous_format
    )
    plain = head.features(torch.zeros(2, 3, 20, 24, dtype=torch.float64), image.contiguous(), mask)
    assert torch.equal(feats, plain)
