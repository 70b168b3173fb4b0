"""Before the app starts Qt on Linux: can Qt's X11 platform plugin (xcb) load, and is there a display?

PySide6's wheels bring Qt itself but not the X11 client libraries its xcb plugin links against
(libxcb-cursor, libxcb-icccm, ...). Without them Qt aborts with a bare "Could not load the Qt
platform plugin "xcb"" that names no library. :func:`platform_problem` finds out first, without
importing PySide6: it works out which platform plugins Qt will try (as ``QGuiApplication`` does),
and only when xcb is the one Qt would end up with, it asks the dynamic loader (as ``ldd`` does)
which libraries of the plugin are missing and names the Debian/Ubuntu packages that bring them.

It never blocks a launch that would work: any other platform (``QT_QPA_PLATFORM=offscreen``,
``wayland``, ...), a Wayland session, Windows and macOS are left alone, and when the plugin or the
loader can't be found the check says nothing and leaves the rest to Qt. It costs one run of the
loader in list mode (about 25 ms of CPU with the imports it needs) and caches nothing.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
from collections.abc import Callable, Mapping
from importlib.util import find_spec
from pathlib import Path

# The Debian/Ubuntu package of each library that the xcb plugin chain of PySide6 6.12 (libqxcb.so,
# libQt6XcbQpa, libQt6Gui, libQt6Core, libQt6DBus) links against outside the wheel, but for those
# every Debian system has (libc6, libstdc++6, zlib1g, libzstd1). Libraries these load in turn come
# with the packages (libgl1 brings libglx0, libx11-6 libxau6, ...). The README's apt-get line for
# Linux desktops installs every package of this table (a test keeps the two equal).
DEBIAN_PACKAGES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
}

XCB_PLUGIN = "libqxcb.so"


def apt_get_line(packages: list[str]) -> str:
    """The one command that installs ``packages`` (sorted, each once) on Debian or Ubuntu."""
    return "sudo apt-get install " + " ".join(sorted(set(packages)))


def qt_platform_order(env: Mapping[str, str]) -> list[str]:
    """The platform plugins Qt 6 tries, in order, for this environment (names without options).

    As ``QGuiApplicationPrivate::createPlatformIntegration``: ``QT_QPA_PLATFORM`` (a ';'-separated
    list, each entry ``name[:options]``) when set; otherwise Wayland first in a Wayland session
    (``WAYLAND_DISPLAY`` set or ``XDG_SESSION_TYPE=wayland``), then xcb, the default of PySide6's Qt.
    """
    explicit = env.get("QT_QPA_PLATFORM", "")
    if explicit:
        return [entry.split(":")[0].strip() for entry in explicit.split(";") if entry.strip()]
    wayland_session = "WAYLAND_DISPLAY" in env or env.get("XDG_SESSION_TYPE") == "wayland"
    return ["wayland", "xcb"] if wayland_session else ["xcb"]


def wayland_reachable(env: Mapping[str, str]) -> bool:
    """Whether a Wayland compositor's socket is there to connect to (as libwayland looks for it)."""
    if env.get("WAYLAND_SOCKET"):
        return True
    name = env.get("WAYLAND_DISPLAY") or "wayland-0"
    if os.path.isabs(name):
        return os.path.exists(name)
    runtime_dir = env.get("XDG_RUNTIME_DIR")
    return bool(runtime_dir) and os.path.exists(os.path.join(runtime_dir, name))


def xcb_is_the_only_way(env: Mapping[str, str]) -> bool:
    """Whether Qt will end up on xcb with nothing to fall back on: xcb is in the list and every
    other entry is a Wayland plugin without a compositor to talk to. Any other platform, before or
    after xcb, might work, so then the check stays out of the way."""
    order = qt_platform_order(env)
    if "xcb" not in order:
        return False
    others = [name for name in order if name != "xcb"]
    return all(name.startswith("wayland") for name in others) and not (others and wayland_reachable(env))


def xcb_plugin(env: Mapping[str, str]) -> Path | None:
    """The libqxcb.so Qt will load: in ``QT_QPA_PLATFORM_PLUGIN_PATH`` when there is one, else the
    one of the bundle (frozen app) or of the installed PySide6; None when none is found."""
    candidates = []
    if env.get("QT_QPA_PLATFORM_PLUGIN_PATH"):
        candidates.append(Path(env["QT_QPA_PLATFORM_PLUGIN_PATH"]) / XCB_PLUGIN)
    if getattr(sys, "frozen", False) and hasattr(sys, "_MEIPASS"):
        # PyInstaller's PySide6 hooks keep Qt's layout under <_MEIPASS>/PySide6/Qt.
        candidates.append(Path(sys._MEIPASS) / "PySide6" / "Qt" / "plugins" / "platforms" / XCB_PLUGIN)
    else:
        try:
            spec = find_spec("PySide6")  # finds the package without importing it
        except (ImportError, ValueError):
            spec = None
        for folder in (spec and spec.submodule_search_locations) or []:
            candidates.append(Path(folder) / "Qt" / "plugins" / "platforms" / XCB_PLUGIN)
    return next((path for path in candidates if path.is_file()), None)


def elf_interpreter(path: str) -> str | None:
    """The dynamic loader an ELF executable names (its PT_INTERP), or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF":
                return None
            order = "<" if head[5] == 1 else ">"
            wide = head[4] == 2  # ELFCLASS64
            phoff = struct.unpack_from(order + ("Q" if wide else "I"), head, 32 if wide else 28)[0]
            entry_size, count = struct.unpack_from(order + "HH", head, 54 if wide else 42)
            f.seek(phoff)
            table = f.read(entry_size * count)
            # Program header: p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz (64-bit) or
            # p_type, p_offset, p_vaddr, p_paddr, p_filesz (32-bit).
            layout = order + ("IIQQQQ" if wide else "IIIII")
            for start in range(0, len(table) - entry_size + 1, entry_size):
                fields = struct.unpack_from(layout, table, start)
                if fields[0] == 3:  # PT_INTERP
                    offset, size = (fields[2], fields[5]) if wide else (fields[1], fields[4])
                    f.seek(offset)
                    return f.read(size).rstrip(b"\0").decode()
    except (OSError, struct.error, UnicodeDecodeError):
        return None
    return None


def ldd_output(library: Path) -> str | None:
    """What ``ldd library`` prints: every library it needs, transitively, and where the dynamic
    loader finds it (or "not found") in this process's environment; None when that can't be told.

    With glibc, ldd is the loader run with LD_TRACE_LOADED_OBJECTS=1; running this process's own
    loader that way directly saves the ldd shell script (tens of milliseconds). Elsewhere, ldd.
    """
    loader = elf_interpreter("/proc/self/exe")
    if loader and os.path.basename(loader).startswith("ld-linux") and os.path.exists(loader):
        command, extra = [loader, str(library)], {"LD_TRACE_LOADED_OBJECTS": "1"}
    else:
        found = (os.path.join(folder, "ldd") for folder in [*os.get_exec_path(), "/usr/bin", "/bin"])
        ldd = next((path for path in found if os.path.isfile(path)), None)
        if ldd is None:
            return None
        command, extra = [ldd, str(library)], {}
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, env={**os.environ, "LC_ALL": "C", **extra}, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if "=>" in proc.stdout else None


def not_found(listing: str) -> list[str]:
    """The libraries an ldd listing marks "not found", in its order, each once."""
    missing = []
    for line in listing.splitlines():
        name, _, where = line.strip().partition(" => ")
        if where.strip() == "not found" and name not in missing:
            missing.append(name)
    return missing


def missing_libraries(library: Path) -> list[str] | None:
    """The libraries the dynamic loader can't find for ``library``; None when that can't be told."""
    listing = ldd_output(library)
    return None if listing is None else not_found(listing)


def missing_libraries_message(plugin: Path, missing: list[str]) -> str:
    """What to tell the user when the xcb plugin's libraries are missing: each library, and the
    apt-get line that installs their packages."""
    lines = [
        "retoucher: can't open the app: Qt's X11 platform plugin (xcb) needs these system libraries,",
        "which are not installed:",
    ]
    for name in missing:
        known = name in DEBIAN_PACKAGES
        lines.append(f"    {name}" + ("" if known else f"  (package unknown: apt-file search {name})"))
    packages = [DEBIAN_PACKAGES[name] for name in missing if name in DEBIAN_PACKAGES]
    if packages:
        lines += ["Install them on Debian or Ubuntu with:", f"    {apt_get_line(packages)}"]
    lines.append(f"(Other distributions: the packages that provide these files. The plugin: {plugin})")
    return "\n".join(lines)


def no_display_message(env: Mapping[str, str]) -> str:
    """What to tell the user when there is no display to open a window on."""
    if env.get("WAYLAND_DISPLAY"):
        why = f"DISPLAY is not set and no Wayland compositor is at WAYLAND_DISPLAY={env['WAYLAND_DISPLAY']}"
    else:
        why = "neither DISPLAY nor WAYLAND_DISPLAY is set"
    return (
        f"retoucher: no display found ({why}),\n"
        "so the app has no screen to open its window on. Start it from a desktop session.\n"
        "For headless use set QT_QPA_PLATFORM=offscreen; 'retoucher batch' and 'retoucher --self-test'\n"
        "need no display."
    )


def x_display_reachable(display: str, timeout: float = 0.5) -> bool | None:
    """Whether an X server listens at ``display`` as libxcb looks for it: ``:N`` (``.S``) its
    socket in /tmp/.X11-unix (or the abstract one Xorg also opens), then TCP localhost:6000+N (a
    TCP-only server: VcXsrv for WSL); ``unix:N`` the socket; ``host:N`` TCP 6000+N on that host;
    xcb's ``unix/``, ``tcp/``, ``inet/`` and ``inet6/`` prefixes choose. None when it cannot be
    told (a form not known here): then Qt has the last word."""
    host, sep, rest = display.rpartition(":")
    number = rest.split(".")[0]
    if not sep or not number.isdigit():
        return None
    protocol = ""
    if "/" in host:
        protocol, _, host = host.partition("/")
        if protocol not in ("unix", "tcp", "inet", "inet6") or "/" in host:
            return None  # a path (macOS launchd's XQuartz socket) or another form
    local = host in ("", "unix") or protocol == "unix"
    if local and _unix_socket_answers(f"/tmp/.X11-unix/X{number}", timeout):
        return True
    if protocol == "unix" or host == "unix":
        return False
    try:
        with socket.create_connection((host.strip("[]") or "localhost", 6000 + int(number)), timeout=timeout):
            return True
    except OSError:
        return False


def _unix_socket_answers(path: str, timeout: float) -> bool:
    for address in (path, "\0" + path):  # the file, then Linux's abstract namespace
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            try:
                sock.connect(address)
                return True
            except OSError:
                continue
    return False


def unreachable_display_message(display: str) -> str:
    return (
        f"retoucher: no X server answers at DISPLAY={display}\n"
        "(a DISPLAY kept from another session: ssh, tmux or sudo?), so the app has no screen to open\n"
        "its window on. Start it from the desktop, set DISPLAY to the desktop's display, or run it\n"
        "under xvfb-run; 'retoucher batch' and 'retoucher --self-test' need no display."
    )


def platform_problem(
    env: Mapping[str, str] | None = None,
    platform: str | None = None,
    probe: Callable[[Path], list[str] | None] | None = None,
) -> str | None:
    """Why Qt would fail to start its platform plugin here, as a message for the user, or None
    when it should start (or when that can't be told: then Qt has the last word).

    Only on Linux and only when Qt would have nothing but xcb (see :func:`xcb_is_the_only_way`).
    ``probe`` (default :func:`missing_libraries`) lists what the plugin lacks; tests replace it.
    """
    env = os.environ if env is None else env
    if not (platform or sys.platform).startswith("linux") or not xcb_is_the_only_way(env):
        return None
    problems = []
    plugin = xcb_plugin(env)
    missing = (probe or missing_libraries)(plugin) if plugin is not None else None
    if missing:
        problems.append(missing_libraries_message(plugin, missing))
    display = env.get("DISPLAY")
    if not display:
        problems.append(no_display_message(env))
    elif x_display_reachable(display) is False:  # Qt aborted with its xcb advice (exit 134)
        problems.append(unreachable_display_message(display))
    return "\n\n".join(problems) or None
