"""Filling off the GUI thread.

:class:`InpainterCache` creates the :class:`engine.Inpainter` lazily, in the worker thread, and
keeps it for the next fill. :class:`FillJob` is an :class:`~.worker.EngineJob` that fills one hole
of a copy of the photo; it reports through Qt signals, which reach the GUI thread as queued calls,
and can be cancelled (the engine checks a callable between network passes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

import engine
from engine.texture_strength import TEXTURE

from ..inpainting import InpainterFactory, InpainterLike
from .worker import EngineCache, EngineJob, EngineSignals

if TYPE_CHECKING:  # pragma: no cover
    from ..document import Document

__all__ = ["FillJob", "FillSignals", "InpainterCache", "default_factory"]

FillSignals = EngineSignals
"""loaded(Inpainter), progress(0..1), finished(uint8 HxWx3 result), failed(title, message),
cancelled()."""


def default_factory(weights: str | None, device: str, **options: object) -> InpainterLike:
    """The engine's Inpainter; ``options`` are its keyword arguments (``texture``)."""
    return engine.Inpainter(weights or None, device=device, **options)


class InpainterCache(EngineCache[InpainterLike]):
    """One Inpainter for the chosen weights file (None: the bundled model), device and texture
    strength (None: the engine's default), built on first use (thread-safe). The default
    strength is passed as no option at all: a factory of the ``(weights, device)`` kind (test
    doubles) keeps working, and an engine set with :meth:`set` is kept, until a user picks
    another strength."""

    def __init__(
        self,
        weights: str | None = None,
        device: str = "auto",
        factory: InpainterFactory | None = None,
        *,
        texture: float | None = None,
    ) -> None:
        super().__init__(weights, device, factory or default_factory, **_texture_option(texture))

    def configure(self, weights: str | None, device: str, *, texture: float | None = None) -> None:
        super().configure(weights, device, **_texture_option(texture))


def _texture_option(texture: float | None) -> dict[str, object]:
    return {} if texture is None or texture == TEXTURE else {"texture": texture}


class FillJob(EngineJob[InpainterLike]):
    """Fill ``hole`` in ``image`` (both copies owned by the job) with the cache's Inpainter."""

    def __init__(
        self,
        image: np.ndarray,
        hole: np.ndarray,
        cache: InpainterCache,
        *,
        state: int = 0,
        doc: Document | None = None,
    ) -> None:
        super().__init__(cache, state=state, doc=doc)
        self.image = image
        self.hole = hole

    def compute(self, inpainter: InpainterLike) -> np.ndarray:
        return inpainter(
            self.image, self.hole, cancel=self.cancel_event.is_set, progress=self.signals.progress.emit
        )
