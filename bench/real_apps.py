"""The numbers a user meets: real programs with csapp's drop-ins against the
same programs without, side by side in one run, rounds interleaved, medians.

* ``http``: ``http.server`` (HTTP/1.1 keep-alive, ``disable_nagle_algorithm =
  True`` on both) under ``wrk -t1 -c10``, a 100 B and a 64 KiB file, plain and
  TLS; the standard handler against csapp's (swapped in before ``http.server``
  is imported, as a user does). Needs ``wrk`` and ``openssl`` (Debian).
* ``redis``: redis-py's asyncio client (no hiredis) against ``redis-server``:
  20,000 GETs of 100 B in pipelines of 100, and 10,000 sequential GETs;
  stock asyncio streams against ``csapp.aio.open_connection`` swapped in.
* ``lines``: reading 64 B lines from a socket: ``sock.makefile("rb")`` and
  ``csapp.makefile`` with and without a timeout, and a bare ``Rio`` on the
  descriptor (the timeout path must cost nothing while data is buffered).

    python bench/real_apps.py [http] [redis] [lines] [--rounds N] [--seconds S]

Ratios are printed, never asserted; figures go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

HERE = Path(__file__).resolve()


# ------------------------------------------------------------ http.server


def serve_http(handler: str, tls: str, directory: str) -> None:
    """The server side (a child process): ``http.server`` over ``directory``."""
    import socketserver
    import ssl
    from functools import partial

    if handler == "csapp":
        import csapp.socketserver

        socketserver.StreamRequestHandler = csapp.socketserver.StreamRequestHandler  # type: ignore[misc]
    import http.server

    class Handler(http.server.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(Handler, directory=directory)
    )
    server.daemon_threads = True
    if tls != "-":
        cert, key = tls.split(",")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def wrk_rate(url: str, seconds: float) -> float:
    out = subprocess.run(
        ["wrk", "-t1", "-c10", f"-d{seconds:g}s", url],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    ).stdout  # fmt: skip
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match or "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk: {out}")
    return float(match.group(1))


def bench_http(rounds: int, seconds: float) -> List[str]:
    for program in ("wrk", "openssl"):
        if shutil.which(program) is None:
            return [f"http: {program} is not installed (apt-get install {program})"]
    work = Path(tempfile.mkdtemp(prefix="csapp-http-"))
    (work / "100B").write_bytes(b"x" * 100)
    (work / "64KiB").write_bytes(os.urandom(64 << 10))
    cert, key = work / "cert.pem", work / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    rates: Dict[Tuple[str, str, str], List[float]] = {}
    lines = []
    for scheme in ("http", "https"):
        servers = {}
        try:
            for handler in ("stdlib", "csapp"):
                tls = f"{cert},{key}" if scheme == "https" else "-"
                proc = subprocess.Popen(
                    [sys.executable, str(HERE), "--serve-http", handler, tls, str(work)],
                    stdout=subprocess.PIPE,
                )
                assert proc.stdout is not None
                servers[handler] = (proc, int(proc.stdout.readline()))
            for name in ("100B", "64KiB"):
                for r in range(rounds):
                    order = ["stdlib", "csapp"] if r % 2 == 0 else ["csapp", "stdlib"]
                    for handler in order:
                        url = f"{scheme}://127.0.0.1:{servers[handler][1]}/{name}"
                        rate = wrk_rate(url, seconds)
                        rates.setdefault((scheme, name, handler), []).append(rate)
        finally:
            for proc, _ in servers.values():
                proc.kill()
                proc.wait()
        for name in ("100B", "64KiB"):
            std = statistics.median(rates[(scheme, name, "stdlib")])
            ours = statistics.median(rates[(scheme, name, "csapp")])
            lines.append(
                f"http.server {scheme:5} {name:6} stdlib {std:9.0f} req/s   "
                f"csapp {ours:9.0f} req/s   {ours / std:.2f}x"
            )
    shutil.rmtree(work)
    return lines


# ------------------------------------------------------------------ redis


async def redis_run(port: int, pipelined: bool) -> float:
    import redis.asyncio as redis_asyncio

    client = redis_asyncio.Redis(host="127.0.0.1", port=port)
    try:
        await client.set("key", b"v" * 100)
        started = time.perf_counter()
        if pipelined:
            for _ in range(200):  # 20,000 GETs in pipelines of 100
                pipe = client.pipeline(transaction=False)
                for _ in range(100):
                    pipe.get("key")
                await pipe.execute()
            count = 20_000
        else:
            for _ in range(10_000):
                await client.get("key")
            count = 10_000
        return count / (time.perf_counter() - started)
    finally:
        await client.aclose()


def bench_redis(rounds: int) -> List[str]:
    if shutil.which("redis-server") is None:
        return ["redis: redis-server is not installed (apt-get install redis-server)"]
    import csapp.aio

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    stock = asyncio.open_connection
    rates: Dict[Tuple[str, str], List[float]] = {}
    try:
        time.sleep(0.5)
        for r in range(rounds):
            for kind in ["stock", "csapp"] if r % 2 == 0 else ["csapp", "stock"]:
                asyncio.open_connection = (  # type: ignore[assignment]
                    stock if kind == "stock" else csapp.aio.open_connection
                )
                for mode in ("pipelined", "sequential"):
                    rate = asyncio.run(redis_run(port, mode == "pipelined"))
                    rates.setdefault((mode, kind), []).append(rate)
    finally:
        asyncio.open_connection = stock  # type: ignore[assignment]
        server.terminate()
        server.wait()
    lines = []
    for mode in ("pipelined", "sequential"):
        std = statistics.median(rates[(mode, "stock")])
        ours = statistics.median(rates[(mode, "csapp")])
        lines.append(
            f"redis-py {mode:10} asyncio {std:9.0f} GET/s   csapp.aio {ours:9.0f} GET/s   "
            f"{ours / std:.2f}x"
        )
    return lines


# ------------------------------------------------------------------ lines


def line_rate(make_reader: Callable[[socket.socket], object], count: int) -> float:
    a, b = socket.socketpair()
    line = b"x" * 63 + b"\n"
    block = line * 1024

    def send() -> None:
        for _ in range(count // 1024):
            b.sendall(block)
        b.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send)
    reader = make_reader(a)
    started = time.perf_counter()
    sender.start()
    readline = reader.readline  # type: ignore[attr-defined]
    got = 0
    while readline():
        got += 1
    elapsed = time.perf_counter() - started
    sender.join()
    reader.close()  # type: ignore[attr-defined]
    a.close()
    b.close()
    assert got == count // 1024 * 1024
    return got / elapsed


def bench_lines(rounds: int) -> List[str]:
    import csapp

    def timed(seconds: float | None) -> Callable[[socket.socket], socket.socket]:
        def setup(sock: socket.socket) -> socket.socket:
            sock.settimeout(seconds)
            return sock

        return setup

    readers: Dict[str, Callable[[socket.socket], object]] = {
        "sock.makefile('rb')": lambda s: s.makefile("rb"),
        "sock.makefile('rb'), timeout 10": lambda s: timed(10)(s).makefile("rb"),
        "Rio(sock.fileno())": lambda s: csapp.Rio(s.fileno()),
        "csapp.makefile(sock)": lambda s: csapp.makefile(s),
        "csapp.makefile(sock), timeout 10": lambda s: csapp.makefile(timed(10)(s)),
    }
    rates: Dict[str, List[float]] = {}
    for r in range(rounds):
        names = list(readers) if r % 2 == 0 else list(reversed(readers))
        for name in names:
            rates.setdefault(name, []).append(line_rate(readers[name], 1 << 20))
    base = statistics.median(rates["Rio(sock.fileno())"])
    return [
        f"lines [{csapp.IMPLEMENTATION}] {name:34} {statistics.median(v) / 1e6:6.2f} M lines/s   "
        f"{statistics.median(v) / base:.2f}x the bare Rio"
        for name, v in rates.items()
    ]


def main(argv: List[str]) -> int:
    if argv[1:2] == ["--serve-http"]:
        serve_http(*argv[2:5])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="*", default=["http", "redis", "lines"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0, help="wrk's run per case")
    args = parser.parse_args(argv[1:])
    for which in args.which:
        if which == "http":
            out = bench_http(args.rounds, args.seconds)
        elif which == "redis":
            out = bench_redis(args.rounds)
        else:
            out = bench_lines(args.rounds)
        print("\n".join(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
