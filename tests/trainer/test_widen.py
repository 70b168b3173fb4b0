"""Widening a trained U-Net (trainer.widen): the grown model starts out as the trained one."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from engine.unet import PConvUNet, UNetConfig
from trainer.widen import can_widen, widen

CFG = UNetConfig(widths=(8, 16, 16, 16), kernels=(7, 5, 3, 3), image_size=64, refine=4)


def _trained() -> PConvUNet:
    torch.manual_seed(1)
    model = PConvUNet(CFG)
    with torch.no_grad():  # every weight non-zero and BatchNorm statistics of their own
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def test_a_widened_model_starts_as_the_trained_one_and_can_learn():
    model = _trained()
    wide = widen(model, (8, 24, 32, 32)).eval()
    assert wide.config == dataclasses.replace(CFG, widths=(8, 24, 32, 32))
    assert wide.num_parameters() > model.num_parameters()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        full = torch.ones(2, 1, 64, 64)
        assert torch.allclose(wide(x, full), model(x, full), atol=1e-5)
        # a hole: exact wherever the decoder's two inputs are equally valid, close on the rim
        m = torch.ones(2, 1, 64, 64)
        m[:, :, 20:30, 10:50] = 0
        diff = (wide(x * m, m) - model(x * m, m)).abs()
        out = model(x * m, m)
    assert diff.mean() < 0.02 * out.abs().mean() and diff[..., :8, :].max() < 1e-5
    # every weight that reads a new channel starts at zero, the new channels' own weights do not
    up = wide.decoder[0].pconv.weight  # reads the bottleneck (32 channels, 16 of them new)
    assert torch.count_nonzero(up[:16, 16:32]) == 0 and torch.count_nonzero(up[16:, :16]) > 0
    assert torch.count_nonzero(wide.encoder[1].pconv.weight[16:]) > 0
    # and gradients reach the zeros: the new channels can come into use
    wide.train()
    m = torch.ones(2, 1, 64, 64)
    wide(x, m).abs().mean().backward()
    assert wide.decoder[0].pconv.weight.grad[:16, 16:32].abs().sum() > 0


def test_widen_refuses_what_is_not_a_widening():
    model = _trained()
    with pytest.raises(ValueError, match="narrower"):
        widen(model, (8, 8, 16, 16))
    with pytest.raises(ValueError, match="depth 3"):
        widen(model, (8, 16, 16))
    assert can_widen(CFG, CFG.widths) is None
