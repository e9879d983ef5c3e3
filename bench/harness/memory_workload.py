"""Workload 5: memory. Resident memory per idle connection of the event
server, and the size of one ``Rio`` object."""

from __future__ import annotations

import os
import resource
import socket
import sys
import time
from types import ModuleType
from typing import Callable, Dict, List, Optional, Sequence

from .core import Result
from .server_process import ServerSpec, running, server_specs


def raise_fd_limit(want: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, max(soft, want)) if hard != resource.RLIM_INFINITY else max(soft, want)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _server_pid(port: int) -> int:
    """The pid of the process listening on 127.0.0.1:port (from /proc/net/tcp)."""
    inode = None
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            local, state = parts[1], parts[3]
            if state == "0A" and int(local.split(":")[1], 16) == port:
                inode = parts[9]
                break
    if inode is None:
        raise RuntimeError("listening socket not found")
    target = f"socket:[{inode}]"
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return int(pid)
        except OSError:
            continue
    raise RuntimeError("server process not found")


def rss_per_connection(spec: ServerSpec, count: int, timeout: float = 60.0) -> float:
    """KiB of resident memory per idle connection of ``spec``, ``count`` connections."""
    raise_fd_limit(count + 256)
    with running(spec) as port:
        pid = _server_pid(port)
        # Warm up: one connection in and out, so lazy allocations are counted once.
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"warm\n")
            s.recv(16)
        time.sleep(0.2)
        base_rss, base_fds = _rss_kib(pid), _open_fds(pid)
        socks = []
        try:
            for _ in range(count):
                socks.append(socket.create_connection(("127.0.0.1", port)))
            deadline = time.monotonic() + timeout
            while _open_fds(pid) < base_fds + count and time.monotonic() < deadline:
                time.sleep(0.05)
            accepted = _open_fds(pid) - base_fds
            if accepted < count:
                raise RuntimeError(f"server accepted {accepted} of {count}")
            time.sleep(0.3)
            return (_rss_kib(pid) - base_rss) / count
        finally:
            for s in socks:
                s.close()


def run_rss(
    impls: Sequence[str],
    counts: Sequence[int],
    rounds: int,
    progress: Optional[Callable[[str], None]] = None,
) -> List[Result]:
    """Memory per idle connection of our event server, per implementation."""
    specs = server_specs(impls, with_peers=False, modes=["event"])
    results = []
    for count in counts:
        for spec in specs:
            r = Result(f"memory: event server, {count} idle connections", spec.name, "KiB/conn")
            for i in range(rounds):
                if progress:
                    progress(f"{r.group}: {spec.name} (round {i + 1}/{rounds})")
                try:
                    r.values.append(rss_per_connection(spec, count))
                except Exception as exc:
                    r.note = f"failed: {exc}"
            results.append(r)
    return results


def rio_sizes(impls: Dict[str, ModuleType]) -> List[Result]:
    """``sys.getsizeof`` of a Rio with a full default buffer, minus RIO_BUFSIZE."""
    results = []
    for name, mod in impls.items():
        r, w = os.pipe()
        try:
            os.write(w, b"x" * 20000)
            rio = mod.Rio(r)
            rio.readnb(1)
            size = sys.getsizeof(rio)
            rio.close()
        finally:
            os.close(r)
            os.close(w)
        results.append(
            Result(
                "memory: sys.getsizeof(Rio) - RIO_BUFSIZE",
                f"Rio [{name}]",
                "bytes",
                [float(size - mod.RIO_BUFSIZE)],
            )
        )
    return results
