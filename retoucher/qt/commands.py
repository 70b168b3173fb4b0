"""QUndoCommands around the document's edits. An edit arrives already applied (the user saw it
happen while dragging, or the fill result was pasted), so the first ``redo`` does nothing.

An exception must never leave ``undo``/``redo``: they are called from inside ``QUndoStack``
(C++), where a Python exception can take the whole app down. A failing step is reported
through ``on_error`` and made obsolete, so the stack drops it instead of replaying it again.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QUndoCommand, QUndoStack

from ..document import Document, Edit
from ..edits import ForgottenEdit

ErrorHandler = Callable[[str, str], object]  # (title, message)


class EditCommand(QUndoCommand):
    def __init__(self, doc: Document, edit: Edit, on_error: ErrorHandler | None = None) -> None:
        super().__init__(edit.label)
        self.doc = doc
        self.edit = edit
        self.on_error = on_error
        self._applied = True

    def redo(self) -> None:
        if self._applied:
            self._applied = False  # QUndoStack.push calls redo once; the edit is already in
            return
        self._run("redo", self.doc.redo)

    def undo(self) -> None:
        self._run("undo", self.doc.undo)

    def _run(self, what: str, step: Callable[[Edit], None]) -> None:
        try:
            step(self.edit)
        except Exception as exc:  # noqa: BLE001 - see the module docstring
            self.setObsolete(True)
            if self.on_error is not None:
                self.on_error(
                    f"Cannot {what}",
                    f"Could not {what} \u201c{self.text()}\u201d: {exc}\n"
                    "The step was removed from the history.",
                )

    @property
    def forgotten(self) -> bool:
        """Its data was let go (:func:`forget_oldest`): it can no longer be undone."""
        return isinstance(self.edit, ForgottenEdit)


class HistoryBudget:
    """Keeps ``stack`` within ``budget`` bytes (:func:`forget_oldest`), looking through it only
    when the steps pushed since it last looked may have gone over (5,000 strokes took 7 ms a
    push to look through)."""

    def __init__(self, stack: QUndoStack, budget: int) -> None:
        self.stack = stack
        self.budget = budget
        self._bound = 0  # at least the bytes the steps up to the current one hold

    def pushed(self, edit: Edit) -> int:
        """``edit`` was pushed; returns how many old steps were let go for it."""
        self._bound += edit.nbytes
        if self._bound <= self.budget:
            return 0
        forgotten = forget_oldest(self.stack, self.budget)
        self._bound = held_bytes(self.stack)
        return forgotten

    def reset(self) -> None:
        """The stack was cleared (another photo)."""
        self._bound = 0


def held_bytes(stack: QUndoStack) -> int:
    """What the steps up to the current one hold."""
    commands = (stack.command(i) for i in range(stack.index()))
    return sum(c.edit.nbytes for c in commands if isinstance(c, EditCommand))


def forget_oldest(stack: QUndoStack, budget: int) -> int:
    """Let go of the data of the oldest steps up to the current one until they hold at most
    ``budget`` bytes; the latest step is always kept whole, and so is the index of every step
    (what refers to a step by its place, Find Damage's adjustable one, stays right). Returns how
    many steps were let go now. The history had no limit: a whole-photo fill of a 24-megapixel
    photo holds 137 MB, and 50 of them filled a 16 GB machine."""
    total, forgotten = 0, 0
    for i in range(stack.index() - 1, -1, -1):
        command = stack.command(i)
        if not isinstance(command, EditCommand):
            continue
        if command.forgotten:
            break  # the older ones were let go before it
        total += command.edit.nbytes
        if total > budget and i < stack.index() - 1:
            command.edit = ForgottenEdit(command.edit.label)
            forgotten += 1
    return forgotten
