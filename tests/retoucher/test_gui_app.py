"""Starting the app, the preferences store, and the About dialog without a model."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from engine.texture_strength import TEXTURE
from retoucher.document import Rect
from retoucher.qt.app import run_app, sample_photo
from retoucher.qt.fill_worker import InpainterCache
from retoucher.qt.main_window import MainWindow
from retoucher.qt.settings import Settings


@pytest.fixture
def isolated_settings(tmp_path):
    """Point the app's default QSettings at a temporary folder."""
    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(tmp_path / "config"))
    return tmp_path / "config"


def _run_and_inspect(photo):
    seen = {}
    tries = [False] + [True] * 400  # 20 s at most

    def inspect():
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        if not windows or windows[-1].files.working:  # the photo is being read (timers run meanwhile)
            QTimer.singleShot(10, inspect)
            return
        w = windows[-1]
        if w.filler.inpainters.loaded is None and tries.pop():  # the model loading ahead of the first fill
            QTimer.singleShot(50, inspect)
            return
        seen["loaded"] = w.filler.inpainters.loaded is not None
        seen["doc"] = w.doc
        seen["title"] = w.windowTitle()
        w.ask_unsaved_changes = lambda: QMessageBox.StandardButton.Discard
        w.close()

    QTimer.singleShot(0, inspect)
    code = run_app(photo)
    return code, seen


def test_run_app_opens_the_bundled_sample_ready_to_brush(qapp, isolated_settings):
    if not sample_photo().is_file():
        pytest.skip("resources/sample.jpg is not there")
    code, seen = _run_and_inspect(None)
    assert code == 0
    doc = seen["doc"]
    assert doc is not None and doc.path == sample_photo()
    assert seen["loaded"]  # the bundled model, loaded without a fill
    assert doc.width >= 640 and not doc.mask.any()
    assert seen["title"].startswith("sample.jpg")
    assert Settings().recent_files == []  # the sample is not a recent file of the user's


def test_run_app_opens_the_photo_it_is_given(qapp, isolated_settings, tmp_path):
    p = tmp_path / "given.png"
    Image.fromarray(np.full((30, 40, 3), 77, np.uint8)).save(p)
    code, seen = _run_and_inspect(str(p))
    assert code == 0 and seen["doc"].path == p
    # The recent-files list went to the (isolated) default settings store.
    assert Settings().recent_files[0] == str(p.resolve())


def test_ctrl_c_in_the_terminal_closes_the_app_asking_about_unsaved_work(qapp, isolated_settings, tmp_path):
    """Ctrl+C in the terminal that started the app did nothing (Python's handler never ran
    inside Qt's event loop); it closes the window now, as its close button does."""
    import signal

    p = tmp_path / "given.png"
    Image.fromarray(np.full((30, 40, 3), 77, np.uint8)).save(p)
    asked = []

    def interrupt():
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        if not windows or windows[-1].files.working:
            QTimer.singleShot(10, interrupt)
            return
        w = windows[-1]
        w._push_edit(w.doc.set_rect(Rect(2, 2, 9, 9)))  # work not filled: the close asks about it
        w.ask_unsaved_changes = lambda: asked.append(True) or QMessageBox.StandardButton.Discard
        os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    QTimer.singleShot(0, interrupt)
    assert run_app(str(p)) == 130
    assert asked == [True]  # asked, as the close button asks
    assert signal.getsignal(signal.SIGINT) is before  # the terminal's Ctrl+C is Python's again


def test_a_ctrl_c_answered_with_cancel_is_no_interrupted_end_and_an_ignored_one_stays_ignored(qtbot):
    """Ctrl+C, Cancel at the question, then a normal Quit exited 130; and an app started with
    SIGINT ignored (in the background of a script) was closed by the script's Ctrl+C."""
    import signal

    from PySide6.QtWidgets import QWidget

    from retoucher.qt.app import close_on_interrupt

    class Asking(QWidget):
        answers = [False, True]  # Cancel, then yes

        def closeEvent(self, event):
            event.setAccepted(self.answers.pop(0))

    w = Asking()
    qtbot.addWidget(w)
    w.show()
    with close_on_interrupt(w) as interrupted:
        os.kill(os.getpid(), signal.SIGINT)
        qtbot.waitUntil(lambda: Asking.answers[:1] != [False], timeout=5000)  # the question answered
        assert w.isVisible() and not interrupted()  # refused: still open, no interrupt counted
        w.close()  # a normal close
        assert not w.isVisible() and not interrupted()
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        other = QWidget()
        qtbot.addWidget(other)
        other.show()
        with close_on_interrupt(other) as interrupted:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
            QApplication.processEvents()
            assert other.isVisible() and not interrupted()
    finally:
        signal.signal(signal.SIGINT, before)


def test_settings_round_trip_and_sanitise(tmp_path):
    s = Settings.from_file(tmp_path / "s.ini")
    assert (s.device, s.weights, s.jpeg_quality, s.brush_size) == ("auto", "", 95, 40)
    assert s.jpeg_keep_original is True
    s.jpeg_keep_original = False
    s.device = "cpu"
    s.weights = tmp_path / "w.safetensors"
    s.jpeg_quality = 250
    s.brush_size = 0
    s.sync()
    again = Settings.from_file(tmp_path / "s.ini")
    assert again.device == "cpu" and again.weights == str(tmp_path / "w.safetensors")
    assert again.jpeg_quality == 100 and again.brush_size == 1
    assert again.jpeg_keep_original is False  # read back from the INI file's string
    with pytest.raises(ValueError):
        again.device = "tpu"
    again.q.setValue("save/jpeg_quality", "not a number")
    assert again.jpeg_quality == 95
    for i in range(15):
        again.add_recent_file(tmp_path / f"{i}.jpg")
    again.add_recent_file(tmp_path / "3.jpg")  # re-opening moves it to the top, no duplicate
    files = again.recent_files
    assert len(files) == 10 and files[0].endswith("3.jpg") and len(set(files)) == 10


def test_the_texture_setting_round_trips_and_a_bad_one_reads_as_the_models_own(tmp_path):
    s = Settings.from_file(tmp_path / "s.ini")
    assert s.texture is None  # unset: the model's own strength
    s.texture = 0.5
    s.sync()
    assert Settings.from_file(tmp_path / "s.ini").texture == 0.5  # read back from the INI string
    s.texture = 0.0  # "off" is a choice of its own, not "unset"
    s.sync()
    assert Settings.from_file(tmp_path / "s.ini").texture == 0.0
    for bad in ("-1", "9", "nan", "grainy", ""):
        s.q.setValue("engine/texture_strength", bad)
        assert s.texture is None, bad
    s.texture = 0.5
    s.texture = None  # back to the model's own: the key is gone
    s.sync()
    assert not s.q.contains("engine/texture_strength")
    assert Settings.from_file(tmp_path / "s.ini").texture is None
    with pytest.raises(ValueError, match="texture"):
        s.texture = 5.0


def test_a_texture_stored_by_an_older_version_reads_as_the_models_own_when_it_was_off(tmp_path):
    """Older versions stored the strength on every OK of Preferences, 0 (their default)
    included: that 0 must not keep a user from the model's own strength; another value stays."""
    old = Settings.from_file(tmp_path / "old.ini")
    old.q.setValue("engine/texture", 0.0)
    old.sync()
    assert Settings.from_file(tmp_path / "old.ini").texture is None
    old.q.setValue("engine/texture", 0.5)
    old.sync()
    again = Settings.from_file(tmp_path / "old.ini")
    assert again.texture == 0.5  # a strength the user chose stays theirs
    again.texture = 0.0  # a new choice, "off" included, is kept under the new key
    again.sync()
    last = Settings.from_file(tmp_path / "old.ini")
    assert last.texture == 0.0 and not last.q.contains("engine/texture")


def test_the_mirror_setting_is_on_until_turned_off_and_round_trips(tmp_path):
    s = Settings.from_file(tmp_path / "s.ini")
    assert s.mirror is True  # the engine's default
    s.mirror = False
    s.sync()
    assert Settings.from_file(tmp_path / "s.ini").mirror is False  # read back from the INI string
    s.mirror = True
    s.sync()
    assert Settings.from_file(tmp_path / "s.ini").mirror is True


def test_an_engine_is_rebuilt_only_when_its_weights_or_device_change_not_its_texture():
    built = []

    def factory(weights, device):
        built.append((weights, device))
        return object()

    cache = InpainterCache("w.safetensors", "cpu", factory)
    assert cache.texture is None  # the engine's own strength
    first = cache.get()
    assert cache.get() is first and built == [("w.safetensors", "cpu")]
    cache.configure("w.safetensors", "cpu", texture=0.5, mirror=True)  # a strength for the fills' calls
    assert cache.get() is first and len(built) == 1 and cache.texture == 0.5
    cache.configure("w.safetensors", "cpu", texture=None, mirror=True)
    assert cache.get() is first and cache.texture is None
    assert cache.mirror is True
    cache.configure("w.safetensors", "cpu", texture=None, mirror=False)  # one pass: the same engine
    assert cache.get() is first and cache.mirror is False and len(built) == 1
    cache.configure("other.safetensors", "cpu", texture=TEXTURE, mirror=True)
    assert cache.get() is not first and built[-1] == ("other.safetensors", "cpu")
    assert cache.texture == TEXTURE
    cache.configure("other.safetensors", "gpu", texture=TEXTURE, mirror=True)
    cache.get()
    assert built[-1] == ("other.safetensors", "gpu") and len(built) == 3
    with pytest.raises(ValueError, match="texture must be a number from 0 to 4"):
        cache.texture = 5.0


def test_about_dialog_explains_a_missing_model(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("RETOUCHER_RESOURCES", str(tmp_path / "empty"))
    w = MainWindow(Settings.from_file(tmp_path / "s.ini"), InpainterCache())
    qtbot.addWidget(w)
    about = w.open_about()
    text = about.text.toPlainText()
    assert "Retoucher" in text and "Liu" in text
    assert "missing" in text and "default.safetensors" in text
    about.close()


SETTING_KEYS = (
    "files/recent", "window/geometry", "engine/weights", "engine/device", "engine/texture_strength",
    "engine/mirror", "save/jpeg_quality", "save/jpeg_keep_original", "paint/brush_size",
    "view/wheel_zooms", "view/overlay_colour", "mask/step", "damage/threshold", "damage/grow",
    "files/last_dir",
)  # fmt: skip


@pytest.mark.parametrize("value", [3, 2.5, True])
def test_a_setting_of_another_type_does_not_stop_the_start(qtbot, tmp_path, value):
    """A value QSettings gives back typed (a macOS plist or the Windows registry after a hand edit
    or another version): the window still starts (an int in files/recent or window/geometry
    raised TypeError there), with the defaults for what it cannot read."""
    q = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    for key in SETTING_KEYS:
        q.setValue(key, value)  # an INI file gives these back typed too
    w = MainWindow(Settings(q), InpainterCache(factory=lambda *a: None))
    qtbot.addWidget(w)
    w.restore_geometry()
    w.show()
    assert w.settings.recent_files == []


def test_the_window_shows_with_the_model_named_before_torch_is_loaded(tmp_path):
    """Importing torch took 2.3-2.8 s before the window could show (the weight file's header was
    read with the network's module): the window, its status bar naming the bundled model and the
    sample photo come first; torch loads with the first fill."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys\n"
        "from PySide6.QtWidgets import QApplication, QLabel\n"
        "app = QApplication([])\n"
        "from retoucher.qt.main_window import MainWindow\n"
        "from retoucher.qt.settings import Settings\n"
        f"w = MainWindow(Settings.from_file({str(tmp_path / 's.ini')!r}))\n"
        "w.show(); app.processEvents()\n"
        "w.open_path(sys.argv[1], remember=False); app.processEvents()\n"
        "print([l.text() for l in w.statusBar().findChildren(QLabel)])\n"
        "print(w.doc is not None, 'torch' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-c", code, str(root / "resources" / "sample.jpg")],
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONWARNINGS": "ignore"},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    labels, state = proc.stdout.strip().splitlines()[-2:]
    assert "Model: retoucher-cub-small-v6" in labels
    assert state == "True False"  # the photo is open, torch is not loaded


@pytest.mark.parametrize("outcome", ["finished", "failed", "cancelled"])
def test_a_job_whose_window_is_gone_ends_quietly(qapp, capsys, outcome):
    """The window closed during a fill (its job's signals deleted with it): the worker's report
    raised "RuntimeError: Signal source has been deleted" on the terminal as the app exited."""
    import shiboken6

    import engine
    from retoucher.qt.worker import Job, JobSignals

    class Quick(Job):
        def work(self):
            if outcome == "failed":
                raise ValueError("a bad hole")
            if outcome == "cancelled":
                raise engine.InpaintCancelled()
            return 1

    job = Quick(JobSignals())
    shiboken6.delete(job.signals)
    job.run()
    assert job.done.is_set() and "RuntimeError" not in capsys.readouterr().err
