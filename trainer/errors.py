"""An error as the command line says it: one line."""

from __future__ import annotations

import re

__all__ = ["said"]


def said(exc: BaseException) -> str:
    """``exc`` in one line: a file system's error (a folder that is a file, a full disk, no
    permission: they ended in tracebacks) names the path and the reason; one raised in a data
    loader's worker, whose message is the worker's whole traceback ("Caught UnreadableImage in
    DataLoader worker process 0. Original Traceback ..."), is its last line, the error itself."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror}"
    text = str(exc)
    if "Original Traceback" in text:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        last = lines[-1] if lines else text
        return re.sub(r"^(?:[a-z_]\w*\.)+[A-Z]\w*: ", "", last) or last  # "trainer.data.UnreadableImage: "
    return text
