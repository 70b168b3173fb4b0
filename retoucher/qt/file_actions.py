"""How photos get into and out of the main window: open, open recent, paste, drop, save, save as,
export mask, load mask, and the question about unsaved changes.

:class:`FileActions` does the work behind the File menu for one :class:`~.main_window.MainWindow`
(which keeps the methods tests and scripts call, such as ``open_path``, ``save`` and
``save_as``, and delegates them here). The questions to the user go through the
window's ``ask_unsaved_changes`` and ``ask_save_path``, so that tests and scripts can answer
them. :func:`file_format` is the one place the Qt code reads the document's file metadata.
"""

from __future__ import annotations

import enum
import mimetypes
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from PIL import Image
from PySide6.QtCore import QMimeData
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QImage, QPixmap
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox, QWidget

from engine.formats import IMAGE_SUFFIXES, SUFFIX_FORMATS, is_readable_suffix

from ..document import Document, printable
from ..logged import logged_warnings
from .file_filters import MASK_EXPORT_FILTER, MASK_FILTER, OPEN_FILTER, SAVE_FILTERS, save_filter
from .qimage import colour_profile, is_deep, to_rgb_alpha
from .settings import Settings
from .waiting import Waiter
from .worker import file_stamp

if TYPE_CHECKING:  # pragma: no cover
    from .main_window import MainWindow

__all__ = [
    "ChangedOnDisk",
    "FileActions",
    "ask_changed_on_disk",
    "ask_save_path",
    "ask_unsaved_changes",
    "file_format",
    "is_bundled",
]

LAST_DIR_KEY = "files/last_dir"

T = TypeVar("T")


def file_format(doc: Document) -> str | None:
    """The format of the file ``doc`` was read from or last saved to (None: it is in no file).
    The Qt code's only read of the document's file metadata."""
    return doc.metadata.format


BUNDLED_PROBLEM = "the sample photo is part of Retoucher and stays as it is"


def is_bundled(path: Path) -> bool:
    """Whether ``path`` is one of Retoucher's own files (the sample photo in resources/)."""
    from engine import resources_dir

    try:
        return path.resolve().is_relative_to(resources_dir().resolve())
    except OSError:
        return False


def ask_save_path(parent: QWidget, title: str, suggestion: Path, filters: str, selected: str = "") -> str:
    """A file name from a save dialog that starts on the ``selected`` filter, "" if cancelled;
    a name typed without an image format's suffix gets the chosen format's ("holiday.2024" too:
    it was refused as a suffix the app cannot write; the dialog asked about the name as typed: an
    existing file of the final name is asked about here)."""
    path, chosen = QFileDialog.getSaveFileName(parent, title, str(suggestion), filters, selected)
    if path and Path(path).suffix.lower() not in Image.registered_extensions() and chosen in SAVE_FILTERS:
        path = path.rstrip(".") + SAVE_FILTERS[chosen]  # "trail." is "trail.png", not "trail..png"
        if not confirm_replace(parent, title, Path(path)):
            return ""
    return path


def confirm_replace(parent: QWidget | None, title: str, path: Path) -> bool:
    """True when ``path`` does not exist or the user agrees to replace it."""
    if not path.exists():
        return True
    answer = QMessageBox.question(
        parent,
        title,
        f"{path.name} already exists. Do you want to replace it?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


def ask_unsaved_changes(parent: QWidget, doc: Document) -> QMessageBox.StandardButton:
    """Save, Discard or Cancel: what to do with the changes to ``doc`` (a photo that is saved
    but holds a marked hole not filled yet: Discard or Cancel, the mask is no part of the file)."""
    kept = " (File > Export Mask\u2026 keeps it)"
    if not doc.dirty:
        return QMessageBox.question(
            parent,
            "Hole not filled",
            f"The hole marked on {doc.display_name} is not filled yet. Drop it?{kept}",
            QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
    unfilled = (
        f" The hole marked on it and not filled yet is dropped either way{kept}." if doc.has_hole else ""
    )
    return QMessageBox.question(
        parent,
        "Unsaved changes",
        f"Save the changes to {doc.display_name}?{unfilled}",
        QMessageBox.StandardButton.Save
        | QMessageBox.StandardButton.Discard
        | QMessageBox.StandardButton.Cancel,
        QMessageBox.StandardButton.Save,
    )


class ChangedOnDisk(enum.Enum):
    """The answers to :func:`ask_changed_on_disk`."""

    REPLACE = "replace"
    SAVE_AS = "save as"
    CANCEL = "cancel"


def ask_changed_on_disk(parent: QWidget, doc: Document) -> ChangedOnDisk:
    """Replace, Save As or Cancel, for a photo whose file was written since it was opened here."""
    box = QMessageBox(
        QMessageBox.Icon.Warning,
        "File changed on disk",
        f"{doc.display_name} was changed on disk since it was opened here (by another program?). "
        "Saving over it loses those changes.",
        QMessageBox.StandardButton.Cancel,
        parent,
    )
    replace = box.addButton("Replace It", QMessageBox.ButtonRole.DestructiveRole)
    save_as = box.addButton("Save As\u2026", QMessageBox.ButtonRole.AcceptRole)
    box.setDefaultButton(save_as)
    box.exec()
    clicked = box.clickedButton()
    if clicked is replace:
        return ChangedOnDisk.REPLACE
    return ChangedOnDisk.SAVE_AS if clicked is save_as else ChangedOnDisk.CANCEL


def _dropped_photos(mime: QMimeData) -> list[str]:
    """The dropped local files that may be photos: not a folder, nor a file whose suffix names
    another kind of file (a text file, a PDF: the drop cursor says no before the drop); a name
    without a suffix or with one nobody knows (IMG_0001, scan.jpg.download) may be a photo."""
    paths = [url.toLocalFile() for url in mime.urls() if url.isLocalFile()]
    return [p for p in paths if not os.path.isdir(p) and _may_be_a_photo(p)]


def _may_be_a_photo(path: str) -> bool:
    if is_readable_suffix(path):
        return True
    kind, _ = mimetypes.guess_type(path, strict=False)
    return kind is None or kind.startswith("image/")


class FileActions:
    """The File menu's work for ``window``; :attr:`recent_menu` is its Open Recent menu."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.waiter = Waiter(window)  # reads and writes photo files off the GUI thread
        self.recent_menu = QMenu("Open &Recent", window)
        # what another window of the app opened since shows too (the settings read afresh)
        self.recent_menu.aboutToShow.connect(self._refresh_recent_menu)
        self.rebuild_recent_menu()

    def _refresh_recent_menu(self) -> None:
        self._settings.sync()
        self.rebuild_recent_menu()

    @property
    def _settings(self) -> Settings:
        return self.window.settings

    @property
    def working(self) -> bool:
        """A photo file is being read or written (the window must not close meanwhile)."""
        return self.waiter.waiting

    def refuse_while_working(self) -> bool:
        """True, with a word in the status bar, while a photo file is read or written: a drop
        (which Qt delivers at once, the user's other input waits), a close from the window
        system, or anything else that would open, paste or save now changes nothing."""
        if self.working:
            self._message("A photo file is being read or written; try again when it is done", 4000)
            return True
        return False

    def _off_gui_thread(self, fn: Callable[[], T], message: str) -> tuple[T, list[str]]:
        """``fn()``'s result and the warnings the engine logged meanwhile, ``fn`` run in a worker
        thread while the window repaints; a fill or damage search that ends meanwhile is applied
        after it (``fn`` may be reading the photo)."""

        def work() -> tuple[T, list[str]]:
            with logged_warnings() as said:
                return fn(), said

        with self.window.jobs.held():
            return self.waiter.run(work, message)

    def _message(self, text: str, msecs: int) -> None:
        self.window.statusBar().showMessage(text, msecs)

    # ------------------------------------------------------------------ recent files
    def rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        files = self._settings.recent_files
        for f in files:
            a = self.recent_menu.addAction(printable(Path(f).name).replace("&", "&&"))  # "&": no shortcut
            a.setToolTip(printable(f))
            a.setStatusTip(printable(f))
            a.triggered.connect(lambda _c=False, p=f: self.window.open_path(p))
        if files:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear List", self._clear_recent)
        else:
            self.recent_menu.addAction("(none)").setEnabled(False)

    def _clear_recent(self) -> None:
        self._settings.clear_recent_files()
        self.rebuild_recent_menu()

    def _remember(self, path: str | Path) -> None:
        self._settings.add_recent_file(path)
        self.rebuild_recent_menu()

    def _last_dir(self) -> Path:
        """Where the file dialogs start for a photo that has no folder of its own (pasted):
        the folder last opened from or saved to (home at first)."""
        return Path(str(self._settings.value(LAST_DIR_KEY, "") or Path.home()))

    def _remember_dir(self, path: str | Path) -> None:
        self._settings.set_value(LAST_DIR_KEY, str(Path(path).parent))

    # ------------------------------------------------------------------ opening
    def maybe_save(self) -> bool:
        """True when it is fine to drop the current photo (saved, discarded or unchanged, and
        no hole marked but not filled, or that hole dropped: a painted or reviewed mask went
        without a word with an open, a paste, a drop or Quit)."""
        while True:
            doc = self.window.doc
            if doc is None or not (doc.dirty or doc.has_hole):
                return True
            asked_about = (doc, doc.image_state, doc.dirty, doc.mask_revision)
            answer = self.window.ask_unsaved_changes()
            if answer == QMessageBox.StandardButton.Save:
                return self.save()
            if answer != QMessageBox.StandardButton.Discard:
                return False
            doc = self.window.doc
            if doc is None or asked_about == (doc, doc.image_state, doc.dirty, doc.mask_revision):
                return True
            # the photo changed while the question was open (a running fill landed: the hole
            # the user agreed to drop is now a retouched photo): ask about what it is now

    def open_path(self, path: str | Path, *, remember: bool = True) -> bool:
        """Open a photo file; an unreadable one gets an error box and changes nothing. The file
        is read before the question about unsaved changes: the question is only asked for a
        photo that will open. ``remember``: add it to the recent files."""
        w = self.window
        if self.refuse_while_working():
            return False
        if w.busy:
            self._message("Wait for the fill or damage search to finish (Esc cancels it) first", 4000)
            return False
        w.canvas.finish_held_drag()  # a stroke in progress becomes its undo step
        stamp = file_stamp(path)
        doc, said = self._read(path)
        if doc is None:  # nothing changed: a polygon being clicked is still open
            return False
        w.canvas.finish_drag(close_shape=True)  # it is part of the hole the question is about
        if not self.maybe_save():
            return False
        if file_stamp(path) != stamp:  # saving the current photo wrote this very file
            doc, said = self._read(path)
            if doc is None:
                return False
        w.set_document(doc)
        if remember:
            self._remember(path)
        colours = w.canvas.screen_colours
        shown = (
            f" (colours shown converted from \u201c{colours.name}\u201d to the screen's sRGB)"
            if colours
            else ""
        )
        if said:  # e.g. a JPEG whose data is damaged, metadata that could not be read
            self._message(f"Opened {doc.display_name}{shown}. Note: {said[0]}", 15000)
        else:
            self._message(f"Opened {doc.display_name}{shown}", 6000 if colours else 3000)
        return True

    def _read(self, path: str | Path) -> tuple[Document | None, list[str]]:
        """The photo in ``path`` and the warnings the engine logged while reading it, or None
        after an error box (a missing file also leaves the recent files)."""
        from engine.imageio import ImageReadError

        try:
            doc, said = self._off_gui_thread(lambda: Document.open(path), f"Opening {Path(path).name}\u2026")
            # what Save will not write over (pages, 16 bits, CMYK...): said now, not at the save
            problem = doc.save_in_place_problem if not is_bundled(doc.path or Path(path)) else None
            return doc, said + ([f"{problem} if saved over"] if problem else [])
        except ImageReadError as exc:
            text = str(exc)
            recent = self._settings.recent_files
            listed = next((p for p in (str(path), str(Path(path).resolve())) if p in recent), None)
            if isinstance(exc, FileNotFoundError) and listed is not None:
                if Path(path).parent.is_dir():  # gone from its folder: gone from the list
                    self._settings.remove_recent_file(listed)
                    self.rebuild_recent_menu()
                    text += "\nIt was removed from Open Recent."
                else:  # a drive not connected, a share not mounted: it stayed, said so
                    text += f"\nIts folder {Path(path).parent} is not there (a drive not connected?); it stays in Open Recent."
            self.window.show_error("Cannot open photo", text)
        except (OSError, ValueError, MemoryError) as exc:
            self.window.show_error("Cannot open photo", f"{path}: {exc}")
        return None, []

    def open_dialog(self) -> None:
        doc = self.window.doc
        start = str(doc.path.parent) if doc and doc.path else str(self._last_dir())
        path, _ = QFileDialog.getOpenFileName(self.window, "Open photo", start, OPEN_FILTER)
        if path:
            self._remember_dir(path)
            self.window.open_path(path)

    def open_image(self, image: QImage, name: str = "Pasted") -> bool:
        """Open an in-memory image (clipboard, dropped image data) as a new, unnamed photo."""
        w = self.window
        if w.busy or image.isNull() or self.refuse_while_working():
            return False
        w.canvas.finish_drag(close_shape=True)  # a polygon being clicked is part of the hole asked about
        if not self.maybe_save():
            return False
        rgb, alpha = to_rgb_alpha(image)
        doc = Document.from_picture(rgb, alpha=alpha, icc_profile=colour_profile(image))
        w.set_document(doc)
        size = f"{rgb.shape[1]} \u00d7 {rgb.shape[0]} px"
        deep = " (with 8 bits per channel: Retoucher edits no more)" if is_deep(image) else ""
        self._message(f"{name} image, {size}{deep}: use Save As to keep it", 8000 if deep else 5000)
        return True

    def paste(self) -> None:
        image = QGuiApplication.clipboard().image()
        if image.isNull():
            self._message("The clipboard holds no image", 3000)
            return
        self.open_image(image, "Pasted")

    # ------------------------------------------------------------------ drag and drop
    def drag_enter(self, event: QDragEnterEvent) -> None:
        mime = event.mimeData()
        if not (self.window.busy or self.working) and (_dropped_photos(mime) or mime.hasImage()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def drop(self, event: QDropEvent) -> None:
        if self.refuse_while_working():  # entered before the work began
            event.ignore()
            return
        mime = event.mimeData()
        paths = _dropped_photos(mime)
        if paths:
            event.acceptProposedAction()
            if self.window.open_path(paths[0]) and len(paths) > 1:
                self._message(
                    printable(
                        f"Opened {Path(paths[0]).name}; the {len(paths) - 1} other photo(s) dropped were not "
                        "opened: Retoucher edits one photo at a time (File > Batch retouches a folder)"
                    ),
                    10000,
                )
        elif mime.hasImage():
            event.acceptProposedAction()
            data = mime.imageData()
            image = data.toImage() if isinstance(data, QPixmap) else QImage(data)
            self.open_image(image, "Dropped")

    # ------------------------------------------------------------------ saving
    def save_in_place_problem(self) -> str | None:
        """Why Save must not write over the photo's file (None: it may): the bundled sample,
        or a file that an 8-bit RGB picture cannot hold (pages, 16-bit, CMYK...)."""
        doc = self.window.doc
        if doc is None or doc.path is None:
            return None
        if is_bundled(doc.path):
            return BUNDLED_PROBLEM
        return doc.save_in_place_problem

    def save(self) -> bool:
        doc = self.window.doc
        if doc is None or self.refuse_while_working():
            return False
        if doc.path is None or file_format(doc) is None:
            return self.save_as()
        problem = self.save_in_place_problem()
        if problem:
            self._message(f"Not saved over the original: {problem}", 8000)
            return self.save_as(problem)
        if doc.changed_on_disk:  # written by another program since: Save wrote over it silently
            answer = self.window.ask_changed_on_disk()
            if answer == ChangedOnDisk.SAVE_AS:
                return self.save_as()
            if answer != ChangedOnDisk.REPLACE:
                return False
        return self._write(None)

    def save_as(self, problem: str | None = None) -> bool:
        """Ask for a file name and save there. ``problem``: why the original file is not
        written over (shown in the dialog's title; a copy's name is suggested)."""
        doc = self.window.doc
        if doc is None or self.refuse_while_working():
            return False
        last_dir = self._last_dir()
        selected = save_filter(file_format(doc))  # the dialog starts on the photo's format
        title = "Save photo as"
        suggestion = doc.path or last_dir / "retouched"
        if problem and doc.path is not None:
            title = f"Save a copy — {problem}"
            folder = last_dir if is_bundled(doc.path) else doc.path.parent
            suggestion = folder / f"{doc.path.stem}_retouched{doc.path.suffix}"
        if suggestion.suffix.lower() not in IMAGE_SUFFIXES:
            suggestion = suggestion.with_name(suggestion.stem + SAVE_FILTERS[selected])
        path = self.window.ask_save_path(title, suggestion, ";;".join(SAVE_FILTERS), selected)
        if not path:
            return False
        if Path(path).suffix.lower() not in SUFFIX_FORMATS:  # .jfif and .jpe are JPEG's too
            self.window.show_error(
                "Cannot save", f"{path}: use one of the suffixes {', '.join(sorted(SUFFIX_FORMATS))}"
            )
            return False
        # the original chosen by name in Save As: what Save refuses, this must refuse too, also
        # after a copy was saved (the photo then refers to the copy; 8 bits went over a 16-bit scan)
        problem = BUNDLED_PROBLEM if is_bundled(Path(path)) else doc.write_over_problem(path)
        if problem:
            self.window.show_error(
                "Cannot save", printable(f"{path} is the original: {problem}. Choose another name.")
            )
            return False
        if not self._write(Path(path)):
            return False
        self._remember_dir(path)  # the next Save As or Export Mask of a pasted photo starts there
        return True

    def _folder_gone(self, target: Path, title: str, hint: str = "") -> bool:
        """True, after an error box, when ``target``'s folder does not exist: renamed or removed
        since the photo was opened (or a name typed into a folder that never was). The write
        would make it again (engine.atomic makes missing folders, which batch outputs need)."""
        try:
            if target.parent.is_dir():
                return False
            if target.parent.exists():  # a file where the folder should be
                return False  # the write says what is wrong
        except OSError:  # cannot tell (permission, a share gone): the write says what is wrong
            return False
        self.window.show_error(
            title,
            f"{printable(str(target))}: the folder {printable(str(target.parent))} does not exist "
            f"(renamed, moved or deleted?).{hint}",
        )
        return True

    def _write(self, path: Path | None) -> bool:
        w = self.window
        assert w.doc is not None
        target = path or w.doc.path or Path()
        name = target.name
        again = " Use File > Save As to choose where it goes." if path is None else ""
        if self._folder_gone(target, "Cannot save", again):
            return False
        # a copy of a 16-bit, CMYK or many-page original: said at the save too, not only at the open
        note = w.doc.copy_note if path is not None else None
        said: list[str] = []

        def run(work: Callable[[], T]) -> T:
            result, logged = self._off_gui_thread(work, f"Saving {name}\u2026")
            said.extend(logged)
            return result

        try:  # held until the document has taken the file as saved: a fill landing sooner is unsaved
            with w.jobs.held(), logged_warnings() as here:
                written = w.doc.save(
                    path,
                    quality=self._settings.jpeg_quality,
                    keep_jpeg_compression=self._settings.jpeg_keep_original,
                    run=run,
                )
            said += here
        except MemoryError:
            w.show_error("Cannot save", f"{printable(str(target))}: not enough memory to write the photo")
            return False
        except (OSError, ValueError) as exc:
            w.show_error("Cannot save", printable(f"{target}: {exc}"))
            return False
        self._remember(written)
        w.update_title()
        notes = list(dict.fromkeys(said + ([note] if note else [])))  # each once, in order
        if notes:  # e.g. a JPEG re-encoded whole, metadata the format cannot hold: every one
            self._message(printable(f"Saved {written}. Note: {'; '.join(notes)}"), 15000)
        else:
            self._message(printable(f"Saved {written}"), 4000)
        return True

    def export_mask(self) -> bool:
        w = self.window
        if w.doc is None:
            return False
        w.canvas.finish_drag(close_shape=True)  # the mask exported is the one on screen
        base = w.doc.path or self._last_dir() / "photo.png"
        path = w.ask_save_path("Export mask", base.with_name(f"{base.stem}_mask.png"), MASK_EXPORT_FILTER)
        if not path:
            return False
        if Path(path).suffix.lower() != ".png":  # added, never in place of a suffix: "shot.v2" is
            path += ".png"  # not "shot.png", which may be the photo
            if not confirm_replace(w, "Export mask", Path(path)):
                return False
        if w.doc.path is not None and Path(path).resolve() == w.doc.path.resolve():
            w.show_error(
                "Cannot export the mask", printable(f"{path} is the open photo: choose another name.")
            )
            return False
        if self._folder_gone(Path(path), "Cannot export the mask"):
            return False
        doc, name = w.doc, printable(Path(path).name)
        try:  # a 24-megapixel mask takes a second or more to write: off the GUI thread
            self._off_gui_thread(lambda: doc.export_mask(path), f"Exporting mask {name}\u2026")
        except (OSError, ValueError) as exc:
            w.show_error("Cannot export the mask", printable(f"{path}: {exc}"))
            return False
        self._remember_dir(path)
        self._message(printable(f"Mask saved to {path}"), 4000)
        return True

    # ------------------------------------------------------------------ loading a mask
    def ask_mask_path(self) -> str:
        """A mask file chosen by the user, "" if cancelled (tests replace this)."""
        doc = self.window.doc
        start = str(doc.path.parent) if doc and doc.path else str(self._last_dir())
        path, _ = QFileDialog.getOpenFileName(self.window, "Load mask", start, MASK_FILTER)
        return path

    def read_mask(self, path: str | Path) -> np.ndarray | None:
        """The mask in ``path`` for the open photo (white = hole; another size is scaled like
        ``retoucher batch`` does, another aspect ratio refused), or None after an error box."""
        w = self.window
        if w.doc is None:
            return None
        from engine.imageio import load_mask

        shape, name = (w.doc.height, w.doc.width), printable(Path(path).name)
        try:  # a 24-megapixel mask took 8-17 s in the GUI thread (the window froze)
            mask, _ = self._off_gui_thread(lambda: load_mask(path, shape), f"Reading mask {name}\u2026")
            return mask
        except (OSError, ValueError, MemoryError) as exc:  # ImageReadError, MaskShapeError are ValueErrors
            text = str(exc)
            w.show_error("Cannot load the mask", text if str(path) in text else f"{path}: {text}")
            return None
