"""The one worker pattern of the app: a :class:`Job` runs off the GUI thread in a ``QThreadPool``.

A job does its work in :meth:`Job.work` and reports through its ``signals`` object (a QObject
living in the GUI thread, so every signal arrives there as a queued call): ``finished(result)``,
``failed(title, message)`` or ``cancelled()``, exactly one of them; subclasses add ``progress``
(and whatever else they report) to their signals class. :meth:`Job.cancel` asks the work to
stop; the work polls :attr:`Job.cancel_requested` (or hands ``cancel_event.is_set`` to the
engine) and raises ``engine.InpaintCancelled``. An exception becomes a title and a message for
the user in one place, :func:`describe_error`.
"""

from __future__ import annotations

import threading
import traceback

from PySide6.QtCore import QObject, QRunnable, Signal

import engine

__all__ = ["Job", "JobSignals", "describe_error"]


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


class JobSignals(QObject):
    """What every job reports; a subclass adds its own ``progress`` signal."""

    finished = Signal(object)  # the work's result
    failed = Signal(str, str)  # title, message
    cancelled = Signal()


class Job(QRunnable):
    """Runs :meth:`work` in a pool thread and reports its outcome through ``signals``.

    The Python side keeps the job (and its signals) alive: auto-delete is off. ``done`` is set
    when :meth:`run` has returned, whatever the outcome.
    """

    def __init__(self, signals: JobSignals) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.signals = signals
        self.cancel_event = threading.Event()  # its ``is_set`` is the engine's ``cancel`` callable
        self.done = threading.Event()

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
            self.signals.cancelled.emit()
        except Exception as exc:  # noqa: BLE001 - reported to the user; the GUI thread must not die
            if not isinstance(exc, ValueError):  # WeightsError and bad input are expected
                traceback.print_exc()
            self.signals.failed.emit(*self.describe(exc))
        else:
            self.signals.finished.emit(result)
        finally:
            self.done.set()
