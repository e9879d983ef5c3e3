"""What every server mode is told: ``ServerConfig``, and how it logs."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Optional, Tuple

__all__ = ["Address", "ServerConfig", "log"]

Address = Tuple[str, int]


@dataclass(frozen=True)
class ServerConfig:
    """Options shared by every server mode."""

    verbose: bool = False
    idle_timeout: Optional[float] = None  # close a client silent this long (s)
    max_clients: Optional[int] = None  # serve at most this many at once
    threads: int = 8  # prethreaded: pool size (CSAPP NTHREADS)
    queue_size: int = 16  # prethreaded: sbuf slots (CSAPP SBUFSIZE)

    def __post_init__(self) -> None:
        if self.idle_timeout is not None and not self.idle_timeout > 0:
            raise ValueError("idle_timeout must be positive")
        if self.max_clients is not None and self.max_clients < 1:
            raise ValueError("max_clients must be at least 1")
        if self.threads < 1 or self.queue_size < 1:
            raise ValueError("threads and queue_size must be at least 1")

    def has_room(self, serving: int) -> bool:
        """May one more client be served while ``serving`` are (``max_clients``)?"""
        return self.max_clients is None or serving < self.max_clients


def log(message: str) -> None:
    """One line on standard error (CSAPP's ``printf`` diagnostics)."""
    try:
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
