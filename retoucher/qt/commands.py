"""QUndoCommands around the document's edits. An edit arrives already applied (the user saw it
happen while dragging, or the fill result was pasted), so the first ``redo`` does nothing.

An exception must never leave ``undo``/``redo``: they are called from inside ``QUndoStack``
(C++), where a Python exception can take the whole app down. A failing step is reported
through ``on_error`` and made obsolete, so the stack drops it instead of replaying it again.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QUndoCommand

from ..document import Document, Edit

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
