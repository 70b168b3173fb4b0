"""SIGINT and SIGTERM as a request to stop at the next good point (a training run after its
step, with a checkpoint; a batch after its photo, with its summary) instead of an exception in
the middle of the work. Used by the trainer and by ``retoucher batch``/``detect``."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["StopRequest"]


class StopRequest:
    """While entered, SIGINT and SIGTERM set :attr:`requested` (and :attr:`why`, the signal's
    name) and call ``on_request(why)`` the first time. With ``second_interrupts``, a second signal
    stops at once (KeyboardInterrupt), for a user who will not wait. Outside the main thread
    (where handlers cannot be set) it changes nothing, nor for a signal the process ignores (a
    background job of a shell script: the terminal's Ctrl+C is for the foreground one); the old
    handlers are restored on exit."""

    def __init__(
        self, *, second_interrupts: bool = False, on_request: Callable[[str], None] | None = None
    ) -> None:
        self.requested = False
        self.why = ""
        self._second_interrupts = second_interrupts
        self._on_request = on_request
        self._old: dict[signal.Signals, Callable[[int, FrameType | None], Any] | int | None] = {}

    def __call__(self) -> bool:
        """Whether a stop was asked for (a ``cancel`` callback)."""
        return self.requested

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.requested and self._second_interrupts:
            raise KeyboardInterrupt
        first = not self.requested
        self.requested = True
        self.why = signal.Signals(signum).name
        if first and self._on_request is not None:
            self._on_request(self.why)

    def __enter__(self) -> StopRequest:
        for sig in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(sig) == signal.SIG_IGN:  # a job started with & by a shell: left deaf
                continue
            with contextlib.suppress(ValueError):  # not in the main thread
                self._old[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *_exc: object) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        self._old.clear()
