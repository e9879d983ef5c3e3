"""Workload 6: ``await reader.readline()`` on 64 B lines already in flight.

A thread writes the lines into one end of a socket pair as fast as the kernel
takes them; the event loop reads them back one ``readline()`` at a time from
the other end, through asyncio's ``StreamReader`` or csapp.aio's, on the
default loop and on uvloop (where installed). Each case runs in a fresh
child process (``impl_env``), so the twin under test is the one imported.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Callable, Dict, List, Optional, Sequence

from .core import Case, Result, impl_env, run_group

GROUP = "asyncio readline, 64 B lines in flight"
LINES = 200_000

# The measured program: prints lines per second (millions).
CHILD = r"""
import asyncio, socket, sys, threading, time
streams, loop_kind, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
if streams == "csapp.aio":
    import csapp.aio as module
else:
    module = asyncio
line = b"x" * 63 + b"\n"

def feed(sock):
    sock.sendall(line * count)
    sock.shutdown(socket.SHUT_WR)

async def main():
    ours, peer = socket.socketpair()
    reader, writer = await module.open_connection(sock=ours)
    sender = threading.Thread(target=feed, args=(peer,))
    started = time.perf_counter()
    sender.start()
    readline = reader.readline
    for _ in range(count):
        if len(await readline()) != 64:
            raise SystemExit("short line")
    elapsed = time.perf_counter() - started
    sender.join()
    writer.close()
    peer.close()
    return elapsed

if loop_kind == "uvloop":
    import uvloop
    loop = uvloop.new_event_loop()
else:
    loop = asyncio.new_event_loop()
print(count / loop.run_until_complete(main()) / 1e6)
"""


def have_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def _case(streams: str, loop_kind: str, impl: Optional[str], count: int) -> Case:
    def case() -> float:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, streams, loop_kind, str(count)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            env=impl_env(impl),
        )
        return float(out.stdout.split()[-1])

    return case


def cases(impls: Sequence[str], count: int = LINES) -> Dict[str, Case]:
    """Row name -> case: asyncio's reader and csapp.aio's per twin, per loop."""
    loops = ["asyncio", "uvloop"] if have_uvloop() else ["asyncio"]
    out: Dict[str, Case] = {}
    for loop_kind in loops:
        where = "default loop" if loop_kind == "asyncio" else "uvloop"
        out[f"asyncio.StreamReader, {where}"] = _case("asyncio", loop_kind, None, count)
        for impl in impls:
            out[f"csapp.aio [{impl}], {where}"] = _case("csapp.aio", loop_kind, impl, count)
    return out


def run(
    impls: Sequence[str],
    rounds: int,
    count: int = LINES,
    progress: Optional[Callable[[str], None]] = None,
) -> List[Result]:
    return run_group(GROUP, "Mlines/s", cases(impls, count), rounds, progress)
