"""``python -m bench``: every workload, side by side with the peers, as ratios.

The command line (``bench/__main__.py``) parses the options and calls :func:`run`.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Callable, Collection, Dict, List, Optional

import csapp

from . import (
    aio_workload,
    copy_workload,
    echo_workload,
    lines_workload,
    memory_workload,
    report,
)
from .core import Result, clear_progress, pin_to_one_cpu, stderr_progress
from .server_process import C_EPOLL, C_THREADED

REFERENCES = {
    "lines": "BufferedReader.readline() loop",
    "copy": "cat",
    "echo": C_THREADED,
    "asyncio readline": "asyncio.StreamReader, default loop",
}
# A second ratio column: the limit for a server on one thread.
LIMITS = {"echo": C_EPOLL}


@dataclass(frozen=True)
class Plan:
    """What every workload of one run shares: sizes, rounds, implementations."""

    directory: str
    impls: Dict[str, ModuleType]
    rounds: int
    quick: bool
    copy_mib: int
    progress: Callable[[str], None]

    @property
    def names(self) -> List[str]:
        return list(self.impls)


def targets(copy_mib: int, bulk_mib: int = 100) -> List[report.Target]:
    T = report.Target
    f64, f1k = "lines 64 B, file", "lines 1 KiB, file"
    copy_group = f"{copy_workload.GROUP}, {copy_mib} MiB"
    out = [
        T(
            "for line in Rio [c] ÷ for line in BufferedReader, 64 B",
            f64,
            "for line in Rio [c]",
            "for line in BufferedReader",
            1.5,
        ),
        T(
            "Rio.readlineb loop [c] ÷ BufferedReader.readline loop, 64 B",
            f64,
            "Rio.readlineb() loop [c]",
            "BufferedReader.readline() loop",
            1.1,
        ),
        T(
            "Rio.readlineb loop [c] ÷ BufferedReader.readline loop, 1 KiB",
            f1k,
            "Rio.readlineb() loop [c]",
            "BufferedReader.readline() loop",
            1.3,
        ),
        T(
            "Rio.readlineb loop [python] ÷ BufferedReader.readline loop, 64 B",
            f64,
            "Rio.readlineb() loop [python]",
            "BufferedReader.readline() loop",
            0.3,
        ),
        T(
            "copy buffered [c] ÷ cat, into a pipe",
            copy_group,
            "csapp copy buffered [c]",
            "cat",
            0.9,
        ),
        T("copy fast [c] ÷ cat, into a pipe", copy_group, "csapp copy fast [c]", "cat", 1.5),
    ]
    for n in (1, 10, 100):
        g = f"echo 64 B request/response, N={n}"
        out.append(
            T(
                f"thread mode [c] ÷ C server, N={n}",
                g,
                "csapp thread [c]",
                C_THREADED,
                0.9,
            )
        )
        out.append(
            T(
                f"thread mode [c] ÷ ThreadingTCPServer, N={n}",
                g,
                "csapp thread [c]",
                "socketserver.ThreadingTCPServer",
                1.15,
            )
        )
        out.append(
            T(
                f"socketserver: csapp handler ÷ stdlib handler, N={n}",
                g,
                "ThreadingTCPServer + csapp handler",
                "socketserver.ThreadingTCPServer",
                1.2,
            )
        )
        if n != 1:
            out.append(
                T(f"event mode [c] ÷ uvloop, N={n}", g, "csapp event [c]", "uvloop streams", 1.2)
            )
            out.append(
                T(f"event mode [c] ÷ C epoll server, N={n}", g, "csapp event [c]", C_EPOLL, 0.9)
            )
            out.append(
                T(
                    f"asyncio mode [c] ÷ asyncio streams, N={n}",
                    g,
                    "csapp asyncio [c]",
                    "asyncio streams",
                    2.0,
                )
            )
            out.append(
                T(
                    f"asyncio mode on uvloop [c] ÷ uvloop streams, N={n}",
                    g,
                    "csapp asyncio-uvloop [c]",
                    "uvloop streams",
                    1.3,
                )
            )
    bulk = f"echo bulk, {bulk_mib} MiB of 64 B lines"
    out.append(
        T(
            "bulk: asyncio mode [c] ÷ asyncio streams",
            bulk,
            "csapp asyncio [c]",
            "asyncio streams",
            5,
        )
    )
    rl = aio_workload.GROUP
    out.append(
        T(
            "await readline() [c] ÷ asyncio.StreamReader, default loop",
            rl,
            "csapp.aio [c], default loop",
            "asyncio.StreamReader, default loop",
            3.0,
        )
    )
    out.append(
        T(
            "await readline() [c] ÷ asyncio.StreamReader, uvloop",
            rl,
            "csapp.aio [c], uvloop",
            "asyncio.StreamReader, uvloop",
            2.0,
        )
    )
    return out


# ------------------------------------------------------------ workloads


def _lines(plan: Plan) -> List[Result]:
    return lines_workload.run(
        plan.directory,
        plan.impls,
        plan.rounds,
        total_bytes=(4 << 20) if plan.quick else (16 << 20),
        sizes=["64 B", "1 KiB"] if plan.quick else None,
        sources=["file", "socketpair"] if plan.quick else None,
        progress=plan.progress,
    )


def _copy(plan: Plan) -> List[Result]:
    return copy_workload.run(
        plan.directory, plan.names, plan.rounds, mib=plan.copy_mib, progress=plan.progress
    )


def _echo(plan: Plan) -> List[Result]:
    return echo_workload.run_rr(
        plan.names,
        [10] if plan.quick else [1, 10, 100],
        seconds=0.5 if plan.quick else 1.5,
        rounds=plan.rounds,
        progress=plan.progress,
    )


def _bulk(plan: Plan) -> List[Result]:
    return echo_workload.run_bulk(
        plan.names,
        mib=16 if plan.quick else 100,
        rounds=max(1, plan.rounds - 2) if plan.quick else plan.rounds,
        progress=plan.progress,
    )


def _aio(plan: Plan) -> List[Result]:
    return aio_workload.run(
        plan.names,
        plan.rounds,
        count=50_000 if plan.quick else aio_workload.LINES,
        progress=plan.progress,
    )


def _memory(plan: Plan) -> List[Result]:
    return memory_workload.rio_sizes(plan.impls) + memory_workload.run_rss(
        plan.names,
        [1000] if plan.quick else [1000, 5000],
        rounds=1 if plan.quick else 3,
        progress=plan.progress,
    )


# In the order they run.
WORKLOADS: Dict[str, Callable[[Plan], List[Result]]] = {
    "lines": _lines,
    "copy": _copy,
    "echo": _echo,
    "bulk": _bulk,
    "memory": _memory,
    "aio": _aio,
}


def run(
    *,
    quick: bool = False,
    rounds: Optional[int] = None,
    only: Optional[Collection[str]] = None,
    json_path: Optional[str] = None,
    plot_path: Optional[str] = None,
) -> int:
    """Run the workloads ``only`` (default: all), print the tables and targets,
    save JSON and a chart if asked; returns the exit status."""
    unknown = set(only or ()) - set(WORKLOADS)
    if unknown:
        raise ValueError(f"unknown workloads: {', '.join(sorted(unknown))}")
    chosen = [name for name in WORKLOADS if only is None or name in only]
    rounds = rounds or (3 if quick else 5)
    impls = dict(sorted(csapp.IMPLEMENTATIONS.items()))
    copy_mib = 32 if quick else 256
    cpu = pin_to_one_cpu()
    started = time.monotonic()
    print(
        f"python -m bench: implementations {', '.join(impls)}; pinned to CPU {cpu}; "
        f"{rounds} rounds, medians; TCP_NODELAY off on every echo server",
        flush=True,
    )
    results: List[Result] = []
    with tempfile.TemporaryDirectory(prefix="csapp-bench-") as tmp:
        plan = Plan(tmp, impls, rounds, quick, copy_mib, stderr_progress)
        for name in chosen:
            results += WORKLOADS[name](plan)
    clear_progress()
    print(report.format_tables(results, REFERENCES, LIMITS))
    checked = report.check_targets(results, targets(copy_mib, 16 if quick else 100))
    print(report.format_targets(checked))
    print(f"\n{report.machine()}; {time.monotonic() - started:.0f} s")
    if json_path:
        report.to_json(results, checked, json_path, [REFERENCES, LIMITS])
        print(f"saved {json_path}")
    if plot_path:
        try:
            report.plot(results, plot_path)
        except RuntimeError as exc:
            print(f"python -m bench: {exc}", file=sys.stderr)
            return 1
        print(f"saved {plot_path}")
    return 0
