"""What the engine and Retoucher log as warnings, gathered to be shown (the command lines print
them as they come; the app says them in its status bar or a batch's summary)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["LOGGERS", "logged_warnings"]

LOGGERS = ("engine", "retoucher")
"""The loggers whose warnings are gathered (and their children: ``engine.imageio``,
``retoucher.batch``)."""


@contextmanager
def logged_warnings() -> Iterator[list[str]]:
    """The warnings logged meanwhile in this thread (on top of wherever logging sends them); a
    fill or a detection logging in another thread at the same time is not this thread's to say."""
    said: list[str] = []
    here = threading.get_ident()

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.thread == here:
                said.append(record.getMessage())

    handler = Collect(logging.WARNING)
    loggers = [logging.getLogger(name) for name in LOGGERS]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield said
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
