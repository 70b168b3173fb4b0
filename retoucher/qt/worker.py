"""The one worker pattern of the app: a :class:`Job` runs off the GUI thread in a ``QThreadPool``.

A job does its work in :meth:`Job.work` and reports through its ``signals`` object (a QObject
living in the GUI thread, so every signal arrives there as a queued call): ``finished(result)``,
``failed(title, message)`` or ``cancelled()``, exactly one of them; subclasses add ``progress``
(and whatever else they report) to their signals class. :meth:`Job.cancel` asks the work to
stop; the work polls :attr:`Job.cancel_requested` (or hands ``cancel_event.is_set`` to the
engine) and raises ``engine.InpaintCancelled``. An exception becomes a title and a message for
the user in one place, :func:`describe_error` (each kind of job words it with an :class:`ErrorWording`).

An engine (the Inpainter, the damage detector) is built lazily, in the worker thread (loading a
model can take seconds), by an :class:`EngineCache`, and kept for the next job; an
:class:`EngineJob` gets it from there and reports ``loaded`` and ``progress``.
"""

from __future__ import annotations

import contextlib
import os
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

import engine

if TYPE_CHECKING:  # pragma: no cover
    from ..document import Document

__all__ = [
    "FILL_WORDING",
    "EngineCache",
    "EngineJob",
    "EngineSignals",
    "ErrorWording",
    "Job",
    "JobSignals",
    "describe_error",
]

E = TypeVar("E")


@dataclass(frozen=True)
class ErrorWording:
    """What :func:`describe_error` tells the user about one kind of job: the titles for an
    unusable weight file (``no_engine``, and ``no_engine_hint``, what to do about it), for bad
    input (``bad_input``) and for anything else (``failed``), and the ``out_of_memory`` message."""

    no_engine: str
    no_engine_hint: str
    bad_input: str
    out_of_memory: str
    failed: str


FILL_WORDING = ErrorWording(
    no_engine="No usable model",
    no_engine_hint="Choose a weights file (.safetensors) in Edit \u25b8 Preferences, "
    "or train and export one with retoucher-train (see the README).",
    bad_input="Cannot fill",
    out_of_memory="The fill ran out of memory. Try a smaller hole, or the CPU device.",
    failed="Fill failed",
)


def describe_error(exc: BaseException, wording: ErrorWording = FILL_WORDING) -> tuple[str, str]:
    """(title, message) for an exception from loading or running an engine, in ``wording``
    (default: the fill's)."""
    if isinstance(exc, engine.WeightsError):
        return (wording.no_engine, f"{exc}\n\n{wording.no_engine_hint}")
    if isinstance(exc, engine.DeviceError):  # its advice is the command line's (--device)
        return (
            "No usable device",
            f"{exc.reason[0].upper()}{exc.reason[1:]}.\n\nChoose Automatic or CPU in Preferences "
            "(Device). Nothing was changed.",
        )
    if isinstance(exc, ValueError):
        return (wording.bad_input, str(exc))
    if isinstance(exc, MemoryError):
        return ("Out of memory", wording.out_of_memory)
    return (wording.failed, f"{type(exc).__name__}: {exc}")


def applying_error(exc: BaseException) -> str:
    """What went wrong applying a job's outcome on the window's thread, in a sentence; an error of
    an unexpected kind (a bug) also prints its traceback, as a failing job does."""
    if isinstance(exc, MemoryError):
        return "There was not enough memory to apply it: close other programs, or work on a smaller part."
    if isinstance(exc, (ValueError, RuntimeError)):
        return str(exc)
    traceback.print_exception(exc)
    return f"{type(exc).__name__}: {exc}"


class JobSignals(QObject):
    """What every job reports; a subclass adds its own ``progress`` signal."""

    finished = Signal(object)  # the work's result
    failed = Signal(str, str)  # title, message
    cancelled = Signal()


class Job(QRunnable):
    """Runs :meth:`work` in a pool thread and reports its outcome through ``signals``.

    The Python side keeps the job (and its signals) alive: auto-delete is off. ``done`` is set
    when :meth:`run` has returned, whatever the outcome. Start it with :meth:`start_in`.
    """

    def __init__(self, signals: JobSignals) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.signals = signals
        self.cancel_event = threading.Event()  # its ``is_set`` is the engine's ``cancel`` callable
        self.done = threading.Event()

    def start_in(self, pool: QThreadPool) -> None:
        """Run in ``pool``. Its :meth:`run` is given as a callable, which the pool lets go when it
        returns: a runnable started with auto-delete off stays referenced by the pool for the
        pool's life (PySide keeps it), and every fill job stayed in memory with its copy of the
        photo and hole (96 MB a fill of a 24-megapixel photo)."""
        pool.start(self.run)

    def cancel(self) -> None:
        """Ask the work to stop (it stops at its next check)."""
        self.cancel_event.set()

    @property
    def cancel_requested(self) -> bool:
        return self.cancel_event.is_set()

    def work(self) -> object:
        """The job itself, in the pool thread: returns the result for ``finished``; raises
        ``engine.InpaintCancelled`` when cancelled, anything else when it fails."""
        raise NotImplementedError

    def describe(self, exc: Exception) -> tuple[str, str]:
        """(title, message) for ``failed``; :func:`describe_error` unless a job knows better."""
        return describe_error(exc)

    def run(self) -> None:
        try:
            result = self.work()
        except engine.InpaintCancelled:
            self._report(self.signals.cancelled)
        except Exception as exc:  # noqa: BLE001 - reported to the user; the GUI thread must not die
            if not isinstance(exc, ValueError):  # WeightsError and bad input are expected
                traceback.print_exc()
            self._report(self.signals.failed, *self.describe(exc))
        else:
            self._report(self.signals.finished, result)
        finally:
            self.done.set()

    @staticmethod
    def _report(signal: Any, *args: object) -> None:
        """Emit the outcome; nothing when the window that would take it is gone (closed during
        the job: "RuntimeError: Signal source has been deleted" on the terminal at exit)."""
        with contextlib.suppress(RuntimeError):
            signal.emit(*args)


Stamp = tuple[int, int, int]


def file_stamp(path: str | os.PathLike[str]) -> Stamp | None:
    """What changes when a file is written again (in place or by a rename over it); None when it
    cannot be read. (The weight files the engines were built from; the photo an Open reads.)"""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


class EngineCache(Generic[E]):
    """One engine for the chosen weights file and device, built on first use by
    ``factory(weights_or_None, device)`` (thread-safe). An engine is never changed once built:
    another choice builds another (a job running with the old one keeps it). Building one (a
    model loading: seconds) never holds up :meth:`configure` or :attr:`loaded`, which the GUI
    thread calls: only one build runs at a time, and one made for a choice changed meanwhile is
    handed to its caller and not kept. ``watch(weights_or_None)``: the file an engine is built
    from; one written again since (a model trained further and exported over the same file) is
    loaded again by the next :meth:`get` (it kept filling with the old model until a restart)."""

    def __init__(
        self,
        weights: str | None,
        device: str,
        factory: Callable[[str | None, str], E],
        watch: Callable[[str | None], Path] | None = None,
    ) -> None:
        self._lock = threading.Lock()  # the choice and the engine: held for moments only
        self._building = threading.Lock()  # one build at a time
        self._factory = factory
        self._watch = watch
        self._key = (weights or None, device)
        self._engine: E | None = None
        self._stamp: Stamp | None = None  # the watched file's when the engine was built

    def configure(self, weights: str | None, device: str) -> None:
        """Use another weights file or device from now on (drops a loaded engine if it differs)."""
        key = (weights or None, device)
        with self._lock:
            if key != self._key:
                self._key = key
                self._engine = None

    def set(self, engine: E) -> None:
        """Use this ready engine (tests, scripts) until :meth:`configure` changes the choice
        (no file is watched for it)."""
        with self._lock:
            self._engine = engine
            self._stamp = None

    def _watched(self, weights: str | None) -> Stamp | None:
        if self._watch is None:
            return None
        try:
            return file_stamp(self._watch(weights))
        except Exception:  # noqa: BLE001 - no file to watch (a missing bundled model): the build says
            return None

    def _changed(self, weights: str | None, stamp: Stamp | None) -> bool:
        """The file of the engine built at ``stamp`` was written again since (a file that cannot
        be read now keeps the engine: the next build would fail where this one works)."""
        if stamp is None:
            return False
        now = self._watched(weights)
        return now is not None and now != stamp

    @property
    def loaded(self) -> E | None:
        """The engine if it is loaded already and its file was not written again since, else
        None (never loads)."""
        with self._lock:
            key, engine, stamp = self._key, self._engine, self._stamp
        return None if engine is None or self._changed(key[0], stamp) else engine

    @property
    def weights(self) -> str | None:
        return self._key[0]

    @property
    def device(self) -> str:
        return self._key[1]

    def get(self) -> E:
        """The engine, loading it now if needed; raises ``engine.WeightsError`` or
        ``ValueError`` (unusable device) when it cannot be built."""
        with self._lock:
            key, engine, stamp = self._key, self._engine, self._stamp
        if engine is not None and not self._changed(key[0], stamp):
            return engine
        with self._building:  # a build in progress (the app's warm-up) ends first: no second one
            with self._lock:
                if self._engine is not None and self._engine is not engine:
                    return self._engine  # built meanwhile
                key = self._key
            stamp = self._watched(key[0])  # before the read: a write during it is seen next time
            built = self._factory(*key)
            with self._lock:
                if self._key == key and self._engine is engine:
                    self._engine, self._stamp = built, stamp
            return built


class EngineSignals(JobSignals):
    loaded = Signal(object)  # the engine, once it is ready
    progress = Signal(float)  # 0..1
    # finished(result), failed(title, message), cancelled(): see JobSignals


class EngineJob(Job, Generic[E]):
    """Runs the ``cache``'s engine (loading it first if needed) on data the job owns.
    ``state`` and ``doc``: the photo's image state and document when the job was made, so that
    the result is applied only to the photo it was made from, unchanged. Subclasses implement
    :meth:`compute`."""

    signals: EngineSignals

    def __init__(self, cache: EngineCache[E], *, state: int = 0, doc: Document | None = None) -> None:
        super().__init__(EngineSignals())
        self.cache = cache
        self.state = state
        self.doc = doc

    def compute(self, engine: E) -> object:
        """The work with the ready engine (pass it ``cancel_event.is_set`` and
        ``signals.progress.emit``)."""
        raise NotImplementedError

    def work(self) -> object:
        if self.cancel_requested:
            raise engine.InpaintCancelled()
        ready = self.cache.get()
        self.signals.loaded.emit(ready)
        result = self.compute(ready)
        if self.cancel_requested:  # cancelled after the engine's last check: drop the result
            raise engine.InpaintCancelled()
        return result
