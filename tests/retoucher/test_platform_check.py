"""The check before the app starts Qt (retoucher.platform_check): which platform Qt will use, what
the xcb plugin lacks, the message and the apt-get line, and that `retoucher` exits 1 before Qt
starts. No display is needed: the library probe is replaced by a fake ldd listing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from retoucher import __main__ as cli
from retoucher import platform_check as pc

REAL_X_DISPLAY_REACHABLE = pc.x_display_reachable


@pytest.fixture(autouse=True)
def an_x_server_answers(monkeypatch):
    """Every DISPLAY these tests name has an X server unless a test says otherwise (none runs
    here; the probe itself: test_x_display_reachable_knows_a_listening_socket_from_none)."""
    monkeypatch.setattr(pc, "x_display_reachable", lambda display: True)


ROOT = Path(__file__).resolve().parents[2]
PLUGIN = Path("/opt/PySide6/Qt/plugins/platforms/libqxcb.so")

# What ldd prints for libqxcb.so on a Debian machine without libxcb-cursor0 and libxcb-icccm4.
LDD_TWO_MISSING = f"""\
\tlinux-vdso.so.1 (0x00007ffd3a9f2000)
\tlibQt6XcbQpa.so.6 => {PLUGIN.parent}/../../lib/libQt6XcbQpa.so.6 (0x00007f963c094000)
\tlibGL.so.1 => /lib/x86_64-linux-gnu/libGL.so.1 (0x00007f963c004000)
\tlibxcb-cursor.so.0 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxcb-util.so.1 => /lib/x86_64-linux-gnu/libxcb-util.so.1 (0x00007f963bfa2000)
\tlibxcb-icccm.so.4 => not found
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f963a21e000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f963c164000)
"""
LDD_ALL_FOUND = LDD_TWO_MISSING.replace(
    "libxcb-cursor.so.0 => not found", "libxcb-cursor.so.0 => /lib/libxcb-cursor.so.0 (0x1)"
).replace("libxcb-icccm.so.4 => not found", "libxcb-icccm.so.4 => /lib/libxcb-icccm.so.4 (0x2)")
APT_LINE = "sudo apt-get install libxcb-cursor0 libxcb-icccm4"
X11 = {"DISPLAY": ":0"}


@pytest.fixture()
def fake_ldd(monkeypatch):
    """The plugin is PLUGIN and ldd prints what the test sets in listing[0]."""
    listing = [LDD_TWO_MISSING]
    probed = []
    monkeypatch.setattr(pc, "xcb_plugin", lambda env: PLUGIN)
    monkeypatch.setattr(pc, "ldd_output", lambda library: probed.append(library) or listing[0])
    return types.SimpleNamespace(listing=listing, probed=probed)


def never_probe(plugin):
    raise AssertionError("the libraries must not be probed here")


def test_not_found_lists_each_missing_library_once_in_order():
    assert pc.not_found(LDD_TWO_MISSING) == ["libxcb-cursor.so.0", "libxcb-icccm.so.4"]
    assert pc.not_found(LDD_ALL_FOUND) == []


def test_message_names_the_libraries_and_the_one_apt_get_line(fake_ldd):
    message = pc.platform_problem(X11, "linux")
    assert fake_ldd.probed == [PLUGIN]
    assert "libxcb-cursor.so.0" in message and "libxcb-icccm.so.4" in message
    assert [line.strip() for line in message.splitlines()].count(APT_LINE) == 1
    assert message.count("apt-get") == 1
    assert str(PLUGIN) in message
    assert "no display" not in message


def test_a_library_without_a_known_package_is_named_with_how_to_find_it():
    message = pc.platform_problem(X11, "linux", probe=lambda plugin: ["libxcb-icccm.so.4", "libfoo.so.7"])
    assert "libfoo.so.7  (package unknown: apt-file search libfoo.so.7)" in message
    assert "sudo apt-get install libxcb-icccm4" in [line.strip() for line in message.splitlines()]


def test_nothing_is_reported_when_every_library_is_found(fake_ldd):
    fake_ldd.listing[0] = LDD_ALL_FOUND
    assert pc.platform_problem(X11, "linux") is None
    assert fake_ldd.probed == [PLUGIN]
    assert pc.platform_problem(X11, "linux", probe=lambda plugin: []) is None


def test_nothing_is_reported_when_the_probe_cannot_tell(monkeypatch):
    # no ldd, or ldd printed nothing useful: Qt has the last word
    monkeypatch.setattr(pc, "xcb_plugin", lambda env: PLUGIN)
    monkeypatch.setattr(pc, "ldd_output", lambda library: None)
    assert pc.platform_problem(X11, "linux") is None
    # no xcb plugin found (e.g. PySide6 from a distribution package)
    monkeypatch.setattr(pc, "xcb_plugin", lambda env: None)
    assert pc.platform_problem(X11, "linux", probe=never_probe) is None


@pytest.mark.parametrize(
    "env",
    [
        {"QT_QPA_PLATFORM": "offscreen", **X11},
        {"QT_QPA_PLATFORM": "offscreen"},
        {"QT_QPA_PLATFORM": "wayland", **X11},
        {"QT_QPA_PLATFORM": "minimal"},
        {"QT_QPA_PLATFORM": "eglfs;xcb", **X11},  # eglfs may work: not ours to judge
        {"QT_QPA_PLATFORM": "xcb;offscreen", **X11},  # Qt falls back on offscreen
    ],
    ids=["offscreen", "offscreen-no-display", "wayland", "minimal", "eglfs-then-xcb", "xcb-then-offscreen"],
)
def test_other_platforms_skip_the_check(env):
    assert pc.platform_problem(env, "linux", probe=never_probe) is None


@pytest.mark.parametrize("system", ["win32", "darwin"])
def test_windows_and_macos_skip_the_check(system):
    assert pc.platform_problem({}, system, probe=never_probe) is None


def test_a_wayland_session_skips_the_check(tmp_path):
    (tmp_path / "wayland-1").touch()  # the compositor's socket
    session = {"XDG_RUNTIME_DIR": str(tmp_path), "WAYLAND_DISPLAY": "wayland-1", **X11}
    assert pc.qt_platform_order(session) == ["wayland", "xcb"]
    assert pc.platform_problem(session, "linux", probe=never_probe) is None
    # XDG_SESSION_TYPE=wayland alone: Qt tries the default socket wayland-0
    (tmp_path / "wayland-0").touch()
    typed = {"XDG_RUNTIME_DIR": str(tmp_path), "XDG_SESSION_TYPE": "wayland"}
    assert pc.platform_problem(typed, "linux", probe=never_probe) is None
    explicit = {"QT_QPA_PLATFORM": "wayland;xcb", "WAYLAND_DISPLAY": str(tmp_path / "wayland-1")}
    assert pc.platform_problem(explicit, "linux", probe=never_probe) is None


def test_a_wayland_display_without_a_compositor_falls_back_on_xcb(tmp_path):
    env = {"XDG_RUNTIME_DIR": str(tmp_path), "WAYLAND_DISPLAY": "wayland-9", **X11}
    assert pc.xcb_is_the_only_way(env)
    message = pc.platform_problem(env, "linux", probe=lambda plugin: ["libxcb-icccm.so.4"])
    assert "sudo apt-get install libxcb-icccm4" in message
    no_x = pc.platform_problem({k: v for k, v in env.items() if k != "DISPLAY"}, "linux", lambda p: [])
    assert "no display found" in no_x and "WAYLAND_DISPLAY=wayland-9" in no_x


def test_qt_platform_order_follows_qt():
    assert pc.qt_platform_order({}) == ["xcb"]
    assert pc.qt_platform_order(X11) == ["xcb"]
    assert pc.qt_platform_order({"WAYLAND_DISPLAY": ""}) == ["wayland", "xcb"]
    assert pc.qt_platform_order({"QT_QPA_PLATFORM": "", **X11}) == ["xcb"]
    assert pc.qt_platform_order({"QT_QPA_PLATFORM": "xcb:nograb;offscreen"}) == ["xcb", "offscreen"]
    # an explicit xcb with options is still xcb, and is checked
    env = {"QT_QPA_PLATFORM": "xcb:nograb", **X11}
    assert "libxcb-icccm.so.4" in pc.platform_problem(env, "linux", probe=lambda p: ["libxcb-icccm.so.4"])


def test_no_display_says_so_and_mentions_offscreen():
    message = pc.platform_problem({}, "linux", probe=lambda plugin: [])
    assert "no display found" in message
    assert "neither DISPLAY nor WAYLAND_DISPLAY is set" in message
    assert "QT_QPA_PLATFORM=offscreen" in message
    both = pc.platform_problem({"DISPLAY": ""}, "linux", probe=lambda plugin: ["libxcb-cursor.so.0"])
    assert "sudo apt-get install libxcb-cursor0" in both and "no display found" in both


def test_the_plugin_is_found_in_the_plugin_path_the_bundle_or_pyside6(tmp_path, monkeypatch):
    custom = tmp_path / "custom"
    custom.mkdir()
    (custom / "libqxcb.so").touch()
    assert pc.xcb_plugin({"QT_QPA_PLATFORM_PLUGIN_PATH": str(custom)}) == custom / "libqxcb.so"
    bundled = tmp_path / "_internal" / "PySide6" / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    bundled.parent.mkdir(parents=True)
    bundled.touch()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "_internal"), raising=False)
    assert pc.xcb_plugin({}) == bundled
    assert pc.xcb_plugin({"QT_QPA_PLATFORM_PLUGIN_PATH": str(tmp_path / "nowhere")}) == bundled


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PySide6's xcb plugin is Linux-only")
def test_the_real_probe_reads_the_installed_plugin():
    plugin = pc.xcb_plugin({})
    assert plugin is not None and plugin.name == "libqxcb.so"
    assert pc.elf_interpreter("/proc/self/exe").startswith("/")
    assert pc.elf_interpreter(str(ROOT / "README.md")) is None
    listing = pc.ldd_output(plugin)
    assert listing is not None and "libQt6XcbQpa.so.6 => " in listing
    missing = pc.missing_libraries(plugin)
    assert missing == pc.not_found(listing)
    assert all(re.fullmatch(r"[\w.+-]+\.so(\.\d+)*", name) for name in missing)


@pytest.mark.skipif(not os.path.exists("/usr/bin/ldd"), reason="needs ldd")
def test_without_a_glibc_loader_the_probe_runs_ldd(monkeypatch):
    plugin = pc.xcb_plugin({})
    direct = pc.ldd_output(plugin)
    monkeypatch.setattr(pc, "elf_interpreter", lambda path: None)
    via_ldd = pc.ldd_output(plugin)
    assert via_ldd is not None and pc.not_found(via_ldd) == pc.not_found(direct)


def test_the_readme_lists_every_package_in_one_apt_get_line():
    readme = (ROOT / "README.md").read_text()
    assert pc.apt_get_line(list(pc.DEBIAN_PACKAGES.values())) in readme


# --- the retoucher command ------------------------------------------------------------------------

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the check runs on Linux only")


@pytest.fixture()
def x11_without_qt_platform(monkeypatch):
    for name in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY", "WAYLAND_SOCKET", "XDG_SESSION_TYPE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DISPLAY", ":99")
    opened = []
    fake = types.ModuleType("retoucher.qt.app")
    fake.run_app = lambda photo: opened.append(photo) or 0
    monkeypatch.setitem(sys.modules, "retoucher.qt.app", fake)
    return opened


@linux_only
def test_retoucher_exits_1_with_the_message_before_the_app_starts(x11_without_qt_platform, fake_ldd, capsys):
    assert cli.main([]) == 1
    assert cli.main(["holiday.jpg"]) == 1
    assert x11_without_qt_platform == []
    err = capsys.readouterr().err
    assert "libxcb-cursor.so.0" in err and "libxcb-icccm.so.4" in err and APT_LINE in err


@linux_only
def test_retoucher_opens_the_app_when_nothing_is_missing(x11_without_qt_platform, fake_ldd, capsys):
    fake_ldd.listing[0] = LDD_ALL_FOUND
    assert cli.main(["holiday.jpg"]) == 0
    assert x11_without_qt_platform == ["holiday.jpg"]
    assert capsys.readouterr().err == ""


@linux_only
@linux_only
def test_a_display_no_x_server_answers_at_is_said_before_qt_aborts(
    x11_without_qt_platform, fake_ldd, monkeypatch, capsys
):
    """A DISPLAY left from another session (ssh, tmux, sudo): Qt aborted (exit 134) with advice
    to install libxcb-cursor0, which was installed."""
    fake_ldd.listing[0] = LDD_ALL_FOUND
    monkeypatch.setattr(pc, "x_display_reachable", lambda display: False)
    assert cli.main(["holiday.jpg"]) == 1 and x11_without_qt_platform == []
    err = capsys.readouterr().err
    assert "no X server answers at DISPLAY=:99" in err and "xvfb-run" in err and "libxcb" not in err


def test_x_display_reachable_knows_a_listening_socket_from_none(tmp_path, monkeypatch):
    import socket as socket_module

    free = 90 + os.getpid() % 9  # a display number nothing listens on
    while os.path.exists(f"/tmp/.X11-unix/X{free}"):
        free += 1
    assert REAL_X_DISPLAY_REACHABLE(f":{free}") is False
    assert REAL_X_DISPLAY_REACHABLE(f"unix:{free}.0") is False
    with socket_module.socket() as server:  # a "remote" display: TCP port 6000 + N
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        if port > 6000:
            assert REAL_X_DISPLAY_REACHABLE(f"127.0.0.1:{port - 6000}") is True
    assert REAL_X_DISPLAY_REACHABLE("/private/tmp/com.apple.launchd.x/org.xquartz:0") is None
    assert REAL_X_DISPLAY_REACHABLE("nonsense") is None


def test_a_tcp_only_x_server_and_xcbs_protocol_prefixes_are_reachable():
    """libxcb falls back on TCP localhost:6000+N for ":N" when there is no socket (VcXsrv under
    WSL, a TCP-only server) and reads "tcp/host:N" and "unix/:N": the check refused them all."""
    import socket as socket_module

    for number in range(90, 100):
        if os.path.exists(f"/tmp/.X11-unix/X{number}"):
            continue
        server = socket_module.socket()
        try:
            server.bind(("127.0.0.1", 6000 + number))
        except OSError:
            server.close()
            continue
        break
    else:
        pytest.skip("no free port 6090-6099")
    with server:
        server.listen()
        assert REAL_X_DISPLAY_REACHABLE(f":{number}") is True
        assert REAL_X_DISPLAY_REACHABLE(f":{number}.0") is True
        assert REAL_X_DISPLAY_REACHABLE(f"tcp/localhost:{number}") is True
        assert REAL_X_DISPLAY_REACHABLE(f"unix/:{number}") is False  # the socket only, as xcb
        assert REAL_X_DISPLAY_REACHABLE(f"unix:{number}") is False
    assert REAL_X_DISPLAY_REACHABLE(f"tcp/localhost:{number}") is False  # gone
    assert REAL_X_DISPLAY_REACHABLE("other/thing:0") is None


@linux_only
def test_retoucher_exits_1_without_importing_qt():
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "import retoucher.platform_check as pc\n"
        f"pc.xcb_plugin = lambda env: Path({str(PLUGIN)!r})\n"
        f"pc.ldd_output = lambda library: {LDD_TWO_MISSING!r}\n"
        "from retoucher.__main__ import main\n"
        "rc = main([])\n"
        "print(rc, sorted(name for name in sys.modules if name.startswith(('PySide6', 'retoucher.qt'))))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QT_", "WAYLAND_", "XDG_SESSION"))}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**env, "DISPLAY": ":99", "PYTHONWARNINGS": "ignore"},
        timeout=60,
    )
    assert proc.stdout.strip().splitlines()[-1] == "1 []", proc.stderr
    assert APT_LINE in proc.stderr
    assert "libxcb-cursor.so.0" in proc.stderr and "libxcb-icccm.so.4" in proc.stderr
