"""Blocking file work (reading a photo, writing one) run off the GUI thread while the window
waits for it and keeps repainting.

A 24-megapixel PNG takes seconds to write (5 s on the 2-core development machine, 21 s at 100
megapixels): run in the GUI thread, the window froze, drew nothing over whatever covered it, and
desktops flag a window that stops answering as not responding. :func:`run_waiting` runs the work
as a :class:`~.worker.Job` in a pool thread and spins a local event loop until it is done: the
window repaints and timers and queued signals run, while the user's input waits (Qt keeps it
for when the work is done: a click meanwhile is not lost). After :data:`SHOW_AFTER_MS` a
modal, busy progress dialog says what is going on. The caller gets the work's result or its
exception, as if it had called it: a ``save()`` or ``open_path()`` still returns when the file
is written or read.

What must not run meanwhile is the caller's to hold back: the document must not change under
a write (:meth:`~.job_runner.JobRunner.held` keeps a fill that lands meanwhile for after it) and
the window must not close (it asks :attr:`Waiter.waiting`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from PySide6.QtCore import QEventLoop, QObject, Qt, QThreadPool, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QProgressDialog, QWidget

from .worker import Job, JobSignals

__all__ = ["SHOW_AFTER_MS", "Waiter"]

T = TypeVar("T")

SHOW_AFTER_MS = 400  # work that takes longer gets a progress dialog


@dataclass
class _Outcome(Generic[T]):
    value: T | None = None
    error: BaseException | None = None


class _Call(Job, Generic[T]):
    """``fn()`` in a pool thread; ``finished`` carries its :class:`_Outcome`, whatever it is."""

    def __init__(self, fn: Callable[[], T]) -> None:
        super().__init__(JobSignals())
        self._fn = fn

    def work(self) -> _Outcome[T]:
        try:
            return _Outcome(value=self._fn())
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread (a
            return _Outcome(error=exc)  # SystemExit too: uncaught, the window waited for ever


class Waiter(QObject):
    """Runs blocking work for the widget ``parent`` in a thread of its own (one at a time)."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._parent = parent
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.dialog: QProgressDialog | None = None  # shown while a long work runs
        self._waiting = False

    @property
    def waiting(self) -> bool:
        """Whether a work is running (the caller of :meth:`run` has not got its result yet)."""
        return self._waiting

    def run(self, fn: Callable[[], T], message: str) -> T:
        """``fn()``'s result (or its exception, raised here), ``fn`` run in the pool thread while
        this thread's events other than the user's input are handled; ``message`` (such as
        "Saving photo.png...") is shown in a progress dialog if it takes longer than
        :data:`SHOW_AFTER_MS`. Not re-entrant: RuntimeError while a work runs."""
        if self._waiting:
            raise RuntimeError("a file is being read or written already")
        job = _Call(fn)
        loop = QEventLoop()
        outcome: list[_Outcome[T]] = []

        def done(result: _Outcome[T]) -> None:
            outcome.append(result)
            loop.quit()

        job.signals.finished.connect(done)
        timer = QTimer(self, singleShot=True, interval=SHOW_AFTER_MS)
        timer.timeout.connect(lambda: self._show(message))
        self._waiting = True
        QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            timer.start()
            job.start_in(self.pool)
            while not outcome:
                loop.exec(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
        finally:
            timer.stop()
            timer.deleteLater()
            job.signals.finished.disconnect(done)
            if self.dialog is not None:
                self.dialog.close()
                self.dialog.deleteLater()
                self.dialog = None
            QGuiApplication.restoreOverrideCursor()
            self._waiting = False
        if outcome[0].error is not None:
            raise outcome[0].error
        return outcome[0].value  # type: ignore[return-value]

    def _show(self, message: str) -> None:
        dialog = QProgressDialog(message, "", 0, 0, self._parent)  # 0, 0: busy, no percentage
        dialog.setCancelButton(None)  # an atomic write either lands whole or not at all: no cancel
        dialog.setWindowTitle("Retoucher")
        dialog.setWindowModality(Qt.WindowModality.ApplicationModal)
        dialog.setMinimumDuration(0)
        dialog.show()
        self.dialog = dialog
