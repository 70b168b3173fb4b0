"""Opening, saving and the ways a photo gets in: file, recent list, drop, clipboard."""

from __future__ import annotations

import io
import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


from pathlib import Path

import numpy as np
import pytest
from gui_fakes import HANG_MS, HANG_S, FlatFill, GatedFill  # tests/retoucher/gui_fakes.py
from PIL import Image, ImageCms
from PySide6.QtCore import QMimeData, QObject, QPoint, Qt, QUrl, Signal
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QGuiApplication, QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox

from engine.imageio import load_image
from retoucher.document import Rect
from retoucher.logged import logged_warnings
from retoucher.qt.file_actions import file_format
from retoucher.qt.fill_worker import InpainterCache
from retoucher.qt.main_window import MainWindow
from retoucher.qt.settings import Settings
from retoucher.qt.waiting import SHOW_AFTER_MS
from tests.engine.jpeg_photos import scan_damaged

ORIENTATION, MAKE, MODEL = 0x0112, 0x010F, 0x0110


@pytest.fixture
def window(qtbot, tmp_path):
    cache = InpainterCache()
    cache.set(FlatFill())
    w = MainWindow(Settings.from_file(tmp_path / "settings.ini"), cache)
    w.asked = []

    def ask():
        w.asked.append(w.doc.display_name)
        return w.answer

    w.answer = QMessageBox.StandardButton.Discard
    w.ask_unsaved_changes = ask
    qtbot.addWidget(w)
    w.show()
    assert QTest.qWaitForWindowExposed(w)
    return w


def _rotated_jpeg(path, *, width=60, height=40):
    """A JPEG stored landscape with EXIF orientation 6 (display: rotate 90 clockwise), camera
    make/model and an sRGB ICC profile. Left half red, right half blue as stored."""
    arr = np.zeros((height, width, 3), np.uint8)
    arr[:, : width // 2] = (220, 20, 20)
    arr[:, width // 2 :] = (20, 20, 220)
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[MAKE] = "RetoucherCam"
    exif[MODEL] = "Test 1"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(arr).save(path, quality=95, exif=exif.tobytes(), icc_profile=icc)
    return icc


def _fill(qtbot, w, rect):
    w._push_edit(w.doc.set_rect(rect))
    w.fill()
    qtbot.waitUntil(lambda: not w.busy, timeout=10000)


def test_open_applies_exif_orientation_and_save_keeps_metadata(qtbot, window, tmp_path):
    w = window
    path = tmp_path / "photo.jpg"
    icc = _rotated_jpeg(path)
    assert w.open_path(path)
    assert (w.doc.width, w.doc.height) == (40, 60)  # upright: portrait
    assert tuple(w.doc.image[2, 20]) == pytest.approx((220, 20, 20), abs=12)  # red on top now
    assert w.size_label.text().startswith("40 \u00d7 60")
    assert w.windowTitle().startswith("photo.jpg")
    _fill(qtbot, w, Rect(10, 20, 30, 40))
    assert w.isWindowModified()
    w.save_action.trigger()
    assert not w.doc.dirty and not w.isWindowModified()
    again = load_image(path)
    assert again.metadata.format == "JPEG"
    assert again.rgb.shape == (60, 40, 3)  # still upright, not rotated twice
    assert np.abs(again.rgb.astype(int) - w.doc.image.astype(int)).mean() < 4
    # The fill is in the file. It keeps the original's 4:2:0 chroma subsampling, which smears
    # colour a pixel or two across the fill's edges: look inside them.
    assert np.abs(again.rgb[22:38, 12:28].astype(int) - 128).max() < 12
    with Image.open(path) as im:
        exif = im.getexif()
        assert exif.get(ORIENTATION, 1) == 1
        assert exif.get(MAKE) == "RetoucherCam" and exif.get(MODEL) == "Test 1"
        assert im.info.get("icc_profile") == icc


def test_preferences_keep_the_brush_picked_on_the_toolbar(qtbot, window):
    """OK in Preferences set the brush back to the default size even when only the JPEG quality
    changed; it changes the brush only when the default brush size itself was changed."""
    w = window
    w.set_brush_size(150)
    dlg = w.open_preferences()
    dlg.quality.setValue(80)
    dlg.accept()
    assert w.settings.jpeg_quality == 80
    assert w.canvas.brush_size == 150 and w.size_spin.value() == 150
    dlg = w.open_preferences()
    dlg.brush.setValue(25)
    dlg.accept()
    assert w.canvas.brush_size == 25 and w.size_spin.value() == 25


def test_jpeg_quality_comes_from_the_preferences(qtbot, window, tmp_path):
    w = window
    src = tmp_path / "noise.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
        src, quality=95
    )
    sizes = {}
    w.settings.jpeg_keep_original = False  # by default a JPEG keeps its own compression
    for q in (30, 95):
        w.settings.jpeg_quality = q
        assert w.open_path(src)
        w.ask_save_path = lambda *a, q=q: str(tmp_path / f"q{q}.jpg")
        assert w.save_as()
        sizes[q] = (tmp_path / f"q{q}.jpg").stat().st_size
    assert sizes[30] < sizes[95] * 0.7


def test_save_as_png_export_mask_and_recent_files(qtbot, window, tmp_path):
    w = window
    src = tmp_path / "in.png"
    rgba = np.random.default_rng(2).integers(0, 256, (32, 48, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(src)
    assert w.open_path(src)
    assert w.settings.recent_files[0] == str(src.resolve())
    assert [a.text() for a in w.recent_menu.actions()][0] == "in.png"
    _fill(qtbot, w, Rect(5, 5, 15, 15))
    w._push_edit(w.doc.set_rect(Rect(30, 10, 40, 20)))
    out = tmp_path / "sub" / "out.png"
    out.parent.mkdir()
    w.ask_save_path = lambda title, suggestion, filters, selected: str(out)
    assert w.save_as()
    assert w.doc.path == out and w.windowTitle().startswith("out.png")
    saved = load_image(out)
    assert saved.alpha is not None and np.array_equal(saved.alpha, rgba[:, :, 3])  # alpha kept
    assert np.array_equal(saved.rgb, w.doc.image)
    assert w.settings.recent_files[0] == str(out.resolve())
    mask_path = tmp_path / "mask.png"
    w.ask_save_path = lambda title, suggestion, filters: str(mask_path)
    assert w.export_mask()
    m = np.asarray(Image.open(mask_path).convert("L")) > 127
    assert np.array_equal(m, w.doc.mask) and m[10:20, 30:40].all() and m.sum() == 100
    # The recent-files menu opens the photo again.
    w.set_document(None)
    next(a for a in w.recent_menu.actions() if a.text() == "out.png").trigger()
    assert w.doc is not None and w.doc.path == out


def test_save_into_a_folder_that_is_gone_is_refused_not_made_again(qtbot, window, tmp_path):
    """The photo's folder renamed while it is open: Save says so (and points to Save As) instead
    of making an empty folder of the old name and writing the photo there; Save As and Export
    Mask into a folder that does not exist are refused too. The photo stays unsaved, nothing is
    written."""
    w = window
    folder = tmp_path / "Holiday"
    folder.mkdir()
    Image.fromarray(np.full((32, 48, 3), 90, np.uint8)).save(folder / "a.png")
    assert w.open_path(folder / "a.png")
    _fill(qtbot, w, Rect(5, 5, 15, 15))
    folder.rename(tmp_path / "Holiday 2024")
    assert not w.save()
    assert w.last_error[0] == "Cannot save" and "does not exist" in w.last_error[1]
    assert "Save As" in w.last_error[1]
    assert not folder.exists() and w.doc.dirty
    elsewhere = tmp_path / "new" / "b.png"
    w.ask_save_path = lambda title, suggestion, filters, selected: str(elsewhere)
    assert not w.save_as()
    assert "does not exist" in w.last_error[1] and not elsewhere.parent.exists() and w.doc.dirty
    w.ask_save_path = lambda title, suggestion, filters: str(folder / "a_mask.png")  # beside the photo
    assert not w.export_mask()
    assert w.last_error[0] == "Cannot export the mask" and not folder.exists()
    moved = tmp_path / "Holiday 2024" / "a.png"
    w.ask_save_path = lambda title, suggestion, filters, selected: str(moved)
    assert w.save_as() and not w.doc.dirty and load_image(moved).rgb[8, 8].tolist() == [128, 128, 128]


def test_odd_file_names_in_the_title_and_open_recent(qtbot, window, tmp_path):
    """A name holding "[*]" shows as it is in the title (Qt's modified mark is only the one the
    window adds); "&" in Open Recent is an "&", not a shortcut; a Linux name whose bytes are not
    UTF-8 is kept whole in the recent files (QSettings dropped the byte: Open Recent then failed
    and every save added another entry) and shown with a replacement character."""
    w = window
    w.show()
    qtbot.waitExposed(w)
    odd = tmp_path / "draft[*].png"
    Image.fromarray(np.full((32, 48, 3), 90, np.uint8)).save(odd)
    assert w.open_path(odd)
    _fill(qtbot, w, Rect(5, 5, 15, 15))
    assert w.windowHandle().title() == "draft[*].png* \u2014 Retoucher"
    amp = tmp_path / "R&D notes.png"
    Image.fromarray(np.full((32, 48, 3), 90, np.uint8)).save(amp)
    assert w.open_path(amp)
    first = w.recent_menu.actions()[0]
    assert first.text() == "R&&D notes.png" and first.iconText() == "R&D notes.png"
    latin1 = tmp_path / os.fsdecode(b"caf\xe9.png")
    Image.fromarray(np.full((32, 48, 3), 70, np.uint8)).save(latin1)
    assert w.open_path(latin1)
    assert w.save() and w.save()  # saved twice: one entry still
    w.settings.sync()
    reread = Settings.from_file(tmp_path / "settings.ini")
    assert reread.recent_files[0] == str(latin1) and reread.recent_files.count(str(latin1)) == 1
    assert w.windowTitle().startswith("caf\ufffd.png")
    assert w.recent_menu.actions()[0].text() == "caf\ufffd.png"
    w.set_document(None)
    w.recent_menu.actions()[0].trigger()  # Open Recent opens it
    assert w.doc is not None and w.doc.path == latin1


@pytest.mark.parametrize(
    "content, needle",
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00 truncated", "photo.jpg"),
        (b"hello, I am text", "photo.jpg"),
    ],
)
def test_corrupt_or_unsupported_file_shows_an_error_and_keeps_the_open_photo(
    qtbot, window, tmp_path, content, needle
):
    w = window
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(good)
    assert w.open_path(good)
    bad = tmp_path / "photo.jpg"
    bad.write_bytes(content)
    assert not w.open_path(bad)
    title, text = w.last_error
    assert title == "Cannot open photo" and needle in text
    assert w.doc.path == good  # nothing lost
    box = next(b for b in w.findChildren(QMessageBox) if b.isVisible())
    assert needle in box.text()
    box.close()


def test_an_unreadable_file_is_checked_before_the_unsaved_changes_question(qtbot, window, tmp_path):
    w = window
    good = tmp_path / "good.png"
    Image.fromarray(np.full((16, 16, 3), 70, np.uint8)).save(good)
    original = good.read_bytes()
    assert w.open_path(good)
    _fill(qtbot, w, Rect(2, 2, 8, 8))
    doc, image, depth = w.doc, w.doc.image.copy(), w.undo_stack.index()
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00 truncated")
    w.answer = QMessageBox.StandardButton.Save  # it must not even be asked
    assert not w.open_path(bad)
    assert w.asked == []  # no question about saving for a photo that cannot open
    title, text = w.last_error
    assert title == "Cannot open photo" and "broken.jpg" in text
    # The photo and its edits are as they were, and its file was not written.
    assert w.doc is doc and doc.dirty and np.array_equal(doc.image, image)
    assert w.undo_stack.index() == depth and w.undo_stack.canUndo()
    assert good.read_bytes() == original
    for box in w.findChildren(QMessageBox):
        box.close()


def test_reopening_the_current_photo_after_saving_it_opens_what_was_saved(qtbot, window, tmp_path):
    w = window
    path = tmp_path / "a.png"
    Image.fromarray(np.full((16, 16, 3), 70, np.uint8)).save(path)
    assert w.open_path(path)
    _fill(qtbot, w, Rect(2, 2, 8, 8))
    w.answer = QMessageBox.StandardButton.Save
    assert w.open_path(path)  # the file is read before the question, and again after the save
    assert w.asked == ["a.png"] and not w.doc.dirty
    assert w.doc.image[4, 4].tolist() == [128, 128, 128] and w.doc.image[12, 12].tolist() == [70, 70, 70]


def _save_dialog_shown(w, monkeypatch) -> tuple[Path, str, str]:
    """Save As through the real dialog call, cancelled: (the suggested name, the filter the
    dialog shows first, the suffix that filter gives a name typed without one)."""
    from PySide6.QtWidgets import QFileDialog

    from retoucher.qt.file_filters import SAVE_FILTERS

    shown = []

    def dialog(parent, title, start, filters, selected="", *rest):
        shown.append((Path(start), selected or filters.split(";;")[0]))  # no choice: the first
        return "", ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", dialog)
    assert not w.save_as()
    ((suggestion, name_filter),) = shown
    return suggestion, name_filter, SAVE_FILTERS[name_filter]


@pytest.mark.parametrize(
    "name, suffix",
    [("photo.png", ".png"), ("photo.jpg", ".jpg"), ("photo.tif", ".tif"), ("photo.webp", ".webp")],
)
def test_save_as_starts_on_the_filter_of_the_photos_format(
    qtbot, window, tmp_path, monkeypatch, name, suffix
):
    w = window
    path = tmp_path / name
    Image.fromarray(np.full((16, 16, 3), 70, np.uint8)).save(path)
    assert w.open_path(path)
    suggestion, _name_filter, filter_suffix = _save_dialog_shown(w, monkeypatch)
    assert filter_suffix == suffix and suggestion == path


def test_save_as_for_a_pasted_photo_offers_png(qtbot, window, monkeypatch):
    w = window
    arr = np.zeros((10, 14, 3), np.uint8)
    assert w.files.open_image(QImage(arr.data, 14, 10, 14 * 3, QImage.Format.Format_RGB888).copy())
    suggestion, _name_filter, filter_suffix = _save_dialog_shown(w, monkeypatch)
    assert filter_suffix == ".png" and suggestion.suffix == ".png"


def test_the_save_dialog_is_given_the_selected_filter_and_its_suffix_is_added(monkeypatch, tmp_path):
    from PySide6.QtWidgets import QFileDialog

    from retoucher.qt.file_actions import ask_save_path
    from retoucher.qt.file_filters import SAVE_FILTERS, save_filter

    seen = []

    def dialog(parent, title, start, filters, selected="", *rest):
        seen.append(selected)
        return str(tmp_path / "typed"), selected

    monkeypatch.setattr(QFileDialog, "getSaveFileName", dialog)
    png = save_filter("PNG")
    assert ask_save_path(None, "Save", tmp_path / "x.png", ";;".join(SAVE_FILTERS), png) == str(
        tmp_path / "typed.png"
    )
    assert seen == [png]
    assert save_filter("MPO") == save_filter("JPEG") and save_filter(None) == png == save_filter("GIF")


@pytest.mark.parametrize("answer", ["No", "Yes"])
def test_a_file_the_added_suffix_names_is_asked_about(monkeypatch, tmp_path, answer):
    """The dialog asked about "photo" as typed; the suffix added makes it photo.png, which exists:
    it is asked about again (it was written over without a word)."""
    from PySide6.QtWidgets import QFileDialog

    from retoucher.qt.file_actions import ask_save_path
    from retoucher.qt.file_filters import SAVE_FILTERS, save_filter

    (tmp_path / "photo.png").write_bytes(b"mine")
    asked = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a: (str(tmp_path / "photo"), a[4]))
    monkeypatch.setattr(
        QMessageBox, "question", lambda *a: asked.append(a[2]) or getattr(QMessageBox.StandardButton, answer)
    )
    got = ask_save_path(None, "Save", tmp_path / "x.png", ";;".join(SAVE_FILTERS), save_filter("PNG"))
    assert asked == ["photo.png already exists. Do you want to replace it?"]
    assert got == ("" if answer == "No" else str(tmp_path / "photo.png"))
    asked.clear()  # a new name: nothing to ask
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a: (str(tmp_path / "fresh"), a[4]))
    assert ask_save_path(None, "Save", tmp_path / "x.png", ";;".join(SAVE_FILTERS), save_filter("PNG"))
    assert asked == []


def test_a_name_with_a_dot_but_no_image_suffix_gets_the_chosen_format_s(monkeypatch, tmp_path):
    """ "holiday.2024" with PNG chosen was refused ("use one of the suffixes"); a name whose
    suffix is an image format's ("x.gif", "x.JPG") keeps it."""
    from PySide6.QtWidgets import QFileDialog

    from retoucher.qt.file_actions import ask_save_path
    from retoucher.qt.file_filters import SAVE_FILTERS, save_filter

    for typed, want in (
        ("holiday.2024", "holiday.2024.png"),
        ("x.gif", "x.gif"),
        ("x.JPG", "x.JPG"),
        ("trail.", "trail.png"),  # it was trail..png
    ):
        monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, t=typed: (str(tmp_path / t), a[4]))
        got = ask_save_path(None, "Save", tmp_path / "x.png", ";;".join(SAVE_FILTERS), save_filter("PNG"))
        assert got == str(tmp_path / want)


def test_save_over_a_file_changed_on_disk_asks_first(qtbot, window, tmp_path):
    """Opened here, then written by another program: Save wrote over it without a word (that
    program's changes lost). Save asks now: replace it, save as, or cancel."""
    from retoucher.qt.file_actions import ChangedOnDisk

    w = window
    photo = tmp_path / "shared.png"
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(photo)
    assert w.open_path(photo)
    _fill(qtbot, w, Rect(2, 2, 6, 6))
    asked = []
    w.ask_changed_on_disk = lambda: asked.append(True) or ChangedOnDisk.CANCEL
    assert w.save() and asked == []  # not changed elsewhere: saved without a question
    _fill(qtbot, w, Rect(8, 8, 12, 12))
    Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).save(photo)  # the other program's save
    os.utime(photo, ns=(time.time_ns(), time.time_ns() + 10**9))  # however coarse the clock
    theirs = photo.read_bytes()
    assert not w.save() and asked == [True] and photo.read_bytes() == theirs and w.doc.dirty
    copy = tmp_path / "mine.png"
    w.ask_changed_on_disk = lambda: ChangedOnDisk.SAVE_AS
    w.ask_save_path = lambda *a: str(copy)
    assert w.save() and copy.is_file() and photo.read_bytes() == theirs and w.doc.path == copy
    _fill(qtbot, w, Rect(1, 10, 4, 14))
    Image.fromarray(np.full((16, 16, 3), 10, np.uint8)).save(copy)
    os.utime(copy, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
    w.ask_changed_on_disk = lambda: ChangedOnDisk.REPLACE
    assert w.save() and np.asarray(Image.open(copy))[1, 1].tolist() == [90, 90, 90]  # ours


def test_every_jpeg_suffix_saves_as_jpeg(qtbot, window, tmp_path):
    """shot.jfif and shot.jpe were refused ("use one of the suffixes"), though JPEG's own."""
    w = window
    assert w.files.open_image(QImage(8, 8, QImage.Format.Format_RGB888))
    for name in ("shot.jfif", "shot.jpe"):
        w.ask_save_path = lambda *a, n=name: str(tmp_path / n)
        assert w.save_as() and w.last_error is None
        assert Image.open(tmp_path / name).format == "JPEG"


def test_export_mask_never_writes_over_the_photo(qtbot, window, tmp_path, monkeypatch):
    """ "shot.v2" gets .png added (it was replaced by .png: shot.png, the open photo, became the
    mask without a word), and the photo's own name is refused."""
    w = window
    photo = tmp_path / "shot.png"
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(photo)
    before = photo.read_bytes()
    assert w.open_path(photo)
    w._push_edit(w.doc.set_rect(Rect(2, 2, 6, 6)))
    errors = []
    w.show_error = lambda title, text: errors.append(text)
    w.ask_save_path = lambda *a: str(tmp_path / "shot.v2")
    assert w.export_mask()
    assert (tmp_path / "shot.v2.png").is_file() and photo.read_bytes() == before
    w.ask_save_path = lambda *a: str(photo)
    assert not w.export_mask()
    assert photo.read_bytes() == before and "is the open photo" in errors[0]


def test_missing_recent_file_is_reported_and_dropped_from_the_list(qtbot, window, tmp_path):
    w = window
    p = tmp_path / "gone.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(p)
    assert w.open_path(p)
    p.unlink()
    assert not w.open_path(p)
    assert "not found" in w.last_error[1] and "It was removed from Open Recent" in w.last_error[1]
    assert str(p.resolve()) not in w.settings.recent_files


def test_a_recent_photo_on_a_drive_not_connected_stays_in_the_list(qtbot, window, tmp_path):
    """Any photo not found left Open Recent: one on an unplugged drive or an unmounted share, to
    be opened again once it is back, went too, and the error did not say so."""
    w = window
    drive = tmp_path / "usb"
    drive.mkdir()
    p = drive / "scan.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(p)
    assert w.open_path(p)
    p.unlink()
    drive.rmdir()  # the drive's folder is gone with it
    assert not w.open_path(p)
    assert f"Its folder {drive} is not there (a drive not connected?)" in w.last_error[1]
    assert str(p.resolve()) in w.settings.recent_files


def test_unsaved_changes_prompt_on_open_and_close(qtbot, window, tmp_path):
    w = window
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    for p in (a, b):
        Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(p)
    assert w.open_path(a)
    w._push_edit(w.doc.set_rect(Rect(0, 0, 4, 4)))
    assert not w.doc.dirty  # a painted mask alone is no change of the photo, but it is work:
    w.answer = QMessageBox.StandardButton.Cancel
    assert not w.open_path(b) and w.asked == ["a.png"] and w.doc.path == a and w.doc.has_hole
    assert not w.close()  # Quit too
    w.answer = QMessageBox.StandardButton.Discard
    assert w.open_path(b) and w.asked == ["a.png"] * 3
    w.asked.clear()
    _fill(qtbot, w, Rect(0, 0, 4, 4))
    w.answer = QMessageBox.StandardButton.Cancel
    assert not w.open_path(a)
    assert w.asked == ["b.png"] and w.doc.path == b and w.doc.dirty
    assert not w.close()  # cancelled: the window stays
    w.answer = QMessageBox.StandardButton.Save
    assert w.open_path(a)  # saved b first, then opened a
    assert load_image(b).rgb[0, 0].tolist() == [128, 128, 128]
    assert w.doc.path == a


def _drag_and_drop(w, mime) -> bool:
    """Enter, then drop, as a real drag does (Qt delivers the drop only to a widget that
    accepted the enter). Returns whether the enter was accepted."""
    pos = QPoint(w.width() // 2, w.height() // 2)
    how = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    try:
        enter = QDragEnterEvent(pos, *how)  # PySide6 up to 6.11 takes a QPoint
    except TypeError:
        enter = QDragEnterEvent(pos.toPointF(), *how)  # 6.12 a QPointF
    QApplication.sendEvent(w.canvas.viewport(), enter)  # over the photo: it passes drops up
    if not enter.isAccepted():
        return False
    drop = QDropEvent(
        pos.toPointF(),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(w.canvas.viewport(), drop)
    return True


def test_drop_a_file_on_the_window_opens_it(qtbot, window, tmp_path):
    w = window
    p = tmp_path / "dropped.webp"
    Image.fromarray(np.full((20, 30, 3), 200, np.uint8)).save(p, lossless=True)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p))])
    _drag_and_drop(w, mime)
    assert w.doc is not None and w.doc.path == p and file_format(w.doc) == "WEBP"
    assert (w.doc.width, w.doc.height) == (30, 20)


def test_a_pasted_grey_or_deep_image_is_saved_grey_and_its_depth_is_said(qtbot, window, tmp_path):
    """A 16-bit grey clipboard image became 8-bit RGB without a word, and was saved as an RGB
    PNG (a grey photo file is saved grey)."""
    w = window
    levels = (np.arange(40 * 30).reshape(30, 40) * 50).astype(np.uint16)
    deep = QImage(levels.tobytes(), 40, 30, 80, QImage.Format.Format_Grayscale16).copy()
    QGuiApplication.clipboard().setImage(deep)
    w.paste_action.trigger()
    assert "with 8 bits per channel" in w.statusBar().currentMessage()
    w.ask_save_path = lambda *a: str(tmp_path / "grey.png")
    assert w.save()
    with Image.open(tmp_path / "grey.png") as im:
        assert im.mode == "L"
        assert np.abs(np.asarray(im).astype(int) - levels / 257).max() <= 1  # Qt's 16 -> 8 bits
    colour = QImage(8, 6, QImage.Format.Format_RGB32)
    colour.fill(QColor(200, 30, 30))
    QGuiApplication.clipboard().setImage(colour)
    w.paste_action.trigger()
    assert "bits per channel" not in w.statusBar().currentMessage()
    w.ask_save_path = lambda *a: str(tmp_path / "colour.png")
    assert w.save()
    with Image.open(tmp_path / "colour.png") as im:
        assert im.mode == "RGB"


def test_paste_an_image_from_the_clipboard(qtbot, window, tmp_path):
    w = window
    arr = np.random.default_rng(5).integers(0, 256, (24, 36, 3), dtype=np.uint8)
    img = QImage(arr.data, 36, 24, 36 * 3, QImage.Format.Format_RGB888).copy()
    QGuiApplication.clipboard().setImage(img)
    w.paste_action.trigger()
    assert w.doc is not None and w.doc.path is None
    assert np.array_equal(w.doc.image, arr)
    assert w.windowTitle().startswith("Untitled")
    # Save on an unnamed photo asks for a name.
    target = tmp_path / "pasted.bmp"
    w.ask_save_path = lambda *a: str(target)
    w.save_action.trigger()
    assert np.array_equal(load_image(target).rgb, arr)
    assert w.doc.path == target and file_format(w.doc) == "BMP"


def test_tiff_opens_and_saves_in_its_format(qtbot, window, tmp_path):
    w = window
    p = tmp_path / "scan.tif"
    arr = np.random.default_rng(9).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    Image.fromarray(arr).save(p)
    assert w.open_path(p)
    _fill(qtbot, w, Rect(2, 2, 6, 6))
    assert w.save()
    with Image.open(p) as im:
        assert im.format == "TIFF"
    got = load_image(p).rgb
    assert np.array_equal(got[10:], arr[10:]) and (got[2:6, 2:6] == 128).all()


def test_a_dropped_photo_without_an_image_suffix_still_opens(qtbot, window, tmp_path):
    """The drag's check refused IMG_0001 and scan.jpg.download, photos that opened before."""
    w = window
    for name in ("IMG_0001", "scan.jpg.download"):
        path = tmp_path / name
        Image.fromarray(np.full((10, 12, 3), 90, np.uint8)).save(path, format="JPEG")
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(path))])
        assert _drag_and_drop(w, mime)
        assert w.doc is not None and w.doc.path == path
    pdf = tmp_path / "scan.pdf"  # a kind of file that is no photo: refused at the enter
    pdf.write_bytes(b"%PDF-1.4")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(pdf))])
    assert not _drag_and_drop(w, mime)


def test_every_note_of_a_save_is_said(qtbot, window, tmp_path):
    """Only the first was shown: Save As BMP of a transparent photo with a colour profile said it
    was flattened onto white, not that its profile was dropped."""
    from PIL import ImageCms

    w = window
    src = tmp_path / "tagged.png"
    rgba = np.full((12, 16, 4), 200, np.uint8)
    rgba[:4, :4, 3] = 0
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(rgba, "RGBA").save(src, icc_profile=profile)
    assert w.open_path(src)
    w.ask_save_path = lambda *a: str(tmp_path / "flat.bmp")
    assert w.save_as()
    said = w.statusBar().currentMessage()
    assert "flattened onto white" in said and "colour profile" in said


def test_a_drop_of_plain_text_is_refused(qtbot, window):
    # A drop of something that is neither a file nor an image is ignored.
    w = window
    mime = QMimeData()
    mime.setText("just text")
    assert not _drag_and_drop(w, mime)
    assert w.doc is None


def test_a_drag_of_files_that_are_no_photos_is_refused_and_extra_photos_are_named(qtbot, window, tmp_path):
    """Any local file was accepted by the drag (the cursor said yes), then the drop ended in a
    "Cannot open photo" box; of several photos the first opened and the rest went unmentioned."""
    w = window
    text, folder = tmp_path / "notes.txt", tmp_path / "scans.png"
    text.write_text("hello")
    folder.mkdir()
    for path in (text, folder):
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(path))])
        assert not _drag_and_drop(w, mime)
        assert w.doc is None and w.last_error is None
    photos = [tmp_path / "one.png", tmp_path / "two.gif"]  # any format Pillow reads
    for k, path in enumerate(photos):
        Image.fromarray(np.full((10, 12, 3), 40 * k, np.uint8)).save(path)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in [text, *photos]])
    assert _drag_and_drop(w, mime)
    assert w.doc is not None and w.doc.path == photos[0]
    message = w.statusBar().currentMessage()
    assert "one.png" in message and "1 other photo(s) dropped were not opened" in message


def test_the_unsaved_question_names_a_menu_entry_that_exists(qtbot, window, monkeypatch):
    """It pointed at Mask > Export Mask..., which is in the File menu."""
    import re

    from retoucher.qt import file_actions

    w = window
    w.files.open_image(QImage(8, 8, QImage.Format.Format_RGB888))
    w._push_edit(w.doc.set_rect(Rect(0, 0, 4, 4)))
    texts = []
    monkeypatch.setattr(
        file_actions.QMessageBox,
        "question",
        lambda parent, title, text, *a: texts.append(text) or QMessageBox.StandardButton.Cancel,
    )
    file_actions.ask_unsaved_changes(w, w.doc)
    (menu_name, entry) = re.search(r"\((\w+) > ([^)]+?) keeps it\)", texts[0]).groups()
    menus = {a.text().replace("&", ""): a.menu() for a in w.menuBar().actions()}
    assert entry in [a.text().replace("&", "") for a in menus[menu_name].actions()]


def test_save_as_and_export_mask_remember_their_folder_for_a_pasted_photo(
    qtbot, window, tmp_path, monkeypatch
):
    """Only File > Open remembered its folder: every Save As of a pasted photo started in the
    home folder again, and so did Export Mask."""
    w = window
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    out = tmp_path / "shots"
    out.mkdir()
    asked = []

    def ask(title, suggestion, filters, selected=""):
        asked.append(Path(suggestion))
        return str(out / f"{len(asked)}.png")

    w.ask_save_path = ask
    for _ in range(2):
        assert w.files.open_image(QImage(8, 8, QImage.Format.Format_RGB888))
        assert w.save_as()
    assert asked[1].parent == out
    assert w.files.open_image(QImage(8, 8, QImage.Format.Format_RGB888))
    w._push_edit(w.doc.set_rect(Rect(0, 0, 4, 4)))
    assert w.export_mask() and asked[2].parent == out


def test_drop_image_data_opens_it_as_an_unnamed_photo(qtbot, window):
    w = window
    arr = np.random.default_rng(11).integers(0, 256, (10, 14, 3), dtype=np.uint8)
    mime = QMimeData()
    mime.setImageData(QImage(arr.data, 14, 10, 14 * 3, QImage.Format.Format_RGB888).copy())
    assert _drag_and_drop(w, mime)
    assert w.doc is not None and w.doc.path is None and np.array_equal(w.doc.image, arr)


def test_standard_shortcuts(window):
    from PySide6.QtGui import QKeySequence

    K = QKeySequence.StandardKey
    w = window
    for action, key in (
        (w.open_action, K.Open),
        (w.save_action, K.Save),
        (w.undo_action, K.Undo),
        (w.zoom_in_action, K.ZoomIn),
        (w.zoom_out_action, K.ZoomOut),
        (w.paste_action, K.Paste),
    ):
        assert action.shortcut() == QKeySequence(key) and not action.shortcut().isEmpty()
    assert QKeySequence("Ctrl+Return") in w.fill_action.shortcuts()
    assert QKeySequence("Ctrl+Enter") in w.fill_action.shortcuts()
    assert not w.redo_action.shortcut().isEmpty()


XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>'


def test_save_in_place_keeps_dpi_xmp_and_the_jpeg_compression(qtbot, window, tmp_path):
    w = window
    path = tmp_path / "scan.jpg"
    arr = np.random.default_rng(3).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, quality=70, subsampling=1, dpi=(300, 150), xmp=XMP)
    with Image.open(path) as im:
        qtables = im.quantization
    assert w.open_path(path)
    _fill(qtbot, w, Rect(4, 4, 12, 12))
    w.settings.jpeg_quality = 20  # not used: the photo keeps its own compression
    assert w.save()
    again = load_image(path)
    assert again.metadata.dpi is not None and np.allclose(again.metadata.dpi, (300, 150), atol=0.05)
    assert again.metadata.xmp == XMP
    with Image.open(path) as im:
        assert im.quantization == qtables
    # Asked not to keep it, Save uses the quality setting.
    w.settings.jpeg_keep_original = False
    assert w.save()
    with Image.open(path) as im:
        assert im.quantization != qtables
    assert load_image(path).metadata.xmp == XMP


def test_the_bundled_sample_is_never_overwritten_save_goes_to_save_as(qtbot, window, tmp_path, monkeypatch):
    w = window
    resources = tmp_path / "resources"
    resources.mkdir()
    monkeypatch.setenv("RETOUCHER_RESOURCES", str(resources))
    from retoucher.qt.app import sample_photo

    sample = sample_photo()
    assert sample.parent == resources
    Image.fromarray(np.full((16, 24, 3), 60, np.uint8)).save(sample, quality=90)
    original = sample.read_bytes()
    assert w.open_path(sample, remember=False)
    _fill(qtbot, w, Rect(2, 2, 8, 8))
    asked = []
    w.ask_save_path = lambda title, suggestion, *a: asked.append((title, suggestion)) or ""
    assert not w.save()  # cancelled in the Save As dialog
    assert len(asked) == 1 and "sample" in asked[0][0].lower()
    assert asked[0][1] != sample  # the dialog does not suggest the sample itself
    assert sample.read_bytes() == original and w.doc.dirty
    copy = tmp_path / "mine.jpg"
    w.ask_save_path = lambda *a: str(copy)
    assert w.save()
    assert sample.read_bytes() == original
    assert w.doc.path == copy and not w.doc.dirty
    assert np.abs(load_image(copy).rgb[3:7, 3:7].astype(int) - 128).max() < 12  # the fill, saved


def _open_two_page_tiff(w, tmp_path):
    """A 2-page TIFF opened in ``w`` (its first page; the engine warns); its path and bytes."""
    path = tmp_path / "pages.tif"
    pages = [Image.fromarray(np.full((12, 16, 3), v, np.uint8)) for v in (40, 200)]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    original = path.read_bytes()
    with pytest.warns(UserWarning):
        assert w.open_path(path)
    return path, original


def test_save_of_a_multi_page_tiff_goes_to_save_as(qtbot, window, tmp_path):
    w = window
    path, original = _open_two_page_tiff(w, tmp_path)
    # said at once (the engine's warning went to stderr only), not first at the save
    assert w.statusBar().currentMessage() == (
        "Opened pages.tif. Note: the file holds 2 pages; only the first one would be kept if saved over"
    )
    _fill(qtbot, w, Rect(1, 1, 4, 4))
    asked = []
    w.ask_save_path = lambda title, *a: asked.append(title) or str(tmp_path / "page1.tif")
    assert w.save()
    assert len(asked) == 1 and "2 pages" in asked[0]
    assert path.read_bytes() == original
    assert w.doc.path == tmp_path / "page1.tif"
    w.ask_save_path = lambda *a: pytest.fail("the single-page copy saves in place")
    assert w.save()


@pytest.mark.parametrize("how", ["save as", "save's copy"])
def test_the_original_of_a_multi_page_tiff_is_never_saved_over_by_name(qtbot, window, tmp_path, how):
    """Save refuses to write over a file an 8-bit picture cannot hold, but its original name
    typed into Save As (or into Save's "Save a copy" dialog) wrote over it: 2 pages became 1.
    Refused with the reason now; the file is untouched and the photo stays unsaved."""
    w = window
    path, original = _open_two_page_tiff(w, tmp_path)
    _fill(qtbot, w, Rect(1, 1, 4, 4))
    errors = []
    w.show_error = lambda title, text: errors.append(text)
    w.ask_save_path = lambda *a: str(tmp_path / "." / "pages.tif")
    assert not (w.save_as() if how == "save as" else w.save())
    assert len(errors) == 1 and "is the original" in errors[0] and "2 pages" in errors[0]
    assert path.read_bytes() == original and w.doc.dirty


def test_the_original_stays_refused_after_a_copy_is_saved(qtbot, window, tmp_path, monkeypatch):
    """Only the file the photo referred to was compared: after Save As of a copy, Save As with
    the 16-bit original's name wrote 8 bits over it (and Save As of a copy over the bundled
    sample was allowed too)."""
    w = window
    scan = tmp_path / "scan16.tif"
    levels = (np.arange(12 * 16).reshape(12, 16) * 300).astype(np.uint16)
    Image.fromarray(levels).save(scan)
    original = scan.read_bytes()
    assert w.open_path(scan)
    _fill(qtbot, w, Rect(1, 1, 4, 4))
    errors = []
    w.show_error = lambda title, text: errors.append(text)
    copy = tmp_path / "scan16_copy.tif"
    w.ask_save_path = lambda *a: str(copy)
    assert w.save_as() and w.doc.path == copy and not errors
    # said at the save too (only the open said it): the copy holds 8 bits
    assert w.statusBar().currentMessage() == (
        f"Saved {copy}. Note: written with 8 bits per channel (the original has more: I;16)"
    )
    _fill(qtbot, w, Rect(6, 6, 9, 9))
    w.ask_save_path = lambda *a: str(scan)
    assert not w.save_as()
    assert len(errors) == 1 and "is the original" in errors[0] and "more than 8 bits" in errors[0]
    assert scan.read_bytes() == original and w.doc.dirty
    w.ask_save_path = lambda *a: str(copy)  # the copy itself is 8-bit: saved over as usual
    assert w.save_as() and not w.doc.dirty
    assert w.statusBar().currentMessage() == f"Saved {copy}"  # nothing more is lost: no note
    resources = tmp_path / "resources"  # nor over the bundled sample, from any photo
    resources.mkdir()
    monkeypatch.setenv("RETOUCHER_RESOURCES", str(resources))
    from retoucher.qt.app import sample_photo

    sample = sample_photo()
    Image.fromarray(np.full((16, 24, 3), 60, np.uint8)).save(sample, quality=90)
    kept = sample.read_bytes()
    w.ask_save_path = lambda *a: str(sample)
    assert not w.save_as()
    assert "sample photo is part of Retoucher" in errors[-1] and sample.read_bytes() == kept


@pytest.mark.parametrize("how", ["paste", "drop"])
def test_a_pasted_or_dropped_image_is_unsaved_and_closing_asks(qtbot, window, how):
    w = window
    arr = np.random.default_rng(12).integers(0, 256, (10, 14, 3), dtype=np.uint8)
    img = QImage(arr.data, 14, 10, 14 * 3, QImage.Format.Format_RGB888).copy()
    if how == "paste":
        QGuiApplication.clipboard().setImage(img)
        w.paste_action.trigger()
    else:
        mime = QMimeData()
        mime.setImageData(img)
        assert _drag_and_drop(w, mime)
    assert w.doc is not None and w.doc.dirty and w.isWindowModified()  # it exists nowhere else
    w.answer = QMessageBox.StandardButton.Cancel
    assert not w.close()
    assert w.asked == ["Untitled"] and w.isVisible()


def test_file_dialog_filters_offer_every_photo_suffix_of_the_format_table():
    from engine.formats import IMAGE_SUFFIXES, format_for_suffix
    from retoucher.qt.file_filters import OPEN_FILTER, SAVE_FILTERS

    def patterns(name_filter: str) -> list[str]:
        return name_filter[name_filter.index("(") + 1 : -1].split()

    photos, everything = OPEN_FILTER.split(";;")
    assert (
        sorted(patterns(photos)) == sorted("*" + s for s in IMAGE_SUFFIXES) and everything == "All files (*)"
    )
    offered = []
    for name_filter, suffix in SAVE_FILTERS.items():  # a name typed without a suffix gets ``suffix``
        suffixes = [p[1:] for p in patterns(name_filter)]
        assert suffixes[0] == suffix and {format_for_suffix(s) for s in suffixes} == {
            format_for_suffix(suffix)
        }
        offered += suffixes
    assert sorted(offered) == sorted(IMAGE_SUFFIXES)


def test_save_says_when_a_jpeg_is_re_encoded_whole(qtbot, window, tmp_path):
    """Block-level JPEG saves fall back to a whole re-encode for some files (here: progressive):
    the status bar says so after Save, and says nothing extra when the blocks are kept."""
    w = window
    pixels = np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    for name, progressive in (("plain.jpg", False), ("prog.jpg", True)):
        path = tmp_path / name
        Image.fromarray(pixels).save(path, quality=90, progressive=progressive)
        assert w.open_path(path)
        _fill(qtbot, w, Rect(8, 8, 24, 24))
        assert w.save()
        said = w.statusBar().currentMessage()
        assert said.startswith(f"Saved {path}")
        if progressive:
            assert "re-encoded" in said and "progressive" in said
        else:
            assert "re-encoded" not in said


def test_opening_a_jpeg_with_damaged_data_says_so_in_the_status_bar(qtbot, window, tmp_path):
    """Pillow decodes a JPEG with lost bytes into garbled blocks without a word; the window
    opens it (it may be what is to be mended) and its status bar names the damage."""
    w = window
    pixels = np.random.default_rng(4).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    path = tmp_path / "scan.jpg"
    Image.fromarray(pixels).save(path, quality=90)
    assert w.open_path(path)
    assert w.statusBar().currentMessage() == "Opened scan.jpg"
    damaged = tmp_path / "damaged.jpg"
    damaged.write_bytes(scan_damaged(path.read_bytes(), at=0.5))  # a zeroed run, as a bad sector
    assert w.open_path(damaged)
    said = w.statusBar().currentMessage()
    assert said.startswith("Opened damaged.jpg. Note: ") and "compressed data is damaged" in said
    assert w.doc.path == damaged


def test_only_this_threads_logged_warnings_are_collected():
    """A fill or detection in a worker thread may log while a photo opens: the open's note must
    not take that thread's warning for its own."""
    import logging
    import threading

    log = logging.getLogger("engine.test")
    with logged_warnings() as said:
        worker = threading.Thread(target=lambda: log.warning("from a worker"))
        worker.start()
        worker.join()
        log.warning("from this thread")
        log.info("not a warning")
    log.warning("after the block")
    assert said == ["from this thread"]


class _Ping(QObject):
    """Emitted from a worker thread, its slots run in the GUI thread (queued, in order after
    whatever the worker emitted before)."""

    sent = Signal()


def test_a_save_runs_off_the_gui_thread_the_window_repaints_and_waits_and_does_not_close(
    qtbot, window, tmp_path, monkeypatch
):
    """A large PNG takes seconds to write: it is written in a worker thread while the window
    handles its events (a progress dialog after a moment); Quit meanwhile is refused, not
    answered by asking about the unsaved photo being saved."""
    import threading

    import engine.imageio

    w = window
    path = tmp_path / "photo.png"
    Image.fromarray(np.full((32, 48, 3), 60, np.uint8)).save(path)
    assert w.open_path(path)
    _fill(qtbot, w, Rect(4, 4, 20, 12))
    real_save = engine.imageio.save_image
    seen = {}
    gui_done = threading.Event()
    ping = _Ping()

    def in_gui_thread():
        seen["dialog"] = w.files.waiter.dialog is not None and w.files.waiter.dialog.isVisible()
        seen["modal"] = w.files.waiter.dialog is not None and w.files.waiter.dialog.isModal()
        seen["closed"] = w.close()
        gui_done.set()

    ping.sent.connect(in_gui_thread)

    def slow_save(*args, **kwargs):
        seen["thread"] = threading.get_ident()
        time.sleep(SHOW_AFTER_MS / 1000 + 0.2)  # long enough for the progress dialog
        ping.sent.emit()
        seen["gui ran"] = gui_done.wait(5)  # the GUI thread handles events meanwhile
        return real_save(*args, **kwargs)

    monkeypatch.setattr(engine.imageio, "save_image", slow_save)
    asked = len(w.asked)
    assert w.save()
    assert seen["thread"] != threading.get_ident() and seen["gui ran"]
    assert seen["dialog"] and seen["modal"]
    assert seen["closed"] is False and w.isVisible() and len(w.asked) == asked  # nothing asked
    assert w.files.waiter.dialog is None and not w.files.working
    assert not w.doc.dirty and load_image(path).rgb[8, 8].tolist() == [128, 128, 128]
    assert w.statusBar().currentMessage() == f"Saved {path}"
    assert w.close()  # the save done, Quit quits


def _filling(qtbot, tmp_path, gate):
    """A window with a 48x32 PNG open and a fill of a box on it waiting at ``gate`` (a
    GatedFill): (window, the photo's path, the fill job)."""
    cache = InpainterCache()
    cache.set(gate)
    w = MainWindow(Settings.from_file(tmp_path / "settings.ini"), cache)
    w.ask_unsaved_changes = lambda: QMessageBox.StandardButton.Discard  # the test's end closes it
    qtbot.addWidget(w)
    path = tmp_path / "photo.png"
    Image.fromarray(np.full((32, 48, 3), 60, np.uint8)).save(path)
    assert w.open_path(path)
    w._push_edit(w.doc.set_rect(Rect(4, 4, 20, 12)))
    job = w.fill()
    gate.wait_at_gate(qtbot, 1)
    return w, path, job


def test_a_fill_that_lands_while_the_photo_is_written_is_applied_after_the_write(
    qtbot, tmp_path, monkeypatch
):
    """Closing during a fill asks to save the photo: the fill's result, arriving meanwhile, must
    not change the photo half-way through its file; it lands when the file is written."""
    import threading

    import engine.imageio

    gate = GatedFill()
    w, path, job = _filling(qtbot, tmp_path, gate)
    real_save = engine.imageio.save_image
    seen = {}
    landed = threading.Event()
    ping = _Ping()
    ping.sent.connect(landed.set)

    def save_while_the_fill_lands(path, image, **kwargs):
        before = image.copy()
        gate.finish()  # the fill ends; its result is queued for the GUI thread
        seen["fill ended"] = job.done.wait(HANG_S)
        ping.sent.emit()  # queued after the fill's result
        seen["gui ran"] = landed.wait(5)
        seen["unchanged"] = np.array_equal(image, before)
        return real_save(path, image, **kwargs)

    monkeypatch.setattr(engine.imageio, "save_image", save_while_the_fill_lands)
    w.doc.mark_unsaved()  # as a photo with changes, which Quit asks about
    assert w.save()  # what Quit's Save does while the fill runs
    assert seen == {"fill ended": True, "gui ran": True, "unchanged": True}
    assert load_image(path).rgb[8, 8].tolist() == [60, 60, 60]  # the photo as it was
    qtbot.waitUntil(lambda: not w.busy, timeout=HANG_MS)
    assert w.doc.image[8, 8].tolist() == [128, 128, 128] and w.doc.dirty  # then the fill
    assert w.undo_stack.count() == 2


def test_a_fill_that_lands_while_quit_asks_about_the_unfilled_hole_is_asked_about_again(qtbot, tmp_path):
    """Quit on a saved photo whose hole is being filled asks whether to drop the unfilled hole;
    a fill landing while that question is open makes it a retouched, unsaved photo. Discard was
    said of the hole, not of the retouched photo: the question comes again (Save offered), and
    the window closes only on its answer."""
    gate = GatedFill()
    w, path, job = _filling(qtbot, tmp_path, gate)
    asked = []

    def ask():
        asked.append((w.doc.dirty, w.doc.has_hole))
        if len(asked) == 1:  # the fill ends while the first question is on screen
            gate.finish()
            assert job.done.wait(HANG_S)
            qtbot.waitUntil(lambda: not w.doc.has_hole, timeout=HANG_MS)
            return QMessageBox.StandardButton.Discard
        return QMessageBox.StandardButton.Cancel

    w.ask_unsaved_changes = ask
    assert not w.close()  # the second answer, Cancel, keeps the window and the retouched photo
    assert asked == [(False, True), (True, False)]
    assert w.doc.dirty and w.doc.image[8, 8].tolist() == [128, 128, 128]
    w.ask_unsaved_changes = lambda: QMessageBox.StandardButton.Discard
    assert w.close()  # the same answer with nothing changing meanwhile closes at once


def test_a_photo_is_read_off_the_gui_thread(qtbot, window, tmp_path, monkeypatch):
    import threading

    import engine.imageio

    w = window
    path = tmp_path / "photo.png"
    Image.fromarray(np.full((32, 48, 3), 60, np.uint8)).save(path)
    real_load = engine.imageio.load_image
    threads = []

    def load(*args, **kwargs):
        threads.append(threading.get_ident())
        return real_load(*args, **kwargs)

    monkeypatch.setattr(engine.imageio, "load_image", load)
    assert w.open_path(path) and w.doc.path == path
    assert len(threads) == 1 and threads[0] != threading.get_ident()
    broken = tmp_path / "broken.png"
    broken.write_bytes(path.read_bytes()[:40])
    assert not w.open_path(broken)  # the error raised in the worker is the error box's
    assert w.last_error[0] == "Cannot open photo" and w.doc.path == path


def _slow_save_calling(monkeypatch, in_gui_thread):
    """engine.imageio.save_image, written while ``in_gui_thread()`` runs in the GUI thread (as
    a drop or a timer would meanwhile); returns a dict that gets ``ran``: whether it did."""
    import threading

    import engine.imageio

    real_save = engine.imageio.save_image
    seen = {}
    done = threading.Event()
    ping = _Ping()

    def call():
        try:
            in_gui_thread()
        finally:
            done.set()

    ping.sent.connect(call)

    def slow_save(*args, **kwargs):
        ping.sent.emit()
        seen["ran"] = done.wait(5)
        return real_save(*args, **kwargs)

    monkeypatch.setattr(engine.imageio, "save_image", slow_save)
    seen["ping"] = ping  # kept alive
    return seen


def test_a_drop_an_open_a_paste_or_a_save_while_a_photo_is_written_changes_nothing(
    qtbot, window, tmp_path, monkeypatch
):
    """Qt delivers a drop at once, not as input that waits: during a save it must not open
    another photo (asking about the one being saved) nor start a second write."""
    w = window
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    for p, v in ((a, 60), (b, 90)):
        Image.fromarray(np.full((32, 48, 3), v, np.uint8)).save(p)
    assert w.open_path(a)
    _fill(qtbot, w, Rect(4, 4, 20, 12))
    doc = w.doc
    results = {}

    def meanwhile():
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(b))])
        results["drop accepted"] = _drag_and_drop(w, mime)
        results["drop"] = w.files.drop(
            QDropEvent(
                QPoint(1, 1).toPointF(),
                Qt.DropAction.CopyAction,
                mime,
                Qt.MouseButton.LeftButton,
                Qt.KeyboardModifier.NoModifier,
            )
        )
        results["open"] = w.open_path(b)
        results["paste"] = w.files.open_image(QImage(8, 8, QImage.Format.Format_RGB888))
        results["save"] = w.save()
        results["save as"] = w.save_as()

    seen = _slow_save_calling(monkeypatch, meanwhile)
    asked = len(w.asked)
    assert w.save() and seen["ran"]
    assert results == {
        "drop accepted": False,
        "drop": None,
        "open": False,
        "paste": False,
        "save": False,
        "save as": False,
    }
    assert w.doc is doc and w.doc.path == a and len(w.asked) == asked and not w.doc.dirty
    assert w.statusBar().currentMessage() == f"Saved {a}"


def test_a_fill_result_that_cannot_be_applied_after_a_write_is_not_blamed_on_the_save(
    qtbot, tmp_path, monkeypatch
):
    """The fill that landed during the write is applied from the event loop afterwards: an
    error there is the fill's, and the save, which wrote its file, says so."""
    import threading

    class ShortFill(GatedFill):
        def __call__(self, image, hole, **kwargs):
            return super().__call__(image, hole, **kwargs)[:-1]  # a row short

    gate = ShortFill()
    w, path, job = _filling(qtbot, tmp_path, gate)
    ended = threading.Event()

    def fill_ends():
        gate.finish()
        ended.set()

    seen = _slow_save_calling(monkeypatch, fill_ends)
    w.doc.mark_unsaved()
    assert w.save() and seen["ran"] and ended.is_set()
    assert w.statusBar().currentMessage() == f"Saved {path}" and not w.doc.dirty
    job.done.wait(HANG_S)
    qtbot.waitUntil(lambda: not w.busy and w.last_error is not None, timeout=HANG_MS)
    assert w.last_error[0] == "Cannot apply the fill" and "fill result" in w.last_error[1]  # the fill's own


def test_a_save_that_runs_out_of_memory_says_so_and_quit_keeps_the_photo(
    qtbot, window, tmp_path, monkeypatch
):
    import engine.imageio

    w = window
    path = tmp_path / "photo.png"
    Image.fromarray(np.full((32, 48, 3), 60, np.uint8)).save(path)
    assert w.open_path(path)
    _fill(qtbot, w, Rect(4, 4, 20, 12))

    def no_memory(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(engine.imageio, "save_image", no_memory)
    assert not w.save()
    assert w.last_error[0] == "Cannot save" and "memory" in w.last_error[1]
    w.answer = QMessageBox.StandardButton.Save
    assert not w.close() and w.isVisible() and w.doc.dirty  # Quit's Save failed: the photo stays


def test_a_work_that_exits_is_raised_in_the_caller_not_waited_for(qtbot, window):
    """SystemExit (or any BaseException) in the worker: the window waited for ever (no outcome
    came) and refused to close."""
    from retoucher.qt.waiting import Waiter

    waiter = Waiter(window)

    def exits():
        raise SystemExit(3)

    with pytest.raises(SystemExit):
        waiter.run(exits, "Saving\u2026")
    assert not waiter.waiting and waiter.dialog is None
    assert waiter.run(lambda: 42, "Saving\u2026") == 42


def test_a_cmyk_photo_without_a_profile_says_its_colours_may_be_off(window, tmp_path):
    """Converted by Pillow's plain formula (16 levels off on average from a print profile's): the
    batch said so, the app did not."""
    path = tmp_path / "print.jpg"
    Image.fromarray(np.full((16, 24, 3), (40, 120, 200), np.uint8)).convert("CMYK").save(path)
    assert window.open_path(path)
    said = window.statusBar().currentMessage()
    assert said.startswith("Opened print.jpg. Note: ") and "CMYK without a CMYK colour profile" in said
    assert "colours may be off" in said


def test_a_pasted_picture_keeps_its_colour_space_shown_and_saved(qtbot, window, tmp_path):
    """A Display P3 screenshot lost its colour space: shown and saved as sRGB numbers."""
    from PySide6.QtGui import QColorSpace

    w = window
    arr = np.random.default_rng(5).integers(0, 256, (24, 36, 3), dtype=np.uint8)
    adobe = bytes(QColorSpace(QColorSpace.NamedColorSpace.AdobeRgb).iccProfile())
    for space, named in (
        (QColorSpace(QColorSpace.NamedColorSpace.DisplayP3), True),
        (QColorSpace.fromIccProfile(adobe), False),
    ):
        img = QImage(arr.data, 36, 24, 36 * 3, QImage.Format.Format_RGB888).copy()
        img.setColorSpace(space)
        assert w.files.open_image(img)
        profile = w.doc.metadata.icc_profile
        assert profile and ImageCms.ImageCmsProfile(io.BytesIO(profile)).profile.xcolor_space.strip() == "RGB"
        assert named or profile == adobe  # a profile it came with, byte for byte
        assert w.canvas.screen_colours is not None and np.array_equal(w.doc.image, arr)
        target = tmp_path / f"pasted{int(named)}.png"
        w.ask_save_path = lambda *a, t=target: str(t)
        assert w.save()
        with Image.open(target) as im:
            assert im.info.get("icc_profile") == profile and np.array_equal(np.asarray(im), arr)
    grey = np.full((24, 36, 3), 128, np.uint8)  # R = G = B with an RGB colour space: written with it
    img = QImage(grey.data, 36, 24, 36 * 3, QImage.Format.Format_RGB888).copy()
    img.setColorSpace(QColorSpace(QColorSpace.NamedColorSpace.SRgbLinear))
    assert w.files.open_image(img)
    w.ask_save_path = lambda *a: str(tmp_path / "grey.png")
    assert w.save()
    with Image.open(tmp_path / "grey.png") as im:
        assert im.info.get("icc_profile") == w.doc.metadata.icc_profile is not None
    srgb = QImage(arr.data, 36, 24, 36 * 3, QImage.Format.Format_RGB888).copy()
    srgb.setColorSpace(QColorSpace(QColorSpace.NamedColorSpace.SRgb))
    assert w.files.open_image(srgb)
    assert w.doc.metadata.icc_profile is None and w.canvas.screen_colours is None
