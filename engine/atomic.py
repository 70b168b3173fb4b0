"""Atomic file writes: write to a temporary file next to the target, then rename.

A reader (or a process killed half-way) sees either the old file or the complete new one,
never a truncated file. The new file gets the permissions an ordinary ``open(path, "w")`` would
give it: those of the file it replaces, else ``0o666`` minus the umask.

A process killed with SIGKILL (or a power cut) in the middle of a write cannot remove its
temporary file: it stays as ``.<stem>.XXXXXXXX.tmp<suffix>`` next to the target (hidden on
Unix). :func:`leftover_temporaries` finds such files for a set of targets so that a tool that
owns those targets (``retoucher batch`` for its outputs) can remove them on its next run.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["atomic_path", "leftover_temporaries", "temporary_target"]

# mkstemp's random part: 8 characters from [a-z0-9_] (CPython's tempfile._RandomNameSequence).
_TEMP_RE = re.compile(r"^\.(?P<stem>.*)\.[a-z0-9_]{8}\.tmp(?P<suffix>(?:\.[^.]+)?)$")
_umask_lock = threading.Lock()


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:  # elsewhere the only way to read it is to set it (briefly)
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _new_file_mode(target: Path) -> int:
    try:
        return stat.S_IMODE(os.stat(target).st_mode)  # keep the replaced file's permissions
    except OSError:
        return 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` on success.

    The temporary file keeps the target's suffix so that libraries that pick a format from the
    file name (Pillow, torch) still do the right thing. On error the temporary file is removed
    and the target is left untouched. The result has the replaced file's permissions, or for a
    new file ``0o666`` minus the umask (``mkstemp`` alone would give ``0o600``).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:  # make the bytes durable before the rename
            os.fsync(fh.fileno())
        os.chmod(tmp, _new_file_mode(target))
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def temporary_target(temp: str | os.PathLike[str]) -> Path | None:
    """The target a name like ``.photo.k3x_9qaz.tmp.jpg`` was a temporary for (``photo.jpg``),
    or None when the name is not one of :func:`atomic_path`'s temporaries."""
    temp = Path(temp)
    m = _TEMP_RE.match(temp.name)
    if m is None or not (m.group("stem") + m.group("suffix")):
        return None
    return temp.with_name(m.group("stem") + m.group("suffix"))


def leftover_temporaries(targets: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Temporary files that :func:`atomic_path` left behind for any of ``targets`` (a process
    killed mid-write), found by name in the targets' folders, sorted.

    Only files whose whole name matches the temporary pattern for one of the given targets are
    returned; anything else in those folders is ignored. Removing them is the caller's choice: do
    it only for targets no other running process is writing.
    """
    wanted: dict[Path, set[str]] = {}
    for t in targets:
        t = Path(t)
        wanted.setdefault(t.parent, set()).add(t.name)
    found: list[Path] = []
    for folder, names in wanted.items():
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if not entry.name.startswith("."):
                continue
            target = temporary_target(folder / entry.name)
            if target is not None and target.name in names and entry.is_file(follow_symlinks=False):
                found.append(folder / entry.name)
    return sorted(found)
