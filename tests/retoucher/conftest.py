"""Shared GUI fixture: a shown, active main window with a settings file of its own."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest


@pytest.fixture
def shown_window(qtbot, tmp_path):
    """``shown_window(document, cache=None, size=(1000, 700), detectors=None) -> MainWindow``:
    the window shown and active with ``document`` open; an inpainter ``cache`` and a damage
    ``detectors`` cache without an engine unless given (a test that reaches for that engine
    fails, even though the worker turns the error into a message box). Unsaved changes are
    discarded when a test closes or replaces a photo."""
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QMessageBox

    from retoucher.qt.damage_worker import DetectorCache
    from retoucher.qt.fill_worker import InpainterCache
    from retoucher.qt.main_window import MainWindow
    from retoucher.qt.settings import Settings

    engine_asked: list[tuple[object, str]] = []
    windows: list[MainWindow] = []

    def no_engine(weights, device):
        engine_asked.append((weights, device))
        raise AssertionError("these tests never run the engine")

    def make(document, cache=None, size=(1000, 700), detectors=None):
        w = MainWindow(
            Settings.from_file(tmp_path / "settings.ini"),
            cache or InpainterCache(factory=no_engine),
            detectors=detectors or DetectorCache(factory=no_engine),
        )
        windows.append(w)
        w.ask_unsaved_changes = lambda: QMessageBox.StandardButton.Discard
        qtbot.addWidget(w)
        w.resize(*size)
        w.show()
        assert QTest.qWaitForWindowExposed(w)
        w.activateWindow()
        assert QTest.qWaitForWindowActive(w)
        w.set_document(document)
        return w

    yield make
    for w in windows:
        w.jobs.wait(30000)  # a job still running could yet ask for the engine
    assert engine_asked == [], "a test without an engine started a fill or a damage search"


@pytest.fixture
def noise_window_at_100(shown_window):
    """``noise_window_at_100(height, width, seed) -> MainWindow``: a random-noise photo shown at
    100 % and centred, for tests that place the pointer in photo pixels."""
    import numpy as np
    from PySide6.QtWidgets import QApplication

    from retoucher.document import Document

    def make(height, width, seed):
        rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
        w = shown_window(Document(rgb))
        w.canvas.set_zoom(1.0)
        w.canvas.centerOn(width / 2, height / 2)
        QApplication.processEvents()
        return w

    return make
