"""csapp's benchmarks: our RIO and servers side by side with the peers a user
would pick instead, in one run, reported as ratios (``csapp bench``).

The same workloads back ``bench/`` (pytest-benchmark) and the command line.
"""

from __future__ import annotations

from .core import Result, run_group

__all__ = ["Result", "run_group"]
