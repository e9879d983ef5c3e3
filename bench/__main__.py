"""``python -m bench``: every workload side by side with the peers, as ratios.

Run from the root of a checkout. Bad options are one line on standard error
and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, NoReturn, Optional

from bench.harness.core import positive_int
from bench.harness.run import WORKLOADS, run

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line on standard error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _workloads(text: str) -> List[str]:
    """``--only``'s value: one workload name or several, comma-separated."""
    names = [name.strip() for name in text.split(",")]
    for name in names:
        if name not in WORKLOADS:
            raise argparse.ArgumentTypeError(
                f"unknown workload {name!r} (choose from {', '.join(WORKLOADS)})"
            )
    return names


def build_parser() -> argparse.ArgumentParser:
    """The options of ``python -m bench``."""
    parser = _Parser(
        prog="python -m bench",
        description="Measure csapp side by side with what you would use instead, "
        "in one run, and print each figure as a ratio. Needs a C compiler "
        "for the C baselines; uvloop and matplotlib come with the [bench] extra.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes and 3 rounds: finishes in about a minute"
    )
    parser.add_argument("--json", metavar="FILE", help="save every figure as JSON")
    parser.add_argument("--plot", metavar="FILE.png", help="save a bar chart (needs matplotlib)")
    parser.add_argument(
        "--only",
        metavar="WORKLOAD[,WORKLOAD...]",
        action="extend",
        type=_workloads,
        help=f"run only these workloads ({', '.join(WORKLOADS)}); comma-separated or repeated",
    )
    parser.add_argument(
        "--rounds", type=positive_int, metavar="N", help="rounds per case (default 5, --quick 3)"
    )
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run ``python -m bench`` with ``argv`` (default ``sys.argv[1:]``); the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return run(
            quick=args.quick,
            rounds=args.rounds,
            only=args.only,
            json_path=args.json,
            plot_path=args.plot,
        )
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
