"""One writer per role per data root: lock files held by the process (SPEC 5.5).

`hold` opens the lock file with ``O_NOFOLLOW | O_CREAT`` (a symbolic link planted at its name,
dangling or not, is refused: nothing is created or opened outside the root), takes an exclusive
`fcntl.flock` without waiting and writes the holder's PID into it. The kernel releases the lock
when the process dies, however it dies, so a lock file left behind never blocks anyone: only a
live holder does. A second writer gets `BusyError` at once, naming the holder's PID. Readers take
no lock and never wait.

    with hold(tree.lock_file("queue"), role="azaion-queue"):
        ...  # the only consumer of this root

Why not the ``filelock`` package: it opens the file without ``O_NOFOLLOW`` (a planted link is
followed, and the file is created at its target) and truncates it before locking, so it cannot
keep the holder's PID for the second writer to name.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from pathlib import Path
from types import TracebackType

from azaion_training.errors import BusyError, UnsafePathError

_PID_WAITS = 50
_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


class RoleLock:
    """A held lock file (see the module); `release` (or the end of a ``with``) lets it go."""

    def __init__(self, path: Path, descriptor: int) -> None:
        self.path = path
        self._descriptor: int | None = descriptor

    def release(self) -> None:
        """Releases the lock (the file stays; safe to call more than once)."""
        if self._descriptor is not None:
            os.close(self._descriptor)  # closing drops the flock
            self._descriptor = None

    def __enter__(self) -> RoleLock:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def hold(path: Path, *, role: str, shared: bool = False) -> RoleLock:
    """Takes the lock of ``role`` at ``path`` at once, or fails.

    With ``shared`` it takes a shared lock instead, waiting only while a moment's `is_held`
    probe holds it exclusively; many may share it, and no PID is written.

    Raises:
        BusyError: another live process holds it (the message names its PID).
        UnsafePathError: ``path`` is a symbolic link or not a regular file.
    """
    descriptor = _open(path)
    if shared:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH)
        except BaseException:
            os.close(descriptor)
            raise
        return RoleLock(path, descriptor)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _read_pid(descriptor)
        for _ in range(_PID_WAITS):  # the holder writes its PID right after it locks
            if pid is not None:
                break
            time.sleep(0.01)
            pid = _read_pid(descriptor)
        os.close(descriptor)
        holder = f"PID {pid}" if pid is not None else "a process that is starting"
        raise BusyError(f"another {role} is running on this root ({holder} holds {path})") from None
    except BaseException:
        os.close(descriptor)
        raise
    try:
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
    except BaseException:
        os.close(descriptor)
        raise
    return RoleLock(path, descriptor)


def holder(path: Path) -> int | None:
    """The PID written by the live process holding ``path`` (-1 when it wrote none, as shared
    holders do); ``None`` when no one holds it. A moment's exclusive probe, never waiting."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(descriptor) or -1
        return None
    finally:
        os.close(descriptor)


def is_held(path: Path) -> bool:
    """True when a live process holds ``path`` (exclusively or shared)."""
    return holder(path) is not None


def _open(path: Path) -> int:
    try:
        try:
            descriptor = os.open(path, _FLAGS, 0o644)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, _FLAGS, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePathError(f"lock file {path} is a symbolic link; remove it") from exc
        raise
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise UnsafePathError(f"lock file {path} is not a regular file; remove it")
    return descriptor


def _read_pid(descriptor: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(descriptor, 32, 0).decode().strip())
    return None
