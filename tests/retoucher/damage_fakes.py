"""Stand-ins for the engine in the damage tests: a detector whose probability is a known function
of the photo (so the expected mask is exact), its factory, and a fill that records the holes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from engine.damage import DamageMap


def red_probability(rgb: np.ndarray) -> np.ndarray:
    """The fake detector's damage probability: the red channel, 0..255 -> 0..1."""
    return rgb[:, :, 0].astype(np.float32) / np.float32(255)


class FakeDetector:
    """A :class:`~retoucher.inpainting.DetectorLike` with ``probability(rgb)`` as its network."""

    def __init__(
        self,
        probability: Callable[[np.ndarray], np.ndarray] = red_probability,
        threshold: float = 0.5,
        name: str = "fake-detector",
    ) -> None:
        self._probability = probability
        self._threshold = threshold
        self._name = name
        self.seen: list[tuple[int, ...]] = []  # the shape of each image it was asked about

    @property
    def name(self) -> str:
        return self._name

    @property
    def threshold(self) -> float:
        return self._threshold

    def __call__(self, image, threshold=None, *, cancel=None, progress=None) -> DamageMap:
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        self.seen.append(image.shape)
        t = self._threshold if threshold is None else threshold
        p = self._probability(image)
        return DamageMap(p, t, p >= t)


class FakeFactory:
    """A :class:`~retoucher.inpainting.DetectorFactory` handing out one :class:`FakeDetector`
    and recording each ``(weights, device)`` it was asked for."""

    def __init__(self, detector: FakeDetector | None = None) -> None:
        self.detector = detector or FakeDetector()
        self.calls: list[tuple[str | None, str]] = []

    def __call__(self, weights: str | None, device: str) -> FakeDetector:
        self.calls.append((weights, device))
        return self.detector


class RecordingFill:
    """An :class:`~retoucher.inpainting.InpainterLike` that paints the hole magenta and records
    each hole it was given."""

    name = "recording-fill"
    device_name = "CPU"

    def __init__(self) -> None:
        self.holes: list[np.ndarray] = []

    def __call__(self, image, hole, *, cancel=None, progress=None, texture=None, mirror=None, hidden=None):
        self.holes.append(hole.copy())
        out = image.copy()
        out[hole] = (255, 0, 255)
        return out

    def inpaint_batch(self, images, holes, *, texture=None, mirror=None, hidden=None):
        return [self(i, h) for i, h in zip(images, holes)]


def disc_around(shape: tuple[int, int], points: np.ndarray, radius: int) -> np.ndarray:
    """The pixels within Euclidean ``radius`` of any True pixel of ``points`` (brute force, for
    checking :func:`retoucher.mask_ops.grow` from outside)."""
    h, w = shape
    out = np.zeros(shape, bool)
    yy, xx = np.mgrid[0:h, 0:w]
    for y, x in zip(*np.nonzero(points)):
        out |= (yy - y) ** 2 + (xx - x) ** 2 <= radius * radius
    return out
