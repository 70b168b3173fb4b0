"""Running the engine off the GUI thread.

:class:`InpainterCache` creates the :class:`engine.Inpainter` lazily, in the worker thread (loading
a model can take seconds) and keeps it for the next fill. :class:`FillJob` is a :class:`~.worker.Job`
that fills one hole of a copy of the photo; it reports through Qt signals, which reach the GUI
thread as queued calls, and can be cancelled (the engine checks a callable between network passes).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Signal

import engine

from ..inpainting import InpainterFactory, InpainterLike
from .worker import Job, JobSignals

if TYPE_CHECKING:  # pragma: no cover
    from ..document import Document

__all__ = ["FillJob", "FillSignals", "InpainterCache", "default_factory"]


def default_factory(weights: str | None, device: str) -> InpainterLike:
    return engine.Inpainter(weights or None, device=device)


class InpainterCache:
    """One Inpainter for the chosen weights file and device, built on first use (thread-safe)."""

    def __init__(
        self, weights: str | None = None, device: str = "auto", factory: InpainterFactory | None = None
    ) -> None:
        self._lock = threading.Lock()
        self._factory = factory or default_factory
        self._key = (weights or None, device)
        self._inpainter: InpainterLike | None = None

    def configure(self, weights: str | None, device: str) -> None:
        """Use another weights file or device from now on (drops a loaded model if it differs)."""
        key = (weights or None, device)
        with self._lock:
            if key != self._key:
                self._key = key
                self._inpainter = None

    def set(self, inpainter: InpainterLike) -> None:
        """Use this ready Inpainter (tests, scripts) until :meth:`configure` changes the choice."""
        with self._lock:
            self._inpainter = inpainter

    @property
    def loaded(self) -> InpainterLike | None:
        """The Inpainter if it is loaded already, else None (never loads)."""
        return self._inpainter

    @property
    def weights(self) -> str | None:
        return self._key[0]

    @property
    def device(self) -> str:
        return self._key[1]

    def get(self) -> InpainterLike:
        """The Inpainter, loading it now if needed; raises ``engine.WeightsError`` or
        ``ValueError`` (unusable device) when it cannot be built."""
        with self._lock:
            if self._inpainter is None:
                self._inpainter = self._factory(*self._key)
            return self._inpainter


class FillSignals(JobSignals):
    loaded = Signal(object)  # the Inpainter, once it is ready
    progress = Signal(float)  # 0..1
    # finished(uint8 HxWx3 result), failed(title, message), cancelled(): see JobSignals


class FillJob(Job):
    """Fill ``hole`` in ``image`` (both copies owned by the job) with the cache's Inpainter.
    ``state`` and ``doc``: the photo's image state and document when the job was made, so that
    the result is applied only to the photo it was made from, unchanged."""

    signals: FillSignals

    def __init__(
        self,
        image: np.ndarray,
        hole: np.ndarray,
        cache: InpainterCache,
        *,
        state: int = 0,
        doc: Document | None = None,
    ) -> None:
        super().__init__(FillSignals())
        self.image = image
        self.hole = hole
        self.cache = cache
        self.state = state
        self.doc = doc

    def work(self) -> np.ndarray:
        if self.cancel_requested:
            raise engine.InpaintCancelled()
        inpainter = self.cache.get()
        self.signals.loaded.emit(inpainter)
        result = inpainter(
            self.image, self.hole, cancel=self.cancel_event.is_set, progress=self.signals.progress.emit
        )
        if self.cancel_requested:
            raise engine.InpaintCancelled()
        return result
