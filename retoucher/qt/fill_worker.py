"""Filling off the GUI thread.

:class:`InpainterCache` creates the :class:`engine.Inpainter` lazily, in the worker thread, and
keeps it for the next fill; it also holds the texture strength and the mirrored-pass choice the
user made, which each fill passes to its call (a new choice keeps the loaded model).
:class:`FillJob` is an :class:`~.worker.EngineJob` that fills one hole of a copy of the photo;
it reports through Qt signals, which reach the GUI thread as queued calls, and can be cancelled
(the engine checks a callable between network passes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

import engine
from engine.mirror_pass import MIRROR
from engine.texture_strength import check_texture
from engine.weight_header import model_weights_path

from .. import transparent
from ..inpainting import InpainterFactory, InpainterLike
from .worker import EngineCache, EngineJob, EngineSignals

if TYPE_CHECKING:  # pragma: no cover
    from ..document import Document

__all__ = ["FillJob", "FillSignals", "InpainterCache", "default_factory"]

FillSignals = EngineSignals
"""loaded(Inpainter), progress(0..1), finished(uint8 HxWx3 result), failed(title, message),
cancelled()."""


def default_factory(weights: str | None, device: str) -> InpainterLike:
    """The engine's Inpainter."""
    return engine.Inpainter(weights or None, device=device)


class InpainterCache(EngineCache[InpainterLike]):
    """One Inpainter for the chosen weights file (None: the bundled model) and device, built on
    first use (thread-safe), ``texture``: the strength every fill passes to its call (None: the
    engine's own), and ``mirror``: whether every fill averages in the network's fill of the
    mirror image. Changing either keeps the loaded engine."""

    def __init__(
        self,
        weights: str | None = None,
        device: str = "auto",
        factory: InpainterFactory | None = None,
        *,
        texture: float | None = None,
        mirror: bool = MIRROR,
    ) -> None:
        super().__init__(weights, device, factory or default_factory, watch=model_weights_path)
        self.texture = texture
        self.mirror = mirror

    @property
    def texture(self) -> float | None:
        return self._texture

    @texture.setter
    def texture(self, value: float | None) -> None:
        self._texture = None if value is None else check_texture(value)

    def configure(self, weights: str | None, device: str, *, texture: float | None, mirror: bool) -> None:
        """Another weights file or device (drops a loaded engine if it differs) and the strength
        and mirrored pass of the fills from now on (keeps the engine)."""
        super().configure(weights, device)
        self.texture = texture
        self.mirror = bool(mirror)


class FillJob(EngineJob[InpainterLike]):
    """Fill ``hole`` in ``image`` (both copies owned by the job) with the cache's Inpainter, at
    the cache's texture strength and mirrored pass when the job was made, reading only the
    pixels that ``alpha`` (None: an opaque photo) leaves visible."""

    def __init__(
        self,
        image: np.ndarray,
        hole: np.ndarray,
        cache: InpainterCache,
        *,
        alpha: np.ndarray | None = None,
        state: int = 0,
        doc: Document | None = None,
    ) -> None:
        super().__init__(cache, state=state, doc=doc)
        self.image = image
        self.hole = hole
        self.alpha = alpha
        self.texture = cache.texture
        self.mirror = cache.mirror

    def compute(self, inpainter: InpainterLike) -> np.ndarray:
        return transparent.fill(
            inpainter,
            self.image,
            self.hole,
            self.alpha,
            cancel=self.cancel_event.is_set,
            progress=self.signals.progress.emit,
            texture=self.texture,
            mirror=self.mirror,
        )
