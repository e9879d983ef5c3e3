"""Socket helpers: CSAPP ``open_clientfd`` and ``open_listenfd``.

Both return plain descriptors (ints), as in C; ``socket.socket(fileno=fd)``
wraps one. Every failure path closes what it opened.
"""

from __future__ import annotations

import socket
import struct
import warnings
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

__all__ = [
    "LISTENQ",
    "address_info",
    "local_address",
    "numeric_address",
    "open_clientfd",
    "open_listenfd",
    "set_kernel_timeouts",
]

# The default backlog of open_listenfd (CSAPP's LISTENQ in csapp.h).
LISTENQ = 1024

SockAddr = Tuple[Any, ...]
_AddrInfo = Tuple[socket.AddressFamily, socket.SocketKind, int, str, SockAddr]


def _service(port: Union[int, str]) -> str:
    """The port as the numeric service string ``getaddrinfo`` wants."""
    if isinstance(port, bool):
        raise TypeError("port must be an int or a str, not 'bool'")
    if isinstance(port, int):
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be 0..65535, not {port}")
        return str(port)
    if isinstance(port, str):
        return port
    raise TypeError(f"port must be an int or a str, not '{type(port).__name__}'")


def address_info(
    host: Optional[str], service: Optional[str], flags: int = 0, kind: int = socket.SOCK_STREAM
) -> Sequence[_AddrInfo]:
    """``socket.getaddrinfo(host, service, AF_UNSPEC, kind, 0, flags)`` (C
    ``getaddrinfo`` with those hints); a name that cannot be encoded (IDNA:
    an empty or over-long label) is a ``socket.gaierror`` too."""
    try:
        return socket.getaddrinfo(host, service, socket.AF_UNSPEC, kind, 0, flags)
    except UnicodeError as exc:
        reason = exc.__cause__ or exc
        raise socket.gaierror(socket.EAI_NONAME, f"invalid host name ({reason})") from None


def _lookup(host: Optional[str], service: str, flags: int) -> Sequence[_AddrInfo]:
    """``getaddrinfo`` for stream sockets with a numeric service.

    A numeric address literal is looked up without ``AI_ADDRCONFIG`` so that
    ``"::1"`` works on a host whose only IPv6 address is the loopback.
    """
    flags |= socket.AI_NUMERICSERV
    if host is not None:
        try:
            return address_info(host, service, flags | socket.AI_NUMERICHOST)
        except socket.gaierror:
            pass  # not a literal: a name, looked up below
        flags |= socket.AI_ADDRCONFIG
    return address_info(host, service, flags)


def _no_address(host: Optional[str]) -> socket.gaierror:
    return socket.gaierror(socket.EAI_NONAME, f"no address for {host!r}")


def _first_that_works(
    infos: Sequence[_AddrInfo],
    host: Optional[str],
    setup: Callable[[socket.socket, int, SockAddr], None],
) -> int:
    """CSAPP's loop over ``getaddrinfo`` results: a socket per address, ``setup``
    it (connect, or bind and listen), keep the first that works. The socket of
    every address that fails is closed; if all fail, the last error is raised."""
    last_error: OSError = _no_address(host)
    for family, kind, proto, _name, address in infos:
        try:
            sock = socket.socket(family, kind, proto)
        except OSError as exc:
            last_error = exc
            continue
        try:
            setup(sock, family, address)
        except OSError as exc:
            sock.close()
            last_error = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock.detach()
    raise last_error


def open_clientfd(host: str, port: Union[int, str]) -> int:
    """A descriptor connected to ``host`` and ``port`` (CSAPP ``open_clientfd``).

    Tries every address ``getaddrinfo`` gives, in order. A failed lookup raises
    ``socket.gaierror``; when every address fails, the last ``OSError``.
    """

    def connect(sock: socket.socket, family: int, address: SockAddr) -> None:
        sock.connect(address)

    return _first_that_works(_lookup(host, _service(port), 0), host, connect)


def _listen_order(infos: Sequence[_AddrInfo]) -> List[_AddrInfo]:
    """IPv6 first: one dual-stack socket then serves IPv4 clients as well."""
    return sorted(infos, key=lambda info: info[0] != socket.AF_INET6)


def open_listenfd(port: Union[int, str], host: Optional[str] = None, backlog: int = LISTENQ) -> int:
    """A listening descriptor on ``port`` (CSAPP ``open_listenfd``).

    ``SO_REUSEADDR`` is set, so a restart right after connections closed
    succeeds; ``port=0`` picks a free port. With no ``host`` the socket is
    dual-stack (``::`` with ``IPV6_V6ONLY`` off) where the system has IPv6, so
    ``127.0.0.1``, ``::1`` and ``localhost`` all connect; otherwise IPv4.
    """
    infos = _lookup(host, _service(port), socket.AI_PASSIVE)
    if host is None:
        infos = _listen_order(infos)

    def bind_and_listen(sock: socket.socket, family: int, address: SockAddr) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if host is None and family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(backlog)

    return _first_that_works(infos, host, bind_and_listen)


def numeric_address(address: SockAddr) -> Tuple[str, int]:
    """``(host, port)`` of a socket address, numeric, IPv4-mapped IPv6 unmapped."""
    host, port = socket.getnameinfo(address, socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)
    if host.startswith("::ffff:") and "." in host:
        host = host[len("::ffff:") :]
    return host, int(port)


def local_address(fd: int) -> Tuple[str, int]:
    """The numeric ``(host, port)`` a socket descriptor is bound to (``getsockname``)."""
    sock = socket.socket(fileno=fd)
    try:
        return numeric_address(sock.getsockname())
    finally:
        sock.detach()


def set_kernel_timeouts(fd: int, seconds: float) -> None:
    """``SO_RCVTIMEO``/``SO_SNDTIMEO``: a blocked read or write gives up with EAGAIN."""
    whole = int(seconds)
    value = struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
    sock = socket.socket(fileno=fd)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
    finally:
        sock.detach()


def __getattr__(name: str) -> Any:
    """Deprecated names: ``getaddrinfo`` is ``address_info`` (it shadowed
    ``socket.getaddrinfo`` with another signature)."""
    if name == "getaddrinfo":
        warnings.warn(
            "csapp.sockets.getaddrinfo is deprecated: use csapp.sockets.address_info",
            DeprecationWarning,
            stacklevel=2,
        )
        return address_info
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
