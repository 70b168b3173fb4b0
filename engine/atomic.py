"""Atomic file writes: write to a temporary file next to the target, then rename.

A reader (or a process killed half-way) sees either the old file or the complete new one,
never a truncated file. The new file gets the permissions an ordinary ``open(path, "w")`` would
give it: those of the file it replaces, else ``0o666`` minus the umask.

A process killed with SIGKILL (or a power cut) in the middle of a write cannot remove its
temporary file: it stays as ``.<stem>.XXXXXXXX.tmp<suffix>`` next to the target (hidden on
Unix; for a name too long for that, ``.<the stem's first bytes>.<hash>.XXXXXXXX.tmpcut<suffix>``,
within the 255 bytes a file name may have). :func:`leftover_temporaries` finds such files for a set of targets so that a tool that
owns those targets (``retoucher batch`` for its outputs) can remove them on its next run. A
temporary still being written is not one of them: its writer holds an exclusive ``flock`` on it
until the rename (the kernel drops the lock of a killed process), so a second batch started into
the same folder cannot take a running one's file away (on Windows an open file cannot be
removed at all).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import stat
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: an open file cannot be removed there anyway
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "atomic_path",
    "check_writable",
    "leftover_temporaries",
    "lock_exclusive",
    "temporary_target",
    "write_text_atomic",
]

# mkstemp's random part: 8 characters from [a-z0-9_] (CPython's tempfile._RandomNameSequence).
_TEMP_RE = re.compile(r"^\.(?P<stem>.*)\.[a-z0-9_]{8}\.tmp(?P<cut>cut)?(?P<suffix>(?:\.[^.]+)?)$")
NAME_MAX = 255  # bytes in a file name (Linux, macOS, Windows' 255 UTF-16 units)
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
    new file ``0o666`` minus the umask (``mkstemp`` alone would give ``0o600``). As with
    ``open(path, "w")``, a symbolic link is written through (the file it points to gets the new
    bytes, the link stays) and a read-only file is refused (``PermissionError``; also when no
    one may write it and the process could: it was made read-only to be kept).
    """
    target = Path(os.path.realpath(path))  # through a symbolic link: the file it points to
    check_writable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = _temp_affixes(target)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=target.parent)
    except OSError as exc:  # it named the hidden temporary, not the file or its folder (a
        # folder the user may not write, a read-only or full disk, too many files)
        if exc.errno is None:
            raise
        raise type(exc)(
            exc.errno, f"{exc.strerror}: no file can be made in the folder {target.parent}", str(target)
        ) from None
    tmp = Path(tmp_name)
    if fcntl is None:  # pragma: no cover - Windows renames no file that is open
        os.close(fd)
        fd = -1
    else:  # held until the rename: the file is in use, not a leftover
        lock_exclusive(fd)
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
    finally:
        if fd >= 0:
            os.close(fd)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """``Path(path).write_text(text, encoding="utf-8")`` through :func:`atomic_path`: a process
    killed, or a disk full, half-way leaves the old file whole."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def lock_exclusive(fd: int) -> bool:
    """Take an exclusive ``flock`` on the open file ``fd`` without waiting: False when another
    open of the file (another process) holds one, True otherwise, also where the OS (Windows)
    or the file system (some network ones) has no such locks. Released when ``fd`` is closed,
    and by the kernel when the process dies."""
    if fcntl is None:  # pragma: no cover - Windows
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return True  # no locks here
    return True


def _in_use(path: Path) -> bool:
    """Whether a running process holds :func:`atomic_path`'s lock on the file at ``path``."""
    if fcntl is None:  # pragma: no cover - Windows
        return False
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return False  # gone meanwhile, or not to be opened: the caller's unlink decides
    try:
        return not lock_exclusive(fd)
    finally:
        os.close(fd)  # drops the probe's own lock


def check_writable(target: Path) -> None:
    """A ``PermissionError`` for an existing file that may not be written (no write permission
    for this process, or none for anyone: a file made read-only to keep it, which ``os.replace``
    would replace all the same, and root would write over)."""
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return  # a new file: the folder decides
    if stat.S_ISREG(mode) and (not mode & 0o222 or not os.access(target, os.W_OK)):
        raise PermissionError(errno.EACCES, "the file is read-only", str(target))


def _temp_affixes(target: Path) -> tuple[str, str]:
    """mkstemp's prefix and suffix for ``target``: ``.<stem>.`` and ``.tmp<suffix>``; where the
    whole name would pass :data:`NAME_MAX` bytes, ``.<the stem's first bytes>.<hash>.`` (cut at a
    character's start; the hash of the whole name tells two long names with one beginning
    apart) and ``.tmpcut<suffix>``. Lengths in the file system's bytes (``os.fsencode``: a Linux
    name that is not UTF-8 too)."""
    stem, suffix = target.stem, target.suffix
    fixed = len(os.fsencode(f"..{'x' * 8}.tmp{suffix}"))
    name = os.fsencode(stem)
    if fixed + len(name) <= NAME_MAX:
        return f".{stem}.", f".tmp{suffix}"
    tag = hashlib.blake2b(os.fsencode(target.name), digest_size=4).hexdigest()
    cut = name[: max(0, NAME_MAX - fixed - len("cut") - len(tag) - 1)]
    while cut and cut[-1] & 0xC0 == 0x80:  # UTF-8 continuation bytes: back to the character's start
        cut = cut[:-1]
    if cut and cut[-1] >= 0xC0:  # and drop the character that started there
        cut = cut[:-1]
    return f".{os.fsdecode(cut)}.{tag}.", f".tmpcut{suffix}"


def temporary_target(temp: str | os.PathLike[str]) -> Path | None:
    """The target a name like ``.photo.k3x_9qaz.tmp.jpg`` was a temporary for (``photo.jpg``),
    or None when the name is not one of :func:`atomic_path`'s temporaries or is one whose
    target's name was too long to keep whole (``.tmpcut``: see :func:`leftover_temporaries`)."""
    temp = Path(temp)
    m = _TEMP_RE.match(temp.name)
    if m is None or m.group("cut") or not (m.group("stem") + m.group("suffix")):
        return None
    return temp.with_name(m.group("stem") + m.group("suffix"))


def leftover_temporaries(targets: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Temporary files that :func:`atomic_path` left behind for any of ``targets`` (a process
    killed mid-write), found by name in the targets' folders, sorted.

    Only files whose whole name matches the temporary pattern for one of the given targets are
    returned, and none that a running :func:`atomic_path` is still writing (it holds a lock on
    it); anything else in those folders is ignored. Removing them is the caller's choice.
    """
    wanted: dict[Path, set[str]] = {}
    for t in targets:
        t = Path(t)
        if t.name:
            wanted.setdefault(t.parent, set()).add(t.name)
    found: list[Path] = []
    for folder, names in wanted.items():
        # the temporaries of names too long to keep whole are told by their cut stem, hash, suffix
        cut = {a for a in (_temp_affixes(Path(n)) for n in names) if a[1].startswith(".tmpcut")}
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            m = _TEMP_RE.match(entry.name) if entry.name.startswith(".") else None
            if m is None:
                continue
            if m.group("cut"):
                ours = (f".{m.group('stem')}.", f".tmpcut{m.group('suffix')}") in cut
            else:
                ours = m.group("stem") + m.group("suffix") in names
            if ours and entry.is_file(follow_symlinks=False) and not _in_use(folder / entry.name):
                found.append(folder / entry.name)
    return sorted(found)
