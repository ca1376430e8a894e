"""Atomic file writes: a crash, a kill or a full disk leaves the old file or the new one, never a half.

Temporary files carry the writing process's pid and a random part (`.NAME.PID.RANDOM.partial`), so two processes
never write into one temporary file, and a process can tell its own or a dead process's leftovers from the
temporary files of a process still at work."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

TEMP_SUFFIX = ".partial"
_TEMP_NAME = re.compile(r"^\.?.+?\.(\d+)\.[A-Za-z0-9_]+\.partial$")


def temp_path(path: str | Path) -> Path:
    """A new, empty, uniquely named file beside `path`, to be renamed over it when written."""
    path = Path(path)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(handle)
    return Path(name)


def publish(temp: Path, path: Path, durable: bool = True) -> None:
    """Give `temp` an ordinary file's mode and rename it over `path`; with `durable`, fsync it first (skipped for
    caches of several GB, which are checked on every open and rebuilt when they do not match)."""
    os.chmod(temp, _new_file_mode())  # mkstemp makes files private; the result should look like any other
    if durable:
        with temp.open("rb") as written:
            os.fsync(written.fileno())
    os.replace(temp, path)


def write_atomically(path: str | Path, write: Callable[[Path], None], durable: bool = True) -> None:
    """`write(temp)` in the same folder, then fsync (with `durable`) and rename over `path`."""
    path = Path(path)
    temp = temp_path(path)
    try:
        write(temp)
        publish(temp, path, durable)
    finally:
        temp.unlink(missing_ok=True)


def write_text_atomically(path: str | Path, text: str) -> None:
    write_atomically(path, lambda temp: temp.write_text(text, encoding="utf-8", newline="\n"))


def remove_dead_temps(folder: str | Path) -> int:
    """Delete the temporary files in `folder` left by processes that are gone (killed mid-write), and those of
    imcaption 0.2's fixed names (`NAME.partial`); keep those of live processes. Returns how many went."""
    removed = 0
    with os.scandir(folder) as entries:
        names = [entry.name for entry in entries if entry.name.endswith(TEMP_SUFFIX)]
    for name in names:
        match = _TEMP_NAME.match(name)
        if match and _alive(int(match.group(1))):
            continue
        Path(folder, name).unlink(missing_ok=True)
        removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _new_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
