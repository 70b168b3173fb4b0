"""Find damage on scanned photos: scratches, cracks, dust and spots -> a hole mask.

:class:`DamageDetector` runs a small segmentation network (:class:`DamageNet`, its own weight
file) over a ``uint8 HxWx3`` RGB photo and returns a ``float32 HxW`` damage probability and a
``bool HxW`` mask (True = damage = hole) at a threshold. The app re-thresholds the probability
without running the network again (:meth:`DamageMap.at`).

The network sees the photo at full resolution: the input is rearranged losslessly into 2x2 cells
(pixel unshuffle), so a one-pixel hairline stays visible, while the convolutions run at half
resolution and below. Its output is
rearranged back to one probability per pixel.

Large scans are cut into tiles that overlap by more than the network's receptive field; each
tile keeps only its core, so the mask has no seams: the tiled result equals a single pass.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .inpainter import InpaintCancelled, device_name, select_device
from .weight_header import (
    DAMAGE_FORMAT_NAME,
    DAMAGE_FORMAT_VERSION,
    DEFAULT_THRESHOLD,
    calibrated_threshold,
    damage_weights_path,
    default_damage_weights_path,
)
from .weights import (
    floating_names,
    read_described,
    read_header,
    read_tensors,
    shapes_of,
    write_weight_file,
)

__all__ = [
    "DAMAGE_FORMAT_NAME",
    "DamageNetConfig",
    "DamageNet",
    "DamageWeightsInfo",
    "DamageMap",
    "DamageDetector",
    "DetectionCancelled",
    "default_damage_weights_path",
    "save_damage_weights",
    "load_damage_weights",
    "read_damage_info",
]


CancelFn = Callable[[], bool]
ProgressFn = Callable[[float], None]


class DetectionCancelled(InpaintCancelled):
    """The caller's ``cancel()`` returned True during a detection (an :class:`InpaintCancelled`,
    so one handler serves fills and detections)."""


@dataclass(frozen=True)
class DamageNetConfig:
    """The detector's architecture. ``width`` channels at half resolution, doubling per level up
    to 4x; ``depth`` stride-2 levels below the half-resolution stem."""

    width: int = 16
    depth: int = 3
    unshuffle: int = 2

    def __post_init__(self) -> None:
        if self.width < 1 or self.depth < 1 or self.unshuffle < 1:
            raise ValueError(f"invalid damage-net config {self}")

    @property
    def widths(self) -> list[int]:
        return [self.width * min(2**i, 4) for i in range(self.depth + 1)]

    @property
    def granularity(self) -> int:
        """Input sides must be multiples of this."""
        return self.unshuffle * 2**self.depth

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DamageNetConfig:
        d = json.loads(text)
        if not isinstance(d, dict):
            raise ValueError("the config is not a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        if set(d) - known:
            raise ValueError(f"unknown config keys {sorted(set(d) - known)}")
        return cls(**d)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.ReLU(inplace=True))


class DamageNet(nn.Module):
    """A small U-Net on the pixel-unshuffled photo. ``forward(x)``: ``x`` (N,3,H,W) in [-1, 1]
    with H, W multiples of ``config.granularity``; returns logits (N,1,H,W).

    :meth:`cells` is the same network on input already rearranged into cells (the detector
    builds that layout from the uint8 photo directly, which is cheaper than doing it in torch)."""

    def __init__(self, config: DamageNetConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or DamageNetConfig()
        w = config.widths
        r = config.unshuffle
        self.stem = nn.Sequential(_conv(3 * r * r, w[0]), _conv(w[0], w[0]))
        self.down = nn.ModuleList(
            nn.Sequential(_conv(w[i - 1], w[i], stride=2), _conv(w[i], w[i])) for i in range(1, len(w))
        )
        # Decoder: a 2x2 transposed convolution up to the finer level, add the skip, mix.
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(w[i], w[i - 1], 2, stride=2) for i in range(len(w) - 1, 0, -1)
        )
        self.mix = nn.ModuleList(_conv(w[i - 1], w[i - 1]) for i in range(len(w) - 1, 0, -1))
        self.head = nn.Conv2d(w[0], r * r, 1)
        # Cell layout: channel i*3r + j*3 + c holds colour c of pixel (r*y + i, r*x + j); this
        # order comes from a cheap reshape of an HxWx3 array. torch's pixel_unshuffle orders
        # them c*r*r + i*r + j.
        order = [c * r * r + i * r + j for i in range(r) for j in range(r) for c in range(3)]
        self.register_buffer("_cell_order", torch.tensor(order), persistent=False)

    def cells(self, u: torch.Tensor) -> torch.Tensor:
        """``u`` (N, 3*r*r, H/r, W/r): the normalised photo in the cell layout; returns logits as
        (N, r*r, H/r, W/r), the layout ``pixel_shuffle`` takes."""
        f = self.stem(u)
        skips = [f]
        for level in self.down:
            f = level(f)
            skips.append(f)
        f = skips.pop()
        for up, mix in zip(self.up, self.mix, strict=True):
            f = mix(up(f).add_(skips.pop()))
        return self.head(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.config.granularity
        if x.shape[-1] % g or x.shape[-2] % g:
            raise ValueError(f"image sides must be multiples of {g}, got {tuple(x.shape[-2:])}")
        r = self.config.unshuffle
        u = F.pixel_unshuffle(x, r).index_select(1, self._cell_order)
        return F.pixel_shuffle(self.cells(u), r)


# ---------------------------------------------------------------------------- weight files
@dataclass(frozen=True)
class DamageWeightsInfo:
    path: Path | None
    name: str
    config: DamageNetConfig
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def threshold(self) -> float:
        """The threshold the file was calibrated for (``provenance["threshold"]``), else 0.5."""
        return calibrated_threshold(self.provenance)


def save_damage_weights(
    path: str | os.PathLike[str],
    model: DamageNet,
    provenance: dict[str, Any] | None = None,
    *,
    name: str | None = None,
) -> Path:
    """Write the detector atomically (float32 safetensors; ``provenance["threshold"]`` is the
    default threshold of :class:`DamageDetector`)."""
    return write_weight_file(
        path,
        model.state_dict(),
        DAMAGE_FORMAT_NAME,
        DAMAGE_FORMAT_VERSION,
        model.config.to_json(),
        provenance,
        name=name,
    )


def read_damage_info(path: str | os.PathLike[str]) -> DamageWeightsInfo:
    path = Path(path)
    meta = read_header(path, DAMAGE_FORMAT_NAME, DAMAGE_FORMAT_VERSION, "Retoucher damage detector")
    config, provenance = read_described(path, meta, DamageNetConfig.from_json)
    return DamageWeightsInfo(
        path=path, name=meta.get("name") or path.stem, config=config, provenance=provenance
    )


def load_damage_weights(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[DamageNet, DamageWeightsInfo]:
    info = read_damage_info(path)
    with torch.device("meta"):
        skeleton = DamageNet(info.config)
    tensors = read_tensors(Path(path), shapes_of(skeleton), floating_names(skeleton))
    model = DamageNet(info.config)
    model.load_state_dict(tensors, strict=True)
    return model.eval().to(device), info


# ---------------------------------------------------------------------------- detection
@dataclass(frozen=True)
class DamageMap:
    """A detection: ``probability`` float32 HxW in [0, 1], ``mask`` bool HxW (True = damage)
    at ``threshold``."""

    probability: np.ndarray
    threshold: float
    mask: np.ndarray

    def at(self, threshold: float) -> DamageMap:
        """The same detection at another threshold (no network pass; itself at its own: the
        comparison over the whole photo, 80 ms at 24 MP on the app's thread, is not made again)."""
        if threshold == self.threshold:
            return self
        return DamageMap(self.probability, threshold, threshold_probability(self.probability, threshold))


def threshold_probability(probability: np.ndarray, threshold: float) -> np.ndarray:
    """``probability >= threshold`` as a bool mask; ``threshold`` must lie in (0, 1]."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must lie in (0, 1], got {threshold}")
    return probability >= threshold


def _tiles(n: int, core: int, g: int) -> list[tuple[int, int]]:
    """Cut ``[0, n)`` into the fewest consecutive pieces of at most ``core``, of about equal
    length, each starting at a multiple of ``g`` (so every tile sees the cell grid of a single
    pass)."""
    count = -(-n // core)
    piece = -(-n // count)
    size = -(-piece // g) * g
    return [(a, min(a + size, n)) for a in range(0, n, size)]


class DamageDetector:
    """Find scratches, cracks, dust and spots in a photo.

    ``weights``: a detector weight file; None loads ``resources/weights/damage.safetensors``.
    ``device``: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.
    ``tile``: the largest core side of a tile for large scans (memory is about 100 bytes per
    pixel of a tile with its margins); larger tiles waste less on overlapping margins.
    """

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        device: str | torch.device = "auto",
        *,
        tile: int = 2048,
    ) -> None:
        path = damage_weights_path(weights)
        dev = select_device(device)
        model, info = load_damage_weights(path, device=dev)
        self._setup(model, info, dev, tile)

    @classmethod
    def from_model(
        cls,
        model: DamageNet,
        device: str | torch.device = "cpu",
        *,
        name: str = "in-memory detector",
        threshold: float = DEFAULT_THRESHOLD,
        tile: int = 2048,
    ) -> DamageDetector:
        """Wrap a model object (tests, evaluation during training). The detector takes the model
        over: it is put in eval mode, on ``device`` and in channels_last memory format; call
        ``model.train()`` afterwards to keep training it."""
        self = cls.__new__(cls)
        dev = select_device(device)
        info = DamageWeightsInfo(
            path=None, name=name, config=model.config, provenance={"threshold": threshold}
        )
        self._setup(model.to(dev), info, dev, tile)
        return self

    def _setup(self, model: DamageNet, info: DamageWeightsInfo, device: torch.device, tile: int) -> None:
        self.model = model.eval().to(memory_format=torch.channels_last)
        self.info = info
        self.device = device
        g = model.config.granularity
        if tile < g:
            raise ValueError(f"tile must be at least {g}, got {tile}")
        self.tile = tile // g * g
        self.margin = -(-self.receptive_radius() // g) * g

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def threshold(self) -> float:
        """The default threshold (calibrated when the weights were exported)."""
        return self.info.threshold

    @property
    def device_name(self) -> str:
        return device_name(self.device)

    def __repr__(self) -> str:
        return f"DamageDetector(model={self.name!r}, device={self.device.type!r}, threshold={self.threshold:.3f})"

    def receptive_radius(self) -> int:
        """How far (in pixels) the input can influence an output pixel, an upper bound from the
        layers: a 3x3 convolution reading pixels of ``s`` photo pixels reaches ``s`` further; a
        2x2 stride-2 transposed convolution reads the one coarse pixel that holds its output,
        up to one fine pixel away; the output's 2x2 cell adds ``r - 1``."""
        cfg = self.model.config
        r, d = cfg.unshuffle, cfg.depth
        radius = 2 * r  # stem: two convolutions on cells of r
        radius += sum(r * 2 ** (i - 1) + r * 2**i for i in range(1, d + 1))  # stride-2 conv + conv
        radius += sum(2 * r * 2 ** (i - 1) for i in range(1, d + 1))  # transposed conv + mix
        return radius + r - 1

    @staticmethod
    def _check(image: np.ndarray) -> None:
        if (
            not isinstance(image, np.ndarray)
            or image.dtype != np.uint8
            or image.ndim != 3
            or image.shape[2] != 3
        ):
            got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
            raise ValueError(f"image must be a uint8 HxWx3 RGB array, got {got}")
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise ValueError("image is empty")

    @torch.inference_mode()
    def _run(self, crop: np.ndarray) -> np.ndarray:
        """Probability of one crop (uint8 hxwx3, any size)."""
        cfg = self.model.config
        g, r = cfg.granularity, cfg.unshuffle
        h, w = crop.shape[:2]
        ph, pw = (-h) % g, (-w) % g
        if ph or pw:
            crop = np.pad(crop, ((0, ph), (0, pw), (0, 0)), mode="edge")
        H, W = h + ph, w + pw
        # The cell layout (see DamageNet) in uint8, already the channels_last order of memory.
        cells = np.ascontiguousarray(crop.reshape(H // r, r, W // r, r * 3).transpose(0, 2, 1, 3))
        u = torch.from_numpy(cells.reshape(H // r, W // r, 3 * r * r)).to(self.device).permute(2, 0, 1)[None]
        u = u.float().mul_(1 / 127.5).sub_(1.0)
        p = F.pixel_shuffle(torch.sigmoid(self.model.cells(u).float()), r)[0, 0, :h, :w]
        return p.cpu().numpy()

    def probability(
        self, image: np.ndarray, *, cancel: CancelFn | None = None, progress: ProgressFn | None = None
    ) -> np.ndarray:
        """``float32 HxW`` damage probability of ``image``."""
        self._check(image)
        h, w = image.shape[:2]
        out = np.empty((h, w), np.float32)
        m = self.margin
        g = self.model.config.granularity
        tiles = [(ys, xs) for ys in _tiles(h, self.tile, g) for xs in _tiles(w, self.tile, g)]
        if h <= self.tile + 2 * m and w <= self.tile + 2 * m:
            tiles = [((0, h), (0, w))]
        for i, ((y0, y1), (x0, x1)) in enumerate(tiles):
            if cancel is not None and cancel():
                raise DetectionCancelled()
            a0, a1, b0, b1 = max(0, y0 - m), min(h, y1 + m), max(0, x0 - m), min(w, x1 + m)
            p = self._run(image[a0:a1, b0:b1])
            out[y0:y1, x0:x1] = p[y0 - a0 : y1 - a0, x0 - b0 : x1 - b0]
            if progress is not None:
                progress((i + 1) / len(tiles))
        return out

    def __call__(
        self,
        image: np.ndarray,
        threshold: float | None = None,
        *,
        cancel: CancelFn | None = None,
        progress: ProgressFn | None = None,
    ) -> DamageMap:
        """Detect damage: the probability and the mask at ``threshold`` (default: the file's)."""
        t = self.threshold if threshold is None else threshold
        threshold_probability(np.zeros(1, np.float32), t)  # a bad threshold fails before the work
        p = self.probability(image, cancel=cancel, progress=progress)
        return DamageMap(p, t, threshold_probability(p, t))
