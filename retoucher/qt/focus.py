"""Where the keyboard goes after a click on a number box beside the photo: back to the canvas,
which owns Space (pan), \\ (compare), the one-key tools and the undo keys."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QAbstractSpinBox, QWidget

__all__ = ["hand_keys_back"]


class _KeysBackAfterArrows(QObject):
    """A click on a spin box's arrows hands the keyboard back to ``target``; a click in its
    number field keeps it, for typing."""

    def __init__(self, spin: QAbstractSpinBox, target: QWidget) -> None:
        super().__init__(spin)
        self._spin, self._target = spin, target

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            event.type() == QEvent.Type.MouseButtonRelease
            and isinstance(event, QMouseEvent)
            and not self._spin.lineEdit().geometry().contains(event.position().toPoint())
        ):
            QTimer.singleShot(0, self._target.setFocus)
        return False


def hand_keys_back(spin: QAbstractSpinBox, target: QWidget) -> None:
    """``spin`` gives the keyboard back to ``target`` when a number is typed (Enter), when its
    arrows are clicked, and never takes it from the wheel."""
    spin.editingFinished.connect(target.setFocus)
    spin.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    spin.installEventFilter(_KeysBackAfterArrows(spin, target))
