"""The main window: builds the actions, menus, toolbar and status bar and wires them to the
canvas, the undo stack, the file actions (:mod:`.file_actions`), the fill controller
(:mod:`.fill_controller`) and Find Damage (:mod:`.damage_controller`), whose jobs share one
:class:`~.job_runner.JobRunner`."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QSize, Qt
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
    QUndoStack,
)
from PySide6.QtWidgets import (
    QDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QWidget,
)

from engine.weight_header import WeightsError, damage_weights_path

from ..document import Document, Edit
from ..edits import GIB, history_budget
from .actions import drop_shadowed_bindings, make_action, set_checked_quietly
from .canvas import Canvas
from .commands import EditCommand, HistoryBudget
from .damage_controller import DamageController
from .damage_worker import DetectorCache
from .dialogs import AboutDialog, PreferencesDialog, detector_html
from .file_actions import ChangedOnDisk, FileActions, ask_changed_on_disk, ask_save_path, ask_unsaved_changes
from .fill_controller import FillController, model_texture, weights_problem
from .fill_worker import FillJob, InpainterCache
from .job_runner import JobRunner
from .mask_actions import MaskActions
from .menus import build_menus, build_toolbar
from .settings import Settings, clamp_brush_size
from .shortcuts_dialog import ShortcutsDialog, shortcut_groups
from .tools import ToolKind

if TYPE_CHECKING:  # pragma: no cover
    from .batch_dialog import BatchDialog


CLOSE_WAIT_MS = 500
"""How long closing the window waits for a cancelled fill or damage search to stop."""
STATUS_MARGINS = 48  # px of a status bar's spacing between its widgets and round its size grip


class MainWindow(QMainWindow):
    """One photo at a time. ``settings``, ``inpainters`` and ``detectors`` can be given (tests,
    scripts)."""

    def __init__(
        self,
        settings: Settings | None = None,
        inpainters: InpainterCache | None = None,
        parent: QWidget | None = None,
        *,
        detectors: DetectorCache | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings or Settings()
        self.inpainters = inpainters or InpainterCache(self.settings.weights or None, self.settings.device)
        self.inpainters.texture = self.settings.texture  # an injected cache fills at it too
        self.inpainters.mirror = self.settings.mirror
        self.detectors = detectors or DetectorCache(None, self.settings.device)
        self.doc: Document | None = None
        self.undo_stack = QUndoStack(self)
        self.history = HistoryBudget(self.undo_stack, history_budget())  # the oldest steps go first
        self.last_error: tuple[str, str] | None = None
        self._dialogs: list[QDialog] = []
        self.files = FileActions(self)
        self.jobs = JobRunner(self.statusBar(), self)  # fills and damage searches, one at a time
        self.jobs.busy_changed.connect(self._on_busy)
        self.filler = FillController(
            self.inpainters, self.statusBar(), lambda: self.doc, self, runner=self.jobs
        )
        self.filler.filled.connect(self._on_filled)
        self.filler.error.connect(self.show_error)

        self.canvas = Canvas(self)
        self.canvas.set_brush_size(self.settings.brush_size)
        self.canvas.set_wheel_zooms(self.settings.wheel_zooms)
        self.setCentralWidget(self.canvas)
        self.canvas.edit_made.connect(self._on_canvas_edit)
        self.canvas.zoom_changed.connect(self._show_zoom)
        self.setAcceptDrops(True)
        self.setMinimumSize(QSize(640, 420))
        self.resize(1280, 800)

        self._build_file_and_edit_actions()
        self._build_view_and_tool_actions()
        self.masks = MaskActions(self, self._push_edit)  # the Mask menu, Load Mask, Show Mask (H)
        self.damage = DamageController(self, self.detectors, self.jobs, self._push_edit)  # Ctrl+D
        build_menus(self)
        build_toolbar(self)
        drop_shadowed_bindings(self)  # after every action is made
        self._build_status_bar()
        # Bound methods, not lambdas: Qt drops these connections when the window is destroyed.
        self.undo_stack.indexChanged.connect(self._on_history_changed)
        self.undo_stack.canUndoChanged.connect(self._on_history_changed)
        self.undo_stack.canRedoChanged.connect(self._on_history_changed)
        self.undo_stack.undoTextChanged.connect(self._show_undo_text)
        self.undo_stack.redoTextChanged.connect(self._show_redo_text)
        self.filler.refresh_model_status()
        self.update_title()
        self._update_actions()

    # ================================================================== construction
    def _build_file_and_edit_actions(self) -> None:
        K = QKeySequence.StandardKey
        action = partial(make_action, self)
        self.open_action = action(
            "&Open\u2026", self.files.open_dialog, K.Open, tip="Open a photo", short="Open"
        )
        self.paste_action = action(
            "&Paste as New Photo", self.files.paste, K.Paste, tip="Open the image on the clipboard"
        )
        self.save_action = action(
            "&Save", self.save, K.Save, tip="Save the photo in its format, keeping its metadata", short="Save"
        )
        self.save_as_action = action(
            "Save &As\u2026", self.save_as, K.SaveAs, tip="Save under another name or format"
        )
        self.export_mask_action = action(
            "&Export Mask\u2026",
            self.export_mask,
            "Ctrl+Shift+M",
            tip="Save the hole mask as a black-and-white PNG",
        )
        self.batch_action = action(
            "&Batch\u2026", self.open_batch_dialog, "Ctrl+B", tip="Retouch a folder of photos"
        )
        self.quit_action = action("&Quit", self.close, K.Quit)
        if self.quit_action.shortcut().isEmpty():
            self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))

        # Our own actions, not QUndoStack.createUndoAction: a stroke in progress must end
        # (and become its own step) before the history moves.
        self.undo_action = action("&Undo", self.undo, K.Undo, short="Undo")
        self.redo_action = action("&Redo", self.redo, K.Redo, short="Redo")
        if self.redo_action.shortcut().isEmpty():
            self.redo_action.setShortcut(QKeySequence("Ctrl+Shift+Z"))

        self.fill_action = action(
            "&Fill", self.fill, ["Ctrl+Return", "Ctrl+Enter"], tip="Fill the painted hole"
        )
        self.cancel_action = action(
            "&Cancel", self.cancel_job, "Esc", tip="Stop the running fill or damage search", short="Cancel"
        )
        self.clear_mask_action = action(
            "C&lear Mask", self.clear_mask, K.Delete, tip="Remove the whole mask", short="Clear"
        )
        self.preferences_action = action("&Preferences\u2026", self.open_preferences, "Ctrl+,")

    def _build_view_and_tool_actions(self) -> None:
        K = QKeySequence.StandardKey
        action = partial(make_action, self)
        self.zoom_in_action = action("Zoom &In", self.canvas.zoom_in, [K.ZoomIn, "Ctrl+="])
        self.zoom_out_action = action("Zoom &Out", self.canvas.zoom_out, K.ZoomOut)
        self.fit_action = action(
            "&Fit to Window", self.canvas.fit, "Ctrl+0", tip="Show the whole photo", short="Fit"
        )
        self.actual_size_action = action(
            "&Actual Pixels (100%)",
            self.canvas.actual_size,
            "Ctrl+1",
            tip="One photo pixel per screen pixel",
            short="100%",
        )
        self.compare_action = action(
            "&Compare with Original",
            self.canvas.set_comparing,
            checkable=True,
            tip="Show the photo as it was opened (or hold \\ on the canvas)",
            short="Compare",
        )
        self.canvas.compare_changed.connect(self._sync_compare)
        self.canvas.notice.connect(lambda text: self.statusBar().showMessage(text, 4000))
        self.split_action = action(
            "&Split Before/After",
            self.set_split,
            "Y",
            checkable=True,
            tip="Original left, retouched right of a divider; drag on the photo to move it",
            short="Split",
        )
        self.canvas.split_changed.connect(self._sync_split)

        self.tool_group = QActionGroup(self)
        self.tool_actions: dict[ToolKind, QAction] = {}
        for kind, text, key, tip in (
            (ToolKind.BRUSH, "&Brush", "B", "Paint the hole"),
            (ToolKind.ERASER, "&Eraser", "E", "Remove paint from the hole"),
            (ToolKind.RECTANGLE, "&Rectangle", "R", "Drag a rectangular hole"),
            (ToolKind.LASSO, "&Lasso", "L", "Drag an outline or click a polygon's corners (Alt: remove)"),
        ):
            a = action(text, None, key, checkable=True, tip=tip)
            a.triggered.connect(lambda _c=False, k=kind: self.set_tool(k))
            self.tool_group.addAction(a)
            self.tool_actions[kind] = a
        self.tool_actions[ToolKind.BRUSH].setChecked(True)
        self.smaller_action = action("&Smaller Brush", lambda: self.step_brush(-1), "[")
        self.larger_action = action("Lar&ger Brush", lambda: self.step_brush(+1), "]")

        self.about_action = action("&About Retoucher", self.open_about)
        self.shortcuts_action = action(
            "&Keyboard Shortcuts",
            self.open_shortcuts,
            [K.HelpContents, "Ctrl+/"],
            tip="Every shortcut, and the keys and mouse on the photo",
        )

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.progress = self.jobs.progress
        self.size_label = QLabel()
        self.zoom_label = QLabel()
        self.device_label = self.filler.device_label
        self.model_label = self.filler.model_label
        for w in (self.progress, self.size_label, self.zoom_label, self.device_label, self.model_label):
            sb.addPermanentWidget(w)
        sb.messageChanged.connect(self._make_room_for_message)

    def _make_room_for_message(self, text: str) -> None:
        """While a status message does not fit beside the permanent labels, the device and
        model labels step aside (in a 900 px window the split view's "Original left, retouched
        right: drag to move the divider, Y to end" was cut after "drag", the fill's hints too);
        they come back when it goes."""
        aside = (self.device_label, self.model_label)
        fits = True
        if text:
            sb = self.statusBar()
            kept = (self.progress, self.size_label, self.zoom_label)
            used = sum(w.sizeHint().width() for w in kept if w.isVisibleTo(sb))
            used += sum(label.sizeHint().width() for label in aside) + STATUS_MARGINS
            fits = sb.fontMetrics().horizontalAdvance(text) + used <= sb.width()
        for label in aside:
            label.setVisible(fits)

    # ================================================================== state display
    @property
    def busy(self) -> bool:
        """A fill or damage search is running (the photo and its history must not change)."""
        return self.jobs.busy

    def update_title(self) -> None:
        # "[*]" in a file name is written "[*][*]": Qt shows it as it is, not as the modified mark
        name = self.doc.display_name.replace("[*]", "[*][*]") if self.doc else "Retoucher"
        self.setWindowTitle(f"{name}[*] \u2014 Retoucher" if self.doc else "Retoucher")
        self.setWindowModified(bool(self.doc and self.doc.dirty))

    def _on_history_changed(self, _value: object = None) -> None:
        self._update_actions()

    def _show_undo_text(self, text: str) -> None:
        self.undo_action.setText(f"&Undo {text}" if text else "&Undo")

    def _show_redo_text(self, text: str) -> None:
        self.redo_action.setText(f"&Redo {text}" if text else "&Redo")

    def _update_actions(self) -> None:
        has = self.doc is not None
        idle = not self.busy
        for a in (self.open_action, self.paste_action, self.batch_action, self.preferences_action):
            a.setEnabled(idle)
        self.recent_menu.setEnabled(idle)
        for a in (self.save_action, self.save_as_action, self.export_mask_action, self.clear_mask_action):
            a.setEnabled(has and idle)
        self.fill_action.setEnabled(has and idle)
        self.fill_button.setEnabled(has and idle)
        self.cancel_action.setEnabled(self.busy)
        self.cancel_tool.setVisible(self.busy)  # the toolbar's button (see build_toolbar)
        undoable = self._undoable()
        self.undo_action.setEnabled(idle and undoable)
        self._show_undo_text(self.undo_stack.undoText() if undoable else "")  # not a step let go
        self.redo_action.setEnabled(idle and self.undo_stack.canRedo())
        for a in (
            self.zoom_in_action,
            self.zoom_out_action,
            self.fit_action,
            self.actual_size_action,
            self.compare_action,
            self.split_action,
        ):
            a.setEnabled(has)
        self.masks.update_enabled(has, idle)
        self.damage.update_enabled(has, idle)
        self.canvas.set_editable(idle)

    def _show_zoom(self, _zoom: float = 0.0) -> None:
        """The zoom per screen pixel (100 % = one photo pixel each, on any screen)."""
        self.zoom_label.setText(f"{self.canvas.screen_zoom * 100:.0f}%" if self.doc else "")

    def _show_size(self) -> None:
        if self.doc is None:
            self.size_label.setText("")
        else:
            mp = self.doc.width * self.doc.height / 1e6
            self.size_label.setText(f"{self.doc.width} \u00d7 {self.doc.height} px ({mp:.1f} MP)")

    def _sync_compare(self, on: bool) -> None:
        set_checked_quietly(self.compare_action, on)

    def set_split(self, on: bool) -> None:
        """The split before/after view on or off (it needs a photo: the toggle follows the canvas)."""
        self.canvas.set_split(on)
        self._sync_split(self.canvas.splitting)
        if self.canvas.splitting and on:
            self.statusBar().showMessage(
                "Original left, retouched right: drag to move the divider, Y to end", 4000
            )

    def _sync_split(self, on: bool) -> None:
        set_checked_quietly(self.split_action, on)

    def show_error(self, title: str, text: str) -> QMessageBox:
        """A non-blocking error box (the window keeps working behind it)."""
        self.last_error = (title, text)
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.statusBar().showMessage(f"{title}: {text.splitlines()[0]}", 8000)
        return box

    # ================================================================== tools
    def set_tool(self, kind: ToolKind) -> None:
        self.canvas.set_tool(kind)
        self.tool_actions[kind].setChecked(True)

    def set_brush_size(self, size: int) -> None:
        size = clamp_brush_size(size)
        self.canvas.set_brush_size(size)
        for w in (self.size_slider, self.size_spin):
            if w.value() != size:
                w.blockSignals(True)
                w.setValue(min(size, w.maximum()))
                w.blockSignals(False)

    def step_brush(self, direction: int) -> None:
        size = self.canvas.brush_size
        new = round(size * 1.2) if direction > 0 else round(size / 1.2)
        if new == size:
            new = size + (1 if direction > 0 else -1)
        self.set_brush_size(new)
        self.statusBar().showMessage(f"Brush size {self.canvas.brush_size} px", 1500)

    # ================================================================== documents
    def set_document(self, doc: Document | None) -> None:
        # A stroke in progress ends on its own photo's history, before that history goes.
        self.canvas.finish_drag()
        if self.doc is not None:
            self.doc.state_changed.disconnect(self.update_title)
        self.undo_stack.clear()
        self.history.reset()
        self.doc = doc
        if doc is not None:
            doc.state_changed.connect(self.update_title)
        self.canvas.set_document(doc)
        self._show_size()
        self._show_zoom(self.canvas.zoom)
        self.update_title()
        self._update_actions()
        self.canvas.setFocus()

    def _push_edit(self, edit: Edit) -> None:
        """Put an edit of the current photo (already applied) on the undo stack, within the
        history's memory budget (:attr:`history`: the oldest steps go first)."""
        if self.doc is None:
            return
        self.undo_stack.push(EditCommand(self.doc, edit, self.show_error))
        if self.history.pushed(edit):
            self.statusBar().showMessage(
                f"The oldest steps can no longer be undone: the history keeps at most "
                f"{self.history.budget / GIB:.1f} GB",
                6000,
            )
        self._update_actions()

    def _undoable(self) -> bool:
        """There is a step to undo and its data was not let go (:func:`forget_oldest`)."""
        stack = self.undo_stack
        if not stack.canUndo():
            return False
        command = stack.command(stack.index() - 1)
        return not (isinstance(command, EditCommand) and command.forgotten)

    def _on_filled(self, edit: Edit) -> None:
        """A fill landed: it shows (Before/After switched on while it ran would hide it)."""
        self.canvas.set_comparing(False)
        self._push_edit(edit)

    def _on_canvas_edit(self, doc: Document, edit: Edit) -> None:
        if doc is self.doc:  # an edit of a photo that is no longer open has no history left
            self._push_edit(edit)

    def undo(self) -> None:
        """Undo the last step; while a polygon is being clicked, its last corner (the polygon
        is the latest work: undo dropped it and undid the step before it too)."""
        if self.busy:
            return
        if self.canvas.shape_pending:
            self.canvas.take_back_corner()
            return
        self.canvas.finish_drag()
        if not self._undoable():
            if self.undo_stack.canUndo():
                self.statusBar().showMessage(
                    "The steps before this one were let go to keep the history within its memory", 4000
                )
            return
        self.undo_stack.undo()

    def redo(self) -> None:
        """Redo the next step; not while a polygon is being clicked (redo dropped it): Enter
        closes it, Esc drops it."""
        if self.busy:
            return
        if self.canvas.shape_pending:
            self.statusBar().showMessage("Close the polygon (Enter) or drop it (Esc) first", 3000)
            return
        self.canvas.finish_drag()
        self.undo_stack.redo()

    # ================================================================== files (see file_actions)
    def ask_unsaved_changes(self) -> QMessageBox.StandardButton:
        """Save, Discard or Cancel (tests replace this)."""
        assert self.doc is not None
        return ask_unsaved_changes(self, self.doc)

    def ask_changed_on_disk(self) -> ChangedOnDisk:
        """Replace, Save As or Cancel for a file written since it was opened (tests replace this)."""
        assert self.doc is not None
        return ask_changed_on_disk(self, self.doc)

    def ask_save_path(self, title: str, suggestion: Path, filters: str, selected: str = "") -> str:
        """A file name from the user, "" if cancelled; the dialog starts on the ``selected``
        filter (tests replace this)."""
        return ask_save_path(self, title, suggestion, filters, selected)

    def open_path(self, path: str | Path, *, remember: bool = True) -> bool:
        """Open a photo file; an unreadable one gets an error box and changes nothing.
        ``remember``: add it to the recent files."""
        return self.files.open_path(path, remember=remember)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        self.files.drag_enter(event)

    def dropEvent(self, event: QDropEvent) -> None:
        self.files.drop(event)

    def save(self) -> bool:
        return self.files.save()

    def save_as(self, problem: str | None = None) -> bool:
        """Ask for a file name and save there. ``problem``: why the original file is not
        written over (shown in the dialog's title; a copy's name is suggested)."""
        return self.files.save_as(problem)

    def export_mask(self) -> bool:
        return self.files.export_mask()

    # ================================================================== mask and fill
    def clear_mask(self) -> None:
        if self.doc is not None and not self.busy:
            self.canvas.finish_drag(close_shape=True)  # a polygon being clicked: its step, then cleared
            edit = self.doc.clear_mask()
            if edit is not None:
                self._push_edit(edit)

    def fill(self) -> FillJob | None:
        """Start filling the painted hole in a worker thread; returns the job (None if nothing
        to do). The result arrives as one undo step."""
        if self.doc is None or self.busy:
            return None
        # a stroke or polygon in progress is part of the hole, one step before the fill
        self.canvas.finish_drag(close_shape=True)
        self.damage.panel.flush()  # and a sensitivity just moved (reported 80 ms later) too
        return self.filler.start(self.doc)

    def cancel_job(self) -> None:
        """Stop the running fill or damage search (Esc)."""
        if self.jobs.cancel():
            self.statusBar().showMessage("Cancelling\u2026")

    def _on_busy(self, busy: bool) -> None:
        if busy:
            self.canvas.set_comparing(False)  # the result shows on the photo as it is now
        self._update_actions()

    # ================================================================== dialogs
    def _open(self, dialog: QDialog, *, modal: bool = True) -> None:
        """Show ``dialog`` (not blocking; ``modal``: the window waits for it); it is kept until
        it finishes, closed with the window."""
        self._dialogs.append(dialog)
        dialog.finished.connect(lambda _r, d=dialog: self._forget(d))
        if modal:
            dialog.open()
        else:
            dialog.show()

    def _forget(self, dialog: QDialog) -> None:
        """A dialog that finished goes (it stayed a child of the window: 600 dialogs and 790 MB
        after 200 rounds of Preferences, About, Shortcuts and Batch)."""
        if dialog in self._dialogs:
            self._dialogs.remove(dialog)
        dialog.deleteLater()

    def open_preferences(self) -> PreferencesDialog:
        self.settings.sync()  # what another window stored since: shown, not written back stale
        dlg = PreferencesDialog(
            self.settings, self, model_texture=model_texture, weights_problem=weights_problem
        )

        default_brush = self.settings.brush_size

        def accepted() -> None:
            dlg.apply()
            if problem := self.settings.problem():
                self.show_error("Preferences not kept", problem)
            self.inpainters.configure(
                self.settings.weights or None,
                self.settings.device,
                texture=self.settings.texture,
                mirror=self.settings.mirror,
            )
            self.detectors.configure(None, self.settings.device)
            if self.settings.brush_size != default_brush:  # else the brush picked on the toolbar stays
                self.set_brush_size(self.settings.brush_size)
            self.masks.apply_preferences()
            self.canvas.set_wheel_zooms(self.settings.wheel_zooms)
            self.filler.reconfigured()

        dlg.accepted.connect(accepted)
        self._open(dlg)
        return dlg

    def open_about(self) -> AboutDialog:
        info, problem = self.filler.model_info()
        try:
            detector_file = damage_weights_path(self.detectors.weights)
        except WeightsError:  # the bundled one is missing: the header's None says so
            detector_file = None
        detector = detector_html(self.damage.detector_header(), detector_file)
        dlg = AboutDialog(info, problem, self, detector=detector)
        self._open(dlg)
        return dlg

    def open_shortcuts(self) -> ShortcutsDialog:
        """Help > Keyboard Shortcuts, read from the actions as they are now (not modal; one at
        a time)."""
        for old in [d for d in self._dialogs if isinstance(d, ShortcutsDialog)]:
            old.close()
        dlg = ShortcutsDialog(shortcut_groups(self, self.canvas.wheel_zooms), self)
        self._open(dlg, modal=False)
        return dlg

    def open_batch_dialog(self) -> BatchDialog:
        from .batch_dialog import BatchDialog

        dlg = BatchDialog(self.settings, self.inpainters, self, self.detectors)
        dlg.setWindowModality(Qt.WindowModality.WindowModal)
        self._open(dlg)
        return dlg

    # ================================================================== closing
    def closeEvent(self, event: QCloseEvent) -> None:
        if self.files.refuse_while_working():  # a close the window system sends meanwhile
            event.ignore()
            return
        if not self.files.maybe_save():
            event.ignore()
            return
        for d in list(self._dialogs):
            if not d.close():  # a batch whose step ignores cancel: it closes when the step ends
                self.statusBar().showMessage("The batch is stopping; close again when it has", 8000)
                event.ignore()
                return
        self.settings.set_value("window/geometry", self.saveGeometry())
        self.settings.sync()
        if self.jobs.cancel():
            # a moment for the job to stop, then the window closes whatever it does: the wait was
            # 30 s on this thread, a frozen window after its close button (a fill of a whole
            # 24-megapixel photo checks its cancel 24-34 s apart on a CPU); the outcome is dropped,
            # and the process ends when the worker returns (the job pool waits for it)
            self.statusBar().showMessage("Stopping\u2026")
            self.statusBar().repaint()
            self.jobs.wait(CLOSE_WAIT_MS)
        event.accept()

    def restore_geometry(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, (QByteArray, bytes, bytearray)) and geometry:
            self.restoreGeometry(QByteArray(geometry))  # another type: the default size
