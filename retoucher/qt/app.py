"""``retoucher [PHOTO]``: start the desktop app."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QWidget

from ..bundled import sample_photo
from .binding_check import guard_none
from .settings import APPLICATION, ORGANIZATION

__all__ = ["close_on_interrupt", "run_app", "sample_photo"]

WAKE_MS = 200
"""How often the event loop lets Python run, so that its Ctrl+C handler gets a turn."""


@contextmanager
def close_on_interrupt(window: QWidget) -> Iterator[Callable[[], bool]]:
    """Ctrl+C in the terminal closes ``window`` as its close button does (unsaved work is asked
    about first): Qt's event loop never gave Python's handler a turn and the app ran on. Yields
    whether an interrupt asked for the close; the previous handler is back afterwards."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started in the background (`&`):
        yield lambda: False  # a Ctrl+C meant for the script that started it is not the app's
        return
    closed = []

    def close() -> None:
        if window.close():  # the close refused (Cancel at the question) is no interrupted end
            closed.append(True)

    def interrupted(_signum: int, _frame: object) -> None:
        QTimer.singleShot(0, close)

    timer = QTimer(window)
    timer.timeout.connect(lambda: None)  # returns to Python now and then: the handler runs
    timer.start(WAKE_MS)
    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        yield lambda: bool(closed)
    finally:
        signal.signal(signal.SIGINT, previous)
        timer.stop()


def run_app(photo: str | None = None) -> int:
    """Open the main window (with ``photo``, else the sample photo when it exists), load the
    fill's engine in the background, and run the event loop; returns the exit code."""
    guard_none()  # before the window makes its first Qt calls (PySide6 6.12.0 on Python 3.11)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName(APPLICATION)

    from .main_window import MainWindow

    window = MainWindow()
    window.restore_geometry()
    window.show()
    window.filler.warm_up()  # the model loads while the photo opens and the user marks the hole
    if photo is not None:
        window.open_path(photo)
    elif sample_photo().is_file():
        window.open_path(sample_photo(), remember=False)
    with close_on_interrupt(window) as interrupted:
        code = app.exec()
    return 130 if interrupted() else code
