"""The Mask menu for one :class:`~.main_window.MainWindow`: grow and shrink the hole by the
remembered step, invert it, load it from a file, and show or hide its overlay (View menu).

Each change is one undo step, made by the document's Qt-free methods
(:meth:`~retoucher.document.Document.grow_mask` and friends) and shown at once through its
``mask_changed`` event. The file is read by :class:`.file_actions.FileActions`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QInputDialog, QMenu

from ..document import Document, Edit, printable
from .actions import make_action
from .settings import MAX_MASK_STEP, MIN_MASK_STEP

if TYPE_CHECKING:  # pragma: no cover
    from .main_window import MainWindow

__all__ = ["MaskActions"]


class MaskActions:
    """The mask actions of ``window``; ``push`` puts a (done) edit on its undo stack."""

    def __init__(self, window: MainWindow, push: Callable[[Edit], None]) -> None:
        self.window = window
        self._push = push
        action = partial(make_action, window)
        self.grow_action = action(
            "&Grow Mask", self.grow, "Ctrl+]", tip="Widen the hole by the grow/shrink step"
        )
        self.shrink_action = action(
            "&Shrink Mask", self.shrink, "Ctrl+[", tip="Narrow the hole by the grow/shrink step"
        )
        self.step_action = action(
            "Grow/Shrink S&tep\u2026",
            self.ask_step,
            tip="How many pixels Grow and Shrink move the hole's edge",
        )
        self.invert_action = action("&Invert Mask", self.invert, "Ctrl+I", tip="Swap hole and photo")
        self.load_action = action(
            "Loa&d Mask\u2026",
            lambda: self.load(),  # not ``triggered``'s checked flag as the path
            tip="Replace the mask with a black-and-white image (white = hole), scaled to the photo",
        )
        self.overlay_action = action(
            "Show &Mask",
            self.show_overlay,
            "H",
            checkable=True,
            tip="Show or hide the hole's colour (painting still works)",
        )
        self.overlay_action.setChecked(True)
        self.menu = QMenu("&Mask", window)
        self.menu.addActions([self.grow_action, self.shrink_action, self.step_action])
        self.menu.addSeparator()
        self.menu.addActions([self.invert_action, window.clear_mask_action])
        self.menu.addSeparator()
        self.menu.addAction(self.load_action)
        self._show_step()
        self.apply_preferences()

    # ------------------------------------------------------------------ state
    def update_enabled(self, has_photo: bool, idle: bool) -> None:
        """While a fill runs the mask must not change."""
        for a in (self.grow_action, self.shrink_action, self.invert_action, self.load_action):
            a.setEnabled(has_photo and idle)
        self.overlay_action.setEnabled(has_photo)

    def apply_preferences(self) -> None:
        """The overlay colour from the settings, shown at once."""
        self.window.canvas.set_overlay_colour(self.window.settings.overlay_colour)

    def _show_step(self) -> None:
        n = self.window.settings.mask_step
        self.grow_action.setText(f"&Grow Mask by {n} px")
        self.shrink_action.setText(f"&Shrink Mask by {n} px")

    def _message(self, text: str, msecs: int = 3000) -> None:
        self.window.statusBar().showMessage(text, msecs)

    # ------------------------------------------------------------------ changes
    def _change(self, change: Callable[[Document], Edit | None], unchanged: str) -> Edit | None:
        """Apply ``change`` to the open photo as one undo step (``unchanged``: the word when
        it changes nothing)."""
        w = self.window
        if w.doc is None or w.busy:
            return None
        w.canvas.finish_drag(close_shape=True)  # a stroke or polygon in progress: its own step first
        edit = change(w.doc)
        if edit is None:
            self._message(unchanged)
        else:
            self._push(edit)
        return edit

    def grow(self) -> Edit | None:
        n = self.window.settings.mask_step
        edit = self._change(lambda doc: doc.grow_mask(n), "No hole to grow: paint one first")
        if edit is not None:
            self._message(f"Hole grown by {n} px")
        return edit

    def shrink(self) -> Edit | None:
        n = self.window.settings.mask_step
        edit = self._change(lambda doc: doc.shrink_mask(n), "No hole to shrink")
        if edit is not None:
            self._message(f"Hole shrunk by {n} px")
        return edit

    def invert(self) -> Edit | None:
        edit = self._change(Document.invert_mask, "Nothing to invert")
        doc = self.window.doc
        if edit is not None and doc is not None and doc.mask.all():
            self._message("The whole photo is hole now: Fill needs some of it kept", 6000)
        return edit

    def load(self, path: str | Path | None = None) -> Edit | None:
        """Replace the mask with the one in ``path`` (default: ask for a file), one undo step;
        a file that cannot be used gets an error box and changes nothing."""
        w = self.window
        if w.doc is None or w.busy:
            return None
        path = path or w.files.ask_mask_path()
        if not path:
            return None
        mask = w.files.read_mask(path)
        if mask is None:
            return None
        edit = self._change(
            lambda doc: doc.set_mask(mask, "Load mask"), "The mask in the file is the one shown"
        )
        if edit is not None:
            self._message(
                f"Mask loaded from {printable(Path(path).name)} ({int(mask.sum())} hole pixels)", 4000
            )
        return edit

    # ------------------------------------------------------------------ settings and view
    def ask_step(self) -> QInputDialog:
        """A small dialog (not blocking) for the grow/shrink step; OK remembers it."""
        dlg = QInputDialog(self.window)
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.setWindowTitle("Grow/Shrink Step")
        dlg.setLabelText("Grow and Shrink move the hole's edge by (pixels):")
        dlg.setInputMode(QInputDialog.InputMode.IntInput)
        dlg.setIntRange(MIN_MASK_STEP, MAX_MASK_STEP)
        dlg.setIntValue(self.window.settings.mask_step)
        dlg.intValueSelected.connect(self.set_step)
        dlg.open()
        return dlg

    def set_step(self, pixels: int) -> None:
        self.window.settings.mask_step = pixels
        self._show_step()

    def reveal(self) -> None:
        """Show the mask if it is hidden (Find Damage's result is to be reviewed on it)."""
        self.overlay_action.setChecked(True)  # toggled: show_overlay

    def show_overlay(self, on: bool) -> None:
        self.window.canvas.set_overlay_visible(on)
        if self.window.doc is not None:
            self._message("Mask shown" if on else "Mask hidden: H shows it again", 2500)
