"""QUndoCommands around the document's edits. An edit arrives already applied (the user saw it
happen while dragging, or the fill result was pasted), so the first ``redo`` does nothing."""
from __future__ import annotations

from PySide6.QtGui import QUndoCommand

from ..document import Document, Edit


class EditCommand(QUndoCommand):
    def __init__(self, doc: Document, edit: Edit) -> None:
        super().__init__(edit.label)
        self.doc = doc
        self.edit = edit
        self._applied = True

    def redo(self) -> None:
        if self._applied:
            self._applied = False  # QUndoStack.push calls redo once; the edit is already in
            return
        self.doc.redo(self.edit)

    def undo(self) -> None:
        self.doc.undo(self.edit)
