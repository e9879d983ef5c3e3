"""The lecture's plain-socket Python server, made correct (no csapp needed).

Run it:

    python examples/pyserver.py PORT        # PORT 0 picks a free port

then ``python examples/pyclient.py localhost PORT "some message"``. It prints
``listening on port N`` (flushed), and for each client ``Connected by (HOST,
PORT)`` and ``received N bytes in K recv calls``. Ctrl-C or SIGTERM stops it:
exit status 0, no traceback.

The protocol: the client sends its message and then shuts down its sending
side; the server reads until that EOF and answers with exactly what it
received, then closes. EOF marks the end of the message, so the server never
has to guess whether more is coming (binary_messages.py shows the other way:
a length in front of each message).

The fixes to the lecture version, and why:
1. ``conn.recv(1024)`` once -> recv until it returns ``b""`` (EOF). TCP is a
   byte stream, not a message service: ``recv`` returns whatever has arrived
   so far, from 1 byte up to the size asked. A large message comes in many
   pieces (short counts), so one ``recv`` would answer only a part of it.
2. ``conn.send(data)`` -> ``conn.sendall(data)``. ``send`` is ``write(2)``:
   when the socket's send buffer is full it returns a short count and the
   rest is silently dropped unless you loop; ``sendall`` loops (like
   ``rio_writen``).
3. The server answers with what it received, every byte of it.
4. Ctrl-C/SIGTERM stop it at once (see ``wait_for_client``); a client that
   resets the connection does not take the server down.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sys
from typing import List, Tuple

BUFSIZE = 1024  # as in the lecture: any size works now, it only sets the pace


def wait_for_client(server: socket.socket, wakeup: int) -> None:
    """Block until a client is waiting to be accepted, or a signal arrives.

    ``signal.set_wakeup_fd`` writes a byte to ``wakeup`` for every signal, so a
    signal landing just before we block still wakes ``select``; the Python
    handler then raises ``KeyboardInterrupt``.
    """
    while True:
        ready, _, _ = select.select([server.fileno(), wakeup], [], [])
        if wakeup in ready:
            os.read(wakeup, 512)
        if server.fileno() in ready:
            return


def receive_all(conn: socket.socket) -> Tuple[bytes, int]:
    """Fix 1: recv until EOF. Returns the data and how many recv calls it took."""
    chunks: List[bytes] = []
    calls = 0
    while True:
        data = conn.recv(BUFSIZE)
        calls += 1
        if not data:  # b"": the client shut down its side (EOF)
            return b"".join(chunks), calls
        chunks.append(data)  # often fewer than BUFSIZE bytes: a short count


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write(f"usage: {argv[0]} <port>\n")
        return 1
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)

    # socket(), bind(), listen(): IPv4 as in the lecture (csapp.open_listenfd
    # gives one socket for IPv4 and IPv6 alike).
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        server.bind(("", int(argv[1])))
        server.listen()
        print(f"listening on port {server.getsockname()[1]}", flush=True)
        while True:
            wait_for_client(server, wake_r)
            conn, (host, port) = server.accept()
            with conn:
                print(f"Connected by ({host}, {port})", flush=True)
                try:
                    data, calls = receive_all(conn)
                    print(f"received {len(data)} bytes in {calls} recv calls", flush=True)
                    conn.sendall(data)  # fix 2: every byte, not one send()
                except (ConnectionResetError, BrokenPipeError) as exc:
                    print(f"client lost: {exc}", flush=True)
    except KeyboardInterrupt:
        return 0
    except (OSError, ValueError) as exc:  # a bad port, a port in use
        sys.stderr.write(f"{argv[0]}: {exc}\n")
        return 1
    finally:
        server.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
