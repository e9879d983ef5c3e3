"""The benchmark harness: our RIO and servers side by side with the peers a
user would pick instead, in one run, reported as ratios.

The same workloads back ``python -m bench`` and ``pytest bench --benchmark-only``.
"""

from __future__ import annotations

from .core import Result, run_group

__all__ = ["Result", "run_group"]
