"""The one place where the app's arrays become the network's tensors and back.

Arrays: images ``uint8 (N, H, W, 3)`` RGB (or one ``(H, W, 3)``), holes ``bool (N, H, W)``
True = hole. Network: image ``(N, 3, H, W)`` float in [-1, 1] with hole pixels zeroed, and the
paper's mask M ``(N, 1, H, W)`` float, 1 = valid.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["to_network", "from_network", "composite"]


def to_network(
    images: np.ndarray, holes: np.ndarray, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images + bool holes -> (image in [-1, 1] with holes zeroed, M with 1 = valid)."""
    images = np.asarray(images)
    holes = np.asarray(holes, dtype=bool)
    if images.ndim == 3:
        images, holes = images[None], holes[None]
    x = torch.from_numpy(np.require(images, requirements=["C", "W"])).to(device)
    x = x.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
    valid = torch.from_numpy(~holes).to(device)[:, None].float()
    return x * valid, valid


def from_network(y: torch.Tensor) -> np.ndarray:
    """Network output ``(N, 3, H, W)`` in [-1, 1] -> uint8 ``(N, H, W, 3)`` (clipped, rounded)."""
    u8 = (y.float().clamp(-1.0, 1.0) + 1.0).mul_(127.5).round_().to(torch.uint8)
    return u8.permute(0, 2, 3, 1).cpu().numpy()


def composite(images: np.ndarray, filled: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """Hole pixels from ``filled``, every other pixel bit-identical to ``images``."""
    return np.where(np.asarray(holes, dtype=bool)[..., None], filled, images).astype(np.uint8)
