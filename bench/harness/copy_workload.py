"""Workload 2: the lecture's copy, standard input (a cached file) to standard
output (a pipe, drained by another process on the same CPU).

Ours: ``csapp copy --method byte|buffered|fast`` (its ``--stats`` line gives
bytes, system calls and seconds). Peers: a Python ``os.read(fd, 1)`` loop,
``shutil.copyfileobj`` and ``cat``. Rates are MB/s (10**6 bytes per second);
the byte-at-a-time rows copy a smaller file, since they are ~1000× slower.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from csapp.cli.sweep import drained_pipe

from .core import Case, Result, impl_env, run_group

GROUP = "copy: file → pipe"
STATS = re.compile(r"(\d+) bytes, (\d+) system calls, ([0-9.]+) s")

_PY_BYTEWISE = """
import os, sys, time
t0 = time.perf_counter(); n = 0
while True:
    b = os.read(0, 1)
    if not b: break
    os.write(1, b); n += 1
print(n, time.perf_counter() - t0, file=sys.stderr)
"""

_PY_COPYFILEOBJ = """
import shutil, sys, time
t0 = time.perf_counter()
shutil.copyfileobj(sys.stdin.buffer, sys.stdout.buffer)
sys.stdout.flush()
n = sys.stdin.buffer.tell()
print(n, time.perf_counter() - t0, file=sys.stderr)
"""


def make_file(directory: str, nbytes: int) -> str:
    path = os.path.join(directory, f"copy-{nbytes}")
    if not os.path.exists(path):
        block = os.urandom(1 << 16)
        with open(path, "wb") as f:
            left = nbytes
            while left > 0:
                f.write(block[: min(left, len(block))])
                left -= len(block)
    with open(path, "rb") as f:  # warm the page cache
        while f.read(1 << 20):
            pass
    return path


def _run(
    argv: List[str], path: str, env: Optional[Dict[str, str]] = None
) -> subprocess.CompletedProcess[str]:
    with open(path, "rb") as src, drained_pipe(zero_copy=True) as out:
        return subprocess.run(
            argv,
            stdin=src,
            stdout=out,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            timeout=600,
            check=True,
        )


def ours(path: str, method: str, impl: str, notes: Dict[str, str], key: str) -> Case:
    argv = [sys.executable, "-m", "csapp", "copy", "--method", method, "--stats"]

    def case() -> float:
        err = _run(argv, path, impl_env(impl)).stderr
        m = STATS.search(err)
        if not m:
            raise RuntimeError(f"no --stats line: {err.strip()[:200]}")
        nbytes, calls, seconds = int(m.group(1)), int(m.group(2)), float(m.group(3))
        if nbytes != os.path.getsize(path):
            raise RuntimeError(f"copied {nbytes} of {os.path.getsize(path)} bytes")
        notes[key] = f"{calls} system calls for {nbytes} bytes"
        return nbytes / seconds / 1e6

    return case


def python_script(path: str, script: str) -> Case:
    def case() -> float:
        err = _run([sys.executable, "-c", script], path).stderr.split()
        nbytes, seconds = int(err[0]), float(err[1])
        if nbytes != os.path.getsize(path):
            raise RuntimeError("short copy")
        return nbytes / seconds / 1e6

    return case


def whole_command(path: str, argv: List[str]) -> Case:
    def case() -> float:
        t0 = time.perf_counter()
        _run(argv, path)
        return os.path.getsize(path) / (time.perf_counter() - t0) / 1e6

    return case


def cases(
    big: str, small: str, impls: Sequence[str], notes: Dict[str, str]
) -> Tuple[Dict[str, Case], Dict[str, Case]]:
    """The copy cases over ``big``, and the one-byte-per-call ones over ``small``."""
    fast: Dict[str, Case] = {}
    for impl in impls:
        for method in ("buffered", "fast"):
            key = f"csapp copy {method} [{impl}]"
            fast[key] = ours(big, method, impl, notes, key)
    fast["shutil.copyfileobj"] = python_script(big, _PY_COPYFILEOBJ)
    fast["cat"] = whole_command(big, ["cat"])
    slow: Dict[str, Case] = {}
    for impl in impls:
        key = f"csapp copy byte [{impl}]"
        slow[key] = ours(small, "byte", impl, notes, key)
    slow["os.read(fd, 1) loop, Python"] = python_script(small, _PY_BYTEWISE)
    slow["cat"] = whole_command(small, ["cat"])
    return fast, slow


def run(
    directory: str,
    impls: Sequence[str],
    rounds: int,
    mib: int,
    progress: Optional[Callable[[str], None]] = None,
) -> List[Result]:
    notes: Dict[str, str] = {}
    fast, slow = cases(
        make_file(directory, mib << 20), make_file(directory, 256 << 10), impls, notes
    )
    results = run_group(f"{GROUP}, {mib} MiB", "MB/s", fast, rounds, progress)
    results += run_group(
        f"{GROUP}, 256 KiB, one byte per system call",
        "MB/s",
        slow,
        max(1, min(rounds, 3)),
        progress,
    )
    for r in results:
        if r.case in notes and not r.note:
            r.note = notes[r.case]
    return results
