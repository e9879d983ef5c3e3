"""Echo over real links (issue 13): hosts of their own in Linux network namespaces.

Each session makes two namespaces joined by a veth pair (nsutil.Hosts): the
server runs in one (``ip netns exec A python -m csapp echoserver``), the
client in the other, and every byte crosses the veth. Four shapes of link,
each on both ends (netem is not there, so only what these kernels have):

- ``tbf``: ``tc tbf rate 40mbit burst 5kb limit 5kb``: packets are dropped, TCP
  retransmits (asserted: the case proves the link is bad);
- ``mtu576`` / ``mtu1280``: small MTUs, one segment per packet;
- ``flap``: the server's end down for 1 s a quarter of the way through, the
  client sending into the dead link meanwhile; TCP must recover. It does in
  0.05 to about 5 s after the link is up: when the server's last segment was
  still unacked at the down, its socket comes back on a backed-off timer
  (``ss``: ``timer:(persist,6s)`` with unsent data and an open window).

Over each: every server mode, a ``csapp.aio`` client against the asyncio
server and ``csapp echoclient`` move 16 MiB of mixed lines (``-m stress``);
the echo must be byte-exact and the server still up. Each case reports its
time and the TCP retransmissions of both namespaces (the RetransSegs delta,
``ss -ti`` samples beside it); the lines come out in the terminal summary, and
in the file named by CSAPP_NETNS_REPORT if set. The default run has one small
case per implementation (256 KiB, the event server, tbf). Without root or
iproute2 the cases skip (CSAPP_REQUIRE_NETNS=1 makes that a failure).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from typing import Iterator, List

import pytest

import csapp
from support.netutil import MODES, require_impl
from support.nsutil import (
    ADDR,
    COMMAND_TIMEOUT,
    DEV,
    PREFIXLEN,
    SHAPES,
    Hosts,
    LinkReport,
    NetnsError,
    NsServer,
    Transfer,
    command,
    echoclient,
    make_hosts,
    mixed_lines,
    remove_leftovers,
    script_client,
)

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="network namespaces are Linux only"
)

STRESS_SIZE = 16 << 20
SMALL_SIZE = 256 << 10
TWIN_MARKS = {"c": pytest.mark.c_extension, "python": pytest.mark.fallback}
# The matrix of -m stress (56 cases, 3 min 20 s on 2 cores; tbf cases take
# 9-10 s each, the rate bounds them; the others 1-3 s):
# the C implementation in every mode over every shape, asyncio on uvloop too;
# the pure-Python twin in every mode over the cheap shapes (the MTUs, the
# flap) and over tbf in the modes whose I/O paths differ most (thread: a
# blocking Rio per client; event: non-blocking reads of partial lines).
PYTHON_ON_TBF = ("thread", "event")
# csapp echoclient waits for each line's echo before it sends the next, so over
# tbf every lost segment is a tail loss that waits for a probe or a timeout:
# 16 MiB took 79 s there. It moves 2 MiB over tbf, 16 MiB over the others.
ECHOCLIENT_SIZE = {"tbf": 2 << 20}


@pytest.fixture(scope="session")
def link_report(request: pytest.FixtureRequest) -> LinkReport:
    """The session's case lines, printed in the terminal summary."""
    report = LinkReport()
    request.config.pluginmanager.register(report, "csapp-netns-link-report")
    path = os.environ.get(LinkReport.ENV)
    if path:
        with open(path, "w"):
            pass
    return report


@pytest.fixture(scope="session")
def hosts() -> Iterator[Hosts]:
    """The two namespaces and their link, torn down at the end of the session."""
    yield from make_hosts()


@contextlib.contextmanager
def shaped(hosts: Hosts, shape: str) -> Iterator[str]:
    """The link shaped for the block (the value: a note for the case name), then plain."""
    try:
        yield hosts.apply(shape)
    finally:
        hosts.reset()


def echo_over(
    hosts: Hosts,
    report: LinkReport,
    shape: str,
    impl: str,
    mode: str,
    *,
    client: str = "socket",
    size: int = STRESS_SIZE,
    loop: str = "",
) -> Transfer:
    """Start the server in namespace A, move ``size`` bytes from namespace B over the
    link shaped as ``shape``, report the case; fail unless the echo is byte-exact,
    the server survived, and (tbf) TCP retransmitted."""
    extra = ("--loop", loop) if loop else ()
    case = f"{shape}-{impl}-{mode}{'-' + loop if loop else ''}-{client}-{size >> 10}KiB"
    with shaped(hosts, shape) as note:
        case += note
        server = NsServer(hosts, impl, mode, *extra)
        try:
            flap = shape == "flap"
            if client == "echoclient":
                data = mixed_lines(size)
                transfer = echoclient(hosts, impl, server.port, data, case, flap=flap)
            else:
                transfer = script_client(hosts, impl, client, server.port, size, case, flap=flap)
            report.add(transfer)
            assert transfer.ok, (
                f"{transfer.line()}\nerror: {transfer.error}\n"
                f"client stderr: {transfer.details}\nserver stderr: {server.stderr()}"
            )
            assert server.alive(), f"{case}: the server died: {server.stderr()}"
            assert "Traceback" not in server.stderr(), server.stderr()
        finally:
            server.kill()
    if shape == "tbf":
        assert transfer.total_retrans > 0, f"the tbf link lost nothing: {transfer.line()}"
    return transfer


def test_namespaces_are_private_and_linked(hosts: Hosts) -> None:
    """Each namespace has its one /24 on the veth and loopback, no route beyond
    them, and the root namespace never sees the addresses."""
    for side in "ab":
        routes = hosts.routes(side)
        assert not [r for r in routes if r.split()[:1] == ["default"]], routes
        main = [r.split() for r in routes if "table" not in r.split()]
        assert len(main) == 1, routes
        assert main[0][:3] == [f"10.213.0.0/{PREFIXLEN}", "dev", DEV[side]], routes
        routes6 = hosts.ip(side, "-6", "route", "show", "table", "all").splitlines()
        assert not [r for r in routes6 if r.split()[:1] == ["default"]], routes6
        flags = hosts.ip(side, "link", "show", "dev", "lo").split("<", 1)[1].split(">")[0]
        assert "UP" in flags.split(","), flags
        assert f"inet {ADDR[side]}/{PREFIXLEN}" in hosts.ip(side, "-4", "addr", "show")
    root = command("ip", "-4", "addr", "show")
    assert not [a for a in ADDR.values() if f"inet {a}/" in root], root


def test_small_echo_over_a_lossy_link(impl: str, hosts: Hosts, link_report: LinkReport) -> None:
    """256 KiB of mixed lines through the event server over the tbf link (40 Mbit/s,
    a 5 KB queue): byte-exact, with retransmissions to prove packets were lost."""
    echo_over(hosts, link_report, "tbf", impl, "event", size=SMALL_SIZE)


def server_matrix() -> List[object]:
    cases: List[object] = []
    for shape in SHAPES:
        for impl in ("c", "python"):
            for mode in MODES:
                if impl == "python" and shape == "tbf" and mode not in PYTHON_ON_TBF:
                    continue
                cases.append(
                    pytest.param(
                        shape, impl, mode, marks=TWIN_MARKS[impl], id=f"{shape}-{impl}-{mode}"
                    )
                )
    return cases


@pytest.mark.stress
@pytest.mark.parametrize("shape, impl, mode", server_matrix())
def test_16mib_over_shaped_link(
    shape: str, impl: str, mode: str, hosts: Hosts, link_report: LinkReport
) -> None:
    """16 MiB of mixed lines from namespace B through the ``mode`` server in
    namespace A over the shaped link, echoed byte-exact."""
    echo_over(hosts, link_report, shape, require_impl(impl), mode)


@pytest.mark.stress
@pytest.mark.parametrize("shape", SHAPES)
def test_16mib_asyncio_on_uvloop_over_shaped_link(
    shape: str, hosts: Hosts, link_report: LinkReport
) -> None:
    """The asyncio server on uvloop (C twin): 16 MiB byte-exact over the shaped link."""
    pytest.importorskip("uvloop")
    echo_over(hosts, link_report, shape, require_impl("c"), "asyncio", loop="uvloop")


@pytest.mark.stress
@pytest.mark.parametrize("shape", SHAPES)
def test_16mib_aio_client_over_shaped_link(
    shape: str, hosts: Hosts, link_report: LinkReport
) -> None:
    """A ``csapp.aio.open_connection`` client (C buffer) reading the echo line by
    line from the asyncio server: 16 MiB byte-exact over the shaped link."""
    echo_over(hosts, link_report, shape, require_impl("c"), "asyncio", client="aio")


@pytest.mark.stress
@pytest.mark.parametrize("shape", SHAPES)
def test_16mib_echoclient_over_shaped_link(
    shape: str, hosts: Hosts, link_report: LinkReport
) -> None:
    """``csapp echoclient`` (C twin, a line at a time) against the iterative server:
    16 MiB of mixed lines (2 MiB over tbf) on its input come back on its output,
    byte-exact."""
    size = ECHOCLIENT_SIZE.get(shape, STRESS_SIZE)
    echo_over(
        hosts, link_report, shape, require_impl("c"), "iterative", client="echoclient", size=size
    )


def test_mixed_lines_are_mixed() -> None:
    """The data is what the cases claim: the size asked, the same for a seed,
    empty lines, lines longer than MAXLINE, every byte value but the newline
    inside lines, and a last line without a newline."""
    data = mixed_lines(SMALL_SIZE)
    assert len(data) == SMALL_SIZE and data == mixed_lines(SMALL_SIZE)
    lines = data.split(b"\n")
    assert lines[-1] and not data.endswith(b"\n")
    lengths = [len(line) for line in lines]
    assert 0 in lengths and max(lengths) > csapp.MAXLINE
    assert sum(1 for n in lengths if n <= 100) > len(lengths) // 2
    assert set(data) == set(range(256))


def test_leftovers_of_dead_sessions_are_removed(hosts: Hosts) -> None:
    """At the start of a session, the namespaces a killed session left behind
    (csapp-<pid>-a/b whose pid no longer runs) are deleted; a live session's stay."""
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait(COMMAND_TIMEOUT)
    dead, live = f"csapp-{gone.pid}-a", f"csapp-{os.getppid()}-b"
    try:
        for name in (dead, live):
            command("ip", "netns", "add", name)
        removed = remove_leftovers()
        names = command("ip", "netns", "list")
        assert dead in removed and f"{dead} " not in names + " ", names
        assert live not in removed and live in names, names
        assert hosts.names["a"] in names and hosts.names["b"] in names, names
    finally:
        for name in (dead, live):
            try:
                command("ip", "netns", "del", name)
            except NetnsError:
                pass
