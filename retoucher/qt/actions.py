"""Making the main window's QActions (every binding of a standard key, a short toolbar label, a
tooltip that names the keys) and keeping a toggle in step with what it shows."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget

__all__ = ["Key", "drop_shadowed_bindings", "key_sequences", "make_action", "set_checked_quietly"]

_NAMED = "retoucher_named_keys"  # an action's property: the sequences its maker named itself

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
        named = [k for k in (shortcut if isinstance(shortcut, list) else [shortcut]) if isinstance(k, str)]
        a.setProperty(_NAMED, [_portable(QKeySequence(k)) for k in named])
    if short:
        a.setIconText(short)  # the toolbar's label
    a.setCheckable(checkable)
    a.setStatusTip(tip)
    _describe(a)
    if slot is not None:
        (a.toggled if checkable else a.triggered).connect(slot)
    owner.addAction(a)  # shortcuts work whatever has the focus
    return a


def drop_shadowed_bindings(owner: QWidget) -> None:
    """A key sequence that two of ``owner``'s actions take stays with the one whose maker named it
    (:func:`make_action`), and is dropped from the other's: a standard key's bindings differ by
    desktop, and Qt runs neither action of an ambiguous sequence (Delete is also Ctrl+D in the
    X11, KDE and GNOME key schemes, where Ctrl+D is Find Damage's: it did nothing there)."""
    actions = owner.findChildren(QAction)
    named = {key: a for a in actions for key in (a.property(_NAMED) or [])}
    for a in actions:
        kept = [s for s in a.shortcuts() if named.get(_portable(s), a) is a]
        if len(kept) < len(a.shortcuts()):
            a.setShortcuts(kept)
            _describe(a)


def _portable(sequence: QKeySequence) -> str:
    return sequence.toString(QKeySequence.SequenceFormat.PortableText)


def _describe(a: QAction) -> None:
    """The tooltip: the status tip (or the menu text) and the first binding."""
    keys_text = a.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
    what = a.statusTip() or a.text().replace("&", "").rstrip(".\u2026")
    a.setToolTip(what + (f" ({keys_text})" if keys_text else ""))


def set_checked_quietly(action: QAction, on: bool) -> None:
    """Check or uncheck a toggle to follow the state it shows, without triggering it."""
    if action.isChecked() != on:
        action.blockSignals(True)
        action.setChecked(on)
        action.blockSignals(False)
