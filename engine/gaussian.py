"""The engine's one Gaussian blur: separable, the kernel reaching ``ceil(3 sigma)`` px each side.

PyTorch's CPU convolution of one channel at a time (``groups``) unfolds its input once per
kernel tap: blurring a 6-megapixel RGB image in one call took 0.88 GB above the image (and 0.7
s), the largest part of a large hole's texture. An image larger than :data:`BAND` pixels a
channel once padded is therefore blurred in bands of that size, each read with the rows its kernel reaches
(the same convolution of the same pixels: equal to one call to within float rounding, PyTorch
picking its algorithm by the input's shape); a smaller one, every crop at the network's working
size, in one call as before.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["BAND", "gaussian_blur"]

BAND = 1 << 20  # pixels a channel (of the padded image) convolved at a time


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
    if border not in ("replicate", "zeros"):
        raise ValueError(f"border must be 'replicate' or 'zeros', got {border!r}")
    h, w = x.shape[2:]
    rows = max(1, BAND // (w + 2 * r))
    if rows >= h + 2 * r:  # one call (every crop at the network's working size)
        if border == "replicate":
            y = F.pad(x, (r, r, r, r), mode="replicate")
            return F.conv2d(F.conv2d(y, across, groups=c), down, groups=c)
        return F.conv2d(F.conv2d(x, across, padding=(0, r), groups=c), down, padding=(r, 0), groups=c)
    y = F.pad(x, (r, r, r, r), mode="replicate") if border == "replicate" else F.pad(x, (r, r, r, r))
    bands = []
    for top in range(0, h, rows):
        bottom = min(h, top + rows)
        band = y[:, :, top : bottom + 2 * r]  # the band's rows and the r above and below it
        bands.append(F.conv2d(F.conv2d(band, across, groups=c), down, groups=c))
    return torch.cat(bands, 2)  # the convolution's dtype (autocast's), as one call returns
