"""Workloads 3 and 4: echo request/response at N connections, and bulk echo.

Every server runs as its own process on loopback (``server_process``), pinned
with the C load generator to one CPU (as the anchors were measured).
TCP_NODELAY is off on every server (the kernel default; the asyncio peers
turn it off explicitly).
"""

from __future__ import annotations

import functools
import subprocess
from typing import Callable, Dict, List, Optional, Sequence

from . import cprogs
from .core import Case, Result, run_group
from .server_process import OUR_MODES, ServerSpec, running, server_specs


def _loadgen(args: List[str], timeout: float) -> List[str]:
    out = subprocess.run(
        [cprogs.program("loadgen")] + args,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=True,
    ).stdout.split()
    return out


def rr_case(port_box: List[int], conns: int, seconds: float) -> Case:
    """Thousands of 64 B requests per second over ``conns`` connections."""

    def case() -> float:
        requests, elapsed, errors = _loadgen(
            ["rr", "127.0.0.1", str(port_box[0]), str(conns), str(seconds)], seconds + 30
        )
        if int(errors):
            raise RuntimeError(f"{errors} errors")
        return int(requests) / float(elapsed) / 1e3

    return case


def bulk_case(port_box: List[int], mib: int) -> Case:
    """MB/s of ``mib`` MiB of 64 B lines echoed back byte for byte."""

    def case() -> float:
        nbytes, elapsed, errors = _loadgen(["bulk", "127.0.0.1", str(port_box[0]), str(mib)], 200)
        if int(errors) or int(nbytes) != (mib << 20) - ((mib << 20) % 64):
            raise RuntimeError(f"bulk echo lost or changed bytes ({errors} errors)")
        return int(nbytes) / float(elapsed) / 1e6

    return case


def server_case(spec: ServerSpec, make: Callable[[List[int]], Case]) -> Case:
    """A case that starts the server ``spec``, runs ``make([port])`` on it, stops it."""

    def case() -> float:
        with running(spec) as port:
            return make([port])()

    return case


def _per_server(
    group: str,
    unit: str,
    specs: Sequence[ServerSpec],
    make: Callable[[List[int]], Case],
    rounds: int,
    progress: Optional[Callable[[str], None]],
) -> List[Result]:
    """Rounds rotate over servers; each server is started once per round."""
    cases: Dict[str, Case] = {spec.name: server_case(spec, make) for spec in specs}
    return run_group(group, unit, cases, rounds, progress)


def run_rr(
    impls: Sequence[str],
    conns_list: Sequence[int],
    seconds: float,
    rounds: int,
    progress: Optional[Callable[[str], None]] = None,
) -> List[Result]:
    """Request/response at each N of ``conns_list`` (iterative only at N=1)."""
    results: List[Result] = []
    for conns in conns_list:
        modes = [m for m in OUR_MODES if m != "iterative" or conns == 1]
        specs = server_specs(impls, modes=[m for m in modes if m != "process"] + ["process"])
        results += _per_server(
            f"echo 64 B request/response, N={conns}",
            "k req/s",
            specs,
            functools.partial(rr_case, conns=conns, seconds=seconds),
            rounds,
            progress,
        )
    return results


def run_bulk(
    impls: Sequence[str], mib: int, rounds: int, progress: Optional[Callable[[str], None]] = None
) -> List[Result]:
    """Bulk echo of ``mib`` MiB through every server."""
    return _per_server(
        f"echo bulk, {mib} MiB of 64 B lines",
        "MB/s",
        server_specs(impls),
        lambda box: bulk_case(box, mib),
        rounds,
        progress,
    )
