"""open_clientfd and open_listenfd: dual stack, restarts, no descriptor leaks."""

from __future__ import annotations

import errno
import os
import socket

import pytest

import csapp
from csapp.sockets import local_address, numeric_address
from support.netutil import fd_count, has_ipv6_loopback

IPV6 = has_ipv6_loopback()
needs_ipv6 = pytest.mark.skipif(not IPV6, reason="no IPv6 loopback here")


def _accept(listenfd: int) -> socket.socket:
    listener = socket.socket(fileno=listenfd)
    try:
        listener.settimeout(5)
        conn, _address = listener.accept()
        return conn
    finally:
        listener.detach()


def _free_port() -> int:
    """A port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def listenfd():
    fd = csapp.open_listenfd(0)
    yield fd
    os.close(fd)


def test_descriptors_are_plain_ints(listenfd: int) -> None:
    port = local_address(listenfd)[1]
    clientfd = csapp.open_clientfd("127.0.0.1", port)
    try:
        assert type(listenfd) is int and type(clientfd) is int
        with socket.socket(fileno=os.dup(clientfd)) as sock:
            assert sock.type == socket.SOCK_STREAM
    finally:
        os.close(clientfd)
        _accept(listenfd).close()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", pytest.param("::1", marks=needs_ipv6)])
def test_listening_without_host_accepts_ipv4_and_ipv6(listenfd: int, host: str) -> None:
    port = local_address(listenfd)[1]
    clientfd = csapp.open_clientfd(host, port)
    try:
        with _accept(listenfd) as conn:
            os.write(clientfd, b"hi\n")
            assert conn.recv(3) == b"hi\n"
    finally:
        os.close(clientfd)


@needs_ipv6
def test_listening_without_host_is_one_dual_stack_socket(listenfd: int) -> None:
    with socket.socket(fileno=os.dup(listenfd)) as sock:
        assert sock.family == socket.AF_INET6
        assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1


@needs_ipv6
def test_an_explicit_ipv4_host_listens_on_ipv4_only() -> None:
    fd = csapp.open_listenfd(0, "127.0.0.1")
    try:
        port = local_address(fd)[1]
        with pytest.raises(ConnectionRefusedError):
            csapp.open_clientfd("::1", port)
    finally:
        os.close(fd)


def test_port_may_be_a_string() -> None:
    fd = csapp.open_listenfd("0", "127.0.0.1", backlog=5)
    try:
        port = local_address(fd)[1]
        os.close(csapp.open_clientfd("127.0.0.1", str(port)))
    finally:
        os.close(fd)


def test_restart_on_the_same_port_right_after_connections_closed() -> None:
    fd = csapp.open_listenfd(0)
    port = local_address(fd)[1]
    clientfd = csapp.open_clientfd("localhost", port)
    conn = _accept(fd)
    conn.close()  # the server closes first: its side goes to TIME_WAIT
    os.close(clientfd)
    os.close(fd)
    again = csapp.open_listenfd(port)
    try:
        assert local_address(again)[1] == port
        os.close(csapp.open_clientfd("127.0.0.1", port))
    finally:
        os.close(again)


def test_port_in_use_raises_and_leaks_nothing(listenfd: int) -> None:
    port = local_address(listenfd)[1]
    before = fd_count()
    for host in (None, "127.0.0.1", "localhost"):
        with pytest.raises(OSError) as info:
            csapp.open_listenfd(port, host)
        assert info.value.errno == errno.EADDRINUSE
    assert fd_count() == before


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", pytest.param("::1", marks=needs_ipv6)])
def test_refused_connect_raises_and_leaks_nothing(host: str) -> None:
    port = _free_port()
    before = fd_count()
    with pytest.raises(ConnectionRefusedError):
        csapp.open_clientfd(host, port)
    assert fd_count() == before


@pytest.mark.parametrize(
    "host", ["no-such-host.invalid", "bad host name!", "a" * 70 + ".example", "two..dots"]
)
def test_failed_lookup_raises_gaierror_and_leaks_nothing(host: str) -> None:
    before = fd_count()
    with pytest.raises(socket.gaierror):
        csapp.open_clientfd(host, 80)
    with pytest.raises(socket.gaierror):
        csapp.open_listenfd(0, host)
    assert fd_count() == before


@pytest.mark.parametrize(
    "port, error", [(-1, ValueError), (65536, ValueError), (True, TypeError), (8.0, TypeError)]
)
def test_bad_ports_are_refused_before_any_lookup(port: object, error: type) -> None:
    with pytest.raises(error):
        csapp.open_clientfd("127.0.0.1", port)  # type: ignore[arg-type]
    with pytest.raises(error):
        csapp.open_listenfd(port)  # type: ignore[arg-type]


def test_a_non_numeric_service_is_a_lookup_error() -> None:
    with pytest.raises(socket.gaierror):
        csapp.open_clientfd("127.0.0.1", "http")


def test_numeric_address_unmaps_ipv4_in_ipv6() -> None:
    assert numeric_address(("::ffff:127.0.0.1", 80, 0, 0)) == ("127.0.0.1", 80)
    assert numeric_address(("::1", 80, 0, 0)) == ("::1", 80)
    assert numeric_address(("127.0.0.1", 8)) == ("127.0.0.1", 8)
