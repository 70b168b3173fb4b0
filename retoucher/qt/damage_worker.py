"""Finding damage off the GUI thread.

:class:`DetectorCache` creates the :class:`engine.DamageDetector` lazily, in the worker thread
(:func:`retoucher.damage.default_detector_factory` unless told otherwise), and keeps it for the
next search. :class:`DetectJob` is an :class:`~.worker.EngineJob` that runs it on a copy of the
photo (cancellable between tiles) and returns a :class:`Detection`; its errors are worded by
:data:`DETECT_WORDING`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from engine.weight_header import damage_weights_path

from .. import transparent
from ..damage import default_detector_factory, visible_damage
from ..inpainting import DetectorFactory, DetectorLike
from .worker import EngineCache, EngineJob, ErrorWording, describe_error

if TYPE_CHECKING:  # pragma: no cover
    from engine.damage import DamageMap

    from ..document import Document

__all__ = ["DETECT_WORDING", "DetectJob", "Detection", "DetectorCache"]


class DetectorCache(EngineCache[DetectorLike]):
    """One damage detector for the chosen weights file (None: the bundled one) and device, built
    on first use (thread-safe)."""

    def __init__(
        self, weights: str | None = None, device: str = "auto", factory: DetectorFactory | None = None
    ) -> None:
        super().__init__(weights, device, factory or default_detector_factory, watch=damage_weights_path)


@dataclass(frozen=True)
class Detection:
    """A search's outcome: the ``damage`` found (at the threshold asked for) and the threshold
    the detector was calibrated for (``default_threshold``, the sensitivity's default)."""

    damage: DamageMap
    default_threshold: float
    visible: np.ndarray | None = None  # the damage grown by the job's grow where the photo shows


DETECT_WORDING = ErrorWording(
    no_engine="No damage detector",
    no_engine_hint="Find Damage needs the detector that comes with Retoucher; reinstall it, "
    "or paint the damage by hand. Nothing was changed.",
    bad_input="Cannot find damage",
    out_of_memory="Finding damage ran out of memory. Try the CPU device (Preferences).",
    failed="Find Damage failed",
)


class DetectJob(EngineJob[DetectorLike]):
    """Find damage in ``image`` (a copy owned by the job) at ``threshold`` (None: the
    detector's calibrated one), reading only the pixels that ``alpha`` (None: an opaque photo)
    leaves visible."""

    def __init__(
        self,
        image: np.ndarray,
        cache: DetectorCache,
        threshold: float | None = None,
        *,
        alpha: np.ndarray | None = None,
        state: int = 0,
        doc: Document | None = None,
        grow: int | None = None,
    ) -> None:
        super().__init__(cache, state=state, doc=doc)
        self.image = image
        self.alpha = alpha
        self.threshold = threshold
        self.grow = grow  # also grow what it finds by this much here (None: the caller does)

    def compute(self, detector: DetectorLike) -> Detection:
        damage = transparent.detect(
            detector,
            self.image,
            self.alpha,
            self.threshold,
            cancel=self.cancel_event.is_set,
            progress=self.signals.progress.emit,
        )
        visible = None if self.grow is None else visible_damage(damage.mask, self.grow, self.alpha)
        return Detection(damage, float(detector.threshold), visible)

    def describe(self, exc: Exception) -> tuple[str, str]:
        return describe_error(exc, DETECT_WORDING)
