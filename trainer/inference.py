"""Filling holes with a model during training and evaluation, and scoring the composites.

Conventions: images ``uint8 (N, H, W, 3)`` RGB, holes ``bool (N, H, W)`` True = hole. The
conversion to the network's tensors and the compositing are the engine's (:mod:`engine.convert`,
:class:`engine.Inpainter`), so that training, evaluation and the app fill holes the same way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import torch

from engine.convert import composite, from_network, to_network
from engine.inpainter import Inpainter

from .metrics import hole_l1, psnr, ssim

__all__ = ["to_network", "from_network", "fill_with_model", "composite", "score"]


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
    """Composites of ``model``'s fills (uint8 ``(N, H, W, 3)``) through the engine's batch entry
    point, one network pass each (no mirrored pass: in-training validation stays as cheap as, and
    comparable with, the runs before the Inpainter's default changed); the model is used in eval
    mode and left in the mode it was in."""
    images = np.asarray(images)
    holes = np.asarray(holes, dtype=bool)
    device = torch.device(device)
    was_training = model.training
    ctx = (
        torch.autocast(device.type, dtype=autocast_dtype)
        if autocast_dtype is not None
        else contextlib.nullcontext()
    )
    try:
        inpainter = Inpainter.from_model(
            model,
            device,
            batch_size=batch_size,
            channels_last=channels_last,
            precision="fp32",
            max_side=max(images.shape[1:3]) if len(images) else None,
            mirror=False,
        )
        with ctx:
            filled = inpainter.inpaint_batch(images, holes)
    finally:
        model.train(was_training)
    return np.stack(filled) if filled else np.empty_like(images)


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
