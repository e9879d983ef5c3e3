"""Hosts of their own for the link tests (issue 13): two Linux network namespaces
joined by a veth pair, the link shaped with ``tc tbf`` or the MTU, or taken down
and up in the middle of a transfer.

Namespace A holds the server (``ip netns exec A python -m csapp echoserver``),
namespace B the client: this module run as a script (``python -m
support.nsutil client ...``, the tests directory on the path), or ``csapp
echoclient``. The addresses exist inside the two namespaces only and neither
has a route beyond its /24, so no packet leaves them. The
measure of a bad link is the kernel's own count of retransmitted segments
(``Tcp: RetransSegs`` of /proc/net/snmp read inside each namespace, before and
after a case), with ``ss -ti`` samples taken during the transfer beside it.

Every wait has a timeout; every child runs in its own process group and is
killed by whoever started it.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Dict, Iterator, List, Optional, Sequence

import pytest

from .netutil import ServerProcess, child_env, csapp_command, kill_group, read_line

PREFIX = "csapp-"  # namespaces are named csapp-<pid>-a and csapp-<pid>-b
LEFTOVER = re.compile(r"^csapp-(\d+)-[ab]$")
DEV = {"a": "csapp-a", "b": "csapp-b"}  # the veth ends, each inside its namespace
ADDR = {"a": "10.213.0.1", "b": "10.213.0.2"}
PREFIXLEN = 24
SERVER_ADDR = ADDR["a"]
DEFAULT_MTU = 1500

# tbf: 40 Mbit/s with a 5 KB bucket and a 5 KB queue. The veth hands the qdisc
# GSO packets of up to 64 KB; tbf cuts them into segments and drops the ones
# that do not fit the queue without telling TCP, so they are lost on the
# "wire" and come back as retransmissions.
TBF = ("rate", "40mbit", "burst", "5kb", "limit", "5kb")
SHAPES = ["tbf", "mtu576", "mtu1280", "flap"]
SHAPE_HELP = {
    "tbf": "tbf rate 40mbit burst 5kb limit 5kb on both ends",
    "mtu576": "MTU 576 on both ends, one segment per packet (gso_max_segs 1)",
    "mtu1280": "MTU 1280 on both ends, one segment per packet (gso_max_segs 1)",
    "flap": "server's end down for 1 s a quarter of the way through, then up",
}
FLAP_SECONDS = 1.0
COMMAND_TIMEOUT = 10.0  # seconds: any one ip/tc/ss command
# The directory holding the ``support`` package: on the script client's path.
TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STALL = 30.0  # seconds: the client gives up after this long without progress
REQUIRE = "CSAPP_REQUIRE_NETNS"  # set to 1: where namespaces cannot be made, fail, not skip


class NetnsError(Exception):
    """An ip/tc command failed."""


def command(*args: str, timeout: float = COMMAND_TIMEOUT) -> str:
    """Run ``args``; its standard output, or ``NetnsError`` with its error output."""
    try:
        done = subprocess.run(
            list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        raise NetnsError(f"{' '.join(args)}: no exit within {timeout:g} s") from exc
    if done.returncode != 0:
        raise NetnsError(
            f"{' '.join(args)}: exit {done.returncode}: {done.stderr.decode(errors='replace')}"
        )
    return done.stdout.decode(errors="replace")


def why_no_namespaces() -> Optional[str]:
    """Why network namespaces cannot be made here, or None if they may be."""
    if not sys.platform.startswith("linux"):
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "making network namespaces needs root"
    for tool in ("ip", "tc", "ss"):
        if shutil.which(tool) is None:
            return f"{tool} (iproute2) is not installed"
    return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers() -> List[str]:
    """Delete the csapp-<pid>-a/b namespaces of sessions that are gone (a pid
    that no longer runs); a live session's stay (this one's, or a CI run's
    beside it). Returns the names deleted."""
    removed = []
    for row in command("ip", "netns", "list").splitlines():
        name = row.split()[0] if row.split() else ""
        match = LEFTOVER.match(name)
        if match is None:
            continue
        pid = int(match.group(1))
        if pid_alive(pid):
            continue
        try:
            command("ip", "netns", "del", name)
            removed.append(name)
        except NetnsError:
            pass
    return removed


def parse_counters(text: str) -> Dict[str, int]:
    """/proc/net/snmp and /proc/net/netstat: ``{"Tcp.RetransSegs": n, ...}``."""
    counters: Dict[str, int] = {}
    rows = [row.split() for row in text.splitlines() if row.strip()]
    for names, values in itertools.pairwise(rows):
        if names[0] != values[0] or not names[0].endswith(":") or values[1:2] == names[1:2]:
            continue
        table = names[0][:-1]
        for name, value in zip(names[1:], values[1:]):
            if value.lstrip("-").isdigit():
                counters[f"{table}.{name}"] = int(value)
    return counters


class Hosts:
    """Two network namespaces, ``a`` (server) and ``b`` (client), and the veth
    between them: 10.213.0.1/24 on ``a``, 10.213.0.2/24 on ``b``, lo up in both."""

    def __init__(self, tag: str = "") -> None:
        self.names = {side: f"{PREFIX}{os.getpid()}{tag}-{side}" for side in "ab"}
        self.made: List[str] = []

    # ------------------------------------------------------------ life cycle

    def create(self) -> None:
        for side in "ab":
            command("ip", "netns", "add", self.names[side])
            self.made.append(self.names[side])
        command(
            "ip", "link", "add", DEV["a"], "netns", self.names["a"], "type", "veth",
            "peer", "name", DEV["b"], "netns", self.names["b"],
        )  # fmt: skip
        for side in "ab":
            self.ip(side, "addr", "add", f"{ADDR[side]}/{PREFIXLEN}", "dev", DEV[side])
            self.ip(side, "link", "set", "dev", "lo", "up")
            self.ip(side, "link", "set", "dev", DEV[side], "up")
        if not self.wait_reachable(COMMAND_TIMEOUT):
            raise NetnsError(f"{ADDR['a']} is not reachable from {self.names['b']}")

    def destroy(self) -> None:
        """Delete both namespaces (the veth goes with them); never raises."""
        for name in self.made:
            try:
                command("ip", "netns", "del", name)
            except NetnsError:
                pass
        self.made = []

    # ------------------------------------------------------------ commands

    def ip(self, side: str, *args: str) -> str:
        return command("ip", "-n", self.names[side], *args)

    def exec_prefix(self, side: str) -> List[str]:
        return ["ip", "netns", "exec", self.names[side]]

    def run(self, side: str, *args: str, timeout: float = COMMAND_TIMEOUT) -> str:
        return command(*self.exec_prefix(side), *args, timeout=timeout)

    def wait_reachable(self, timeout: float) -> bool:
        """A TCP connect from ``b`` to a port nobody listens on in ``a`` is refused
        (not timed out, not unreachable) once the link carries packets."""
        probe = (
            "import socket,sys\n"
            "s=socket.socket(); s.settimeout(1.0)\n"
            f"sys.exit(0 if s.connect_ex(({ADDR['a']!r}, 9)) == 111 else 1)\n"
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.run("b", sys.executable, "-c", probe)
                return True
            except NetnsError:
                time.sleep(0.1)
        return False

    def counters(self, side: str) -> Dict[str, int]:
        return parse_counters(self.run(side, "cat", "/proc/net/snmp", "/proc/net/netstat"))

    def qdisc_drops(self, side: str) -> int:
        text = self.run(side, "tc", "-s", "qdisc", "show", "dev", DEV[side])
        return sum(int(n) for n in re.findall(r"dropped (\d+)", text))

    def routes(self, side: str) -> List[str]:
        text = self.ip(side, "-4", "route", "show", "table", "all")
        return [row.strip() for row in text.splitlines()]

    # ------------------------------------------------------------ shapes

    def apply(self, shape: str) -> str:
        """Shape the link (both ends) as ``shape`` says (flap: nothing until ``flap``);
        a note for the report when the shape is not quite what it should be. A
        kernel without tbf skips the test (``cannot``)."""
        note = ""
        for side in "ab":
            if shape == "tbf":
                try:
                    self.run(side, "tc", "qdisc", "replace", "dev", DEV[side], "root", "tbf", *TBF)
                except NetnsError as exc:
                    cannot(f"no tbf qdisc here: {exc}")
            elif shape.startswith("mtu"):
                try:
                    self.ip(side, "link", "set", "dev", DEV[side], "mtu", shape[3:])
                    self.ip(side, "link", "set", "dev", DEV[side], "gso_max_segs", "1")
                except NetnsError:  # an older ip or kernel: GSO packets cross the veth
                    note = "-gso"
            elif shape != "flap":
                raise ValueError(f"unknown link shape {shape!r}")
        return note

    def reset(self) -> None:
        """Back to a plain link: no qdisc, MTU 1500, GSO, both ends up."""
        for side in "ab":
            try:
                self.run(side, "tc", "qdisc", "del", "dev", DEV[side], "root")
            except NetnsError:
                pass  # there was none
            self.ip(side, "link", "set", "dev", DEV[side], "up", "mtu", str(DEFAULT_MTU))
            try:
                self.ip(side, "link", "set", "dev", DEV[side], "gso_max_segs", "65535")
            except NetnsError:
                pass  # never changed (see apply)
        if not self.wait_reachable(COMMAND_TIMEOUT):
            raise NetnsError("the link did not come back after a reset")

    def link(self, up: bool, side: str = "a") -> None:
        self.ip(side, "link", "set", "dev", DEV[side], "up" if up else "down")

    def flap(self, seconds: float = FLAP_SECONDS) -> None:
        """The server's end down for ``seconds``, then up (its route comes back with it)."""
        self.link(False)
        try:
            time.sleep(seconds)
        finally:
            self.link(True)


def cannot(reason: str) -> None:
    """Skip the test because ``reason``; with CSAPP_REQUIRE_NETNS=1, fail it."""
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{REQUIRE}=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def make_hosts() -> Iterator[Hosts]:
    """A generator for a fixture: the two namespaces, or a skip (a failure with
    CSAPP_REQUIRE_NETNS=1) saying why they cannot be made; always torn down."""
    reason = why_no_namespaces()
    if reason is not None:
        cannot(reason)
    hosts = Hosts()
    try:
        try:
            remove_leftovers()
            hosts.create()
        except NetnsError as exc:
            cannot(f"cannot make the network namespaces: {exc}")
        yield hosts
    finally:
        hosts.destroy()


# ----------------------------------------------------------------- the data


def mixed_lines(size: int, seed: int = 13, maxline: int = 8192) -> bytes:
    """``size`` bytes of binary lines: six in ten of 0 to 100 bytes, three of up
    to 2,000, most of the rest up to ``maxline`` and one in a hundred longer
    (up to three times ``maxline``); every byte value but the newline inside,
    empty lines, and a last line without a newline."""
    rng = random.Random(seed)
    body = bytearray(rng.randbytes(size).replace(b"\n", b"\r"))
    pos = 0
    while True:
        pick = rng.random()
        if pick < 0.6:
            pos += rng.randint(0, 100)
        elif pick < 0.9:
            pos += rng.randint(101, 2000)
        elif pick < 0.99:
            pos += rng.randint(2001, maxline)
        else:
            pos += rng.randint(maxline + 1, 3 * maxline)
        if pos >= size - 1:
            break
        body[pos] = 10
        pos += 1
    return bytes(body)


def pause_offset(data: bytes) -> int:
    """Where a client pauses for a link flap: the end of the first line past a quarter."""
    return data.index(b"\n", len(data) // 4) + 1


# ----------------------------------------------------------------- processes


class NsServer(ServerProcess):
    """``csapp echoserver`` inside namespace a, listening on its address, in its
    own process group (netutil.ServerProcess behind ``ip netns exec``)."""

    def __init__(self, hosts: Hosts, impl: str, mode: str, *extra: str) -> None:
        super().__init__(impl, mode, *extra, "--host", SERVER_ADDR, prefix=hosts.exec_prefix("a"))


class SsSampler:
    """``ss -tin`` inside both namespaces every ``interval`` s while a transfer
    runs: the most retransmitted segments (``retrans:a/b``, the b) and bytes
    (``bytes_retrans``) any one sample showed, summed over a side's connections."""

    def __init__(self, hosts: Hosts, interval: float = 0.25) -> None:
        self.hosts = hosts
        self.interval = interval
        self.segs = {"a": 0, "b": 0}
        self.bytes = {"a": 0, "b": 0}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SsSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2 * COMMAND_TIMEOUT)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            seen = False
            for side in "ab":
                try:
                    text = self.hosts.run(side, "ss", "-tin", "state", "established")
                except NetnsError:
                    continue
                seen = seen or len(text.splitlines()) > 1  # a header, then the sockets
                segs = sum(int(n) for n in re.findall(r"\bretrans:\d+/(\d+)", text))
                nbytes = sum(int(n) for n in re.findall(r"\bbytes_retrans:(\d+)", text))
                self.segs[side] = max(self.segs[side], segs)
                self.bytes[side] = max(self.bytes[side], nbytes)
            self.samples += seen


@dataclass
class Transfer:
    """What one client saw, and what the link did meanwhile."""

    case: str
    expected: int
    received: int = 0
    ok: bool = False
    seconds: float = 0.0
    error: Optional[str] = None
    retrans: Dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0})
    timeouts: int = 0  # TcpExt.TCPTimeouts, both sides: retransmission timer expiries
    dsacks: int = 0  # TcpExt.TCPDSACKRecv, both sides: retransmissions found needless
    prunes: int = 0  # TcpExt.PruneCalled, both sides: a full receive queue pruned
    recovery: Optional[float] = None  # flap: seconds from the link's up to the end
    drops: Dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0})
    ss_segs: Dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0})
    ss_bytes: Dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0})
    ss_samples: int = 0
    details: str = ""

    @property
    def total_retrans(self) -> int:
        return self.retrans["a"] + self.retrans["b"]

    def line(self) -> str:
        ss = (
            f"ss max retrans a {self.ss_segs['a']} b {self.ss_segs['b']} segs "
            f"({self.ss_bytes['a'] + self.ss_bytes['b']} B, {self.ss_samples} samples)"
            if self.ss_samples
            else "ss: transfer too short to sample"
        )
        back = "" if self.recovery is None else f", done {self.recovery:.2f} s after link up"
        return (
            f"{self.case}: {'ok' if self.ok else 'FAILED'} {self.received}/{self.expected} B "
            f"in {self.seconds:.2f} s{back}; RetransSegs server {self.retrans['a']} "
            f"client {self.retrans['b']} (RTO timeouts {self.timeouts}, DSACKs {self.dsacks}); "
            f"qdisc drops {self.drops['a'] + self.drops['b']}, rcv prunes {self.prunes}; {ss}"
        )


def measured(hosts: Hosts, transfer: Transfer, run: Callable[[SsSampler], None]) -> None:
    """Run ``run`` with the counters read before and after and ``ss`` sampling."""
    before = {side: hosts.counters(side) for side in "ab"}
    drops = {side: hosts.qdisc_drops(side) for side in "ab"}
    started = time.monotonic()
    with SsSampler(hosts) as sampler:
        try:
            run(sampler)
        finally:
            transfer.seconds = transfer.seconds or time.monotonic() - started
    after = {side: hosts.counters(side) for side in "ab"}

    def delta(side: str, name: str) -> int:
        return after[side].get(name, 0) - before[side].get(name, 0)

    for side in "ab":
        transfer.retrans[side] = delta(side, "Tcp.RetransSegs")
        transfer.timeouts += delta(side, "TcpExt.TCPTimeouts")
        transfer.dsacks += delta(side, "TcpExt.TCPDSACKRecv")
        transfer.prunes += delta(side, "TcpExt.PruneCalled")
        transfer.drops[side] = hosts.qdisc_drops(side) - drops[side]
    transfer.ss_segs = dict(sampler.segs)
    transfer.ss_bytes = dict(sampler.bytes)
    transfer.ss_samples = sampler.samples


def script_client(
    hosts: Hosts,
    impl: str,
    kind: str,
    port: int,
    size: int,
    case: str,
    *,
    flap: bool = False,
    seed: int = 13,
    timeout: float = 120.0,
) -> Transfer:
    """This file's client (``kind``: ``socket`` or ``aio``) in namespace ``b``:
    ``size`` bytes of ``mixed_lines`` to the server, the echo checked byte by
    byte as it comes. With ``flap``, the client pauses a quarter of the way
    (everything before echoed), the server's end goes down, the client sends
    on into the dead link, and the link comes up ``FLAP_SECONDS`` later."""
    transfer = Transfer(case, size)
    args = [sys.executable, "-m", "support.nsutil", "client", kind, SERVER_ADDR, str(port)]
    args += ["--size", str(size), "--seed", str(seed), "--timeout", str(timeout)]
    if flap:
        args.append("--pause")
    env = child_env(impl)
    env["PYTHONPATH"] += os.pathsep + TESTS_DIR
    up_at: List[float] = []  # CLOCK_MONOTONIC is one clock for every namespace

    def run(sampler: SsSampler) -> None:
        proc = subprocess.Popen(
            hosts.exec_prefix("b") + args,
            stdin=subprocess.PIPE if flap else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        try:
            if flap:
                assert proc.stdin is not None and proc.stdout is not None
                line = read_line(proc.stdout.fileno(), timeout)
                if line != b"paused\n":  # it failed or hung first: its result says why
                    transfer.error = f"the client did not pause: {line!r}"
                else:
                    hosts.link(False)
                    try:
                        proc.stdin.write(b"go\n")
                        proc.stdin.flush()
                        time.sleep(FLAP_SECONDS)
                    finally:
                        hosts.link(True)
                        up_at.append(time.monotonic())
            try:
                out, err = proc.communicate(timeout=timeout + 10)
            except subprocess.TimeoutExpired:
                kill_group(proc)
                out, err = proc.communicate(timeout=COMMAND_TIMEOUT)
                transfer.error = f"client hung: no exit within {timeout + 10:g} s"
            transfer.details = err.decode(errors="replace")[-2000:]
            results = [row for row in out.splitlines() if row.startswith(b"result ")]
            if results:
                result = json.loads(results[-1][len(b"result ") :])
                transfer.ok = bool(result["ok"]) and transfer.error is None
                transfer.received = int(result["received"])
                transfer.seconds = float(result["seconds"])
                transfer.error = result["error"] or transfer.error
                if up_at and "ended" in result:
                    transfer.recovery = float(result["ended"]) - up_at[0]
            else:
                transfer.error = transfer.error or f"no result; exit status {proc.returncode}"
        finally:
            kill_group(proc)

    measured(hosts, transfer, run)
    return transfer


def echoclient(
    hosts: Hosts,
    impl: str,
    port: int,
    data: bytes,
    case: str,
    *,
    flap: bool = False,
    timeout: float = 120.0,
) -> Transfer:
    """``csapp echoclient`` in namespace ``b``: ``data`` on its standard input, its
    standard output compared with ``data``. With ``flap``, the input stops at
    ``pause_offset`` until that much came back, then the server's end goes down,
    the rest is written, and the link comes up ``FLAP_SECONDS`` later."""
    transfer = Transfer(case, len(data))
    pause = pause_offset(data) if flap else len(data)
    reached = threading.Event()
    go = threading.Event()
    received: List[bytes] = []
    errors: List[str] = []

    def run(sampler: SsSampler) -> None:
        proc = subprocess.Popen(
            hosts.exec_prefix("b") + csapp_command("echoclient", SERVER_ADDR, str(port)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env(impl),
            start_new_session=True,
        )
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None

        def write(stdin: IO[bytes]) -> None:
            try:
                stdin.write(data[:pause])
                stdin.flush()
                if pause < len(data):
                    if not go.wait(timeout):
                        return
                    stdin.write(data[pause:])
                stdin.close()
            except OSError as exc:
                errors.append(f"writing the client's input: {exc}")

        def read(stdout: IO[bytes]) -> None:
            size = 0
            while True:
                piece = stdout.read1(1 << 16)  # type: ignore[attr-defined]
                if not piece:
                    break
                received.append(piece)
                size += len(piece)
                if size >= pause:
                    reached.set()
            reached.set()

        threads = [
            threading.Thread(target=write, args=(proc.stdin,), daemon=True),
            threading.Thread(target=read, args=(proc.stdout,), daemon=True),
        ]
        started = up_at = time.monotonic()
        for thread in threads:
            thread.start()
        try:
            if flap:
                if not reached.wait(timeout):
                    errors.append("the first quarter never came back")
                hosts.link(False)
                try:
                    go.set()
                    time.sleep(FLAP_SECONDS)
                finally:
                    hosts.link(True)
                    up_at = time.monotonic()
            go.set()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                errors.append(f"echoclient hung: no exit within {timeout:g} s")
                kill_group(proc)
            transfer.seconds = time.monotonic() - started
            if flap:
                transfer.recovery = time.monotonic() - up_at
            for thread in threads:
                thread.join(COMMAND_TIMEOUT)
            transfer.details = proc.stderr.read().decode(errors="replace")[-2000:]
            if proc.returncode:
                errors.append(f"echoclient exit status {proc.returncode}")
        finally:
            go.set()
            kill_group(proc)
            proc.stderr.close()
        echoed = b"".join(received)
        transfer.received = len(echoed)
        if echoed != data and not errors:
            errors.append(f"echo differs from byte {first_difference(echoed, data)}")
        transfer.ok = not errors
        transfer.error = "; ".join(errors) or None

    measured(hosts, transfer, run)
    return transfer


def first_difference(got: bytes, want: bytes) -> int:
    for offset in range(0, min(len(got), len(want)), 4096):
        if got[offset : offset + 4096] != want[offset : offset + 4096]:
            return next(
                i
                for i in range(offset, min(offset + 4096, len(got), len(want)))
                if got[i] != want[i]
            )
    return min(len(got), len(want))


# ----------------------------------------------------------------- reporting


class LinkReport:
    """The case lines of a session; a pytest plugin once registered, so they
    come out at the end in the terminal summary (and, with the environment
    variable CSAPP_NETNS_REPORT naming a file, go to that file)."""

    ENV = "CSAPP_NETNS_REPORT"

    def __init__(self) -> None:
        self.lines: List[str] = []

    def add(self, transfer: Transfer) -> None:
        line = transfer.line()
        self.lines.append(line)
        print(line)
        path = os.environ.get(self.ENV)
        if path:
            with open(path, "a") as report:
                report.write(line + "\n")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.lines:
            terminalreporter.section("network namespace links (issue 13)")
            for shape, text in SHAPE_HELP.items():
                terminalreporter.write_line(f"  {shape}: {text}")
            for line in self.lines:
                terminalreporter.write_line(line)


# ----------------------------------------------------------------- the client


def socket_client(host: str, port: int, data: bytes, pause: int, timeout: float) -> Dict[str, Any]:
    """Send ``data`` from a thread while this one reads and checks the echo;
    with ``pause``, stop sending there until a line on standard input."""
    result: Dict[str, Any] = {"ok": False, "received": 0, "error": None}
    deadline = time.monotonic() + timeout
    errors: List[str] = []
    resume = threading.Event()
    sock = socket.create_connection((host, port), timeout=STALL)
    started = time.monotonic()

    def send() -> None:
        view = memoryview(data)
        try:
            # sendall's timeout bounds the whole call: 64 KiB at a time, so it
            # bounds a stall, not the transfer
            for start in range(0, pause or len(data), 1 << 16):
                sock.sendall(view[start : min(start + (1 << 16), pause or len(data))])
            if pause:
                if not resume.wait(timeout):
                    errors.append("never told to resume")
                    return
                for start in range(pause, len(data), 1 << 16):
                    sock.sendall(view[start : start + (1 << 16)])
            sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            errors.append(f"send: {type(exc).__name__}: {exc}")

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    received = 0
    try:
        while time.monotonic() < deadline:
            piece = sock.recv(1 << 16)
            if not piece:
                break
            if data[received : received + len(piece)] != piece:
                errors.append(
                    f"echo differs from byte {received + first_difference(piece, data[received:])}"
                )
                break
            received += len(piece)
            if pause and received == pause and not resume.is_set():
                print("paused", flush=True)
                sys.stdin.readline()
                resume.set()
        else:
            errors.append(f"not done within {timeout:g} s")
    except OSError as exc:
        errors.append(f"recv after {received} bytes: {type(exc).__name__}: {exc}")
    finally:
        resume.set()
        sender.join(STALL)
        sock.close()
    return finish_result(result, errors, started, received, len(data))


def finish_result(
    result: Dict[str, Any], errors: List[str], started: float, received: int, expected: int
) -> Dict[str, Any]:
    """A client's ``result`` once it stopped: times, bytes, and ok when nothing went wrong."""
    result["ended"] = time.monotonic()
    result["seconds"] = result["ended"] - started
    result["received"] = received
    if not errors and received != expected:
        errors.append(f"EOF after {received} of {expected} bytes")
    result["ok"] = not errors
    result["error"] = "; ".join(errors) or None
    return result


async def aio_client(host: str, port: int, data: bytes, pause: int) -> Dict[str, Any]:
    """``csapp.aio.open_connection``: a task writes ``data`` (``drain`` after each
    64 KiB), this one reads it back line by line (``readline``) and checks each."""
    import csapp.aio

    result: Dict[str, Any] = {"ok": False, "received": 0, "error": None}
    errors: List[str] = []
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.wait_for(csapp.aio.open_connection(host, port), STALL)
    started = time.monotonic()
    resume = asyncio.Event()

    async def send() -> None:
        view = memoryview(data)
        first = pause or len(data)
        for start in range(0, first, 1 << 16):
            writer.write(view[start : min(first, start + (1 << 16))])
            await writer.drain()
        if pause:
            await resume.wait()
            for start in range(pause, len(data), 1 << 16):
                writer.write(view[start : start + (1 << 16)])
                await writer.drain()
        writer.write_eof()

    sender = asyncio.ensure_future(send())
    received = 0
    lines = 0
    try:
        while True:
            line = await asyncio.wait_for(reader.readline(), STALL)
            if not line:
                break
            if data[received : received + len(line)] != line:
                at = received + first_difference(line, data[received:])
                errors.append(f"line {lines} differs from byte {at}")
                break
            received += len(line)
            lines += 1
            if pause and received == pause and not resume.is_set():
                print("paused", flush=True)
                await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), STALL)
                resume.set()
        await asyncio.wait_for(sender, STALL)
    except (OSError, asyncio.TimeoutError, ValueError) as exc:
        errors.append(f"after {received} bytes ({lines} lines): {type(exc).__name__}: {exc}")
    finally:
        resume.set()
        sender.cancel()
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), STALL)
        except (OSError, asyncio.TimeoutError):
            pass
    return finish_result(result, errors, started, received, len(data))


def client_main(argv: Sequence[str]) -> int:
    """``python -m support.nsutil client {socket,aio} HOST PORT``: prints ``paused`` (with
    ``--pause``) and, at the end, ``result {json}``; exit 0 when byte-exact."""
    parser = argparse.ArgumentParser(prog="python -m support.nsutil client")
    parser.add_argument("kind", choices=["socket", "aio"])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--pause", action="store_true")
    args = parser.parse_args(argv)
    data = mixed_lines(args.size, args.seed)
    pause = pause_offset(data) if args.pause else 0
    result: Dict[str, Any]
    try:
        if args.kind == "socket":
            result = socket_client(args.host, args.port, data, pause, args.timeout)
        else:
            result = asyncio.run(
                asyncio.wait_for(aio_client(args.host, args.port, data, pause), args.timeout)
            )
    except (OSError, asyncio.TimeoutError) as exc:
        result = {"ok": False, "received": 0, "seconds": 0.0, "error": f"{exc!r}"}
    print("result " + json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    if sys.argv[1:2] != ["client"]:
        sys.exit("usage: python -m support.nsutil client {socket,aio} HOST PORT --size N [--pause]")
    sys.exit(client_main(sys.argv[2:]))
