"""SIGINT and SIGTERM as a request to stop at the next safe point, not an exception in the middle of a step."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
    """Training stopped on a signal after saving a consistent checkpoint; exit with `exit_code`."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


class StopRequests:
    """While entered, a stop signal is recorded in `received` (checked between steps). Inside `immediate()`,
    it raises `Interrupted` at once instead: for work such as validation that can simply be redone."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._immediate = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequests:
        # Handlers can only be installed from the main thread; elsewhere signals keep their old meaning.
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                if signal.getsignal(signum) is signal.SIG_IGN:
                    continue  # ignored on purpose (nohup, a background job): keep it so
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum
        if self._immediate:
            raise Interrupted(signum)

    def check(self) -> None:
        if self.received is not None:
            raise Interrupted(self.received)

    @contextmanager
    def immediate(self) -> Iterator[None]:
        self.check()
        self._immediate = True
        try:
            yield
        finally:
            self._immediate = False
