"""Making the main window's QActions (every binding of a standard key, a short toolbar label, a
tooltip that names the keys) and keeping a toggle in step with what it shows."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget

__all__ = ["Key", "key_sequences", "make_action", "set_checked_quietly"]

Key = str | QKeySequence.StandardKey
"""A shortcut: a key sequence's text (``"Ctrl+B"``) or a standard key (all its bindings)."""


def key_sequences(keys: Key | list[Key]) -> list[QKeySequence]:
    """Every binding of a standard key (ZoomIn is Ctrl++ and Ctrl+=), or the given sequences."""
    out: list[QKeySequence] = []
    for k in keys if isinstance(keys, list) else [keys]:
        if isinstance(k, QKeySequence.StandardKey):
            out += QKeySequence.keyBindings(k)
        else:
            out.append(QKeySequence(k))
    return out


def make_action(
    owner: QWidget,
    text: str,
    slot: Callable[..., object] | None = None,
    shortcut: Key | list[Key] | None = None,
    *,
    checkable: bool = False,
    tip: str = "",
    short: str = "",
) -> QAction:
    """An action of ``owner`` (its shortcuts work whatever has the focus) that calls ``slot``
    when triggered (toggled, when ``checkable``). ``tip``: the status-bar tip; ``short``: the
    toolbar's label."""
    a = QAction(text, owner)
    if shortcut is not None:
        a.setShortcuts(key_sequences(shortcut))
    if short:
        a.setIconText(short)  # the toolbar's label
    a.setCheckable(checkable)
    keys_text = a.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
    a.setStatusTip(tip)
    a.setToolTip((tip or text.replace("&", "").rstrip(".\u2026")) + (f" ({keys_text})" if keys_text else ""))
    if slot is not None:
        (a.toggled if checkable else a.triggered).connect(slot)
    owner.addAction(a)  # shortcuts work whatever has the focus
    return a


def set_checked_quietly(action: QAction, on: bool) -> None:
    """Check or uncheck a toggle to follow the state it shows, without triggering it."""
    if action.isChecked() != on:
        action.blockSignals(True)
        action.setChecked(on)
        action.blockSignals(False)
