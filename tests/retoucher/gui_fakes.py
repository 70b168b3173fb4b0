"""Stand-ins for the engine in the GUI tests: an instant fill, and the gate that a fake engine
waits at pass by pass so that a test knows where the worker is (nothing is timed)."""

from __future__ import annotations

import math
import threading

HANG_S = 20.0  # bounds a hang only; nothing waits this long when the code works
HANG_MS = int(HANG_S * 1000)


class Gate:
    """A fake engine calls :meth:`pass_gate` in each of its passes, in the worker thread; it
    waits there until the test lets it through (:meth:`step`, :meth:`finish`)."""

    def __init__(self) -> None:
        self._gate = threading.Condition()
        self._reached = 0  # passes that came to the gate, over all calls
        self._allowed = 0.0  # passes let through, over all calls

    def step(self, passes: int = 1) -> None:
        """Let ``passes`` more passes through the gate."""
        with self._gate:
            self._allowed += passes
            self._gate.notify_all()

    def finish(self) -> None:
        """Open the gate for good: every pass from now on runs straight through."""
        self.step(math.inf)

    def at_gate(self) -> int:
        with self._gate:
            return self._reached

    def wait_at_gate(self, qtbot, count: int) -> None:
        """Run the GUI event loop until ``count`` passes (over all calls) came to the gate."""
        qtbot.waitUntil(lambda: self.at_gate() >= count, timeout=HANG_MS)

    def pass_gate(self) -> None:
        """In the worker: arrive at the gate and wait until the test lets this pass through."""
        with self._gate:
            self._reached += 1
            self._gate.notify_all()
            if not self._gate.wait_for(lambda: self._allowed >= self._reached, timeout=HANG_S):
                raise TimeoutError("the test never let the fake engine through its gate")


class FlatFill:
    """Instant stand-in for the Inpainter: the hole becomes mid-grey."""

    name = "flat"
    device_name = "CPU"
    info = None

    def __call__(self, image, hole, *, cancel=None, progress=None, texture=None, mirror=None, hidden=None):
        out = image.copy()
        out[hole] = 128
        return out


class GatedFill(Gate):
    """An Inpainter that waits at the gate in each call, whatever ``cancel`` says (a model
    loading, one large fill on a CPU), then paints the hole mid-grey."""

    name = "gated fill"
    device_name = "CPU"
    info = None

    def __call__(self, image, hole, *, cancel=None, progress=None, texture=None, mirror=None, hidden=None):
        self.pass_gate()
        return FlatFill()(image, hole)
