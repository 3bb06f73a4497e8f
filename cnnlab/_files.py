"""Safe file handling: every file cnnlab writes, and every file it reads.

Writing (:func:`atomic_write` and the ``write_*_atomic`` helpers)
    A file is written to a unique temporary file in the target's folder
    (``tempfile.mkstemp``: ``O_CREAT | O_EXCL``, so a planted file or symlink
    under that name is never opened), flushed and fsynced, given a normal
    file's mode, renamed over the target, and the folder is fsynced so the
    rename itself survives a crash.  Until the rename the target is untouched;
    on any error the temporary file is removed.

    The target itself must not be a symlink: a link planted in a run folder
    under ``curves.png`` would otherwise make cnnlab overwrite what it points
    to.  Only a path the user named explicitly (``follow_symlinks=True``, for
    ``--out FILE``) is followed, and then the file it points to is replaced.

    Temporary names carry the writer's PID (``.NAME.PID.XXXX.cnnlab-tmp``), so
    the temporary files of a killed writer are recognised and removed on the
    next write to that folder, while those of a live writer are left alone.

Appending (:func:`append_text`)
    ``metrics.jsonl`` grows a line per epoch.  Its lines are appended with
    ``O_APPEND | O_NOFOLLOW`` in a single ``write`` and fsynced; a run that is
    killed mid-line leaves at most that last line torn, and resuming rewrites
    the file whole (atomically) from the checkpoint's history.

Locking (:func:`exclusive_lock`)
    An ``flock`` held for the life of a run, so two processes never write one
    run folder; the second is told the holder's PID.

Reading (:func:`check_readable_file`)
    Loaders accept only regular files: a FIFO would block forever and
    ``/dev/zero`` would be read without end.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

__all__ = ["TEMP_SUFFIX", "LockHeldError", "UnsafePathError", "append_text", "atomic_write",
           "check_readable_file", "check_writable_target", "clean_orphans", "exclusive_lock",
           "write_bytes_atomic", "write_text_atomic"]

TEMP_SUFFIX = ".cnnlab-tmp"
_TEMP_RE = re.compile(r"^\..+\.(\d+)\.[^.]+" + re.escape(TEMP_SUFFIX) + "$")


class UnsafePathError(ValueError):
    """A path cnnlab refuses to write to or read from (a symlink, a folder, a device, a FIFO)."""


def check_writable_target(path: str | os.PathLike, follow_symlinks: bool = False) -> Path:
    """The file a write to ``path`` replaces: ``path`` itself, or, for a
    symlink the user named (``follow_symlinks``), the file it points to.

    Raises :class:`UnsafePathError` for a symlink not named by the user, a
    folder, or anything else that is not a regular file."""
    path = Path(path)
    if path.is_symlink():
        if not follow_symlinks:
            raise UnsafePathError(f"{path} is a symlink (to {os.readlink(path)}); cnnlab does not "
                                  "write through a link it did not create: remove it or name the "
                                  "file itself")
        path = Path(os.path.realpath(path))
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return path
    if stat.S_ISDIR(mode):
        raise UnsafePathError(f"{path} is a folder; give a file name (inside it, say)")
    if not stat.S_ISREG(mode):
        raise UnsafePathError(f"{path} is not a regular file (a device, FIFO or socket); "
                              "cnnlab will not replace it")
    return path


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True     # exists, owned by someone else
    return True


def clean_orphans(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that dead writers left in ``folder``; returns them."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        m = _TEMP_RE.match(e.name)
        if m and not _pid_alive(int(m.group(1))):
            with contextlib.suppress(OSError):
                os.unlink(e.path)
                removed.append(Path(e.path))
    return removed


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, follow_symlinks: bool = False) -> Iterator[BinaryIO]:
    """``with atomic_write(path) as f: f.write(...)``: ``path`` appears whole or not at all.

    Parent folders are created.  ``follow_symlinks=True`` only for a path the
    user named: then a symlink at ``path`` is followed and its target replaced;
    otherwise a symlink (or a folder, device or FIFO) at ``path`` is refused
    with :class:`UnsafePathError` before anything is written."""
    path = check_writable_target(path, follow_symlinks)
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        clean_orphans(folder)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=TEMP_SUFFIX, dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)   # mkstemp made it 0600; give it a normal file's mode
            check_writable_target(path)     # nothing planted there meanwhile
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        _fsync_folder(folder)
    except OSError as e:
        if e.filename is not None or e.errno is None:
            raise
        # the machine's refusal (disk full, read-only): say which file it was writing
        raise OSError(e.errno, e.strerror, str(path)) from e


def write_bytes_atomic(path: str | os.PathLike, data: bytes, follow_symlinks: bool = False) -> Path:
    """Write ``data`` to ``path`` through :func:`atomic_write`; returns the file written."""
    with atomic_write(path, follow_symlinks) as f:
        f.write(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str, follow_symlinks: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_write`."""
    return write_bytes_atomic(path, text.encode("utf-8"), follow_symlinks)


def append_text(path: str | os.PathLike, text: str) -> None:
    """Append ``text`` to ``path`` in one ``write`` and fsync it; a symlink is refused."""
    path = check_writable_target(path)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as e:
        if path.is_symlink():
            raise UnsafePathError(f"{path} is a symlink; cnnlab does not write through it") from e
        raise
    try:
        data = text.encode("utf-8")
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    finally:
        os.close(fd)


class LockHeldError(BlockingIOError):
    """:func:`exclusive_lock`: another process holds the lock (its PID in ``holder``)."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is locked by PID {holder}")
        self.holder = holder


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the file ``path`` (created, holding our PID)
    while the block runs; :class:`LockHeldError` at once when another process
    holds it.  The lock dies with its process; the file is removed on release
    (a process that locked the removed file notices and locks the new one)."""
    path = Path(path)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise LockHeldError(path, holder) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path, follow_symlinks=False).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)


def check_readable_file(path: str | os.PathLike, what: str = "file") -> Path:
    """``path`` if it is a regular file (a symlink to one is fine).

    Raises FileNotFoundError when nothing is there and :class:`UnsafePathError`
    for a folder, a FIFO, a device or a socket, which a loader would block on
    or read without end."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {path} does not exist") from None
    if stat.S_ISDIR(mode):
        raise UnsafePathError(f"{what} {path} is a folder, not a file")
    if not stat.S_ISREG(mode):
        raise UnsafePathError(f"{what} {path} is not a regular file (a device, FIFO or socket)")
    return path
