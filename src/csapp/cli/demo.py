"""``csapp demo``: the whole package in a few seconds, explained as it runs.

1. An event-driven echo server on a free loopback port, in a thread; a few
   clients at once send lines (text, binary, one longer than ``MAXLINE``)
   through the echo client and check every reply.
2. The same kind of data copied byte-at-a-time, buffered and fast between
   temporary files, with a table of system calls and times.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, Sequence, TextIO, Tuple

from .._rio import IMPLEMENTATION, MAXLINE
from ..client import echo_lines
from ..servers import ServerControl, serve_event
from ..sockets import local_address, open_listenfd
from .copying import COPY_METHODS, CopyStats, copy_fd

__all__ = ["run_demo"]

CLIENTS = 8
LINES_PER_CLIENT = 200
COPY_BYTES = 250_000

_IMPLEMENTATIONS = {
    "c": "c (compiled; CSAPP_NO_EXTENSIONS=1 selects the pure-Python twin)",
    "python": "python (the pure-Python twin; the compiled extension is not used)",
}


def _client_lines(client: int) -> List[bytes]:
    lines = [
        f"client {client} line {i}: hello, echo server\n".encode()
        for i in range(LINES_PER_CLIENT - 2)
    ]
    lines.append(bytes(range(256)).replace(b"\n", b"") + b"\0 binary\n")
    lines.append(b"x" * (2 * MAXLINE + 100) + b"\n")  # longer than MAXLINE
    return lines


def _echo_check(port: int, say: Callable[[str], None]) -> bool:
    """Several clients at once against the server; True when every reply matches."""
    sent = [_client_lines(client) for client in range(CLIENTS)]
    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        replies = list(pool.map(lambda lines: echo_lines("127.0.0.1", port, lines), sent))
    seconds = time.perf_counter() - started
    total = sum(len(lines) for lines in sent)
    nbytes = sum(len(line) for lines in sent for line in lines)
    good = sum(a == b for lines, got in zip(sent, replies) for a, b in zip(lines, got))
    say(f"   {CLIENTS} clients at once sent {total:,} lines, {nbytes:,} bytes, in {seconds:.2f} s")
    say(f"   (text, binary with NUL bytes, and lines longer than MAXLINE = {MAXLINE})")
    ok = good == total and all(len(got) == len(lines) for lines, got in zip(sent, replies))
    if ok:
        say(f"   every reply came back byte for byte: {good:,} of {total:,} lines match")
    else:
        say(f"   MISMATCH: only {good:,} of {total:,} replies match")
    return ok


def _echo_part(say: Callable[[str], None]) -> bool:
    listenfd = open_listenfd(0, "127.0.0.1")
    host, port = local_address(listenfd)
    control = ServerControl(handle_signals=False)
    server = threading.Thread(
        target=serve_event, args=(listenfd,), kwargs={"control": control}, daemon=True
    )
    server.start()
    say("1. Echo server and client")
    say(f"   started an event-driven echo server (epoll, one thread) on {host} port {port}")
    say("   (the same server as `csapp echoserver --mode event`, here in a thread)")
    try:
        return _echo_check(port, say)
    finally:
        control.stop()
        server.join(2.0)
        control.close()
        say("   stopped the server" if not server.is_alive() else "   the server did not stop")


def _copy_once(method: str, source: str, data: bytes) -> Tuple[CopyStats, bool]:
    """Copy ``source`` into a fresh temporary file; the stats, and whether it matches."""
    with tempfile.TemporaryFile() as out:
        infd = os.open(source, os.O_RDONLY)
        try:
            stats = copy_fd(infd, out.fileno(), method)
        finally:
            os.close(infd)
        out.seek(0)
        return stats, out.read() == data


def _copy_table(rows: Sequence[CopyStats]) -> List[str]:
    lines = [
        f"   {'method':<10} {'path':<10} {'system calls':>13} {'seconds':>10} {'MB/s':>10}",
        f"   {'-' * 10} {'-' * 10} {'-' * 13} {'-' * 10} {'-' * 10}",
    ]
    for row in rows:
        lines.append(
            f"   {row.method:<10} {row.path or 'read/write':<10} {row.syscalls:>13,} "
            f"{row.seconds:>10.4f} {row.mb_per_s:>10.1f}"
        )
    return lines


def _copy_part(say: Callable[[str], None]) -> bool:
    data = os.urandom(COPY_BYTES)
    say("")
    say(f"2. Copying {COPY_BYTES:,} random bytes from a file to a file, three ways")
    with tempfile.NamedTemporaryFile(prefix="csapp-demo-") as source:
        source.write(data)
        source.flush()
        results = [_copy_once(method, source.name, data) for method in COPY_METHODS]
    rows = [stats for stats, _same in results]
    for line in _copy_table(rows):
        say(line)
    wrong = [stats.method for stats, same in results if not same]
    if wrong:
        say(f"   MISMATCH: {', '.join(wrong)} changed the data")
        return False
    byte, buffered = rows[0], rows[1]
    say(
        "   Every copy is byte-exact. One byte per system call took "
        f"{byte.syscalls / max(buffered.syscalls, 1):,.0f}x as many"
    )
    say(
        f"   calls as the 64 KiB Rio buffer, and "
        f"{byte.seconds / max(buffered.seconds, 1e-9):,.0f}x as long: a system call"
    )
    say("   costs far more than the byte it moves.")
    return True


def run_demo(out: TextIO) -> int:
    """Run the demo, writing to ``out``; 0 when every check passed."""

    def say(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    started = time.perf_counter()
    say("csapp demo: CSAPP's robust I/O, sockets and echo servers in Python")
    say(f"implementation: {_IMPLEMENTATIONS.get(IMPLEMENTATION, IMPLEMENTATION)}")
    say("")
    ok = _echo_part(say)
    ok = _copy_part(say) and ok
    say("")
    say(
        f"{'All checks passed' if ok else 'SOME CHECKS FAILED'} in "
        f"{time.perf_counter() - started:.1f} s. Next, try:"
    )
    say("   csapp echoserver --mode thread 8000      # then, in another terminal:")
    say("   csapp echoclient localhost 8000")
    return 0 if ok else 1
