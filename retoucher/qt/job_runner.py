"""The main window's engine jobs (fills, damage searches), one at a time.

:class:`JobRunner` starts an :class:`~.worker.EngineJob` in its one pool thread, shows the status
bar's progress bar, message and busy cursor while it runs, and hands its outcome to the callbacks
given with it, only while it is the running job: a job that was ended already (the window waited
for it while closing) reports nothing. While :meth:`JobRunner.held`, an outcome waits (a file
being written from the photo, which the fill's result would change half-way).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from PySide6.QtCore import QObject, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QProgressBar, QStatusBar

from .worker import EngineJob

__all__ = ["JobRunner"]

J = TypeVar("J", bound=EngineJob[Any])


class JobRunner(QObject):
    """Signals ``busy_changed(bool)`` when a job starts or ends. :attr:`progress` is for the
    status bar."""

    busy_changed = Signal(bool)

    def __init__(self, status: QStatusBar, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)  # one engine job at a time
        self.job: EngineJob[Any] | None = None
        self._links: list[tuple[Any, Callable[..., None]]] = []  # the running job's connections
        self._held: list[Callable[[], None]] | None = None  # outcomes kept back meanwhile
        self._status = status
        self.progress = QProgressBar()
        self.progress.setFixedWidth(160)
        self.progress.setVisible(False)

    @property
    def busy(self) -> bool:
        return self.job is not None

    def start(
        self,
        job: J,
        message: str,
        *,
        finished: Callable[[J, Any], None],
        failed: Callable[[J, str, str], None],
        cancelled: Callable[[J], None],
    ) -> J:
        """Run ``job`` (the caller checked :attr:`busy`), showing ``message`` meanwhile; its
        outcome goes to one of the callbacks, with the job."""
        if self.busy:
            raise RuntimeError("an engine job is running already")
        s = job.signals
        self._links = [
            (s.progress, lambda f, j=job: self._on_progress(j, f)),
            (s.finished, lambda r, j=job: self._report(j, finished, r)),
            (s.failed, lambda t, m, j=job: self._report(j, failed, t, m)),
            (s.cancelled, lambda j=job: self._report(j, cancelled)),
        ]
        for signal, slot in self._links:
            signal.connect(slot)
        self.job = job
        self.progress.setRange(0, 0)  # busy until the engine reports progress
        self.progress.setVisible(True)
        self._status.showMessage(message)
        QGuiApplication.setOverrideCursor(Qt.CursorShape.BusyCursor)
        self.busy_changed.emit(True)
        job.start_in(self.pool)
        return job

    def cancel(self) -> bool:
        """Ask the running job to stop; False when none runs."""
        if self.job is None:
            return False
        self.job.cancel()
        return True

    def wait(self, msecs: int) -> None:
        """Wait for the worker (closing the window), then end a job whose outcome is not in."""
        self.pool.waitForDone(msecs)
        if self.job is not None:
            self._end(self.job)

    def _end(self, job: EngineJob[Any]) -> bool:
        """End ``job`` if it is the running one (False: an old job, ignore its outcome)."""
        if job is not self.job:
            return False
        # the slots hold the job, and the job's signals (a QObject) hold the slots: a cycle through
        # Qt that Python's collector cannot see, so every job stayed alive with its photo and
        # hole (96 MB a fill of a 24-megapixel photo)
        for signal, slot in self._links:
            signal.disconnect(slot)
        self._links = []
        self.job = None
        self.progress.setVisible(False)
        QGuiApplication.restoreOverrideCursor()
        self.busy_changed.emit(False)
        return True

    @contextmanager
    def held(self) -> Iterator[None]:
        """Keep a job's outcome back meanwhile (it is reported from the event loop once the block
        has ended): the photo must not change under work that reads it outside this thread (a
        file being written)."""
        if self._held is not None:  # held already: the outer block reports
            yield
            return
        self._held = []
        try:
            yield
        finally:
            waiting, self._held = self._held, None
            for report in waiting:  # from the event loop: after the caller's own work, and an
                QTimer.singleShot(0, report)  # error in applying a fill is not the caller's

    def _report(self, job: J, callback: Callable[..., None], *args: object) -> None:
        if self._held is not None:
            self._held.append(lambda: self._report(job, callback, *args))
            return
        if self._end(job):
            callback(job, *args)

    def _on_progress(self, job: EngineJob[Any], fraction: float) -> None:
        if job is self.job:
            self.progress.setRange(0, 100)
            self.progress.setValue(round(100 * fraction))
