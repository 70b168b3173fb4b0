"""Image-quality metrics, per image, on float tensors ``(N, C, H, W)`` in [0, 1].

* :func:`hole_l1` - mean absolute error over the hole pixels (all channels).
* :func:`psnr` - peak signal-to-noise ratio of the whole image, data range 1 (capped at 100 dB
  for identical images); :func:`hole_psnr` - the same over the hole pixels only.
* :func:`hole_texture` - the mean gradient magnitude (3x3 Sobel on the mean of R, G and B) over
  the hole pixels; the *texture ratio* of a fill is its value on the result divided by its value
  on the original (1.0 = as detailed as the truth, lower = blurred).
* :func:`ssim` - structural similarity (Wang et al. 2004): Gaussian window 11x11, sigma 1.5,
  K1 = 0.01, K2 = 0.03, computed per channel over the valid positions (no padding) and averaged;
  float32 arithmetic (within 1e-5 of a float64 computation).

Written here because nothing installed does the job: scikit-image and torchmetrics are not
dependencies (and would bring SciPy / lightning-utilities for two functions), OpenCV has no SSIM
outside opencv-contrib's ``quality`` module, and its ``cv2.PSNR`` works one image at a time on
arrays and gives 361 dB for identical images instead of a cap. The SSIM is checked against an
independent OpenCV-based implementation in ``tests/trainer/test_metrics.py``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["hole_l1", "psnr", "hole_psnr", "hole_texture", "ssim", "to_unit", "gaussian_window"]


def to_unit(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, H, W, 3)`` / ``(H, W, 3)`` arrays -> float ``(N, 3, H, W)`` in [0, 1]."""
    t = torch.as_tensor(np.ascontiguousarray(images))
    if t.dim() == 3:
        t = t[None]
    return t.permute(0, 3, 1, 2).float() / 255.0


def hole_l1(pred: torch.Tensor, target: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """``hole``: (N, 1, H, W), nonzero = hole. Images with an empty hole give NaN."""
    h = hole.to(pred.dtype)
    err = ((pred - target).abs() * h).flatten(1).sum(1)
    count = h.flatten(1).sum(1) * pred.shape[1]
    return err / count


def psnr(pred: torch.Tensor, target: torch.Tensor, max_db: float = 100.0) -> torch.Tensor:
    mse = ((pred.double() - target.double()) ** 2).flatten(1).mean(1)
    db = 10.0 * torch.log10(1.0 / mse.clamp(min=10 ** (-max_db / 10)))
    return db.to(pred.dtype)


def hole_psnr(
    pred: torch.Tensor, target: torch.Tensor, hole: torch.Tensor, max_db: float = 100.0
) -> torch.Tensor:
    """PSNR over the hole pixels only (all channels), data range 1, capped at ``max_db``;
    ``hole``: (N, 1, H, W), nonzero = hole. Images with an empty hole give NaN."""
    h = hole.double()
    sq = ((pred.double() - target.double()) ** 2 * h).flatten(1).sum(1)
    count = h.flatten(1).sum(1) * pred.shape[1]
    mse = (sq / count).clamp(min=10 ** (-max_db / 10))
    db = torch.where(count > 0, 10.0 * torch.log10(1.0 / mse), torch.nan)
    return db.to(pred.dtype)


SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def hole_texture(images: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """Mean 3x3 Sobel gradient magnitude of the mean of R, G and B (0-1 scale, float64, borders
    replicated) over the hole pixels, per image; NaN for an empty hole."""
    grey = images.double().mean(1, keepdim=True)
    kernel = torch.stack([SOBEL_X, SOBEL_X.T])[:, None].to(grey)
    g = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), kernel)
    mag = g.pow(2).sum(1, keepdim=True).sqrt()
    h = hole.to(mag.dtype)
    return (mag * h).flatten(1).sum(1) / h.flatten(1).sum(1)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """The normalised 1-D Gaussian (the 2-D window is its outer product)."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _band(n: int, g: torch.Tensor) -> torch.Tensor:
    """``(n - k + 1, n)`` matrix whose rows slide ``g`` along: ``B @ x`` is the valid 1-D
    correlation of each column of ``x`` with ``g``."""
    k = g.numel()
    rows = torch.arange(n - k + 1)[:, None] + torch.arange(k)[None, :]
    band = torch.zeros(n - k + 1, n, dtype=g.dtype)
    band.scatter_(1, rows, g.expand(n - k + 1, k))
    return band


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    window: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    if pred.shape[-1] < window or pred.shape[-2] < window:
        raise ValueError(f"SSIM needs images of at least {window}x{window}, got {tuple(pred.shape[-2:])}")
    # float32 is enough: with values in [0, 1] the variance terms carry errors of ~1e-7, far
    # below C2 = 9e-4, and it halves the cost of a whole test set.
    x, y = pred.float(), target.float()
    g = gaussian_window(window, sigma).to(device=x.device, dtype=x.dtype)
    # The separable Gaussian blur (valid positions only) as two band-matrix products: exact,
    # and much faster on a CPU than a grouped 11x11 convolution.
    rows = _band(x.shape[-2], g).to(x.device)
    cols = _band(x.shape[-1], g).to(x.device).T

    def blur(t: torch.Tensor) -> torch.Tensor:
        return rows @ t @ cols

    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x**2
    syy = blur(y * y) - mu_y**2
    sxy = blur(x * y) - mu_x * mu_y
    c1, c2 = k1**2, k2**2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1).to(pred.dtype)
