"""Running the engine off the GUI thread.

:class:`InpainterCache` creates the :class:`engine.Inpainter` lazily, in the worker thread (loading
a model can take seconds) and keeps it for the next fill. :class:`FillJob` is a ``QRunnable`` that
fills one hole of a copy of the photo; it reports through Qt signals, which reach the GUI thread
as queued calls, and can be cancelled (the engine checks a callable between network passes).
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QRunnable, Signal

import engine

InpainterFactory = Callable[[str | None, str], Any]


def default_factory(weights: str | None, device: str) -> Any:
    return engine.Inpainter(weights or None, device=device)


class InpainterCache:
    """One Inpainter for the chosen weights file and device, built on first use (thread-safe)."""

    def __init__(
        self, weights: str | None = None, device: str = "auto", factory: InpainterFactory | None = None
    ) -> None:
        self._lock = threading.Lock()
        self._factory = factory or default_factory
        self._key = (weights or None, device)
        self._inpainter: Any = None

    def configure(self, weights: str | None, device: str) -> None:
        """Use another weights file or device from now on (drops a loaded model if it differs)."""
        key = (weights or None, device)
        with self._lock:
            if key != self._key:
                self._key = key
                self._inpainter = None

    def set(self, inpainter: Any) -> None:
        """Use this ready Inpainter (tests, scripts) until :meth:`configure` changes the choice."""
        with self._lock:
            self._inpainter = inpainter

    @property
    def loaded(self) -> Any:
        """The Inpainter if it is loaded already, else None (never loads)."""
        return self._inpainter

    @property
    def weights(self) -> str | None:
        return self._key[0]

    @property
    def device(self) -> str:
        return self._key[1]

    def get(self) -> Any:
        """The Inpainter, loading it now if needed; raises ``engine.WeightsError`` or
        ``ValueError`` (unusable device) when it cannot be built."""
        with self._lock:
            if self._inpainter is None:
                self._inpainter = self._factory(*self._key)
            return self._inpainter


def describe_error(exc: BaseException) -> tuple[str, str]:
    """(title, message) for an exception from loading or running the engine."""
    if isinstance(exc, engine.WeightsError):
        return (
            "No usable model",
            f"{exc}\n\nChoose a weights file (.safetensors) in Edit \u25b8 Preferences, "
            "or train and export one with retoucher-train (see the README).",
        )
    if isinstance(exc, ValueError):
        return ("Cannot fill", str(exc))
    if isinstance(exc, MemoryError):
        return ("Out of memory", "The fill ran out of memory. Try a smaller hole, or the CPU device.")
    return ("Fill failed", f"{type(exc).__name__}: {exc}")


class FillSignals(QObject):
    loaded = Signal(object)  # the Inpainter, once it is ready
    progress = Signal(float)  # 0..1
    finished = Signal(object)  # uint8 HxWx3 result
    failed = Signal(str, str)  # title, message
    cancelled = Signal()


class FillJob(QRunnable):
    """Fill ``hole`` in ``image`` (both copies owned by the job) with the cache's Inpainter."""

    def __init__(
        self, image: np.ndarray, hole: np.ndarray, cache: InpainterCache, *, state: int = 0, doc: Any = None
    ) -> None:
        super().__init__()
        self.setAutoDelete(False)  # the Python side keeps the job (and its signals) alive
        self.image = image
        self.hole = hole
        self.cache = cache
        self.state = state
        self.doc = doc
        self.signals = FillSignals()
        self._cancel = threading.Event()
        self.done = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def run(self) -> None:
        try:
            if self._cancel.is_set():
                raise engine.InpaintCancelled()
            inpainter = self.cache.get()
            self.signals.loaded.emit(inpainter)
            result = inpainter(
                self.image, self.hole, cancel=self._cancel.is_set, progress=self.signals.progress.emit
            )
            if self._cancel.is_set():
                raise engine.InpaintCancelled()
        except engine.InpaintCancelled:
            self.signals.cancelled.emit()
        except Exception as exc:  # noqa: BLE001 - reported to the user; the GUI thread must not die
            if not isinstance(exc, ValueError):  # WeightsError and bad input are expected
                traceback.print_exc()
            self.signals.failed.emit(*describe_error(exc))
        else:
            self.signals.finished.emit(result)
        finally:
            self.done.set()
