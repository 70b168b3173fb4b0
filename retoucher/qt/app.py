"""``retoucher [PHOTO]``: start the desktop app."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication

from ..bundled import sample_photo
from .binding_check import guard_none
from .settings import APPLICATION, ORGANIZATION

__all__ = ["run_app", "sample_photo"]


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
    return app.exec()
