"""Simulated pointer input for the GUI tests (shared by the canvas and split-view tests)."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QWidget

from retoucher.brush import TIE_BREAK


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


def capsule(shape: tuple[int, int], x0: float, y0: float, x1: float, y1: float, r: float) -> np.ndarray:
    """Reference for a brush segment, independent of the app's code: the pixels of a ``shape``
    mask whose centre is within ``r`` of the segment (nudged by the brush's documented
    tie-break, ``retoucher.brush.TIE_BREAK``)."""
    x0, y0, x1, y1 = (v + TIE_BREAK for v in (x0, y0, x1, y1))
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64) + 0.5
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / max(dx * dx + dy * dy, 1e-12), 0, 1)
    return (xx - x0 - t * dx) ** 2 + (yy - y0 - t * dy) ** 2 <= r * r
