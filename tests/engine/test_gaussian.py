"""engine.gaussian: the one Gaussian blur, in bands on large images."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import engine.gaussian as gaussian
from engine.gaussian import gaussian_blur


def _reference(x: torch.Tensor, sigma: float, border: str) -> torch.Tensor:
    """The blur written out directly: a 1-D Gaussian across, then down."""
    r = math.ceil(3 * sigma)
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    y = F.pad(x.double(), (r, r, r, r), mode="replicate" if border == "replicate" else "constant")
    h, w = x.shape[2:]
    across = sum(g[i] * y[..., i : i + w] for i in range(2 * r + 1))
    return sum(g[i] * across[..., i : i + h, :] for i in range(2 * r + 1)).float()


@pytest.mark.parametrize("border", ["replicate", "zeros"])
@pytest.mark.parametrize("sigma", [1.5, 4.0])
def test_a_large_image_is_blurred_in_bands_as_in_one_call(monkeypatch, border, sigma):
    """In bands (each with the rows its kernel reaches above and below) the blur is what one
    convolution of the whole image gives, at the image's edges too, and no convolution reads
    more than BAND pixels a channel (one call unfolded the image 2r+1 times: 0.88 GB above a 6 MP
    photo)."""
    x = torch.rand(2, 3, 97, 61, generator=torch.Generator().manual_seed(1)) * 255
    whole = gaussian_blur(x, sigma, border=border)  # 97x61 is under BAND: one call
    assert torch.allclose(whole, _reference(x, sigma, border), atol=1e-3)
    monkeypatch.setattr(gaussian, "BAND", 1000)
    sizes = []
    conv2d = F.conv2d

    def counted(inp, *args, **kwargs):
        sizes.append(inp.shape[2] * inp.shape[3])
        return conv2d(inp, *args, **kwargs)

    monkeypatch.setattr(gaussian.F, "conv2d", counted)
    banded = gaussian_blur(x, sigma, border=border)
    assert torch.allclose(banded, whole, atol=1e-3)
    assert len(sizes) > 4 and max(sizes) <= 1000 + 2 * math.ceil(3 * sigma) * (61 + 2 * math.ceil(3 * sigma))


def test_an_unknown_border_is_refused():
    with pytest.raises(ValueError, match="border"):
        gaussian_blur(torch.zeros(1, 1, 4, 4), 1.0, border="reflect")


def test_in_bands_the_blur_has_the_dtype_one_call_has_under_autocast(monkeypatch):
    x = torch.rand(1, 3, 40, 30) * 255
    with torch.autocast("cpu", dtype=torch.bfloat16):
        whole = gaussian_blur(x, 1.5)
        monkeypatch.setattr(gaussian, "BAND", 300)
        banded = gaussian_blur(x, 1.5)
    assert banded.dtype == whole.dtype and banded.shape == whole.shape
    assert torch.allclose(banded.float(), whole.float(), atol=1.0)
