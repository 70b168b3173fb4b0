"""What the app needs of an inpainting engine and of a damage detector, as Protocols.

:class:`engine.Inpainter` and :class:`engine.DamageDetector` satisfy them; so do the small test
doubles in ``tests/retoucher``.
The batch runner, the self-test and the Qt fill worker type their engine with it instead of
``Any``, without importing torch at module level.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from engine.damage import DamageMap
    from engine.weights import WeightsInfo

__all__ = ["CancelFn", "DetectorFactory", "DetectorLike", "InpainterFactory", "InpainterLike", "ProgressFn"]

CancelFn = Callable[[], bool]
ProgressFn = Callable[[float], None]


class InpainterLike(Protocol):
    """Fills the hole of an ``uint8 HxWx3`` image (``bool HxW`` mask, True = hole); only hole
    pixels change; ``texture=S`` sets the call's texture strength (how much of the photo's
    texture the fill gets; None: the engine's own); ``mirror=True`` averages the fill with the
    network's fill of the mirror image (None: the engine's own choice); ``hidden`` (bool HxW,
    only for a photo with transparent pixels) marks pixels that are no photo, never a source of
    the photo's texture. ``max_side`` and
    ``batch_size`` (how large an image one network pass takes, how many equal-size images go in
    one batch) are optional: callers read them with defaults."""

    @property
    def name(self) -> str: ...

    @property
    def device_name(self) -> str: ...

    @property
    def info(self) -> WeightsInfo: ...

    def __call__(
        self,
        image: np.ndarray,
        hole: np.ndarray,
        *,
        cancel: CancelFn | None = None,
        progress: ProgressFn | None = None,
        texture: float | None = None,
        mirror: bool | None = None,
        hidden: np.ndarray | None = None,
    ) -> np.ndarray: ...

    def inpaint_batch(
        self,
        images: Sequence[np.ndarray],
        holes: Sequence[np.ndarray],
        *,
        texture: float | None = None,
        mirror: bool | None = None,
        hidden: Sequence[np.ndarray | None] | None = None,
    ) -> list[np.ndarray]: ...


InpainterFactory = Callable[[str | None, str], InpainterLike]
"""``factory(weights_path_or_None, device)`` -> a ready engine (None: the bundled model)."""


class DetectorLike(Protocol):
    """Finds damage in an ``uint8 HxWx3`` image: ``detector(image, threshold)`` returns an
    :class:`engine.damage.DamageMap` (``probability`` float32 HxW, ``mask`` bool HxW, and
    ``at(threshold)`` to re-threshold without running the network again). ``threshold`` is the
    default the weight file was calibrated for. ``device`` and ``info`` (an
    :class:`engine.damage.DamageWeightsInfo`, whose ``provenance`` says how the file was made)
    are optional: callers read them with ``getattr`` and a default (test doubles lack them)."""

    @property
    def name(self) -> str: ...

    @property
    def threshold(self) -> float: ...

    def __call__(
        self,
        image: np.ndarray,
        threshold: float | None = None,
        *,
        cancel: CancelFn | None = None,
        progress: ProgressFn | None = None,
    ) -> DamageMap: ...


DetectorFactory = Callable[[str | None, str], DetectorLike]
"""``factory(weights_path_or_None, device)`` -> a ready detector (None: the bundled one)."""
