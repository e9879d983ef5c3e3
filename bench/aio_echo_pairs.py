"""Issue 12's asyncio request/response targets alone, in one interleaved run.

The same servers and C load generator as ``python -m bench --only echo`` (64 B
request/response, N = 10 and 100, 2 s a case, pinned to one CPU), only the
asyncio pairs, alternating their order each round; prints the medians and
the ratios the targets name:

* ``csapp echoserver --mode asyncio`` [c] ÷ asyncio streams (target ≥ 2×);
* the same on uvloop ÷ uvloop streams (target ≥ 1.3×);
* the asyncio peer with only its ``start_server`` import swapped to
  ``csapp.aio`` ÷ asyncio streams (no target: what the one-line swap gives).

    python -m bench.aio_echo_pairs [ROUNDS]
    python -m bench.aio_echo_pairs --cpu     # where each server's time goes

``--cpu`` runs each server once per N (3 s) and prints its user and system
CPU time per request, from ``/proc/PID/stat`` (the server found with ``ss``):
when the kernel's share dominates, every ratio between servers shrinks.
Needs uvloop (the ``bench`` extra), Linux and ``ss`` (iproute2) for ``--cpu``.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
from typing import Dict, List, Tuple

from bench.harness import echo_workload
from bench.harness.core import pin_to_one_cpu
from bench.harness.server_process import ServerSpec, ours, python_peers, running

NAMES = [
    "csapp asyncio [c]",
    "asyncio streams",
    "csapp asyncio-uvloop [c]",
    "uvloop streams",
    "csapp.aio streams",
]
RATIOS = [
    ("csapp asyncio [c] ÷ asyncio streams", "csapp asyncio [c]", "asyncio streams"),
    ("on uvloop ÷ uvloop streams", "csapp asyncio-uvloop [c]", "uvloop streams"),
    ("csapp.aio streams ÷ asyncio streams", "csapp.aio streams", "asyncio streams"),
]


def the_specs() -> Dict[str, ServerSpec]:
    every = [ours("c", "asyncio"), ours("c", "asyncio-uvloop"), *python_peers()]
    return {spec.name: spec for spec in every}


def cpu_seconds(pid: int) -> Tuple[float, float]:
    """User and system CPU seconds of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def listener_pid(port: int) -> int:
    out = subprocess.run(
        ["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"pid=(\d+)", out)
    assert match, f"no process listens on port {port}: {out!r}"
    return int(match.group(1))


def cpu_split() -> None:
    pin_to_one_cpu()
    specs = the_specs()
    for name in NAMES:
        for conns in (10, 100):
            with running(specs[name]) as port:
                pid = listener_pid(port)
                user0, sys0 = cpu_seconds(pid)
                rate = echo_workload.rr_case([port], conns, 3.0)()
                user1, sys1 = cpu_seconds(pid)
            requests = rate * 1000 * 3.0
            user, system = user1 - user0, sys1 - sys0
            print(
                f"{name:26s} N={conns:<3d} {rate:5.1f}k req/s; server per request:"
                f" user {user / requests * 1e6:4.1f} µs, system {system / requests * 1e6:4.1f} µs"
                f" (kernel {system / max(user + system, 1e-9):.0%})",
                flush=True,
            )


def main(rounds: int) -> None:
    pin_to_one_cpu()
    specs = the_specs()
    rates: Dict[Tuple[str, int], List[float]] = {}
    for round_ in range(rounds):
        order = NAMES if round_ % 2 == 0 else NAMES[::-1]
        for conns in (10, 100):
            for name in order:
                case = echo_workload.server_case(
                    specs[name],
                    lambda box, n=conns: echo_workload.rr_case(box, n, 2.0),
                )
                rates.setdefault((name, conns), []).append(case())
    for conns in (10, 100):
        med = {name: statistics.median(rates[(name, conns)]) for name in NAMES}
        print(f"N={conns}: " + ", ".join(f"{name} {rate:.1f}k req/s" for name, rate in med.items()))
        print("  " + "; ".join(f"{label} {med[a] / med[b]:.2f}×" for label, a, b in RATIOS))


if __name__ == "__main__":
    if sys.argv[1:] == ["--cpu"]:
        cpu_split()
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
