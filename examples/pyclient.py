"""The lecture's plain-socket Python client, made correct (no csapp needed).

Run it against ``python examples/pyserver.py PORT``:

    python examples/pyclient.py HOST PORT "some message"
    python examples/pyclient.py HOST PORT < file        # the message from stdin

It sends the message, shuts down its sending side so the server sees EOF,
and reads the reply until the server closes. The reply goes to standard
output byte for byte; ``sent N bytes, received M bytes in K recv calls`` goes
to standard error, so you can count the pieces: ``recv(1024)`` returns at
most 1024 bytes, and often fewer (a short count) when less has arrived yet.

The fixes to the lecture version, and why:
1. ``s.send(msg)`` -> ``s.sendall(msg)``: ``send`` may write only part of a
   large message (a short count) when the socket buffer fills up.
2. ``s.shutdown(SHUT_WR)`` after sending: without it the server cannot tell
   the message is complete (it would wait for more, and so would we).
3. ``data = s.recv(1024)`` once -> recv until ``b""``: the reply arrives in
   pieces of whatever size the network delivers, so one ``recv`` returns
   only the first piece (and never more than 1024 bytes).
"""

from __future__ import annotations

import socket
import sys
from typing import List, Tuple

BUFSIZE = 1024


def request(host: str, port: int, message: bytes) -> Tuple[bytes, int]:
    """Send ``message``, return the whole reply and the number of recv calls."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # IPv4 as in the lecture
        s.connect((host, port))
        s.sendall(message)  # fix 1
        s.shutdown(socket.SHUT_WR)  # fix 2: "that was all": the server reads EOF
        chunks: List[bytes] = []
        calls = 0
        while True:  # fix 3: read until the server closes
            data = s.recv(BUFSIZE)
            calls += 1
            if not data:
                return b"".join(chunks), calls
            chunks.append(data)


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        sys.stderr.write(f"usage: {argv[0]} <host> <port> [message]\n")
        return 1
    message = argv[3].encode() if len(argv) == 4 else sys.stdin.buffer.read()
    try:
        reply, calls = request(argv[1], int(argv[2]), message)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"{argv[0]}: {exc}\n")
        return 1
    sys.stdout.buffer.write(reply)
    sys.stdout.buffer.flush()
    sys.stderr.write(
        f"sent {len(message)} bytes, received {len(reply)} bytes in {calls} recv calls\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
