"""The main window: menus, toolbar, canvas, status bar; opening, filling, undo, saving."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QMimeData, QSize, Qt, QThreadPool
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
    QKeySequence,
    QPixmap,
    QUndoStack,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QToolBar,
    QWidget,
)

import engine
from engine.formats import IMAGE_SUFFIXES

from ..document import Document, Edit
from .canvas import Canvas
from .commands import EditCommand
from .dialogs import AboutDialog, PreferencesDialog
from .fill_worker import FillJob, InpainterCache
from .qimage import to_rgb_alpha
from .settings import Settings
from .tools import ToolKind

OPEN_FILTER = "Photos (*.jpg *.jpeg *.png *.tif *.tiff *.webp *.bmp);;All files (*)"
SAVE_FILTERS = {
    "JPEG (*.jpg *.jpeg)": ".jpg",
    "PNG (*.png)": ".png",
    "TIFF (*.tif *.tiff)": ".tif",
    "WebP (*.webp)": ".webp",
    "BMP (*.bmp)": ".bmp",
}


def _key_sequences(keys: Any) -> list[QKeySequence]:
    """Every binding of a standard key (ZoomIn is Ctrl++ and Ctrl+=), or the given sequences."""
    out: list[QKeySequence] = []
    for k in keys if isinstance(keys, list) else [keys]:
        if isinstance(k, QKeySequence.StandardKey):
            out += QKeySequence.keyBindings(k)
        else:
            out.append(QKeySequence(k))
    return out


def _is_bundled(path: Path) -> bool:
    """Whether ``path`` is one of Retoucher's own files (the sample photo in resources/)."""
    from engine import resources_dir

    try:
        return path.resolve().is_relative_to(resources_dir().resolve())
    except OSError:
        return False


class MainWindow(QMainWindow):
    """One photo at a time. ``settings`` and ``inpainters`` can be given (tests, scripts)."""

    def __init__(
        self,
        settings: Settings | None = None,
        inpainters: InpainterCache | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings or Settings()
        self.inpainters = inpainters or InpainterCache(self.settings.weights or None, self.settings.device)
        self.doc: Document | None = None
        self.undo_stack = QUndoStack(self)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)  # one engine job at a time
        self.fill_job: FillJob | None = None
        self.last_error: tuple[str, str] | None = None
        self._dialogs: list[QWidget] = []

        self.canvas = Canvas(self)
        self.canvas.set_brush_size(self.settings.brush_size)
        self.setCentralWidget(self.canvas)
        self.canvas.edit_made.connect(self._on_canvas_edit)
        self.canvas.zoom_changed.connect(self._show_zoom)
        self.setAcceptDrops(True)
        self.setMinimumSize(QSize(640, 420))
        self.resize(1200, 800)

        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_status_bar()
        # Bound methods, not lambdas: Qt drops these connections when the window is destroyed.
        self.undo_stack.indexChanged.connect(self._on_history_changed)
        self.undo_stack.canUndoChanged.connect(self._on_history_changed)
        self.undo_stack.canRedoChanged.connect(self._on_history_changed)
        self.undo_stack.undoTextChanged.connect(self._show_undo_text)
        self.undo_stack.redoTextChanged.connect(self._show_redo_text)
        self._refresh_model_status()
        self._update_title()
        self._update_actions()

    # ================================================================== construction
    def _action(
        self,
        text: str,
        slot: Any = None,
        shortcut: Any = None,
        *,
        checkable: bool = False,
        tip: str = "",
        short: str = "",
    ) -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcuts(_key_sequences(shortcut))
        if short:
            a.setIconText(short)  # the toolbar's label
        a.setCheckable(checkable)
        keys_text = a.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        a.setStatusTip(tip)
        a.setToolTip(
            (tip or text.replace("&", "").rstrip(".\u2026")) + (f" ({keys_text})" if keys_text else "")
        )
        if slot is not None:
            (a.toggled if checkable else a.triggered).connect(slot)
        self.addAction(a)  # shortcuts work whatever has the focus
        return a

    def _build_actions(self) -> None:
        K = QKeySequence.StandardKey
        self.open_action = self._action(
            "&Open\u2026", self.open_dialog, K.Open, tip="Open a photo", short="Open"
        )
        self.paste_action = self._action(
            "&Paste as New Photo", self.paste, K.Paste, tip="Open the image on the clipboard"
        )
        self.save_action = self._action(
            "&Save", self.save, K.Save, tip="Save the photo in its format, keeping its metadata", short="Save"
        )
        self.save_as_action = self._action(
            "Save &As\u2026", self.save_as, K.SaveAs, tip="Save under another name or format"
        )
        self.export_mask_action = self._action(
            "&Export Mask\u2026",
            self.export_mask,
            "Ctrl+Shift+M",
            tip="Save the hole mask as a black-and-white PNG",
        )
        self.batch_action = self._action(
            "&Batch\u2026", self.open_batch_dialog, "Ctrl+B", tip="Retouch a folder of photos"
        )
        self.quit_action = self._action("&Quit", self.close, K.Quit)
        if self.quit_action.shortcut().isEmpty():
            self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))

        # Our own actions, not QUndoStack.createUndoAction: a stroke in progress must end
        # (and become its own step) before the history moves.
        self.undo_action = self._action("&Undo", self.undo, K.Undo, short="Undo")
        self.redo_action = self._action("&Redo", self.redo, K.Redo, short="Redo")
        if self.redo_action.shortcut().isEmpty():
            self.redo_action.setShortcut(QKeySequence("Ctrl+Shift+Z"))

        self.fill_action = self._action(
            "&Fill", self.fill, ["Ctrl+Return", "Ctrl+Enter"], tip="Fill the painted hole"
        )
        self.cancel_action = self._action(
            "&Cancel Fill", self.cancel_fill, "Esc", tip="Stop the running fill", short="Cancel"
        )
        self.clear_mask_action = self._action(
            "C&lear Mask", self.clear_mask, K.Delete, tip="Remove the whole mask", short="Clear"
        )
        self.preferences_action = self._action("&Preferences\u2026", self.open_preferences, "Ctrl+,")

        self.zoom_in_action = self._action("Zoom &In", self.canvas.zoom_in, [K.ZoomIn, "Ctrl+="])
        self.zoom_out_action = self._action("Zoom &Out", self.canvas.zoom_out, K.ZoomOut)
        self.fit_action = self._action(
            "&Fit to Window", self.canvas.fit, "Ctrl+0", tip="Show the whole photo", short="Fit"
        )
        self.actual_size_action = self._action(
            "&Actual Pixels (100%)",
            self.canvas.actual_size,
            "Ctrl+1",
            tip="One photo pixel per screen pixel",
            short="100%",
        )
        self.compare_action = self._action(
            "&Compare with Original",
            self.canvas.set_comparing,
            checkable=True,
            tip="Show the photo as it was opened (or hold \\ on the canvas)",
            short="Before/After",
        )
        self.canvas.compare_changed.connect(self._sync_compare)
        self.split_action = self._action(
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
        ):
            a = self._action(text, None, key, checkable=True, tip=tip)
            a.triggered.connect(lambda _c=False, k=kind: self.set_tool(k))
            self.tool_group.addAction(a)
            self.tool_actions[kind] = a
        self.tool_actions[ToolKind.BRUSH].setChecked(True)
        self.smaller_action = self._action("&Smaller Brush", lambda: self.step_brush(-1), "[")
        self.larger_action = self._action("&Larger Brush", lambda: self.step_brush(+1), "]")

        self.about_action = self._action("&About Retoucher", self.open_about)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        m.addAction(self.open_action)
        self.recent_menu = QMenu("Open &Recent", self)
        m.addMenu(self.recent_menu)
        self._rebuild_recent_menu()
        m.addAction(self.paste_action)
        m.addSeparator()
        m.addActions([self.save_action, self.save_as_action, self.export_mask_action])
        m.addSeparator()
        m.addAction(self.batch_action)
        m.addSeparator()
        m.addAction(self.quit_action)

        m = mb.addMenu("&Edit")
        m.addActions([self.undo_action, self.redo_action])
        m.addSeparator()
        m.addActions([self.fill_action, self.cancel_action, self.clear_mask_action])
        m.addSeparator()
        m.addAction(self.preferences_action)

        m = mb.addMenu("&View")
        m.addActions([self.zoom_in_action, self.zoom_out_action, self.fit_action, self.actual_size_action])
        m.addSeparator()
        m.addActions([self.compare_action, self.split_action])

        m = mb.addMenu("&Tools")
        m.addActions(list(self.tool_actions.values()))
        m.addSeparator()
        m.addActions([self.smaller_action, self.larger_action])

        m = mb.addMenu("&Help")
        m.addAction(self.about_action)

    def _build_toolbar(self) -> None:
        tb = QToolBar("Tools", self)
        tb.setObjectName("tools")
        tb.setMovable(False)
        self.addToolBar(tb)
        tb.addActions([self.open_action, self.save_action])
        tb.addSeparator()
        tb.addActions([self.undo_action, self.redo_action])
        tb.addSeparator()
        tb.addActions(list(self.tool_actions.values()))
        tb.addWidget(QLabel(" Size "))
        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(1, 400)
        self.size_slider.setFixedWidth(140)
        self.size_slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keep keys (space, \\) on the canvas
        self.size_spin = QSpinBox()
        self.size_spin.setRange(1, 1000)
        self.size_spin.setSuffix(" px")
        self.size_slider.valueChanged.connect(self.set_brush_size)
        self.size_spin.valueChanged.connect(self.set_brush_size)
        self.size_spin.editingFinished.connect(self.canvas.setFocus)
        tb.addWidget(self.size_slider)
        tb.addWidget(self.size_spin)
        tb.addAction(self.clear_mask_action)
        tb.addSeparator()
        self.fill_button = QPushButton("Fill")
        self.fill_button.setToolTip("Fill the painted hole (Ctrl+Enter)")
        self.fill_button.clicked.connect(self.fill)
        self.fill_button.setDefault(True)
        tb.addWidget(self.fill_button)
        tb.addAction(self.cancel_action)
        tb.addSeparator()
        tb.addActions([self.compare_action, self.split_action, self.fit_action, self.actual_size_action])
        self.set_brush_size(self.canvas.brush_size)

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.progress = QProgressBar()
        self.progress.setFixedWidth(160)
        self.progress.setVisible(False)
        self.size_label = QLabel()
        self.zoom_label = QLabel()
        self.device_label = QLabel()
        self.model_label = QLabel()
        for w in (self.progress, self.size_label, self.zoom_label, self.device_label, self.model_label):
            sb.addPermanentWidget(w)

    # ================================================================== state display
    @property
    def busy(self) -> bool:
        return self.fill_job is not None

    def _update_title(self) -> None:
        name = self.doc.display_name if self.doc else "Retoucher"
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
        self.undo_action.setEnabled(idle and self.undo_stack.canUndo())
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
        self.canvas.set_editable(idle)

    def _show_zoom(self, zoom: float) -> None:
        self.zoom_label.setText(f"{zoom * 100:.0f}%" if self.doc else "")

    def _show_size(self) -> None:
        if self.doc is None:
            self.size_label.setText("")
        else:
            mp = self.doc.width * self.doc.height / 1e6
            self.size_label.setText(f"{self.doc.width} \u00d7 {self.doc.height} px ({mp:.1f} MP)")

    def _refresh_model_status(self) -> None:
        inp = self.inpainters.loaded
        if inp is not None:
            self.device_label.setText(f"Device: {inp.device_name}")
            self.model_label.setText(f"Model: {inp.name}")
            return
        self.device_label.setText(f"Device: {self.inpainters.device} (loads on first fill)")
        info, problem = self.model_info()
        self.model_label.setText(f"Model: {info.name}" if info else "Model: none \u2014 see Preferences")
        self.model_label.setToolTip(problem or "")

    def model_info(self) -> tuple[Any, str | None]:
        """(WeightsInfo or None, a problem description or None) for the configured model,
        from the loaded Inpainter or else the weight file's header (no model is loaded)."""
        inp = self.inpainters.loaded
        if inp is not None:
            return inp.info, None
        import engine

        path = Path(self.inpainters.weights) if self.inpainters.weights else engine.default_weights_path()
        try:
            return engine.read_weights_info(path), None
        except engine.WeightsError as exc:
            if self.inpainters.weights is None and not path.exists():
                return None, f"The bundled model is missing ({path}). Choose a weights file in Preferences."
            return None, str(exc)

    def _sync_compare(self, on: bool) -> None:
        if self.compare_action.isChecked() != on:
            self.compare_action.blockSignals(True)
            self.compare_action.setChecked(on)
            self.compare_action.blockSignals(False)

    def set_split(self, on: bool) -> None:
        """The split before/after view on or off (it needs a photo: the toggle follows the canvas)."""
        self.canvas.set_split(on)
        self._sync_split(self.canvas.splitting)
        if self.canvas.splitting and on:
            self.statusBar().showMessage(
                "Original left, retouched right: drag to move the divider, Y to end", 4000
            )

    def _sync_split(self, on: bool) -> None:
        if self.split_action.isChecked() != on:
            self.split_action.blockSignals(True)
            self.split_action.setChecked(on)
            self.split_action.blockSignals(False)

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
        size = int(min(max(size, 1), 1000))
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
            self.doc.state_changed.disconnect(self._update_title)
        self.undo_stack.clear()
        self.doc = doc
        if doc is not None:
            doc.state_changed.connect(self._update_title)
        self.canvas.set_document(doc)
        self._show_size()
        self._show_zoom(self.canvas.zoom)
        self._update_title()
        self._update_actions()
        self.canvas.setFocus()

    def _push_edit(self, edit: Edit) -> None:
        """Put an edit of the current photo (already applied) on the undo stack."""
        if self.doc is not None:
            self.undo_stack.push(EditCommand(self.doc, edit, self._on_history_error))

    def _on_canvas_edit(self, doc: Document, edit: Edit) -> None:
        if doc is self.doc:  # an edit of a photo that is no longer open has no history left
            self._push_edit(edit)

    def _on_history_error(self, title: str, message: str) -> None:
        self.show_error(title, message)

    def undo(self) -> None:
        if not self.busy:
            self.canvas.finish_drag()
            self.undo_stack.undo()

    def redo(self) -> None:
        if not self.busy:
            self.canvas.finish_drag()
            self.undo_stack.redo()

    def ask_unsaved_changes(self) -> QMessageBox.StandardButton:
        """Save, Discard or Cancel (tests replace this)."""
        assert self.doc is not None
        return QMessageBox.question(
            self,
            "Unsaved changes",
            f"Save the changes to {self.doc.display_name}?",
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save,
        )

    def maybe_save(self) -> bool:
        """True when it is fine to drop the current photo (saved, discarded or unchanged)."""
        if self.doc is None or not self.doc.dirty:
            return True
        answer = self.ask_unsaved_changes()
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def open_path(self, path: str | Path, *, remember: bool = True) -> bool:
        """Open a photo file; an unreadable one gets an error box and changes nothing.
        ``remember``: add it to the recent files."""
        if self.busy:
            self.statusBar().showMessage("Wait for the fill to finish (or cancel it) first", 4000)
            return False
        self.canvas.finish_drag()
        if not self.maybe_save():
            return False
        from engine.imageio import ImageReadError

        try:
            doc = Document.open(path)
        except ImageReadError as exc:
            self.show_error("Cannot open photo", str(exc))
            if isinstance(exc, FileNotFoundError):
                self.settings.remove_recent_file(path)
                self._rebuild_recent_menu()
            return False
        except (OSError, ValueError, MemoryError) as exc:
            self.show_error("Cannot open photo", f"{path}: {exc}")
            return False
        self.set_document(doc)
        if remember:
            self.settings.add_recent_file(path)
            self._rebuild_recent_menu()
        self.statusBar().showMessage(f"Opened {doc.display_name}", 3000)
        return True

    def open_dialog(self) -> None:
        start = (
            str(self.doc.path.parent)
            if self.doc and self.doc.path
            else str(self.settings.value("files/last_dir", "") or Path.home())
        )
        path, _ = QFileDialog.getOpenFileName(self, "Open photo", start, OPEN_FILTER)
        if path:
            self.settings.set_value("files/last_dir", str(Path(path).parent))
            self.open_path(path)

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = self.settings.recent_files
        for f in files:
            a = self.recent_menu.addAction(Path(f).name)
            a.setToolTip(f)
            a.setStatusTip(f)
            a.triggered.connect(lambda _c=False, p=f: self.open_path(p))
        if files:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear List", self._clear_recent)
        else:
            self.recent_menu.addAction("(none)").setEnabled(False)

    def _clear_recent(self) -> None:
        self.settings.clear_recent_files()
        self._rebuild_recent_menu()

    def open_image(self, image: QImage, name: str = "Pasted") -> bool:
        """Open an in-memory image (clipboard, dropped image data) as a new, unnamed photo."""
        if self.busy or image.isNull():
            return False
        self.canvas.finish_drag()
        if not self.maybe_save():
            return False
        rgb, alpha = to_rgb_alpha(image)
        doc = Document(rgb, alpha=alpha)
        doc.mark_unsaved()  # it exists nowhere else: closing or opening another photo asks
        self.set_document(doc)
        self.statusBar().showMessage(
            f"{name} image, {rgb.shape[1]} \u00d7 {rgb.shape[0]} px: use Save As to keep it", 5000
        )
        return True

    def paste(self) -> None:
        image = QGuiApplication.clipboard().image()
        if image.isNull():
            self.statusBar().showMessage("The clipboard holds no image", 3000)
            return
        self.open_image(image, "Pasted")

    # ------------------------------------------------------------------ drag and drop
    @staticmethod
    def _dropped_file(mime: QMimeData) -> str | None:
        for url in mime.urls():
            if url.isLocalFile():
                return url.toLocalFile()
        return None

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        mime = event.mimeData()
        if not self.busy and (self._dropped_file(mime) or mime.hasImage()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        mime = event.mimeData()
        path = self._dropped_file(mime)
        if path:
            event.acceptProposedAction()
            self.open_path(path)
        elif mime.hasImage():
            event.acceptProposedAction()
            data = mime.imageData()
            image = data.toImage() if isinstance(data, QPixmap) else QImage(data)
            self.open_image(image, "Dropped")

    # ------------------------------------------------------------------ saving
    def ask_save_path(self, title: str, suggestion: Path, filters: str) -> str:
        """A file name from the user, "" if cancelled (tests replace this)."""
        path, chosen = QFileDialog.getSaveFileName(self, title, str(suggestion), filters)
        if path and not Path(path).suffix and chosen in SAVE_FILTERS:
            path += SAVE_FILTERS[chosen]
        return path

    def save_in_place_problem(self) -> str | None:
        """Why Save must not write over the photo's file (None: it may): the bundled sample,
        or a file that an 8-bit RGB picture cannot hold (pages, 16-bit, CMYK...)."""
        if self.doc is None or self.doc.path is None:
            return None
        if _is_bundled(self.doc.path):
            return "the sample photo is part of Retoucher and stays as it is"
        return self.doc.save_in_place_problem

    def save(self) -> bool:
        if self.doc is None:
            return False
        if self.doc.path is None or self.doc.format is None:
            return self.save_as()
        problem = self.save_in_place_problem()
        if problem:
            self.statusBar().showMessage(f"Not saved over the original: {problem}", 8000)
            return self.save_as(problem)
        return self._write(None)

    def save_as(self, problem: str | None = None) -> bool:
        """Ask for a file name and save there. ``problem``: why the original file is not
        written over (shown in the dialog's title; a copy's name is suggested)."""
        if self.doc is None:
            return False
        last_dir = Path(str(self.settings.value("files/last_dir", "") or Path.home()))
        title = "Save photo as"
        suggestion = self.doc.path or last_dir / "retouched.png"
        if problem and self.doc.path is not None:
            title = f"Save a copy — {problem}"
            folder = last_dir if _is_bundled(self.doc.path) else self.doc.path.parent
            suggestion = folder / f"{self.doc.path.stem}_retouched{self.doc.path.suffix}"
        path = self.ask_save_path(title, suggestion, ";;".join(SAVE_FILTERS))
        if not path:
            return False
        if Path(path).suffix.lower() not in IMAGE_SUFFIXES:
            self.show_error(
                "Cannot save", f"{path}: use one of the suffixes {', '.join(sorted(IMAGE_SUFFIXES))}"
            )
            return False
        return self._write(Path(path))

    def _write(self, path: Path | None) -> bool:
        assert self.doc is not None
        try:
            written = self.doc.save(
                path,
                quality=self.settings.jpeg_quality,
                keep_jpeg_compression=self.settings.jpeg_keep_original,
            )
        except (OSError, ValueError) as exc:
            self.show_error("Cannot save", f"{path or self.doc.path}: {exc}")
            return False
        self.settings.add_recent_file(written)
        self._rebuild_recent_menu()
        self._update_title()
        self.statusBar().showMessage(f"Saved {written}", 4000)
        return True

    def export_mask(self) -> bool:
        if self.doc is None:
            return False
        self.canvas.finish_drag()
        base = self.doc.path or Path.home() / "photo.png"
        path = self.ask_save_path("Export mask", base.with_name(f"{base.stem}_mask.png"), "PNG mask (*.png)")
        if not path:
            return False
        if Path(path).suffix.lower() != ".png":
            path = str(Path(path).with_suffix(".png"))
        try:
            self.doc.export_mask(path)
        except (OSError, ValueError) as exc:
            self.show_error("Cannot export the mask", f"{path}: {exc}")
            return False
        self.statusBar().showMessage(f"Mask saved to {path}", 4000)
        return True

    # ================================================================== mask and fill
    def clear_mask(self) -> None:
        if self.doc is not None and not self.busy:
            self.canvas.finish_drag()
            edit = self.doc.clear_mask()
            if edit is not None:
                self._push_edit(edit)

    def fill(self) -> FillJob | None:
        """Start filling the painted hole in a worker thread; returns the job (None if nothing
        to do). The result arrives as one undo step."""
        if self.doc is None or self.busy:
            return None
        self.canvas.finish_drag()  # a stroke in progress is part of the hole, one step before the fill
        if not self.doc.has_hole:
            self.statusBar().showMessage(
                "Paint over what should go first (brush or rectangle), then Fill", 4000
            )
            return None
        if self.doc.mask.all():
            reason = str(engine.NothingToFillError())
            self.show_error("Cannot fill", f"{reason[0].upper()}{reason[1:]}.")
            return None
        self.canvas.set_comparing(False)
        job = FillJob(
            self.doc.image.copy(),
            self.doc.mask.copy(),
            self.inpainters,
            state=self.doc.image_state,
            doc=self.doc,
        )
        job.signals.loaded.connect(self._on_engine_loaded)
        job.signals.progress.connect(lambda f, j=job: self._on_fill_progress(j, f))
        job.signals.finished.connect(lambda r, j=job: self._on_fill_finished(j, r))
        job.signals.failed.connect(lambda t, m, j=job: self._on_fill_failed(j, t, m))
        job.signals.cancelled.connect(lambda j=job: self._on_fill_cancelled(j))
        self.fill_job = job
        self.progress.setRange(0, 0)  # busy until the engine reports progress
        self.progress.setVisible(True)
        self.statusBar().showMessage("Filling\u2026 (Esc cancels)")
        QGuiApplication.setOverrideCursor(Qt.CursorShape.BusyCursor)
        self._update_actions()
        self.pool.start(job)
        return job

    def cancel_fill(self) -> None:
        if self.fill_job is not None:
            self.fill_job.cancel()
            self.statusBar().showMessage("Cancelling\u2026")

    def _end_fill(self, job: FillJob) -> bool:
        if job is not self.fill_job:
            return False
        self.fill_job = None
        self.progress.setVisible(False)
        QGuiApplication.restoreOverrideCursor()
        self._update_actions()
        return True

    def _on_engine_loaded(self, _inpainter: object) -> None:
        self._refresh_model_status()

    def _on_fill_progress(self, job: FillJob, fraction: float) -> None:
        if job is self.fill_job:
            self.progress.setRange(0, 100)
            self.progress.setValue(round(100 * fraction))

    def _on_fill_finished(self, job: FillJob, result: np.ndarray) -> None:
        if not self._end_fill(job):
            return
        doc = self.doc
        if doc is None or doc is not job.doc or doc.image_state != job.state:
            self.statusBar().showMessage("The photo changed while filling; the result was dropped", 5000)
            return
        edit = doc.apply_fill(result, job.hole)
        if edit is not None:
            self._push_edit(edit)
        self.statusBar().showMessage("Filled. Compare with \\ (or Y, split), undo with Ctrl+Z", 4000)

    def _on_fill_failed(self, job: FillJob, title: str, message: str) -> None:
        if self._end_fill(job):
            self._refresh_model_status()
            self.show_error(title, message)

    def _on_fill_cancelled(self, job: FillJob) -> None:
        if self._end_fill(job):
            self.statusBar().showMessage("Fill cancelled; nothing changed", 4000)

    # ================================================================== dialogs
    def _keep(self, dialog: QWidget) -> None:
        self._dialogs.append(dialog)
        dialog.finished.connect(lambda _r, d=dialog: self._dialogs.remove(d) if d in self._dialogs else None)

    def open_preferences(self) -> PreferencesDialog:
        dlg = PreferencesDialog(self.settings, self)

        def accepted() -> None:
            dlg.apply()
            self.inpainters.configure(self.settings.weights or None, self.settings.device)
            self.set_brush_size(self.settings.brush_size)
            self._refresh_model_status()

        dlg.accepted.connect(accepted)
        self._keep(dlg)
        dlg.open()
        return dlg

    def open_about(self) -> AboutDialog:
        info, problem = self.model_info()
        dlg = AboutDialog(info, problem, self)
        self._keep(dlg)
        dlg.open()
        return dlg

    def open_batch_dialog(self) -> QWidget:
        from .batch_dialog import BatchDialog

        dlg = BatchDialog(self.settings, self.inpainters, self)
        dlg.setWindowModality(Qt.WindowModality.WindowModal)
        self._keep(dlg)
        dlg.open()
        return dlg

    # ================================================================== closing
    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.maybe_save():
            event.ignore()
            return
        if self.fill_job is not None:
            self.fill_job.cancel()
        for d in list(self._dialogs):
            d.close()
        self.pool.waitForDone(30000)
        if self.fill_job is not None:
            self._end_fill(self.fill_job)
        self.settings.set_value("window/geometry", self.saveGeometry())
        self.settings.sync()
        event.accept()

    def restore_geometry(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry:
            self.restoreGeometry(geometry)
