"""A Qt binding that loses references to ``None``, found and made harmless before the app starts.

PySide6 / shiboken6 6.12.0 take one reference away from ``None`` with every call of a Qt method
that returns nothing (``setEnabled``, ``setText``, ``setPos``, ``parent()`` returning no parent,
...) without having given it. Python 3.12 made ``None`` immortal (PEP 683), so there nothing
happens; on Python 3.11 ``None``'s count runs down with every pointer move over the canvas (about
16 calls each) and CPython aborts the process within a minute of use ("Fatal Python error:
none_dealloc: deallocating None"), unsaved work lost. Measured here: ``sys.getrefcount(None)``
5,259 -> 1,261 over 4,000 ``QAction.setEnabled`` calls with 6.12.0, unchanged with 6.11.3.

``pyproject.toml`` keeps 6.12.0 out on Python 3.11, but a binding may come from elsewhere (an
environment made before, a distribution's package). :func:`guard_none` measures the loss with a
few hundred calls (well under a millisecond) and, where it finds one on a Python whose ``None`` is
mortal, does what Python 3.12 does: it gives ``None`` a reference count so large (2**60) that no
session can run it down, and says which binding to install. ``None`` is never freed by CPython
anyway (its deallocation is the fatal error above), so the count only decides whether the process
aborts.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable

__all__ = ["PROBE_CALLS", "guard_none", "none_references_lost"]

PROBE_CALLS = 256  # void Qt calls the probe makes; a leaking binding loses one reference each
_IMMORTAL = 1 << 60  # what "never reaches 0" means here (Python 3.12's immortal count is 2**32-1)


def _void_qt_call() -> Callable[[], None]:
    from PySide6.QtCore import QObject

    probe = QObject()
    return lambda: probe.setObjectName("probe")  # returns nothing: the leaking path


def none_references_lost(call: Callable[[], object] | None = None, calls: int = PROBE_CALLS) -> int:
    """How many references to ``None`` ``calls`` runs of ``call`` (default: a void method of a
    ``QObject``) lose; 0 for a sound binding (and always on Python >= 3.12, where ``None`` is
    immortal and its count does not move)."""
    call = _void_qt_call() if call is None else call
    call()  # a first call may cache something
    before = sys.getrefcount(None)
    for _ in range(calls):
        call()
    return before - sys.getrefcount(None)


def guard_none(call: Callable[[], object] | None = None, warn: Callable[[str], object] | None = None) -> bool:
    """Where the Qt binding loses references to ``None`` (nearly one per call of ``call``, default
    a void ``QObject`` method) and ``None`` is mortal (CPython before 3.12), make its count
    unreachably large and tell ``warn`` (default: stderr) which binding to install; returns whether
    it had to. Call it before the app makes its first Qt calls."""
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return False
    lost = none_references_lost(call)
    if lost < PROBE_CALLS // 2:  # a sound binding: 0 (another thread may move it a little)
        return False
    ctypes.c_ssize_t.from_address(id(None)).value += _IMMORTAL  # ob_refcnt, the object's first field
    message = (
        f"retoucher: this Qt binding loses a reference to None with every Qt call ({lost} of "
        f"{PROBE_CALLS} calls; PySide6 6.12.0 on Python {sys.version_info.major}.{sys.version_info.minor} "
        "does), which would abort the app within a minute; worked around for this session. "
        "Install another PySide6: pip install 'PySide6-Essentials!=6.12.0'"
    )
    (warn or (lambda text: print(text, file=sys.stderr)))(message)
    return True
