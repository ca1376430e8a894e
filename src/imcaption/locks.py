"""Advisory folder locks, so that two processes never build the same cache, draw into the same dataset folder or
train into the same run folder at once.

`fcntl.flock` on a lock file inside the folder: the kernel releases it when its holder exits, however it exits
(a killed builder leaves no stale lock behind). The holder writes its pid and what it is doing into the file, so
that a process that finds the folder taken can say who holds it and why."""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = ".imcaption.lock"


class FolderBusyError(OSError):
    """The folder is locked by another process and the command does not wait for it."""


def lock_holder(lock_path: Path) -> str:
    """The holder as it recorded itself, 'PID (what it is doing)', or 'unknown' (it may not have written yet)."""
    try:
        pid, _, purpose = lock_path.read_text().strip().partition(" ")
    except OSError:
        return "unknown"
    return f"{pid} ({purpose})" if pid else "unknown"


@contextmanager
def folder_lock(folder: str | Path, purpose: str, wait: bool = True, name: str = LOCK_FILE) -> Iterator[bool]:
    """Hold `folder`/`name` exclusively for the block; yield whether another process had to be waited for.
    `purpose` says what the holder is doing, for the message of a process that finds the folder taken. With `wait`
    false, a held lock raises FolderBusyError naming the holder."""
    lock_path = Path(folder) / name
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        waited = _acquire(fd, lock_path, wait)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {purpose}\n".encode(), 0)
        try:
            yield waited
        finally:
            os.ftruncate(fd, 0)  # no stale pid left behind: the file says nothing while nobody holds it
    finally:
        os.close(fd)  # closing the only descriptor releases the lock


def _acquire(fd: int, lock_path: Path, wait: bool) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        holder = lock_holder(lock_path)
        if not wait:
            raise FolderBusyError(
                f"{lock_path.parent} is in use by process {holder}; wait for it to finish, or use another folder"
            ) from None
        print(f"waiting for process {holder}, which holds {lock_path.parent}", file=sys.stderr, flush=True)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
