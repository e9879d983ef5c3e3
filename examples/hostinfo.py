"""Every address of a host name (CSAPP ``hostinfo.c``), IPv4 and IPv6.

Run it:

    python examples/hostinfo.py localhost
    python examples/hostinfo.py --hex ::1            # with each address's bytes
    python examples/hostinfo.py -4 localhost         # IPv4 only, as in C

Like the C program: ``getaddrinfo`` with a ``SOCK_STREAM`` hint (so each
address comes once, not once per socket type), then ``getnameinfo`` with
``NI_NUMERICHOST`` to print each address as a string. Unlike it, the family
is ``AF_UNSPEC`` by default, so IPv6 addresses are listed too.

``--hex`` also shows the address in network byte order, as ``inet_pton``
stores it in ``struct in_addr``/``in6_addr`` (for IPv4, ``ntohl`` of those
four bytes is the number the book's ``hex2dd``/``dd2hex`` exercises convert).

A failed lookup prints ``getaddrinfo error: ...`` and exits with status 1.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
from typing import List


def hostinfo(name: str, family: int = socket.AF_UNSPEC) -> List[str]:
    """The numeric addresses of ``name`` in ``getaddrinfo``'s order (C ``hostinfo``)."""
    # hints.ai_family = family; hints.ai_socktype = SOCK_STREAM (connections only)
    listp = socket.getaddrinfo(name, None, family, socket.SOCK_STREAM)
    addresses = []
    for _family, _type, _proto, _canonname, ai_addr in listp:  # for (p = listp; p; p = p->ai_next)
        host, _service = socket.getnameinfo(ai_addr, socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)
        addresses.append(host)
    return addresses  # no Freeaddrinfo: Python frees the list


def as_hex(address: str) -> str:
    """``address`` as a hex number, from the bytes ``inet_pton`` gives (C ``dd2hex``)."""
    if ":" in address:  # IPv6; drop a "%zone" suffix
        packed = socket.inet_pton(socket.AF_INET6, address.split("%")[0])
        return "0x" + packed.hex()  # 16 bytes, network byte order
    packed = socket.inet_pton(socket.AF_INET, address)  # 4 bytes, network byte order
    (number,) = struct.unpack("!I", packed)  # ntohl(addr.s_addr)
    return f"0x{number:08x}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print every address of a host name.")
    parser.add_argument("name", help="a host name or a numeric address")
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-4",
        dest="family",
        action="store_const",
        const=socket.AF_INET,
        default=socket.AF_UNSPEC,
        help="IPv4 addresses only (as in C)",
    )
    group.add_argument(
        "-6", dest="family", action="store_const", const=socket.AF_INET6, help="IPv6 addresses only"
    )
    parser.add_argument(
        "--hex", action="store_true", help="also print each address in network byte order, in hex"
    )
    args = parser.parse_args(argv)
    try:
        addresses = hostinfo(args.name, args.family)
    except socket.gaierror as exc:  # C: getaddrinfo returns a nonzero code
        sys.stderr.write(f"getaddrinfo error: {exc.strerror}\n")  # gai_strerror(rc)
        return 1
    for address in addresses:
        print(f"{address}  {as_hex(address)}" if args.hex else address)
    return 0


if __name__ == "__main__":
    sys.exit(main())
