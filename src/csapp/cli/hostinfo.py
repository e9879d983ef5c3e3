"""Every address of a host name (CSAPP ``hostinfo``), IPv4 and IPv6 alike."""

from __future__ import annotations

import socket
from typing import List

from ..sockets import address_info

__all__ = ["hostinfo"]


def hostinfo(name: str) -> List[str]:
    """The numeric addresses ``getaddrinfo`` gives for ``name``, in its order.

    Like CSAPP ``hostinfo`` (a ``SOCK_STREAM`` hint so each address comes
    once, ``getnameinfo`` with ``NI_NUMERICHOST``) but not limited to IPv4.
    A failed lookup raises ``socket.gaierror``.
    """
    infos = address_info(name, None)
    addresses: List[str] = []
    for _family, _kind, _proto, _canonname, sockaddr in infos:
        host, _service = socket.getnameinfo(sockaddr, socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)
        if host not in addresses:
            addresses.append(host)
    return addresses
