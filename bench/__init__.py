"""csapp's benchmarks, kept in the source tree and out of the wheel.

* ``python -m bench``: every workload side by side with its peers, as ratios
  (``--quick``, ``--only``, ``--json``, ``--plot``; see ``--help``);
* ``pytest bench --benchmark-only``: the same cases under pytest-benchmark;
* ``python -m bench.real_apps``, ``bench.socketserver_ceiling``,
  ``bench.aio_echo_pairs``: focused runs.

``bench.harness`` holds the workloads, the peer servers and the reports; the C
baselines it compiles with ``cc`` are in ``bench/csrc/``. Run from the root of
a checkout, with csapp installed (``pip install '.[bench]'``).
"""
