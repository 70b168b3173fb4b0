"""A Qt binding that loses references to None (PySide6 6.12.0 on Python 3.11) is kept out and,
where it is installed all the same, made harmless before the app starts."""

from __future__ import annotations

import ctypes
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6.QtGui import QAction

import retoucher.qt.app as app_module
from retoucher.qt import binding_check
from retoucher.qt.binding_check import PROBE_CALLS, guard_none, none_references_lost

MORTAL_NONE = sys.implementation.name == "cpython" and sys.version_info < (3, 12)
_count = ctypes.c_ssize_t.from_address(id(None))  # None's ob_refcnt on CPython


def _leaking_call() -> None:
    """What PySide6 6.12.0 does on each void call: one reference to None dropped that it never
    took (a py_object holds one reference; Py_DecRef drops a second)."""
    ctypes.pythonapi.Py_DecRef(ctypes.py_object(None))


@pytest.mark.skipif(not MORTAL_NONE, reason="None is immortal from Python 3.12 on")
def test_the_installed_binding_keeps_none_alive(qapp):
    """The bug itself: with PySide6 6.12.0 on Python 3.11, 4,000 void Qt calls took 4,000
    references from None (the window aborted after under 1,000 pointer moves)."""
    action = QAction("x")
    assert none_references_lost(lambda: action.setEnabled(True), calls=4000) == 0
    assert none_references_lost() == 0
    assert not guard_none()  # nothing to work around


@pytest.mark.skipif(not MORTAL_NONE, reason="None is immortal from Python 3.12 on")
def test_a_leaking_binding_is_found_and_none_made_unreachable():
    warned = []
    before = sys.getrefcount(None)
    try:
        assert guard_none(_leaking_call, warned.append)
        assert sys.getrefcount(None) > before + 2**59  # no session can run it down
    finally:  # give back what the stand-in took and what the guard added
        _count.value += PROBE_CALLS + 1 - binding_check._IMMORTAL
    assert abs(sys.getrefcount(None) - before) < 100
    assert len(warned) == 1 and "PySide6-Essentials!=6.12.0" in warned[0]
    assert f"{PROBE_CALLS} of {PROBE_CALLS} calls" in warned[0]


@pytest.mark.skipif(not MORTAL_NONE, reason="None is immortal from Python 3.12 on")
def test_the_probe_counts_what_a_call_loses():
    try:
        assert none_references_lost(_leaking_call, calls=50) == 50
    finally:
        _count.value += 51
    assert none_references_lost(lambda: None, calls=50) == 0


def test_immortal_none_is_left_alone(monkeypatch):
    """From Python 3.12 on (or another implementation) there is nothing to measure or change."""
    monkeypatch.setattr(binding_check.sys, "version_info", (3, 12, 0))
    called = []
    assert not guard_none(lambda: called.append(1))
    assert not called


def test_run_app_guards_none_before_it_makes_the_window(qapp, monkeypatch):
    order = []
    monkeypatch.setattr(app_module, "guard_none", lambda: order.append("guard"))

    class Stop(Exception):
        pass

    def no_window(*args, **kwargs):
        order.append("window")
        raise Stop

    import retoucher.qt.main_window as main_window

    monkeypatch.setattr(main_window, "MainWindow", no_window)
    with pytest.raises(Stop):
        app_module.run_app(None)
    assert order == ["guard", "window"]
