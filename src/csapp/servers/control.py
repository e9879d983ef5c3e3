"""Stopping a server race-free (``ServerControl``).

SIGINT/SIGTERM reach the loop through ``signal.set_wakeup_fd`` and a
self-pipe that sits in the loop's poller, so a signal that lands just before
the server blocks still wakes it; ``stop()`` works from any thread.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType, TracebackType
from typing import Callable, Dict, Optional, Type

from .poller import READ, Poller

__all__ = ["STOP_SIGNALS", "ServerControl"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class ServerControl:
    """Stop switch of a server: ``stop()`` from any thread, or SIGINT/SIGTERM.

    Use it as a context manager. In the main thread it installs handlers for
    SIGINT and SIGTERM (and, for the process server, SIGCHLD) and points
    ``signal.set_wakeup_fd`` at its self-pipe; leaving restores both.
    """

    def __init__(self, handle_signals: Optional[bool] = None) -> None:
        if handle_signals is None:
            handle_signals = threading.current_thread() is threading.main_thread()
        self.handle_signals = handle_signals
        self.stopping = False
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._saved: Dict[int, object] = {}
        self._saved_wakeup: Optional[int] = None
        self._closed = False
        self._poller = Poller()
        self._poller.register(self._read_fd, READ)

    @property
    def wake_fd(self) -> int:
        """The read end of the self-pipe: readable after a signal or ``stop()``."""
        return self._read_fd

    def stop(self) -> None:
        """Ask the server to stop; safe from any thread and from signal handlers."""
        self.stopping = True
        try:
            os.write(self._write_fd, b"\0")
        except OSError:
            pass  # pipe full (a wake-up is pending anyway) or already closed

    def wake(self) -> None:
        """Wake the loop without stopping it (a worker freed room for a client)."""
        if self._closed:
            return
        try:
            os.write(self._write_fd, b"\0")  # 0 is no signal number: drain() ignores it
        except OSError:
            pass  # pipe full: a wake-up is pending anyway

    def _on_stop_signal(self, signum: int, frame: Optional[FrameType]) -> None:
        self.stopping = True

    @staticmethod
    def _on_child(signum: int, frame: Optional[FrameType]) -> None:
        """Nothing: the wake-up byte is what matters; the loop reaps."""

    def _install(self, signum: int, handler: Callable[[int, Optional[FrameType]], None]) -> None:
        if signum not in self._saved:
            self._saved[signum] = signal.getsignal(signum)
        signal.signal(signum, handler)

    def __enter__(self) -> ServerControl:
        if self.handle_signals:
            self._saved_wakeup = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
            for signum in STOP_SIGNALS:
                self._install(signum, self._on_stop_signal)
        return self

    def watch_children(self) -> bool:
        """Wake on SIGCHLD too (process server); ``False`` if signals are not ours."""
        if not self.handle_signals:
            return False
        self._install(signal.SIGCHLD, self._on_child)
        return True

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def close(self) -> None:
        """Restore the signal handlers and the wake-up fd, close the pipe."""
        if self._closed:
            return
        self._closed = True
        if self.handle_signals:
            for signum, handler in self._saved.items():
                signal.signal(signum, handler)  # type: ignore[arg-type]
            signal.set_wakeup_fd(-1 if self._saved_wakeup is None else self._saved_wakeup)
        self._saved.clear()
        self._poller.close()
        os.close(self._read_fd)
        os.close(self._write_fd)

    def forget_in_child(self) -> None:
        """In a forked child: default signal actions, no wake-up fd, pipe closed."""
        if self.handle_signals:
            try:
                signal.set_wakeup_fd(-1)
            except ValueError:
                pass
            for signum in self._saved:
                signal.signal(signum, signal.SIG_DFL)
        self._saved.clear()
        self._closed = True
        self._poller.close()
        os.close(self._read_fd)
        os.close(self._write_fd)

    def drain(self) -> bool:
        """Empty the self-pipe; a SIGINT/SIGTERM byte in it means stop. Returns ``stopping``."""
        while True:
            try:
                data = os.read(self._read_fd, 512)
            except (BlockingIOError, InterruptedError):
                break
            if not data:
                break
            if any(byte in STOP_SIGNALS for byte in data):
                self.stopping = True
        return self.stopping

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds or until woken. Returns ``stopping``."""
        if not self.stopping:
            self._poller.poll(max(timeout, 0.001))
        return self.drain()
