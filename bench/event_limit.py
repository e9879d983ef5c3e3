"""The event server against its limit: ``csapp echoserver --mode event`` (both
twins) beside the C one-thread epoll echo server (``csrc/echo_epoll.c``) in
one run: 64 B request/response at N = 10 and 100, and bulk echo. Rounds
rotate over the servers, each started once per round; medians; everything
pinned with the load generator to one CPU, as ``python -m bench`` does.
Beside the ratio of medians, each server's ratio to the C epoll server in
each round, and their median: a round's servers run seconds apart, so
they share more of the drift of a machine whose speed changes (a shared
VM) than the whole run's medians do.

``--against PYTHON`` adds the event servers of another interpreter's csapp
(a venv with an earlier commit installed, say) as rows ``… @ PYTHON``: how a
change is compared with what it replaces, in the same run.

    python -m bench.event_limit [--rounds N] [--seconds S] [--mib M] [--against PYTHON]...

Ratios are printed, never asserted; figures go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

import csapp

from .harness.core import (
    Result,
    clear_progress,
    pin_to_one_cpu,
    positive_int,
    run_group,
    stderr_progress,
)
from .harness.echo_workload import bulk_case, rr_case, server_case
from .harness.report import format_tables
from .harness.server_process import C_EPOLL, ServerSpec, c_peers, ours

REFERENCE = {"": C_EPOLL}


def event_servers(impls: Sequence[str], against: Sequence[str]) -> List[ServerSpec]:
    """Ours in event mode per implementation, then the same from each other
    interpreter, then the C epoll server."""
    specs = [ours(impl, "event") for impl in impls]
    for python in against:
        for impl in impls:
            spec = ours(impl, "event")
            specs.append(
                ServerSpec(f"{spec.name} @ {python}", (python,) + spec.argv[1:], spec.impl)
            )
    return specs + [spec for spec in c_peers() if spec.name == C_EPOLL]


def installed_version(python: str) -> str:
    """Which csapp ``python`` imports (its path), so the report says what ran."""
    return subprocess.run(
        [python, "-c", "import csapp, csapp._rio as r; print(csapp.__file__, r.IMPLEMENTATION)"],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    ).stdout.strip()


def measure(
    specs: List[ServerSpec], rounds: int, seconds: float, mib: int, conns: Sequence[int]
) -> List[Result]:
    results: List[Result] = []
    for n in conns:
        cases = {
            spec.name: server_case(spec, functools.partial(rr_case, conns=n, seconds=seconds))
            for spec in specs
        }
        results += run_group(
            f"echo 64 B request/response, N={n}", "k req/s", cases, rounds, stderr_progress
        )
    if mib:
        cases = {
            spec.name: server_case(spec, functools.partial(bulk_case, mib=mib)) for spec in specs
        }
        results += run_group(
            f"echo bulk, {mib} MiB of 64 B lines", "MB/s", cases, rounds, stderr_progress
        )
    clear_progress()
    return results


def paired_ratios(result: Result, reference: Result) -> List[float]:
    """Each round's figure over the reference's in the same round: the
    machine's drift from round to round, which both share, cancels."""
    if len(result.values) != len(reference.values):
        return []  # a round failed: the rounds no longer pair up
    return [value / ref for value, ref in zip(result.values, reference.values) if ref]


def format_paired(results: List[Result], reference_case: str) -> str:
    """Per server: the spread of its rounds (max ÷ min), and the median and
    range of its per-round ratios to ``reference_case``."""
    lines = [
        f"\n  each server's rounds: max ÷ min; per-round ratio to {reference_case}:"
        " median [min – max]"
    ]
    group_width = max((len(r.group) for r in results), default=0)
    case_width = max((len(r.case) for r in results), default=0)
    for result in results:
        if not result.values:
            continue
        reference = next(
            (r for r in results if r.group == result.group and r.case == reference_case), None
        )
        paired = paired_ratios(result, reference) if reference else []
        spread = max(result.values) / min(result.values)
        line = f"    {result.group:{group_width}}  {result.case:{case_width}}  {spread:5.2f}"
        if paired:
            line += f"   {statistics.median(paired):.2f} [{min(paired):.2f} – {max(paired):.2f}]"
        lines.append(line)
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--rounds", type=positive_int, default=9)
    parser.add_argument("--seconds", type=float, default=1.5, help="load per round and case")
    parser.add_argument("--mib", type=int, default=64, help="bulk echo size (0: none)")
    parser.add_argument("--conns", default="10,100", help="N for request/response")
    parser.add_argument("--against", action="append", default=[], metavar="PYTHON")
    args = parser.parse_args(argv)
    impls = sorted(csapp.IMPLEMENTATIONS)
    cpu = pin_to_one_cpu()
    print(f"python -m bench.event_limit: pinned to CPU {cpu}; {args.rounds} rounds, medians")
    print(f"  this csapp: {installed_version(sys.executable)}")
    for python in args.against:
        print(f"  @ {python}: {installed_version(python)}")
    print(f"  load average before: {os.getloadavg()[0]:.2f}", flush=True)
    specs = event_servers(impls, args.against)
    conns = [int(n) for n in args.conns.split(",") if n]
    results = measure(specs, args.rounds, args.seconds, args.mib, conns)
    reference: Dict[str, str] = REFERENCE
    print(format_tables(results, reference))
    print(format_paired(results, C_EPOLL))
    print(f"\n  load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
