"""Simulated pointer input for the GUI tests (shared by the canvas and split-view tests)."""

from __future__ import annotations

import math

from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QWidget


def view_point(window, x: float, y: float) -> QPoint:
    """Viewport coordinates of the screen pixel that holds image point (x, y) in ``window``'s
    canvas (the pointer on that pixel points at its centre: ``ZoomView.pointed_at``)."""
    p = window.canvas.from_image(x, y)
    return QPoint(math.floor(p.x()), math.floor(p.y()))


def drag_in_view(viewport: QWidget, points: list[QPoint], button=Qt.MouseButton.LeftButton) -> None:
    """Press at the first viewport point, move through the others, release at the last."""
    QTest.mousePress(viewport, button, Qt.KeyboardModifier.NoModifier, points[0])
    for p in points[1:]:
        QTest.mouseMove(viewport, p)
    QTest.mouseRelease(viewport, button, Qt.KeyboardModifier.NoModifier, points[-1])


def drag(window, points: list[tuple[float, float]], button=Qt.MouseButton.LeftButton) -> None:
    """The same drag, through image points of ``window``'s canvas."""
    drag_in_view(window.canvas.viewport(), [view_point(window, *p) for p in points], button)
