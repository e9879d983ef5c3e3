"""The echo client (CSAPP ``echoclient.c``), line for line over csapp.

Run it against any echo server, e.g. ``python examples/echoserveri.py 8000``:

    python examples/echoclient.py HOST PORT

Each line typed (or piped) on standard input goes to the server; the line
the server sends back is printed. It stops at end of input (Ctrl-D) or as
soon as the server closes the connection, with exit status 0.

Differences from the C program, each on purpose:
- when the server closes, C's ``Rio_readlineb`` returns 0 and leaves ``buf``
  untouched, so ``Fputs`` prints the line just sent as if it were a reply;
  here an empty reply means "server gone" and the loop stops;
- a last line without a newline would leave both sides waiting (the server
  reads up to a newline); we half-close after it, so the server sees EOF;
- a refused connection is one line on standard error and exit status 1
  (C's ``Open_clientfd`` wrapper prints and calls ``exit(0)``).
"""

from __future__ import annotations

import os
import socket
import sys

import csapp

STDIN_FILENO = 0
STDOUT_FILENO = 1


def shutdown_write(fd: int) -> None:
    """``shutdown(fd, SHUT_WR)``: tell the server no more lines are coming."""
    sock = socket.socket(fileno=fd)
    try:
        sock.shutdown(socket.SHUT_WR)
    finally:
        sock.detach()


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        sys.stderr.write(f"usage: {argv[0]} <host> <port>\n")
        return 1
    host, port = argv[1], argv[2]

    try:
        clientfd = csapp.open_clientfd(host, port)  # Open_clientfd(host, port)
    except OSError as exc:  # gaierror or ConnectionRefusedError, ...
        sys.stderr.write(f"{argv[0]}: cannot connect to {host} port {port}: {exc}\n")
        return 1
    rio = csapp.Rio(clientfd)  # Rio_readinitb(&rio, clientfd)
    stdin = csapp.Rio(STDIN_FILENO)  # our stdio: a buffer on stdin
    try:
        while True:
            buf = stdin.readlineb(csapp.MAXLINE)  # Fgets(buf, MAXLINE, stdin)
            if not buf:
                break  # EOF on standard input
            csapp.rio_writen(clientfd, buf)  # Rio_writen(clientfd, buf, strlen(buf))
            if not buf.endswith(b"\n") and len(buf) < csapp.MAXLINE - 1:
                shutdown_write(clientfd)  # last line, no newline: send EOF
            reply = rio.readlineb(csapp.MAXLINE)  # Rio_readlineb(&rio, buf, MAXLINE)
            if not reply:
                break  # server closed (C: prints buf again)
            csapp.rio_writen(STDOUT_FILENO, reply)  # Fputs(buf, stdout)
    except (ConnectionResetError, BrokenPipeError) as exc:
        sys.stderr.write(f"{argv[0]}: connection to {host} port {port} lost: {exc}\n")
        return 1
    finally:
        os.close(clientfd)  # Close(clientfd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
