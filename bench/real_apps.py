"""The numbers a user meets: real programs with csapp's drop-ins against the
same programs without, side by side in one run, rounds interleaved, medians.

* ``http``: ``http.server`` (HTTP/1.1 keep-alive, ``disable_nagle_algorithm =
  True`` on both) under ``wrk -t1 -c10``, a 100 B and a 64 KiB file, plain and
  TLS; the standard handler against csapp's (swapped in before ``http.server``
  is imported, as a user does), and the ceiling of any reader swap (the
  cheapest reader, ``CeilingReader``). Needs ``wrk`` and ``openssl`` (Debian).
* ``redis``: redis-py's asyncio client (no hiredis) against ``redis-server``:
  20,000 GETs of 100 B in pipelines of 100, and 10,000 sequential GETs;
  stock asyncio streams against ``csapp.aio.open_connection`` swapped in.
* ``lines``: reading 64 B lines from a socket: ``sock.makefile("rb")`` and
  ``csapp.makefile`` with and without a timeout, and a bare ``Rio`` on the
  descriptor (the timeout path must cost nothing while data is buffered).

* ``http-profile``: each of the three ``http.server`` handlers profiled
  under wrk: the share of the handler threads' time spent reading requests.

    python -m bench.real_apps [http] [http-profile] [redis] [lines] [--rounds N] [--seconds S]

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
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

HERE = Path(__file__).resolve()


# ------------------------------------------------------------ http.server


class CeilingReader:
    """The cheapest reader an ``http.server`` handler can have, for the
    ceiling of any reader swap: one ``recv`` per request (wrk sends each
    request whole and waits for the answer), its lines cut by
    ``bytes.splitlines`` and handed out by ``list.pop``. Not a real reader:
    a request split across two ``recv`` calls would be misread."""

    def __init__(self, sock: socket.socket) -> None:
        self.recv = sock.recv
        self.lines: List[bytes] = []

    def readline(self, limit: int = -1) -> bytes:
        if not self.lines:
            data = self.recv(65536)
            if not data:
                return b""
            self.lines = data.splitlines(keepends=True)
            self.lines.reverse()
        return self.lines.pop()

    def close(self) -> None:
        self.lines = []


def serve_http(handler: str, tls: str, directory: str) -> None:
    """The server side (a child process): ``http.server`` over ``directory``
    with the standard handler, csapp's, or the ceiling (``CeilingReader``).
    With ``CSAPP_HTTP_PROFILE=path`` every request is profiled (cProfile,
    per thread) and the merged stats go to ``path`` on SIGTERM."""
    import signal
    import socketserver
    import ssl
    from functools import partial

    if handler == "csapp":
        import csapp.socketserver

        socketserver.StreamRequestHandler = csapp.socketserver.StreamRequestHandler  # type: ignore[misc]
    import http.server

    profile_path = os.environ.get("CSAPP_HTTP_PROFILE")
    profiles: List[object] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def setup(self) -> None:
            super().setup()
            if handler == "ceiling":
                self.rfile.close()
                self.rfile = CeilingReader(self.connection)  # type: ignore[assignment]

        def handle(self) -> None:
            if not profile_path:
                return super().handle()
            import cProfile

            profiler = cProfile.Profile(time.thread_time)  # CPU, not waits
            try:
                profiler.runcall(super().handle)
            finally:
                profiles.append(profiler)  # the connection is over

        def log_message(self, *args: object) -> None:
            pass

    def dump(*_: object) -> None:
        import pstats

        if profiles:
            pstats.Stats(*profiles).dump_stats(profile_path)  # type: ignore[arg-type]
        os._exit(0)

    if profile_path:
        signal.signal(signal.SIGTERM, dump)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(Handler, directory=directory)
    )
    server.daemon_threads = True
    server.handle_error = lambda *args: None  # type: ignore[method-assign]  # wrk's last resets
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


HANDLERS = ("stdlib", "csapp", "ceiling")


def start_http(
    handler: str, tls: str, work: Path, env: Dict[str, str]
) -> Tuple[subprocess.Popen[bytes], int]:
    proc = subprocess.Popen(
        [sys.executable, str(HERE), "--serve-http", handler, tls, str(work)],
        stdout=subprocess.PIPE, env={**os.environ, **env},
    )  # fmt: skip
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def http_files() -> Tuple[Path, str]:
    """A directory with the served files and a self-signed certificate; the
    ``tls`` argument of ``serve_http`` for it."""
    work = Path(tempfile.mkdtemp(prefix="csapp-http-"))
    (work / "100B").write_bytes(b"x" * 100)
    (work / "64KiB").write_bytes(os.urandom(64 << 10))
    cert, key = work / "cert.pem", work / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return work, f"{cert},{key}"


def missing_http_tools() -> List[str]:
    return [
        f"http: {program} is not installed (apt-get install {program})"
        for program in ("wrk", "openssl")
        if shutil.which(program) is None
    ]


def bench_http(rounds: int, seconds: float) -> List[str]:
    """stdlib, csapp and the ceiling, rounds interleaved; ratios to stdlib."""
    missing = missing_http_tools()
    if missing:
        return missing
    work, tls_files = http_files()
    rates: Dict[Tuple[str, str, str], List[float]] = {}
    lines = []
    for scheme in ("http", "https"):
        servers = {}
        try:
            for handler in HANDLERS:
                tls = tls_files if scheme == "https" else "-"
                servers[handler] = start_http(handler, tls, work, {})
            for name in ("100B", "64KiB"):
                for r in range(rounds):
                    order = HANDLERS[r % 3 :] + HANDLERS[: r % 3]
                    for handler in order:
                        url = f"{scheme}://127.0.0.1:{servers[handler][1]}/{name}"
                        rate = wrk_rate(url, seconds)
                        rates.setdefault((scheme, name, handler), []).append(rate)
        finally:
            for proc, _ in servers.values():
                proc.kill()
                proc.wait()
        for name in ("100B", "64KiB"):
            med = {h: statistics.median(rates[(scheme, name, h)]) for h in HANDLERS}
            std = med["stdlib"]
            lines.append(
                f"http.server {scheme:5} {name:6} stdlib {std:7.0f} req/s   "
                f"csapp {med['csapp']:7.0f} req/s {med['csapp'] / std:.2f}x   "
                f"ceiling {med['ceiling']:7.0f} req/s {med['ceiling'] / std:.2f}x"
            )
    shutil.rmtree(work)
    return lines


def profile_http(seconds: float) -> List[str]:
    """Each handler profiled (cProfile in every handler thread) under wrk,
    plain, 100 B: the share of the handler threads' CPU time spent reading the request
    (every ``readline`` of the handler's ``rfile``, with what it calls)."""
    import pstats

    missing = missing_http_tools()
    if missing:
        return missing
    work, _ = http_files()
    lines = []
    for handler in HANDLERS:
        path = work / f"{handler}.prof"
        proc, port = start_http(handler, "-", work, {"CSAPP_HTTP_PROFILE": str(path)})
        try:
            wrk_rate(f"http://127.0.0.1:{port}/100B", seconds)
            time.sleep(1.0)  # the handlers see wrk's connections close
        finally:
            proc.terminate()
            proc.wait(30)
        stats = pstats.Stats(str(path))
        table = stats.stats  # type: ignore[attr-defined]
        total = sum(tt for (_, _, tt, _, _) in table.values())
        reading = sum(
            ct
            for (filename, _, func), (_, _, _, ct, _) in table.items()
            if (func == "readline" and filename == HERE.as_posix())  # CeilingReader
            or ("method 'readline'" in func and ("Buffered" in func or "Rio" in func))
        )
        lines.append(
            f"http.server profile {handler:8} reading {reading / total:6.1%} of "
            f"{total:.2f} s of CPU in the handlers"
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


def spread(ours: List[float], theirs: List[float]) -> str:
    """The lowest and highest of the per-round ratios (rounds ran side by side)."""
    ratios = [a / b for a, b in zip(ours, theirs)]
    return f"{min(ratios):.2f}–{max(ratios):.2f}"


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
        for kind in ("stock", "csapp"):  # a warm-up round, not counted
            asyncio.open_connection = stock if kind == "stock" else csapp.aio.open_connection  # type: ignore[assignment]
            asyncio.run(redis_run(port, True))
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
            f"{ours / std:.2f}x   (per-round ratios "
            f"{spread(rates[(mode, 'csapp')], rates[(mode, 'stock')])})"
        )
    return lines


# ------------------------------------------------------------------ lines


def line_rate(make_reader: Callable[[socket.socket], object], count: int) -> float:
    """Lines per second read by ``make_reader(sock)``'s ``readline``; the
    lines come from a forked child process (a sender thread would take the
    GIL from the reader being measured)."""
    a, b = socket.socketpair()
    line = b"x" * 63 + b"\n"
    block = line * 1024
    pid = os.fork()
    if pid == 0:  # the sender
        try:
            a.close()
            for _ in range(count // 1024):
                b.sendall(block)
            b.shutdown(socket.SHUT_WR)
        finally:
            os._exit(0)
    b.close()
    reader = make_reader(a)
    readline = reader.readline  # type: ignore[attr-defined]
    got = 0
    started = time.perf_counter()
    while readline():
        got += 1
    elapsed = time.perf_counter() - started
    os.waitpid(pid, 0)
    reader.close()  # type: ignore[attr-defined]
    a.close()
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
    for name in readers:  # a warm-up round, not counted (the first rounds ran slow)
        line_rate(readers[name], 1 << 18)
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
        elif which == "http-profile":
            out = profile_http(args.seconds)
        elif which == "redis":
            out = bench_redis(args.rounds)
        else:
            out = bench_lines(args.rounds)
        print("\n".join(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
