"""The architecture of a partial-convolution U-Net (:class:`UNetConfig`) and its presets, without
torch: a weight file's header describes its model with it, which the app reads (its status bar)
before it loads torch for a first fill. The network itself: :mod:`engine.unet`."""

from __future__ import annotations

import dataclasses
import json
import operator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_DEPTH",
    "MAX_KERNEL",
    "MAX_WIDTH",
    "MODEL_PRESETS",
    "PAPER_256",
    "PAPER_512",
    "UNetConfig",
    "paper_kernels",
]


# Sanity limits: a config from a weight file is data from a stranger; these keep a crafted file
# from making the loader allocate gigabytes before it can be refused.
MAX_DEPTH = 10
MAX_WIDTH = 2048
MAX_KERNEL = 15


def paper_kernels(depth: int) -> tuple[int, ...]:
    """The paper's encoder kernel sizes for ``depth`` levels: 7, 5, 5, then 3 (cut to ``depth``)."""
    return tuple([7, 5, 5] + [3] * (depth - 3))[:depth]


def _whole(name: str, value: object, what: str = "a whole number") -> int:
    """``value`` as an int when it is a whole number (an int, a numpy integer, or a float such as
    3.0), else ValueError (a bool too)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be {what}, got {value!r}") from None


@dataclass(frozen=True)
class UNetConfig:
    """Architecture of a :class:`PConvUNet`. Saved in every weight file and checkpoint."""

    widths: tuple[int, ...] = (64, 128, 256, 512, 512, 512, 512)
    kernels: tuple[int, ...] = (7, 5, 5, 3, 3, 3, 3)
    in_channels: int = 3
    out_channels: int = 3
    decoder_kernel: int = 3
    image_size: int = 256  # the resolution the model was designed/trained for
    #: Width of the full-resolution refinement head (0 = none: the paper's network). See
    #: :class:`RefineHead`.
    refine: int = 0

    def __post_init__(self) -> None:
        # Whole numbers (a file's 3.0 is 3; 2.5, True or "3" are refused, never truncated)
        try:
            object.__setattr__(
                self, "widths", tuple(_whole("widths", w, "whole numbers") for w in self.widths)
            )
            object.__setattr__(
                self, "kernels", tuple(_whole("kernels", k, "whole numbers") for k in self.kernels)
            )
        except TypeError:  # not a sequence
            raise ValueError(
                f"widths and kernels must be lists of whole numbers, got {self.widths!r}"
            ) from None
        for name in ("in_channels", "out_channels", "decoder_kernel", "image_size", "refine"):
            object.__setattr__(self, name, _whole(name, getattr(self, name)))
        if len(self.widths) != len(self.kernels) or not self.widths:
            raise ValueError(
                f"widths {self.widths} and kernels {self.kernels} must be non-empty and of equal length"
            )
        if not 1 <= len(self.widths) <= MAX_DEPTH:
            raise ValueError(f"depth must be 1..{MAX_DEPTH}, got {len(self.widths)}")
        if any(not 1 <= w <= MAX_WIDTH for w in self.widths):
            raise ValueError(f"widths must be 1..{MAX_WIDTH}, got {self.widths}")
        for k in (*self.kernels, self.decoder_kernel):
            if not (1 <= k <= MAX_KERNEL and k % 2 == 1):
                raise ValueError(f"kernel sizes must be odd and 1..{MAX_KERNEL}, got {k}")
        if not (1 <= self.in_channels <= 16 and 1 <= self.out_channels <= 16):
            raise ValueError("in_channels and out_channels must be 1..16")
        if not 1 <= self.image_size <= 8192:
            raise ValueError(f"image_size must be 1..8192, got {self.image_size}")
        if not 0 <= self.refine <= 256:
            raise ValueError(f"refine must be 0..256 channels, got {self.refine}")

    @property
    def depth(self) -> int:
        return len(self.widths)

    @property
    def granularity(self) -> int:
        """Input sides must be multiples of this (2 ** depth)."""
        return 2**self.depth

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["widths"] = list(self.widths)
        d["kernels"] = list(self.kernels)
        if not self.refine:
            del d["refine"]  # files of the paper's architecture stay readable by older releases
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UNetConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown UNetConfig fields: {sorted(unknown)}")
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> UNetConfig:
        return cls.from_dict(json.loads(text))

    @classmethod
    def paper(cls, image_size: int = 256) -> UNetConfig:
        """The paper's configuration: 7 levels at 256x256, 8 at 512x512."""
        depth = 8 if image_size >= 512 else 7
        widths = (64, 128, 256) + (512,) * (depth - 3)
        return cls(widths=widths, kernels=paper_kernels(depth), image_size=image_size)

    @classmethod
    def scaled(cls, base_width: int, depth: int = 7, image_size: int = 256) -> UNetConfig:
        """The paper's shape with widths scaled: base, 2x, 4x, then 8x base for deeper levels."""
        widths = tuple(base_width * min(2**i, 8) for i in range(depth))
        return cls(widths=widths, kernels=paper_kernels(depth), image_size=image_size)


PAPER_256 = UNetConfig.paper(256)
PAPER_512 = UNetConfig.paper(512)
MODEL_PRESETS: dict[str, UNetConfig] = {
    "paper": PAPER_256,
    "paper512": PAPER_512,
    "small": UNetConfig.scaled(32),  # half the paper's widths
    "tiny": UNetConfig.scaled(16),
}
