"""Copy one descriptor to another three ways, counting the system calls.

- ``byte``     — one byte per ``read`` and ``write``: the lecture's slow example.
- ``buffered`` — through a ``Rio`` (``read1``) and ``rio_writen``, up to 64 KiB at a time.
- ``fast``     — what the kernel offers: ``sendfile`` from a regular file,
                 ``splice`` when one side is a pipe, else a 1 MiB ``readv`` loop.

Output is byte-exact in every case. The system call counts are the calls this
module makes (a ``rio_writen`` counts as one; it loops only on a short write).
"""

from __future__ import annotations

import errno
import os
import stat
import time
from dataclasses import dataclass
from typing import Callable, Dict

from .._rio import Rio, rio_writen

__all__ = ["COPY_METHODS", "CopyStats", "copy_fd", "copy_splice"]

BIG_BUFFER = 1 << 20
# The buffered copy's Rio: large enough that a system call moves a pipe's
# worth of data, small enough to stay in the CPU cache.
COPY_BUFSIZE = 64 * 1024
SENDFILE_CHUNK = 1 << 30
SPLICE_CHUNK = 1 << 20
# Errors that mean "this kernel shortcut does not apply to these descriptors".
NOT_SUPPORTED = frozenset(
    {
        errno.EINVAL,
        errno.ENOSYS,
        errno.EOPNOTSUPP,
        errno.ENOTSUP,
        errno.EXDEV,
        errno.ESPIPE,
        errno.EBADF,
    }
)


@dataclass
class CopyStats:
    """What one copy did: bytes, system calls, seconds, and how."""

    method: str
    nbytes: int = 0
    syscalls: int = 0
    seconds: float = 0.0
    path: str = ""  # for ``fast``: sendfile, splice or readv

    @property
    def mb_per_s(self) -> float:
        """Throughput in MB/s (10**6 bytes per second)."""
        return self.nbytes / self.seconds / 1e6 if self.seconds > 0 else 0.0

    def summary(self) -> str:
        how = f" ({self.path})" if self.path else ""
        return (
            f"copy {self.method}{how}: {self.nbytes} bytes, {self.syscalls} system calls, "
            f"{self.seconds:.6f} s, {self.mb_per_s:.2f} MB/s"
        )


def _copy_bytewise(infd: int, outfd: int, stats: CopyStats) -> None:
    """One byte per ``read`` and per ``write``."""
    while True:
        byte = os.read(infd, 1)
        stats.syscalls += 1
        if not byte:
            return
        os.write(outfd, byte)
        stats.syscalls += 1
        stats.nbytes += 1


def _copy_buffered(infd: int, outfd: int, stats: CopyStats) -> None:
    """``Rio.read1`` (one ``read`` of up to ``COPY_BUFSIZE``) and ``rio_writen``."""
    with Rio(infd, COPY_BUFSIZE) as rp:
        while True:
            chunk = rp.read1()
            stats.syscalls += 1
            if not chunk:
                return
            stats.nbytes += rio_writen(outfd, chunk)
            stats.syscalls += 1


def _copy_sendfile(infd: int, outfd: int, stats: CopyStats) -> bool:
    """In-kernel copy from a regular file; ``False`` if it does not apply."""
    while True:
        try:
            sent = os.sendfile(outfd, infd, None, SENDFILE_CHUNK)
        except OSError as exc:
            stats.syscalls += 1
            if exc.errno in NOT_SUPPORTED and stats.nbytes == 0:
                return False
            raise
        stats.syscalls += 1
        if not sent:
            return True
        stats.nbytes += sent


def copy_splice(infd: int, outfd: int, stats: CopyStats) -> bool:
    """Move pages through a pipe without copying them to user space
    (``splice(2)``); False when the descriptors do not support it and nothing
    was moved yet. ``csapp copy --sweep`` uses it as its fixed-cost baseline."""
    while True:
        try:
            moved = os.splice(infd, outfd, SPLICE_CHUNK, flags=os.SPLICE_F_MOVE)
        except OSError as exc:
            stats.syscalls += 1
            if exc.errno in NOT_SUPPORTED and stats.nbytes == 0:
                return False
            raise
        stats.syscalls += 1
        if not moved:
            return True
        stats.nbytes += moved


def _copy_big_buffer(infd: int, outfd: int, stats: CopyStats) -> None:
    """``readv`` into one 1 MiB buffer, ``rio_writen`` out of it."""
    buffer = bytearray(BIG_BUFFER)
    with memoryview(buffer) as view:
        while True:
            count = os.readv(infd, [buffer])
            stats.syscalls += 1
            if not count:
                return
            rio_writen(outfd, view[:count])
            stats.syscalls += 1
            stats.nbytes += count


def _copy_fast(infd: int, outfd: int, stats: CopyStats) -> None:
    """The fastest path these descriptors allow; falls back when one refuses."""
    in_mode = os.fstat(infd).st_mode
    out_mode = os.fstat(outfd).st_mode
    if stat.S_ISREG(in_mode):
        stats.path = "sendfile"
        if _copy_sendfile(infd, outfd, stats):
            return
    if (stat.S_ISFIFO(in_mode) or stat.S_ISFIFO(out_mode)) and hasattr(os, "splice"):
        stats.path = "splice"
        if copy_splice(infd, outfd, stats):
            return
    stats.path = "readv"
    _copy_big_buffer(infd, outfd, stats)


COPY_METHODS: Dict[str, Callable[[int, int, CopyStats], None]] = {
    "byte": _copy_bytewise,
    "buffered": _copy_buffered,
    "fast": _copy_fast,
}


def copy_fd(infd: int = 0, outfd: int = 1, method: str = "buffered") -> CopyStats:
    """Copy ``infd`` to ``outfd`` until EOF with ``method`` (see ``COPY_METHODS``)."""
    try:
        run = COPY_METHODS[method]
    except KeyError:
        raise ValueError(
            f"unknown copy method {method!r}; choose from {', '.join(COPY_METHODS)}"
        ) from None
    stats = CopyStats(method)
    started = time.perf_counter()
    try:
        run(infd, outfd, stats)
    finally:
        stats.seconds = time.perf_counter() - started
    return stats
