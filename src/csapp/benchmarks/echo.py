"""Workloads 3 and 4: echo request/response at N connections, and bulk echo.

Every server runs as its own process on loopback, pinned with the C load
generator to one CPU (as the anchors were measured). TCP_NODELAY is off on
every server (the kernel default; the asyncio peers turn it off explicitly).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, Optional, Sequence

from . import cprogs
from .core import Case, Result, run_group

OUR_MODES = ("thread", "event", "prethreaded", "process", "iterative")


def _env(impl: Optional[str]) -> Dict[str, str]:
    env = dict(os.environ)
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = here + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("CSAPP_NO_EXTENSIONS", None)
    if impl == "python":
        env["CSAPP_NO_EXTENSIONS"] = "1"
    return env


def server_commands(impls: Sequence[str], peers: bool = True,
                    modes: Sequence[str] = OUR_MODES) -> Dict[str, List[str]]:
    """name -> argv of every server: ours per mode and implementation, then the peers."""
    py = sys.executable
    cmds: Dict[str, List[str]] = {}
    for impl in impls:
        for mode in modes:
            cmds[f"csapp {mode} [{impl}]"] = [py, "-m", "csapp", "echoserver", "--host",
                                              "127.0.0.1", "--mode", mode, "0", f"#{impl}"]
    if peers:
        cmds["C threaded echo (memchr RIO)"] = [cprogs.program("echo_threaded"), "0"]
        cmds["socketserver.ThreadingTCPServer"] = [py, "-m", "csapp.benchmarks.peers",
                                                   "socketserver", "0"]
        cmds["asyncio streams"] = [py, "-m", "csapp.benchmarks.peers", "asyncio", "0"]
        try:
            import uvloop  # noqa: F401
            cmds["uvloop streams"] = [py, "-m", "csapp.benchmarks.peers", "uvloop", "0"]
        except ImportError:
            pass
    return cmds


@contextmanager
def running(argv: List[str], timeout: float = 15.0) -> Iterator[int]:
    """Start a server, wait for its "listening on ... N" line, yield N, stop it."""
    impl = argv[-1][1:] if argv[-1].startswith("#") else None
    argv = argv[:-1] if impl else argv
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=_env(impl), text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if "listening on" in line or not line:
                break
        if "listening on" not in line:
            raise RuntimeError(f"server did not start: {' '.join(argv)}")
        yield int(line.split()[-1])
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


def _loadgen(args: List[str], timeout: float) -> List[str]:
    out = subprocess.run([cprogs.program("loadgen")] + args, capture_output=True,
                         text=True, timeout=timeout, check=True).stdout.split()
    return out


def rr_case(port_box: List[int], conns: int, seconds: float) -> Case:
    def case() -> float:
        requests, elapsed, errors = _loadgen(
            ["rr", "127.0.0.1", str(port_box[0]), str(conns), str(seconds)], seconds + 30)
        if int(errors):
            raise RuntimeError(f"{errors} errors")
        return int(requests) / float(elapsed) / 1e3
    return case


def bulk_case(port_box: List[int], mib: int) -> Case:
    def case() -> float:
        nbytes, elapsed, errors = _loadgen(["bulk", "127.0.0.1", str(port_box[0]), str(mib)], 200)
        if int(errors) or int(nbytes) != (mib << 20) - ((mib << 20) % 64):
            raise RuntimeError(f"bulk echo lost or changed bytes ({errors} errors)")
        return int(nbytes) / float(elapsed) / 1e6
    return case


def server_case(argv: List[str], make: Callable[[List[int]], Case]) -> Case:
    """A case that starts the server ``argv``, runs ``make([port])`` on it, stops it."""
    def case() -> float:
        with running(argv) as port:
            return make([port])()
    return case


def _per_server(group: str, unit: str, cmds: Dict[str, List[str]],
                make: Callable[[List[int]], Case], rounds: int,
                progress: Optional[Callable[[str], None]]) -> List[Result]:
    """Rounds rotate over servers; each server is started once per round."""
    return run_group(group, unit, {name: server_case(argv, make) for name, argv in cmds.items()},
                     rounds, progress)


def run_rr(impls: Sequence[str], conns_list: Sequence[int], seconds: float, rounds: int,
           progress: Optional[Callable[[str], None]] = None) -> List[Result]:
    results: List[Result] = []
    for conns in conns_list:
        modes = [m for m in OUR_MODES if m != "iterative" or conns == 1]
        cmds = server_commands(impls, modes=[m for m in modes if m != "process"] + ["process"])
        results += _per_server(f"echo 64 B request/response, N={conns}", "k req/s", cmds,
                               lambda box, c=conns: rr_case(box, c, seconds), rounds, progress)
    return results


def run_bulk(impls: Sequence[str], mib: int, rounds: int,
             progress: Optional[Callable[[str], None]] = None) -> List[Result]:
    cmds = server_commands(impls)
    return _per_server(f"echo bulk, {mib} MiB of 64 B lines", "MB/s", cmds,
                       lambda box: bulk_case(box, mib), rounds, progress)
