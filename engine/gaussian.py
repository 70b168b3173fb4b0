"""The engine's one Gaussian blur: separable, the kernel reaching ``ceil(3 sigma)`` px each side."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["gaussian_blur"]


def gaussian_blur(x: torch.Tensor, sigma: float, *, border: str = "replicate") -> torch.Tensor:
    """``x`` (N,C,H,W) blurred along both axes, each channel on its own. ``border``:
    ``"replicate"`` (the edge pixels continue) or ``"zeros"`` (nothing outside: what a
    normalised convolution, which divides by the blurred weight, needs)."""
    r = math.ceil(3 * sigma)
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = (g / g.sum()).to(x.device)
    c = x.shape[1]
    across, down = g.view(1, 1, 1, -1).expand(c, 1, 1, -1), g.view(1, 1, -1, 1).expand(c, 1, -1, 1)
    if border == "replicate":
        y = F.pad(x, (r, r, r, r), mode="replicate")
        return F.conv2d(F.conv2d(y, across, groups=c), down, groups=c)
    if border == "zeros":
        return F.conv2d(F.conv2d(x, across, padding=(0, r), groups=c), down, padding=(r, 0), groups=c)
    raise ValueError(f"border must be 'replicate' or 'zeros', got {border!r}")
