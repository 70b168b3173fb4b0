"""Filling holes with a model during training and evaluation, and scoring the composites.

Conventions: images ``uint8 (N, H, W, 3)`` RGB, holes ``bool (N, H, W)`` True = hole. Here, and
only here in the trainer, they become the network's tensors: image in [-1, 1] and the paper's
mask M (float, 1 = valid). A composite keeps every pixel outside the hole bit-identical.
"""
from __future__ import annotations

import contextlib
from typing import Sequence

import numpy as np
import torch

from .metrics import hole_l1, psnr, ssim

__all__ = ["to_network", "from_network", "fill_with_model", "composite", "score"]


def to_network(
    images: np.ndarray | torch.Tensor, holes: np.ndarray | torch.Tensor, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 ``(N, H, W, 3)`` + bool ``(N, H, W)`` -> image ``(N, 3, H, W)`` in [-1, 1] with
    the holes zeroed, mask ``(N, 1, H, W)`` float, 1 = valid."""
    x = torch.as_tensor(np.ascontiguousarray(images)).to(device)
    x = x.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
    m = (~torch.as_tensor(np.ascontiguousarray(holes)).to(device)).float()[:, None]
    return x * m, m


def from_network(x: torch.Tensor) -> np.ndarray:
    """``(N, 3, H, W)`` in [-1, 1] -> uint8 ``(N, H, W, 3)`` (rounded, clipped)."""
    u8 = ((x.float().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    return u8.permute(0, 2, 3, 1).cpu().numpy()


def composite(images: np.ndarray, filled: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """Only hole pixels come from ``filled``."""
    return np.where(np.asarray(holes)[..., None], filled, images).astype(np.uint8)


@torch.no_grad()
def fill_with_model(
    model: torch.nn.Module,
    images: np.ndarray | Sequence[np.ndarray],
    holes: np.ndarray | Sequence[np.ndarray],
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 16,
    autocast_dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> np.ndarray:
    """Composites of ``model``'s fills (uint8 ``(N, H, W, 3)``); the model is used in eval
    mode and left in the mode it was in."""
    images = np.asarray(images)
    holes = np.asarray(holes, dtype=bool)
    device = torch.device(device)
    was_training = model.training
    model.eval()
    out = np.empty_like(images)
    ctx = (
        torch.autocast(device.type, dtype=autocast_dtype)
        if autocast_dtype is not None
        else contextlib.nullcontext()
    )
    try:
        for start in range(0, len(images), batch_size):
            sl = slice(start, start + batch_size)
            x, m = to_network(images[sl], holes[sl], device)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with ctx:
                y = model(x, m)
            out[sl] = composite(images[sl], from_network(y), holes[sl])
    finally:
        model.train(was_training)
    return out


def score(
    results: np.ndarray, originals: np.ndarray, holes: np.ndarray, chunk: int = 32
) -> dict[str, np.ndarray]:
    """Per-image ``hole_l1`` (0-1 scale), ``psnr`` (dB) and ``ssim`` of uint8 results, computed
    in float64 a few images at a time (whole test sets in float64 would need gigabytes)."""
    parts: dict[str, list[np.ndarray]] = {"hole_l1": [], "psnr": [], "ssim": []}
    for start in range(0, len(results), chunk):
        sl = slice(start, start + chunk)
        pred = torch.as_tensor(np.ascontiguousarray(results[sl])).permute(0, 3, 1, 2).double() / 255.0
        gt = torch.as_tensor(np.ascontiguousarray(originals[sl])).permute(0, 3, 1, 2).double() / 255.0
        hole = torch.as_tensor(np.ascontiguousarray(holes[sl]))[:, None]
        parts["hole_l1"].append(hole_l1(pred, gt, hole).numpy())
        parts["psnr"].append(psnr(pred, gt).numpy())
        parts["ssim"].append(ssim(pred, gt).numpy())
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}
