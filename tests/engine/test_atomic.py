"""engine.atomic: permissions of atomically written files and leftover temporaries."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine import atomic as atomic_module
from engine.atomic import atomic_path, leftover_temporaries, temporary_target

ATOMIC_FILE = atomic_module.__file__

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@posix_only
@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_new_file_gets_the_umask_mode_not_0600(tmp_path, umask):
    old = os.umask(umask)
    try:
        with atomic_path(tmp_path / "new.bin") as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    assert mode(tmp_path / "new.bin") == 0o666 & ~umask


@posix_only
def test_overwrite_keeps_the_existing_permissions(tmp_path):
    target = tmp_path / "kept.bin"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert mode(target) == 0o640


@posix_only
def test_a_symbolic_link_is_written_through(tmp_path):
    """Save over a photo opened through a link replaced the link with a file of its own: the
    photo it pointed to never got the edit. As with open(path, "w"), the link stays and the file
    it points to gets the bytes (in the target's folder: a relative link too)."""
    (tmp_path / "archive").mkdir()
    real = tmp_path / "archive" / "real.png"
    real.write_bytes(b"old")
    os.chmod(real, 0o640)
    link = tmp_path / "link.png"
    link.symlink_to(os.path.join("archive", "real.png"))
    with atomic_path(link) as tmp:
        assert tmp.parent == real.parent
        tmp.write_bytes(b"new")
    assert link.is_symlink() and real.read_bytes() == b"new" and mode(real) == 0o640
    assert sorted(p.name for p in (tmp_path / "archive").iterdir()) == ["real.png"]


@pytest.mark.parametrize(
    "error",
    [
        PermissionError(13, "Permission denied"),
        OSError(30, "Read-only file system"),
        OSError(28, "No space left"),
    ],
)
def test_a_folder_that_cannot_be_written_is_named_not_the_temporary(tmp_path, monkeypatch, error):
    """The error named the hidden temporary (".a.s_vkd50h.tmp.jpg: Permission denied"), a name
    the user never chose; on a read-only or full disk it still did. (Patched: root writes in any
    folder.)"""
    import tempfile

    def refused(prefix="", suffix="", dir=None):
        raise type(error)(error.errno, error.strerror, os.path.join(dir, f"{prefix}x1y2{suffix}"))

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    target = tmp_path / "a.jpg"
    with pytest.raises(type(error)) as caught, atomic_path(target):
        pass
    text = str(caught.value)
    assert "x1y2" not in text and str(target) in text and f"the folder {tmp_path}" in text
    assert caught.value.filename == str(target) and caught.value.errno == error.errno


@posix_only
def test_a_read_only_file_is_refused_and_kept(tmp_path):
    """A photo made read-only (chmod 444) was saved over without a word (os.replace needs only
    the folder's permission; root writes anything): refused now, file and folder untouched."""
    target = tmp_path / "kept.png"
    target.write_bytes(b"old")
    os.chmod(target, 0o444)
    with pytest.raises(PermissionError, match="read-only"), atomic_path(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"old" and mode(target) == 0o444
    assert [p.name for p in tmp_path.iterdir()] == ["kept.png"]
    os.chmod(target, 0o644)  # writable again: written
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"


@pytest.fixture
def as_if_killed(monkeypatch):
    """The name tests look at a temporary while it is written: as if its writer were killed
    (no lock held), which the lock's own test checks."""
    monkeypatch.setattr(atomic_module, "_in_use", lambda path: False)


def test_temporary_names_are_recognised_exactly(tmp_path, as_if_killed):
    with atomic_path(tmp_path / "my.photo.jpg") as tmp:
        assert temporary_target(tmp) == tmp_path / "my.photo.jpg"
        assert leftover_temporaries([tmp_path / "my.photo.jpg"]) == [tmp]
        assert leftover_temporaries([tmp_path / "other.jpg"]) == []
    for name in (
        ".my.photo.jpg",
        ".my.photo.tmp.jpg",
        ".my.photo.ABCDEFGH.tmp.jpg",
        ".my.photo.abc.tmp.jpg",
        "my.photo.abcdefgh.tmp.jpg",
        ".my.photo.abcdefgh.tmp.jpg.bak",
    ):
        assert temporary_target(tmp_path / name) is None, name
    assert temporary_target(tmp_path / ".x.abcd_123.tmp") == tmp_path / "x"


@posix_only
def test_a_killed_writer_leaves_a_temporary_that_is_found(tmp_path):
    """SIGKILL in the middle of a write leaves the temporary (nothing can remove it then), and
    leftover_temporaries finds it by name for that target only."""
    target = tmp_path / "out.png"
    script = textwrap.dedent(
        f"""
        import importlib.util, os, signal
        spec = importlib.util.spec_from_file_location("atomic", {str(ATOMIC_FILE)!r})
        atomic = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(atomic)  # just this module: no torch import in the child
        with atomic.atomic_path({str(target)!r}) as tmp:
            tmp.write_bytes(b"half")
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -9
    (tmp_path / ".unrelated.abcdefgh.tmp.png").write_bytes(b"someone else's")
    left = leftover_temporaries([target])
    assert len(left) == 1 and left[0].read_bytes() == b"half"
    assert temporary_target(left[0]) == target
    assert not target.exists()


@pytest.mark.skipif(os.name != "posix", reason="flock; on Windows an open file cannot be removed")
def test_a_temporary_still_being_written_by_another_process_is_no_leftover(tmp_path):
    """A second batch started into the folder a first one writes removed the first's temporary
    mid-write (its save then failed): the writer's lock marks the file as in use until the
    rename, and the kernel drops it when the writer is killed."""
    target = tmp_path / "out.png"
    script = textwrap.dedent(
        f"""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("atomic", {str(ATOMIC_FILE)!r})
        atomic = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(atomic)
        with atomic.atomic_path({str(target)!r}) as tmp:
            tmp.write_bytes(b"half")
            print(tmp, flush=True)
            sys.stdin.readline()  # writing, until told to go on
            tmp.write_bytes(b"whole")
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        temp = Path(child.stdout.readline().strip())
        assert temp.exists() and temporary_target(temp) == target
        assert leftover_temporaries([target]) == []  # in use: not a leftover
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.wait(timeout=30) == 0
        assert target.read_bytes() == b"whole" and not temp.exists()
    finally:
        child.kill()
    with atomic_path(target) as tmp:  # in this process too, until the rename
        tmp.write_bytes(b"again")
        assert leftover_temporaries([target]) == []
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    temp = Path(child.stdout.readline().strip())
    child.kill()  # SIGKILL mid-write: the lock goes with the process, the file stays
    child.wait(timeout=30)
    assert leftover_temporaries([target]) == [temp] and temp.read_bytes() == b"half"


def test_a_name_too_long_for_a_whole_temporary_name_is_written(tmp_path, as_if_killed):
    """A target name of 240-255 bytes is legal; its temporary's name keeps within 255 bytes (the
    stem cut), and a leftover of it is found for that target only (not for a short namesake)."""
    for stem in ("p" * 251, "é" * 120 + "q" * 11):  # 255 bytes with ".jpg"; 2-byte characters
        target = tmp_path / f"{stem}.jpg"
        with atomic_path(target) as tmp:
            assert len(tmp.name.encode()) <= 255 and ".tmpcut.jpg" in tmp.name
            tmp.write_bytes(b"new")
            tmp.name.encode().decode()  # the cut falls between characters
            assert temporary_target(tmp) is None  # the target cannot be told from the name
            assert leftover_temporaries([target]) == [tmp]
            assert leftover_temporaries([tmp_path / f"{stem[:50]}.jpg"]) == []
            assert leftover_temporaries([tmp_path / f"{stem}.png"]) == []
            # a long name with the same beginning (numbered files) never claims it
            assert leftover_temporaries([tmp_path / f"{stem[:-1]}x.jpg"]) == []
        assert target.read_bytes() == b"new"
        assert leftover_temporaries([target]) == []


@posix_only
def test_a_file_name_that_is_not_utf8_is_written(tmp_path, as_if_killed):
    """Linux names are bytes: Python reads a Latin-1 "café.png" with a surrogate (it failed to
    encode when the temporary's name was measured)."""
    for name in (os.fsdecode(b"caf\xe9.png"), os.fsdecode(b"\xe9" * 251 + b".png")):
        target = tmp_path / name
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"new")
            assert len(os.fsencode(tmp.name)) <= 255
            assert leftover_temporaries([target]) == [tmp]
        assert target.read_bytes() == b"new"
