"""The one place where the app's arrays become the network's tensors and back.

Arrays: images ``uint8 (N, H, W, 3)`` RGB (or one ``(H, W, 3)``), holes ``bool (N, H, W)``
True = hole. Network: image ``(N, 3, H, W)`` float in [-1, 1] with hole pixels zeroed, and the
paper's mask M ``(N, 1, H, W)`` float, 1 = valid.

:func:`batch_to_network` is the same conversion for tensors already in the network's layout
(the trainer's batches: uint8 ``(N, 3, H, W)``, bool ``(N, 1, H, W)``); :func:`to_network` goes
through it.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["batch_to_network", "to_network", "from_network", "composite"]


def batch_to_network(
    images: torch.Tensor,
    holes: torch.Tensor,
    device: torch.device | str = "cpu",
    *,
    non_blocking: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 ``(N, 3, H, W)`` images + bool ``(N, 1, H, W)`` holes -> (image in [-1, 1], M with
    1 = valid), on ``device``. The image keeps its hole pixels (the loss compares the whole
    photo): the network's input is ``image * M``. Strides are kept (a channels-last view stays
    channels-last)."""
    x = images.to(device, non_blocking=non_blocking).float().div_(127.5).sub_(1.0)
    valid = (~holes.to(device, non_blocking=non_blocking)).float()
    return x, valid


def to_network(
    images: np.ndarray, holes: np.ndarray, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images + bool holes -> (image in [-1, 1] with holes zeroed, M with 1 = valid)."""
    images = np.asarray(images)
    holes = np.asarray(holes, dtype=bool)
    if images.ndim == 3:
        images, holes = images[None], holes[None]
    x = torch.from_numpy(np.require(images, requirements=["C", "W"])).permute(0, 3, 1, 2)
    h = torch.from_numpy(np.require(holes, requirements=["C", "W"]))[:, None]
    x, valid = batch_to_network(x, h, device)
    return x * valid, valid


def from_network(y: torch.Tensor) -> np.ndarray:
    """Network output ``(N, 3, H, W)`` in [-1, 1] -> uint8 ``(N, H, W, 3)`` (clipped, rounded)."""
    u8 = (y.float().clamp(-1.0, 1.0) + 1.0).mul_(127.5).round_().to(torch.uint8)
    return u8.permute(0, 2, 3, 1).cpu().numpy()


def composite(images: np.ndarray, filled: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """Hole pixels from ``filled``, every other pixel bit-identical to ``images``."""
    return np.where(np.asarray(holes, dtype=bool)[..., None], filled, images).astype(np.uint8)
