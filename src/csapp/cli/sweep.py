"""``csapp copy --sweep``: the lecture's picture, measured.

The same data is copied from a file into a pipe (drained by another process)
through a ``Rio`` of every buffer size from 1 byte to 1 MiB (powers of two:
one ``read1`` and one ``rio_writen`` per buffer), then with ``sendfile`` and
``splice``. Each row gives the rate and the system calls it took: the calls
fall by half at every doubling, and the rate climbs until a system call moves
enough bytes to hide its cost.
"""

from __future__ import annotations

import functools
import os
import stat
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional, Sequence

from .._rio import Rio, rio_writen
from .copying import CopyStats, copy_fd, copy_splice

__all__ = ["SWEEP_SIZES", "SweepRow", "format_sweep", "plot_sweep", "run_sweep"]

SWEEP_SIZES = [1 << k for k in range(21)]  # 1 B .. 1 MiB
DEFAULT_BYTES = 8 << 20
# A size whose copies take less than QUICK_SECONDS in all is copied again, up
# to MAX_ROUNDS times, and the median copy is reported.
QUICK_SECONDS = 0.25
MAX_ROUNDS = 5


@dataclass
class SweepRow:
    """One copy of the sweep: how (a buffer size, or a kernel call) and what it took."""

    label: str
    bufsize: Optional[int]  # None for sendfile / splice
    nbytes: int
    syscalls: int
    seconds: float

    @property
    def mb_per_s(self) -> float:
        return self.nbytes / self.seconds / 1e6 if self.seconds > 0 else 0.0


@contextmanager
def drained_pipe(zero_copy: bool = False) -> Iterator[int]:
    """The write end of a pipe whose reader, a forked child, discards everything
    (with ``zero_copy``, by ``splice`` into /dev/null: the drain costs least)."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: read until EOF, then leave without cleanup
        status = 0
        try:
            os.close(wfd)
            if zero_copy and hasattr(os, "splice"):
                devnull = os.open(os.devnull, os.O_WRONLY)
                while os.splice(rfd, devnull, 1 << 20):
                    pass
            while os.read(rfd, 1 << 20):
                pass
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(rfd)
    try:
        yield wfd
    finally:
        os.close(wfd)
        os.waitpid(pid, 0)


def copy_with_buffer(infd: int, outfd: int, bufsize: int) -> CopyStats:
    """Copy through a ``Rio`` of ``bufsize`` bytes: one read and one write per buffer."""
    stats = CopyStats(f"{bufsize} B buffer")
    started = time.perf_counter()
    with Rio(infd, bufsize) as rp:
        read1 = rp.read1
        while True:
            chunk = read1()
            stats.syscalls += 1
            if not chunk:
                break
            stats.nbytes += rio_writen(outfd, chunk)
            stats.syscalls += 1
    stats.seconds = time.perf_counter() - started
    return stats


def _one(path: str, run: Callable[[int, int], CopyStats]) -> CopyStats:
    infd = os.open(path, os.O_RDONLY)
    try:
        with drained_pipe() as outfd:
            return run(infd, outfd)
    finally:
        os.close(infd)


def run_sweep(
    path: str, sizes: Sequence[int] = SWEEP_SIZES, progress: Optional[Callable[[str], None]] = None
) -> List[SweepRow]:
    """Copy the file ``path`` once per buffer size, then with sendfile and splice."""
    expected = os.path.getsize(path)
    rows: List[SweepRow] = []

    def add(label: str, bufsize: Optional[int], stats: CopyStats) -> None:
        if stats.nbytes != expected:
            raise RuntimeError(f"{label}: copied {stats.nbytes} of {expected} bytes")
        rows.append(SweepRow(label, bufsize, stats.nbytes, stats.syscalls, stats.seconds))
        if progress:
            progress(format_row(rows[-1]))

    for size in sizes:
        add(
            _size_label(size), size, _timed(path, functools.partial(copy_with_buffer, bufsize=size))
        )
    fast = _timed(path, lambda i, o: copy_fd(i, o, "fast"))
    add(fast.path or "fast", None, fast)
    if fast.path == "sendfile" and hasattr(os, "splice"):
        # splice needs a pipe on one side: the output is one.
        add("splice", None, _timed(path, _splice_copy))
    return rows


def _timed(path: str, run: Callable[[int, int], CopyStats]) -> CopyStats:
    """The median of a few copies when one is quick (the machine is noisy), else one."""
    runs = [_one(path, run)]
    while len(runs) < MAX_ROUNDS and sum(r.seconds for r in runs) < QUICK_SECONDS:
        runs.append(_one(path, run))
    runs.sort(key=lambda r: r.seconds)
    return runs[len(runs) // 2]


def _splice_copy(infd: int, outfd: int) -> CopyStats:
    """The fast copy's splice loop, on its own (a file into the pipe)."""
    stats = CopyStats("fast", path="splice")
    started = time.perf_counter()
    if not copy_splice(infd, outfd, stats):
        raise RuntimeError("splice does not work on these descriptors")
    stats.seconds = time.perf_counter() - started
    return stats


def _size_label(size: int) -> str:
    if size >= 1 << 20:
        return f"{size >> 20} MiB"
    if size >= 1 << 10:
        return f"{size >> 10} KiB"
    return f"{size} B"


HEADER = f"{'buffer':>10} {'system calls':>14} {'bytes/call':>11} {'seconds':>10} {'MB/s':>10}"


def format_row(row: SweepRow) -> str:
    per_call = row.nbytes / row.syscalls if row.syscalls else 0.0
    shown = f"{per_call:,.1f}" if per_call < 10 else f"{per_call:,.0f}"
    return (
        f"{row.label:>10} {row.syscalls:>14,} {shown:>11} "
        f"{row.seconds:>10.4f} {row.mb_per_s:>10.1f}"
    )


def format_sweep(rows: Sequence[SweepRow]) -> str:
    return "\n".join([HEADER, "-" * len(HEADER)] + [format_row(row) for row in rows])


def plot_sweep(rows: Sequence[SweepRow], path: str, title: str) -> None:
    """MB/s and system calls against the buffer size, log axes (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError("--plot needs matplotlib: pip install 'csapp[bench]'") from None
    sized = [row for row in rows if row.bufsize]
    kernel = [row for row in rows if not row.bufsize]
    sizes = [row.bufsize or 0 for row in sized]
    fig, rate_axis = plt.subplots(figsize=(9, 5.2))
    rate_axis.plot(
        sizes,
        [row.mb_per_s for row in sized],
        "o-",
        color="tab:blue",
        label="MB/s through a Rio of this size",
    )
    for row, style in zip(kernel, ["--", ":"]):
        rate_axis.axhline(
            row.mb_per_s,
            color="tab:green",
            linestyle=style,
            label=f"MB/s with {row.label} (no user buffer)",
        )
    rate_axis.set_xscale("log", base=2)
    ticks = sizes[::2]
    rate_axis.set_xticks(ticks, [_size_label(size) for size in ticks], fontsize=8)
    rate_axis.set_yscale("log")
    rate_axis.set_xlabel("buffer size (bytes)")
    rate_axis.set_ylabel("MB/s", color="tab:blue")
    calls_axis = rate_axis.twinx()
    calls_axis.plot(
        sizes, [row.syscalls for row in sized], "s-", color="tab:red", label="system calls"
    )
    calls_axis.set_yscale("log")
    calls_axis.set_ylabel("system calls (read + write)", color="tab:red")
    handles = rate_axis.get_legend_handles_labels()
    more = calls_axis.get_legend_handles_labels()
    rate_axis.legend(handles[0] + more[0], handles[1] + more[1], loc="center right", fontsize=8)
    rate_axis.set_title(title, fontsize=9)
    rate_axis.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@contextmanager
def sweep_source(infd: int, nbytes: int) -> Iterator[str]:
    """The file to copy: standard input when it is a regular file, else
    ``nbytes`` random bytes in a temporary file."""
    if stat.S_ISREG(os.fstat(infd).st_mode):
        yield f"/proc/self/fd/{infd}"
        return
    with tempfile.NamedTemporaryFile(prefix="csapp-sweep-") as tmp:
        block = os.urandom(1 << 16)
        left = nbytes
        while left > 0:
            tmp.write(block[: min(left, len(block))])
            left -= len(block)
        tmp.flush()
        yield tmp.name
