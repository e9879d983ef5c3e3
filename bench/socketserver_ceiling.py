"""How much can a handler swap gain in ``socketserver.ThreadingTCPServer``?

Runs the standard library's line-echo handler, the same handler on
``csapp.socketserver.StreamRequestHandler``, and the ceiling (no ``rfile``:
one ``recv`` and one ``sendall`` per request) under the C load generator,
alternating, pinned to one CPU as ``python -m bench`` is; prints the medians.

    python -m bench.socketserver_ceiling [ROUNDS]
"""

from __future__ import annotations

import statistics
import sys
from typing import Dict, List

from bench.harness.core import pin_to_one_cpu
from bench.harness.echo_workload import rr_case
from bench.harness.server_process import PEERS, ServerSpec, running

PEER = (sys.executable, PEERS)
SPECS = [
    ServerSpec("stdlib handler", PEER + ("socketserver", "0")),
    ServerSpec("csapp handler", PEER + ("csapp-socketserver", "0")),
    ServerSpec("ceiling", PEER + ("socketserver-ceiling", "0")),
]


def main(rounds: int) -> None:
    pin_to_one_cpu()
    for conns in (1, 10, 100):
        rates: Dict[str, List[float]] = {spec.name: [] for spec in SPECS}
        for _ in range(rounds):
            for spec in SPECS:
                with running(spec) as port:
                    rates[spec.name].append(rr_case([port], conns, 2.0)())
        med = {name: statistics.median(values) for name, values in rates.items()}
        base = med["stdlib handler"]
        cells = ", ".join(f"{name} {rate:.0f}k req/s" for name, rate in med.items())
        print(
            f"N={conns}: {cells} | csapp ÷ stdlib {med['csapp handler'] / base:.2f}×,"
            f" ceiling ÷ stdlib {med['ceiling'] / base:.2f}×",
            flush=True,
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
