"""The one entry point for filling holes: :class:`Inpainter`.

``Inpainter()(image, hole)`` takes a ``uint8 HxWx3`` RGB image and a ``bool HxW`` mask (True = hole)
and returns a new image in which only the hole pixels changed.

How an image reaches the network:

* Small images (longest side <= ``max_side``) go through whole, padded to the model's
  granularity (2 ** depth); the padding is marked as hole, exactly like the border of the image.
* Larger images use the crop strategy: the hole is split into separate regions, each region's
  box grows by a context margin, is cut out, scaled down to ``max_side`` when it is larger, filled,
  scaled back, and only its hole pixels are pasted into the result. Memory and time then depend
  on the holes, not on the photo's megapixels.

Downscaling uses area averaging for the image and "any hole pixel" for the mask, so the context
the network sees never mixes in pixels from under the hole.
"""
from __future__ import annotations

import math
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .unet import PConvUNet, UNetConfig
from .weights import WeightsError, WeightsInfo, default_weights_path, load_weights

__all__ = ["Inpainter", "InpaintCancelled", "select_device", "Region"]

CancelFn = Callable[[], bool]
ProgressFn = Callable[[float], None]


class InpaintCancelled(Exception):
    """Raised when the caller's ``cancel()`` returned True; the input is untouched."""


def select_device(device: str | torch.device = "auto") -> torch.device:
    """``auto``: the local CUDA GPU when there is one, else the CPU."""
    if isinstance(device, torch.device):
        dev = device
    elif device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except RuntimeError as exc:
            raise ValueError(f"unknown device {device!r}; use auto, cpu or cuda[:N]") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "device 'cuda' was requested but no CUDA GPU is usable here "
            "(torch.cuda.is_available() is False); use --device cpu or auto"
        )
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {dev}; use auto, cpu or cuda[:N]")
    return dev


@dataclass(frozen=True)
class Region:
    """A crop box ``[y0, y1) x [x0, x1)`` of the photo that is filled in one network pass."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    def overlaps(self, other: "Region") -> bool:
        return not (
            self.x1 <= other.x0 or other.x1 <= self.x0 or self.y1 <= other.y0 or other.y1 <= self.y0
        )

    def union(self, other: "Region") -> "Region":
        return Region(
            min(self.y0, other.y0), max(self.y1, other.y1),
            min(self.x0, other.x0), max(self.x1, other.x1),
        )


def _hole_components(hole: np.ndarray, cell: int) -> list[Region]:
    """Bounding boxes of the hole's connected parts, found on a grid of ``cell``-pixel cells
    (parts closer than a cell merge, which is what the crops want anyway)."""
    h, w = hole.shape
    gh, gw = math.ceil(h / cell), math.ceil(w / cell)
    padded = np.zeros((gh * cell, gw * cell), dtype=bool)
    padded[:h, :w] = hole
    grid = padded.reshape(gh, cell, gw, cell).any(axis=(1, 3))
    label = np.zeros(grid.shape, dtype=np.int32)
    boxes: list[Region] = []
    for sy, sx in zip(*np.nonzero(grid)):
        if label[sy, sx]:
            continue
        n = len(boxes) + 1
        label[sy, sx] = n
        y0 = y1 = sy
        x0 = x1 = sx
        queue = deque([(sy, sx)])
        while queue:
            cy, cx = queue.popleft()
            y0, y1, x0, x1 = min(y0, cy), max(y1, cy), min(x0, cx), max(x1, cx)
            for ny in (cy - 1, cy, cy + 1):
                for nx in (cx - 1, cx, cx + 1):
                    if 0 <= ny < gh and 0 <= nx < gw and grid[ny, nx] and not label[ny, nx]:
                        label[ny, nx] = n
                        queue.append((ny, nx))
        boxes.append(
            Region(
                int(y0) * cell, min(h, (int(y1) + 1) * cell),
                int(x0) * cell, min(w, (int(x1) + 1) * cell),
            )
        )
    return boxes


def _grow(box: Region, height: int, width: int, min_side: int, h: int, w: int) -> Region:
    """Grow ``box`` around its centre to at least ``height`` x ``width`` (and ``min_side``),
    shifted to stay inside the ``h`` x ``w`` image."""

    def span(lo: int, hi: int, want: int, limit: int) -> tuple[int, int]:
        want = min(limit, max(want, hi - lo, min_side))
        centre = (lo + hi) / 2
        a = int(round(centre - want / 2))
        a = max(0, min(a, limit - want))
        return a, a + want

    y0, y1 = span(box.y0, box.y1, height, h)
    x0, x1 = span(box.x0, box.x1, width, w)
    return Region(y0, y1, x0, x1)


def _network_side(side: int, granularity: int, floor: int) -> int:
    """A crop side that is a multiple of the network's granularity: the nearest multiple, but
    never cutting below ``floor`` (the hole plus a minimal margin)."""
    g = granularity
    n = max(g, round(side / g) * g)
    while n < floor:
        n += g
    return n


def plan_regions(
    hole: np.ndarray,
    max_side: int,
    min_side: int,
    context: float = 0.75,
    granularity: int = 1,
) -> list[Region]:
    """Crop boxes covering every hole pixel, each with context around its hole.

    A crop is the hole's box grown by ``context`` times its longest side (plus 16 px) on each side,
    at least ``min_side`` (the model's training resolution), rounded to a multiple of
    ``granularity`` where the photo allows, so that the network needs no padding or resampling.
    """
    h, w = hole.shape
    if max(h, w) <= max_side:
        return [Region(0, h, 0, w)]
    cell = max(4, max(h, w) // 512)
    regions = []
    for comp in _hole_components(hole, cell):
        margin = int(context * max(comp.height, comp.width)) + 16
        want_h, want_w = comp.height + 2 * margin, comp.width + 2 * margin
        if max(want_h, want_w) <= max_side:
            want_h = _network_side(max(want_h, min_side), granularity, comp.height + 32)
            want_w = _network_side(max(want_w, min_side), granularity, comp.width + 32)
        regions.append(_grow(comp, want_h, want_w, min_side, h, w))
    # Crops that overlap would paste over each other's context: merge them until none do.
    merged = True
    while merged:
        merged = False
        out: list[Region] = []
        for r in regions:
            for i, o in enumerate(out):
                if r.overlaps(o):
                    out[i] = o.union(r)
                    merged = True
                    break
            else:
                out.append(r)
        regions = out
    return regions


class Inpainter:
    """Fill holes in RGB photos with a partial-convolution U-Net.

    ``weights``: a Retoucher safetensors file; None loads ``resources/weights/default.safetensors``.
    ``device``: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.
    ``max_side``: the largest side fed to the network in one pass (default: twice the model's
    training resolution, at least 512).
    """

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        device: str | torch.device = "auto",
        *,
        max_side: int | None = None,
        batch_size: int = 8,
    ) -> None:
        path = Path(weights) if weights is not None else default_weights_path()
        if weights is None and not path.is_file():
            raise WeightsError(
                f"the default model is missing: {path} does not exist. Train and export one "
                "with 'retoucher-train' (see the README), or pass a weights file."
            )
        dev = select_device(device)
        model, info = load_weights(path, device=dev)
        self._setup(model, info, dev, max_side, batch_size)

    @classmethod
    def from_model(
        cls,
        model: PConvUNet,
        device: str | torch.device = "cpu",
        *,
        name: str = "in-memory model",
        max_side: int | None = None,
        batch_size: int = 8,
    ) -> "Inpainter":
        """Wrap a model object (tests, evaluation during training). The model is put in eval
        mode on ``device``."""
        self = cls.__new__(cls)
        dev = select_device(device)
        info = WeightsInfo(path=None, name=name, config=model.config)
        self._setup(model.to(dev), info, dev, max_side, batch_size)
        return self

    def _setup(
        self,
        model: PConvUNet,
        info: WeightsInfo,
        device: torch.device,
        max_side: int | None,
        batch_size: int,
    ) -> None:
        self.model = model.eval().to(memory_format=torch.channels_last)
        self.info = info
        self.device = device
        self.config: UNetConfig = model.config
        g = self.config.granularity
        side = max_side or max(512, 2 * self.config.image_size)
        self.max_side = max(g, side // g * g)
        self.batch_size = max(1, batch_size)

    # ------------------------------------------------------------------ properties
    @property
    def name(self) -> str:
        return self.info.name

    @property
    def device_name(self) -> str:
        if self.device.type == "cuda":
            return torch.cuda.get_device_name(self.device)
        return "CPU"

    def __repr__(self) -> str:
        return f"Inpainter(model={self.name!r}, device={self.device_name!r}, max_side={self.max_side})"

    # ------------------------------------------------------------------ validation
    @staticmethod
    def _check(image: np.ndarray, hole: np.ndarray, what: str = "") -> np.ndarray:
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
            raise ValueError(f"{what}image must be a uint8 HxWx3 RGB array, got {got}")
        if not isinstance(hole, np.ndarray) or hole.ndim != 2:
            raise ValueError(f"{what}hole mask must be a bool HxW array")
        if hole.shape != image.shape[:2]:
            raise ValueError(
                f"{what}hole mask is {hole.shape[1]}x{hole.shape[0]} but the image is "
                f"{image.shape[1]}x{image.shape[0]}; they must be the same size"
            )
        if hole.dtype != bool:
            hole = hole != 0
        if hole.all():
            raise ValueError(
                f"{what}the whole image is marked as hole: there is nothing to fill it from"
            )
        return hole

    # ------------------------------------------------------------------ inference
    @torch.inference_mode()
    def _fill(self, image: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """``image`` (N,3,h,w) float in [0,1], ``valid`` (N,1,h,w) float 1=valid, any h, w.
        Returns the network's output in [0,1], same size."""
        g = self.config.granularity
        h, w = image.shape[-2:]
        ph, pw = (-h) % g, (-w) % g
        x = image * 2 - 1
        if ph or pw:
            # Padding is outside the photo: a hole, as the partial convolution treats the border.
            x = F.pad(x, (0, pw, 0, ph))
            valid = F.pad(valid, (0, pw, 0, ph))
        x = (x * valid).contiguous(memory_format=torch.channels_last)
        out = self.model(x, valid)
        return ((out[..., :h, :w].float() + 1) / 2).clamp_(0, 1)

    def _to_tensor(self, arr: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(arr)).to(self.device)
        return t.permute(2, 0, 1).unsqueeze(0).float().div_(255)

    def _fill_region(self, image: np.ndarray, hole: np.ndarray, r: Region) -> np.ndarray:
        """Fill one crop; returns its uint8 filled crop (all pixels are the network's).

        A crop that fits ``max_side`` goes through at full resolution (padded if need be).
        A larger one is scaled down to multiples of the granularity within ``max_side``, filled,
        and the result scaled back up.
        """
        crop = self._to_tensor(image[r.y0 : r.y1, r.x0 : r.x1])
        hole_t = torch.from_numpy(np.ascontiguousarray(hole[r.y0 : r.y1, r.x0 : r.x1])).to(self.device)
        hole_t = hole_t[None, None].float()
        if max(r.height, r.width) <= self.max_side:
            out = self._fill(crop, 1 - hole_t)
        else:
            g = self.config.granularity
            scale = self.max_side / max(r.height, r.width)
            size = (
                max(g, int(r.height * scale) // g * g),
                max(g, int(r.width * scale) // g * g),
            )
            small_hole = F.adaptive_max_pool2d(hole_t, size)
            # Average only over valid pixels so that hole content never leaks into the context.
            small = F.adaptive_avg_pool2d(crop * (1 - hole_t), size)
            weight = F.adaptive_avg_pool2d(1 - hole_t, size).clamp_(min=1e-6)
            out = self._fill(small / weight, 1 - small_hole)
            out = F.interpolate(out, size=(r.height, r.width), mode="bilinear", align_corners=False)
        out = out[0].permute(1, 2, 0).mul_(255).round_().to(torch.uint8)
        return out.cpu().numpy()

    @torch.inference_mode()
    def __call__(
        self,
        image: np.ndarray,
        hole: np.ndarray,
        *,
        cancel: CancelFn | None = None,
        progress: ProgressFn | None = None,
    ) -> np.ndarray:
        hole = self._check(image, hole)
        result = image.copy()
        if not hole.any():
            if progress:
                progress(1.0)
            return result
        regions = plan_regions(
            hole, self.max_side, self.config.image_size, granularity=self.config.granularity
        )
        for i, r in enumerate(regions):
            if cancel is not None and cancel():
                raise InpaintCancelled()
            filled = self._fill_region(image, hole, r)
            sub_hole = hole[r.y0 : r.y1, r.x0 : r.x1]
            result[r.y0 : r.y1, r.x0 : r.x1][sub_hole] = filled[sub_hole]
            if progress:
                progress((i + 1) / len(regions))
        if cancel is not None and cancel():
            raise InpaintCancelled()
        return result

    @torch.inference_mode()
    def inpaint_batch(
        self, images: Sequence[np.ndarray], holes: Sequence[np.ndarray]
    ) -> list[np.ndarray]:
        """Fill many images of one size in batches of ``batch_size`` network passes.

        Images larger than ``max_side`` fall back to one call each (the crop strategy).
        """
        if len(images) != len(holes):
            raise ValueError(f"{len(images)} images but {len(holes)} masks")
        checked = [self._check(im, ho, f"item {i}: ") for i, (im, ho) in enumerate(zip(images, holes))]
        if not images:
            return []
        shape = images[0].shape
        if any(im.shape != shape for im in images):
            raise ValueError("inpaint_batch needs images of one size; call the Inpainter per image")
        if max(shape[:2]) > self.max_side:
            return [self(im, ho) for im, ho in zip(images, checked)]
        results = [im.copy() for im in images]
        todo = [i for i, ho in enumerate(checked) if ho.any()]
        for start in range(0, len(todo), self.batch_size):
            idx = todo[start : start + self.batch_size]
            batch = torch.from_numpy(np.stack([images[i] for i in idx])).to(self.device)
            batch = batch.permute(0, 3, 1, 2).float().div_(255)
            hole_t = torch.from_numpy(np.stack([checked[i] for i in idx])).to(self.device)
            valid = (~hole_t)[:, None].float()
            out = self._fill(batch, valid)
            out = out.permute(0, 2, 3, 1).mul_(255).round_().to(torch.uint8).cpu().numpy()
            for j, i in enumerate(idx):
                results[i][checked[i]] = out[j][checked[i]]
        return results
