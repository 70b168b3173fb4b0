"""The canvas's own keys, modifiers and mouse controls (those that are not menu actions): the
canvas reads its keys and wheel modifiers from here, and Help > Keyboard Shortcuts lists
:func:`canvas_controls`, so the list and the behaviour cannot drift apart."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence

from .tools import TOOL_KEYS, UNDO_COMMAND

__all__ = [
    "COMPARE_KEY",
    "PAN_KEY",
    "SIDEWAYS_MODIFIER",
    "ZOOM_MODIFIER",
    "canvas_controls",
    "key_text",
]

PAN_KEY = Qt.Key.Key_Space
"""Held: a left drag pans instead of painting."""
COMPARE_KEY = Qt.Key.Key_Backslash
"""Held: the original photo shows instead of the retouched one."""
ZOOM_MODIFIER = Qt.KeyboardModifier.ControlModifier
"""With the wheel: zoom about the pointer (whatever the wheel preference)."""
SIDEWAYS_MODIFIER = Qt.KeyboardModifier.ShiftModifier
"""With the wheel: scroll sideways."""


def key_text(key: Qt.Key) -> str:
    """A key's name as the platform writes it (``"Space"``, ``"\\"``)."""
    return QKeySequence(key).toString(QKeySequence.SequenceFormat.NativeText)


def _with(modifier: Qt.KeyboardModifier, what: str) -> str:
    """``"Ctrl+wheel"`` (``"\u2318wheel"`` on macOS): the modifier as the platform writes it."""
    prefix = QKeySequence(modifier.value | Qt.Key.Key_A.value).toString(
        QKeySequence.SequenceFormat.NativeText
    )
    return prefix[:-1] + what


def canvas_controls(wheel_zooms: bool) -> list[tuple[str, str]]:
    """``(what it does, keys or mouse)`` for every canvas control that is not a menu action;
    ``wheel_zooms``: the "Mouse wheel zooms" preference."""
    zoom = "Zoom about the pointer"
    return [
        ("Pan the photo", f"Hold {key_text(PAN_KEY)} and drag"),
        ("Pan the photo", "Middle-button drag"),
        ("Show the original while held", f"Hold {key_text(COMPARE_KEY)}"),
        (zoom if wheel_zooms else "Scroll up and down", "Wheel"),
        ("Scroll sideways", _with(SIDEWAYS_MODIFIER, "wheel")),
        (zoom, _with(ZOOM_MODIFIER, "wheel")),
        (zoom, "Trackpad pinch"),
        ("Zoom (up and down), scroll sideways" if wheel_zooms else "Scroll", "Trackpad swipe"),
        ("Brush or eraser: a straight line from where the last stroke ended", "Shift+click"),
        ("Lasso: cut the shape out of the hole", "Alt or Ctrl at the first press"),
        ("Lasso: close the polygon", "Double-click or a click on the first corner"),
        *_lasso_keys(),
    ]


_LASSO_COMMANDS = {
    "close": "Lasso: close the polygon",
    "cancel": "Lasso: drop the polygon",
    "back": "Lasso: take back the last corner",
}


def _lasso_keys() -> list[tuple[str, str]]:
    """The keys an open polygon takes (:data:`~.tools.TOOL_KEYS`), one row per command."""
    keys: dict[str, list[str]] = {}
    for key, command in TOOL_KEYS.items():
        keys.setdefault(command, []).append(key_text(key))
    undo = QKeySequence(QKeySequence.StandardKey.Undo).toString(QKeySequence.SequenceFormat.NativeText)
    keys.setdefault(UNDO_COMMAND, []).append(undo)
    return [(_LASSO_COMMANDS.get(c, f"Lasso: {c}"), " or ".join(k)) for c, k in keys.items()]
