"""Settings shared by two windows of the app (two processes, one settings file), and a settings
file that cannot be written."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest
from PySide6.QtCore import QSettings

from retoucher.qt.settings import Settings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _other_window(ini, photo) -> None:
    """Another process of the app opens ``photo`` and sets the JPEG quality to 70."""
    code = textwrap.dedent(
        f"""
        from retoucher.qt.settings import Settings
        s = Settings.from_file({str(ini)!r})
        s.add_recent_file({str(photo)!r})
        s.jpeg_quality = 70
        s.sync()
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


def test_a_second_window_keeps_the_first_ones_recent_photo_and_preferences(qapp, tmp_path):
    """The last window to write its whole recent list (from its own stale copy) dropped what the
    other had opened; a Preferences OK wrote back every field it showed, the other's changes too."""
    from retoucher.qt.dialogs import PreferencesDialog

    ini = tmp_path / "Retoucher.conf"
    ini.write_text("[save]\njpeg_quality=95\n[paint]\nbrush_size=40\n")
    x, y = tmp_path / "x.jpg", tmp_path / "y.jpg"
    x.touch()
    y.touch()
    mine = Settings.from_file(ini)
    assert mine.recent_files == [] and mine.jpeg_quality == 95  # read, then the other writes
    _other_window(ini, x)
    mine.add_recent_file(y)
    dialog = PreferencesDialog(mine)  # opened from what this window had read
    dialog.brush.setValue(25)  # only the brush
    dialog.apply()
    again = Settings.from_file(ini)
    assert again.recent_files == [str(y.resolve()), str(x.resolve())]
    assert again.jpeg_quality == 70 and again.brush_size == 25


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes any file")
def test_a_settings_file_that_cannot_be_written_is_said(qapp, tmp_path):
    ini = tmp_path / "Retoucher.conf"
    ini.write_text("[save]\njpeg_quality=95\n")
    ini.chmod(0o444)
    s = Settings.from_file(ini)
    s.jpeg_quality = 70
    s.sync()
    assert "cannot be written or read" in s.problem()


class _Refused(QSettings):
    """Qt's word for a file it may not write (root writes any file, so it is told)."""

    def status(self):
        return QSettings.Status.AccessError


def _locked(monkeypatch, path) -> None:
    """``path`` (and its folder) cannot be written, as for a user other than root."""
    import retoucher.qt.settings as settings_module

    real = os.access
    monkeypatch.setattr(
        settings_module.os,
        "access",
        lambda p, mode: False if str(p) in (str(path), str(path.parent)) else real(p, mode),
    )


def test_a_settings_problem_is_said_and_none_when_they_are_kept(qapp, tmp_path, monkeypatch):
    """Every change looked saved and was back to the old value at the next start, without a word.
    A damaged line (Qt writes the file anew) or a write that failed once is no lasting problem."""
    ok = Settings.from_file(tmp_path / "fine.conf")
    ok.jpeg_quality = 70
    ok.sync()
    assert ok.problem() is None
    damaged = tmp_path / "damaged.conf"
    damaged.write_text("[save\njpeg_quality=95\n")
    again = Settings.from_file(damaged)
    again.jpeg_quality = 80
    again.sync()
    assert again.problem() is None and Settings.from_file(damaged).jpeg_quality == 80
    locked = tmp_path / "locked.conf"
    refused = Settings(_Refused(str(locked), QSettings.Format.IniFormat))
    assert refused.problem() is None  # Qt's error is old news: the file can be written now
    _locked(monkeypatch, locked)
    assert refused.problem() == (
        f"The settings file {locked} cannot be written or read: changes are not kept when Retoucher closes"
    )


def test_preferences_say_when_they_cannot_be_kept(qtbot, tmp_path, monkeypatch):
    from retoucher.qt.fill_worker import InpainterCache
    from retoucher.qt.main_window import MainWindow
    from tests.retoucher.gui_fakes import FlatFill

    _locked(monkeypatch, tmp_path / "locked.conf")
    cache = InpainterCache()
    cache.set(FlatFill())
    w = MainWindow(Settings(_Refused(str(tmp_path / "locked.conf"), QSettings.Format.IniFormat)), cache)
    qtbot.addWidget(w)
    dialog = w.open_preferences()
    dialog.quality.setValue(70)
    dialog.accept()
    assert w.last_error[0] == "Preferences not kept" and "locked.conf cannot be written" in w.last_error[1]


def test_open_recent_shows_what_another_window_opened(qtbot, tmp_path):
    """Both windows kept their photos in the settings, but one's Open Recent showed the other's
    only once it changed the list itself."""
    from retoucher.qt.fill_worker import InpainterCache
    from retoucher.qt.main_window import MainWindow

    ini = tmp_path / "Retoucher.conf"
    w = MainWindow(Settings.from_file(ini), InpainterCache())
    qtbot.addWidget(w)
    photo = tmp_path / "x.jpg"
    photo.touch()
    _other_window(ini, photo)
    w.recent_menu.aboutToShow.emit()
    assert [a.text() for a in w.recent_menu.actions()][:1] == ["x.jpg"]
