"""The inference benchmark's "plain" baseline must compute the same function as the engine's
network, or its speed ratios would compare different things."""

import dataclasses

import pytest
import torch

from engine.unet import PConvUNet, UNetConfig

TINY = UNetConfig(widths=(8, 16, 16, 16), kernels=(7, 5, 3, 3), image_size=64)


@pytest.mark.parametrize("refine", [0, 4])
def test_plain_baseline_matches_the_engine_model(refine, benchmark_script):
    torch.manual_seed(0)
    model = PConvUNet(dataclasses.replace(TINY, refine=refine))
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
        if refine:
            model.refine.conv2.weight.normal_(std=0.1)
            model.refine.linear.weight.normal_(std=0.1)
    model.eval()
    plain = benchmark_script("inference").plain_model(model)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    m = (torch.rand(2, 1, 64, 64) > 0.3).float()
    with torch.no_grad():
        torch.testing.assert_close(plain(x * m, m), model(x * m, m), rtol=1e-4, atol=1e-4)
