"""Measurement helpers shared by every benchmark workload.

Each case is a callable that does one timed pass and returns a rate (bigger
is better). Cases of one group run in rotating order, round after round, and
the median of the rounds is reported, since the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

from csapp._switches import NO_EXTENSIONS


@dataclass
class Result:
    """The rounds of one case of one group: e.g. ("lines 64 B file", "Rio iter [c]")."""

    group: str
    case: str
    unit: str
    values: List[float] = field(default_factory=list)
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")


Case = Callable[[], float]


def impl_env(impl: Optional[str]) -> Dict[str, str]:
    """This process's environment for a child: ``"python"`` sets
    CSAPP_NO_EXTENSIONS=1; ``"c"`` or ``None`` (a peer) removes it."""
    env = dict(os.environ)
    env.pop(NO_EXTENSIONS, None)
    if impl == "python":
        env[NO_EXTENSIONS] = "1"
    return env


def pin_to_one_cpu() -> Optional[int]:
    """Run this process (and the children it forks) on one CPU, so a sender and
    its reader share it as the anchors were measured. Returns the CPU."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    cpu = cpus[-1]
    os.sched_setaffinity(0, {cpu})
    return cpu


def run_group(
    group: str,
    unit: str,
    cases: Dict[str, Case],
    rounds: int,
    progress: Optional[Callable[[str], None]] = None,
) -> List[Result]:
    """Every case ``rounds`` times, in an order that rotates each round."""
    results = {name: Result(group, name, unit) for name in cases}
    names = list(cases)
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            if progress:
                progress(f"{group}: {name} (round {r + 1}/{rounds})")
            try:
                results[name].values.append(cases[name]())
            except Exception as exc:  # a peer that cannot run here is reported, not fatal
                results[name].note = f"failed: {exc}"
    return [results[name] for name in names]


def stderr_progress(message: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K" + message[:110])
        sys.stderr.flush()
    else:
        print(message, file=sys.stderr, flush=True)


def clear_progress() -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()


def positive_int(text: str) -> int:
    """argparse's type for a count of rounds: a whole number of at least 1."""
    if not (text.isdigit() and int(text) >= 1):
        raise argparse.ArgumentTypeError(f"expected a positive whole number, not {text!r}")
    return int(text)
