"""Where the keyboard goes after a click on a number box beside the photo: back to the canvas,
which owns Space (pan), \\ (compare), the one-key tools and the undo keys."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QKeyEvent, QMouseEvent
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QWidget

__all__ = ["edits_a_number", "hand_keys_back"]

K = Qt.Key
_NUMBER_KEYS = frozenset(
    [getattr(K, f"Key_{d}") for d in range(10)]
    + [K.Key_Backspace, K.Key_Delete, K.Key_Left, K.Key_Right, K.Key_Home, K.Key_End]
    + [K.Key_Up, K.Key_Down, K.Key_PageUp, K.Key_PageDown, K.Key_Return, K.Key_Enter]
    + [K.Key_Tab, K.Key_Backtab, K.Key_Escape, K.Key_Minus, K.Key_Plus]
)
"""Keys that type, correct or step a number."""
_MODIFIER_KEYS = frozenset([K.Key_Shift, K.Key_Control, K.Key_Alt, K.Key_Meta, K.Key_AltGr])
"""Pressed alone (with whatever flags the platform gives them), they change nothing yet."""
_NUMBER_CHORDS = frozenset(
    [K.Key_A, K.Key_C, K.Key_V, K.Key_X, K.Key_Left, K.Key_Right, K.Key_Home, K.Key_End]
    + [K.Key_Backspace, K.Key_Delete]
)
"""With Ctrl (and Shift: selecting): select all, copy, paste, cut, a word left or right, the
start or end, delete a word."""


def edits_a_number(event: QKeyEvent) -> bool:
    """Whether the key works on the number typed in a number box (digits, corrections, the
    arrows, Enter, Esc, Ctrl+A/C/V/X); any other key (Ctrl+Z, B, E, ], Space, \\) is the
    window's."""
    key = event.key()
    if key in _MODIFIER_KEYS:
        return True
    mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
    shift, ctrl = Qt.KeyboardModifier.ShiftModifier, Qt.KeyboardModifier.ControlModifier
    if mods in (Qt.KeyboardModifier.NoModifier, shift):
        return key in _NUMBER_KEYS
    if mods in (ctrl, ctrl | shift):
        return key in _NUMBER_CHORDS and not (
            mods == ctrl | shift and key in (K.Key_A, K.Key_C, K.Key_V, K.Key_X)
        )
    return False


class _KeysBack(QObject):
    """A click on a spin box's arrows hands the keyboard back to ``target``; a click in its
    number field keeps it, for typing, until a key that is no part of a number: the number
    typed so far is taken and that key goes to the window (typed 25, then Ctrl+Z undid the
    typing, not the last stroke; E, ] and Space did nothing)."""

    def __init__(self, spin: QAbstractSpinBox, target: QWidget) -> None:
        super().__init__(spin)
        self._spin, self._target = spin, target

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if (
            kind == QEvent.Type.MouseButtonRelease
            and isinstance(event, QMouseEvent)
            and not self._spin.lineEdit().geometry().contains(event.position().toPoint())
        ):
            QTimer.singleShot(0, self._target.setFocus)
        elif kind in (QEvent.Type.ShortcutOverride, QEvent.Type.KeyPress) and isinstance(event, QKeyEvent):
            if edits_a_number(event):
                return False
            self._hand_back()
            if kind == QEvent.Type.KeyPress:  # no shortcut (Space, \\): the canvas's own key
                copy = QKeyEvent(
                    event.type(),
                    event.key(),
                    event.modifiers(),
                    event.text(),
                    event.isAutoRepeat(),
                    event.count(),
                )
                QApplication.sendEvent(self._target, copy)
            # a ShortcutOverride not claimed by the box: the window's shortcut (Ctrl+Z, E, ]) fires
            return True
        return False

    def _hand_back(self) -> None:
        self._spin.interpretText()  # the number typed so far counts
        self._target.setFocus()


def hand_keys_back(spin: QAbstractSpinBox, target: QWidget) -> None:
    """``spin`` gives the keyboard back to ``target`` when a number is typed (Enter), when its
    arrows are clicked, when a key that is no part of a number is pressed in it, and never takes
    it from the wheel."""
    # Enter (the box still has the focus); not when it lost the focus: Tab out of it went back to
    # the canvas instead of the next control
    spin.editingFinished.connect(lambda: spin.hasFocus() and target.setFocus())
    spin.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    spin.installEventFilter(_KeysBack(spin, target))
