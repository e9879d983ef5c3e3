"""``csapp bench``: every workload, side by side with the peers, as ratios."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import List, Optional

from .. import _rio
from . import copy as copy_workload
from . import echo, lines, memory, report
from .core import Result, clear_progress, pin_to_one_cpu, stderr_progress

REFERENCES = {
    "lines": "BufferedReader.readline() loop",
    "copy": "cat",
    "echo": "C threaded echo (memchr RIO)",
}


def targets(copy_mib: int) -> List[report.Target]:
    T = report.Target
    f64, f1k = "lines 64 B, file", "lines 1 KiB, file"
    out = [
        T("for line in Rio [c] ÷ for line in BufferedReader, 64 B", f64,
          "for line in Rio [c]", "for line in BufferedReader", 1.5),
        T("Rio.readlineb loop [c] ÷ BufferedReader.readline loop, 64 B", f64,
          "Rio.readlineb() loop [c]", "BufferedReader.readline() loop", 1.1),
        T("Rio.readlineb loop [c] ÷ BufferedReader.readline loop, 1 KiB", f1k,
          "Rio.readlineb() loop [c]", "BufferedReader.readline() loop", 1.3),
        T("Rio.readlineb loop [python] ÷ BufferedReader.readline loop, 64 B", f64,
          "Rio.readlineb() loop [python]", "BufferedReader.readline() loop", 0.3),
        T("copy buffered [c] ÷ cat, into a pipe", f"{copy_workload.GROUP}, {copy_mib} MiB",
          "csapp copy buffered [c]", "cat", 0.9),
        T("copy fast [c] ÷ cat, into a pipe", f"{copy_workload.GROUP}, {copy_mib} MiB",
          "csapp copy fast [c]", "cat", 1.5),
    ]
    for n in (1, 10, 100):
        g = f"echo 64 B request/response, N={n}"
        out.append(T(f"thread mode [c] ÷ C server, N={n}", g, "csapp thread [c]",
                     "C threaded echo (memchr RIO)", 0.9))
        out.append(T(f"thread mode [c] ÷ ThreadingTCPServer, N={n}", g, "csapp thread [c]",
                     "socketserver.ThreadingTCPServer", 1.15))
        if n != 1:
            out.append(T(f"event mode [c] ÷ uvloop, N={n}", g, "csapp event [c]",
                         "uvloop streams", 1.2))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and 3 rounds: finishes in about a minute")
    parser.add_argument("--json", metavar="FILE", help="save every figure as JSON")
    parser.add_argument("--plot", metavar="FILE.png", help="save a bar chart (needs matplotlib)")
    parser.add_argument("--only", metavar="WORKLOAD", action="append",
                        choices=["lines", "copy", "echo", "bulk", "memory"],
                        help="run only these workloads (repeatable)")
    parser.add_argument("--rounds", type=int, help="rounds per case (default 5, --quick 3)")


def run(args: argparse.Namespace) -> int:
    quick = bool(args.quick)
    rounds = args.rounds or (3 if quick else 5)
    only = set(args.only or ["lines", "copy", "echo", "bulk", "memory"])
    impls = {name: mod for name, mod in sorted(_rio.IMPLEMENTATIONS.items())}
    names = list(impls)
    copy_mib = 32 if quick else 256
    cpu = pin_to_one_cpu()
    started = time.monotonic()
    print(f"csapp bench: implementations {', '.join(names)}; pinned to CPU {cpu}; "
          f"{rounds} rounds, medians; TCP_NODELAY off on every echo server", flush=True)
    results: List[Result] = []
    progress = stderr_progress
    with tempfile.TemporaryDirectory(prefix="csapp-bench-") as tmp:
        if "lines" in only:
            results += lines.run(tmp, impls, rounds,
                                 total_bytes=(4 << 20) if quick else (16 << 20),
                                 sizes=["64 B", "1 KiB"] if quick else None,
                                 sources=["file", "socketpair"] if quick else None,
                                 progress=progress)
        if "copy" in only:
            results += copy_workload.run(tmp, names, rounds,
                                         mib=copy_mib, progress=progress)
        if "echo" in only:
            results += echo.run_rr(names, [10] if quick else [1, 10, 100],
                                   seconds=0.5 if quick else 1.5,
                                   rounds=rounds, progress=progress)
        if "bulk" in only:
            results += echo.run_bulk(names, mib=16 if quick else 100,
                                     rounds=max(1, rounds - 2) if quick else rounds,
                                     progress=progress)
        if "memory" in only:
            results += memory.rio_sizes(impls)
            results += memory.run_rss(names, [1000] if quick else [1000, 5000],
                                      rounds=1 if quick else 3, progress=progress)
    clear_progress()
    print(report.format_tables(results, REFERENCES))
    checked = report.check_targets(results, targets(copy_mib))
    print(report.format_targets(checked))
    print(f"\n{report.machine()}; {time.monotonic() - started:.0f} s")
    if args.json:
        report.to_json(results, checked, args.json)
        print(f"saved {args.json}")
    if args.plot:
        try:
            report.plot(results, args.plot)
        except RuntimeError as exc:
            print(f"csapp bench: {exc}", file=sys.stderr)
            return 1
        print(f"saved {args.plot}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="csapp bench", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
