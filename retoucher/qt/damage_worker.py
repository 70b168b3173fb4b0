"""Finding damage off the GUI thread.

:class:`DetectorCache` creates the :class:`engine.DamageDetector` lazily, in the worker thread, and
keeps it for the next search. :class:`DetectJob` is an :class:`~.worker.EngineJob` that runs it on
a copy of the photo (cancellable between tiles) and returns a :class:`Detection`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

import engine

from ..inpainting import DetectorFactory, DetectorLike
from .worker import EngineCache, EngineJob

if TYPE_CHECKING:  # pragma: no cover
    from engine.damage import DamageMap

    from ..document import Document

__all__ = ["DetectJob", "Detection", "DetectorCache", "default_detector_factory", "describe_detection_error"]


def default_detector_factory(weights: str | None, device: str) -> DetectorLike:
    from engine.damage import DamageDetector  # torch loads here, in the worker, on first use

    return DamageDetector(weights or None, device=device)


class DetectorCache(EngineCache[DetectorLike]):
    """One damage detector for the chosen weights file (None: the bundled one) and device, built
    on first use (thread-safe)."""

    def __init__(
        self, weights: str | None = None, device: str = "auto", factory: DetectorFactory | None = None
    ) -> None:
        super().__init__(weights, device, factory or default_detector_factory)


@dataclass(frozen=True)
class Detection:
    """A search's outcome: the ``damage`` found (at the threshold asked for) and the threshold
    the detector was calibrated for (``default_threshold``, the sensitivity's default)."""

    damage: DamageMap
    default_threshold: float


def describe_detection_error(exc: BaseException) -> tuple[str, str]:
    """(title, message) for an exception from loading or running the damage detector."""
    if isinstance(exc, engine.WeightsError):
        return (
            "No damage detector",
            f"{exc}\n\nFind Damage needs the detector that comes with Retoucher; reinstall it, "
            "or paint the damage by hand. Nothing was changed.",
        )
    if isinstance(exc, ValueError):
        return ("Cannot find damage", str(exc))
    if isinstance(exc, MemoryError):
        return ("Out of memory", "Finding damage ran out of memory. Try the CPU device (Preferences).")
    return ("Find Damage failed", f"{type(exc).__name__}: {exc}")


class DetectJob(EngineJob[DetectorLike]):
    """Find damage in ``image`` (a copy owned by the job) at ``threshold`` (None: the
    detector's calibrated one)."""

    def __init__(
        self,
        image: np.ndarray,
        cache: DetectorCache,
        threshold: float | None = None,
        *,
        state: int = 0,
        doc: Document | None = None,
    ) -> None:
        super().__init__(cache, state=state, doc=doc)
        self.image = image
        self.threshold = threshold

    def compute(self, detector: DetectorLike) -> Detection:
        damage = detector(
            self.image,
            self.threshold,
            cancel=self.cancel_event.is_set,
            progress=self.signals.progress.emit,
        )
        return Detection(damage, float(detector.threshold))

    def describe(self, exc: Exception) -> tuple[str, str]:
        return describe_detection_error(exc)
