"""Found damage -> hole mask, Qt-free: the one code path shared by the app (Tools > Find Damage),
``retoucher detect`` and ``retoucher batch --find-damage``.

A detector (:class:`engine.DamageDetector`, or anything :class:`~retoucher.inpainting.DetectorLike`)
gives a damage probability; the mask is the pixels at or above a threshold (default: the one the
detector's weight file was calibrated for), grown by :data:`DEFAULT_DILATE` pixels with a disc
(:func:`retoucher.mask_ops.grow`), never on a fully transparent pixel of an RGBA photo (its RGB is
arbitrary: :func:`visible_damage`). The app keeps the :class:`~engine.damage.DamageMap` and calls
:func:`damage_mask` again when the user moves the sensitivity (no network pass); the command
lines call :func:`find_damage`. Imports neither torch nor the engine at module level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .inpainting import CancelFn, DetectorLike, ProgressFn
from .mask_ops import check_radius, grow
from .transparent import detect

if TYPE_CHECKING:  # pragma: no cover
    from engine.damage import DamageMap

__all__ = [
    "DEFAULT_DILATE",
    "check_threshold",
    "damage_mask",
    "default_detector_factory",
    "describe_detector",
    "detector_device",
    "find_damage",
    "grown",
    "size_text",
    "visible_damage",
]

DEFAULT_DILATE = 2
"""How far found damage is grown, in pixels. The detector marks a scratch's core; its soft edge
and the JPEG ringing beside it would otherwise stay as a faint outline around the fill."""


def check_threshold(value: float) -> float:
    """``value`` as a float; ValueError unless it lies in (0, 1] (a probability threshold)."""
    t = float(value)
    if not 0.0 < t <= 1.0:  # also refuses NaN
        raise ValueError(f"the damage threshold must lie in (0, 1], got {value}")
    return t


def grown(mask: np.ndarray, radius: int) -> np.ndarray:
    """The whole ``bool HxW`` mask grown by a disc of ``radius`` pixels (a new array)."""
    out = mask.copy()
    result = grow(mask, radius)
    if result is not None:
        box, inside = result
        out[box.slices] = inside
    return out


def size_text(mask: np.ndarray) -> str:
    """``WxH`` of an ``HxW`` array, for messages (its shape when it is not 2-D)."""
    return f"{mask.shape[1]}x{mask.shape[0]}" if mask.ndim == 2 else str(mask.shape)


def visible_damage(damage: np.ndarray, dilate: int, alpha: np.ndarray | None = None) -> np.ndarray:
    """The ``bool HxW`` ``damage`` grown by a disc of ``dilate`` pixels (a new array), without the
    fully transparent pixels (``alpha == 0``; ``alpha`` None: an opaque photo): what is drawn
    there is arbitrary, so neither is it damage nor does it grow into the photo beside it."""
    radius = check_radius(dilate)
    if alpha is None:
        return grown(damage, radius)
    if alpha.shape != damage.shape:
        raise ValueError(f"the alpha channel is {size_text(alpha)}, the damage {size_text(damage)}")
    clear = alpha == 0
    out = grown(damage & ~clear, radius)
    out &= ~clear
    return out


def damage_mask(
    found: DamageMap,
    threshold: float | None = None,
    dilate: int = DEFAULT_DILATE,
    alpha: np.ndarray | None = None,
) -> np.ndarray:
    """The hole mask of a detection: ``probability >= threshold`` (None: the detection's own
    threshold, without thresholding again), grown by ``dilate`` pixels, never where ``alpha`` is
    0 (:func:`visible_damage`)."""
    if threshold is None or threshold == found.threshold:
        mask = found.mask
    else:
        mask = found.at(check_threshold(threshold)).mask
    return visible_damage(mask, dilate, alpha)


def find_damage(
    detector: DetectorLike,
    image: np.ndarray,
    *,
    threshold: float | None = None,
    dilate: int = DEFAULT_DILATE,
    alpha: np.ndarray | None = None,
    cancel: CancelFn | None = None,
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """Detect the damage of a ``uint8 HxWx3`` photo: the ``bool HxW`` hole mask (True = damage)
    at ``threshold`` (None: the detector's calibrated one), grown by ``dilate`` pixels, never
    where the photo's ``alpha`` (``uint8 HxW``, None: opaque) is 0; the detector reads the visible
    pixels only (:mod:`retoucher.transparent`).
    Raises :class:`engine.damage.DetectionCancelled` when ``cancel()`` returns True."""
    found = detect(detector, image, alpha, threshold, cancel=cancel, progress=progress)
    return damage_mask(found, None, dilate, alpha)


def default_detector_factory(weights: str | None, device: str) -> DetectorLike:
    """A :class:`~retoucher.inpainting.DetectorFactory`: :class:`engine.DamageDetector` from
    ``weights`` (None or "": the bundled ``resources/weights/damage.safetensors``) on ``device``.
    torch loads here, on first use (in the app: in the worker thread)."""
    from engine.damage import DamageDetector

    return DamageDetector(weights or None, device=device)


def detector_device(detector: DetectorLike) -> object | None:
    """Where ``detector`` runs, as people read it ("CPU", the GPU's name), else its device, else
    None: both are optional in DetectorLike (test doubles lack them)."""
    return getattr(detector, "device_name", None) or getattr(detector, "device", None)


def describe_detector(detector: DetectorLike, threshold: float | None, dilate: int) -> str:
    """``NAME on DEVICE (threshold T, dilate N px)``, for reports (the device when it has one)."""
    t = detector.threshold if threshold is None else threshold
    where = detector_device(detector)
    on = "" if where is None else f" on {where}"
    return f"{detector.name}{on} (threshold {t:.2f}, dilate {dilate} px)"
