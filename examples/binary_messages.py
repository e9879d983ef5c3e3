"""Length-prefixed binary messages: text and binary frames on one stream.

Run it:

    python examples/binary_messages.py --demo          # both sides over a socketpair
    python examples/binary_messages.py server PORT     # PORT 0 picks a free port
    python examples/binary_messages.py client HOST PORT hello "naïve café" @picture.png

In ``client`` mode each argument is one frame: ``@FILE`` sends the file's
bytes as a binary frame (``@-``: standard input), anything else is a text
frame. The client prints each frame it sends (``->``) and each reply (``<-``).

Lines cannot carry binary data (a ``\\n`` or NUL inside would cut it), so
each message gets a fixed header in front:

    +---------------------------+--------+----------------------+
    | length: 4 bytes, unsigned | kind:  | body: ``length``     |
    | big-endian (network order)| 1 byte | bytes, any values    |
    +---------------------------+--------+----------------------+

``struct.pack("!Ic", length, kind)`` writes it: ``!`` is network byte order
with no padding, so it is C's ``uint32_t n = htonl(length)`` followed by one
byte. Kinds: ``T`` (UTF-8 text) and ``B`` (binary). The reader takes the
header with ``Rio.readnb(5)`` and the body with ``Rio.readnb(length)``: both
return short only at EOF, whatever pieces the bytes arrive in, so a short
result means the peer hung up mid-frame.

The server first sends one text line (``FRAMES/1 ready``), which the client
reads with ``readlineb`` on the same ``Rio`` that then reads the frames:
lines and counted reads mix freely on one ``Rio`` (as in an HTTP header and
body), never with a raw ``os.read`` of the same descriptor, which would miss
what the ``Rio`` already buffered. It answers a text frame with the text in
capitals, and a binary frame with 8 bytes: ``struct.pack("!II", length,
crc32)``. EOF between frames ends a session cleanly; EOF inside one is a
protocol error. Ctrl-C or SIGTERM stops the server (exit status 0).
"""

from __future__ import annotations

import os
import select
import signal
import socket
import struct
import sys
import threading
import zlib
from typing import List, Optional, Tuple

import csapp

HEADER = struct.Struct("!Ic")  # length (uint32, network order), kind (1 byte)
SUMMARY = struct.Struct("!II")  # a binary frame's reply: its length and CRC-32
TEXT, BINARY = b"T", b"B"
GREETING = b"FRAMES/1 ready\n"
MAX_FRAME = 1 << 24  # refuse absurd lengths (a corrupt or hostile header)

Frame = Tuple[bytes, bytes]  # (kind, body)


class ProtocolError(Exception):
    """The peer broke the frame format (a truncated frame, an unknown kind, ...)."""


def write_frame(fd: int, kind: bytes, body: bytes) -> None:
    """Send one frame with ``rio_writen`` (never a short count).

    Header and body go out in one write: a 5-byte header written alone could
    sit in the kernel waiting for Nagle's algorithm, delaying every message.
    """
    csapp.rio_writen(fd, HEADER.pack(len(body), kind) + body)


def read_frame(rio: csapp.Rio) -> Optional[Frame]:
    """Read one frame with ``rio_readnb``; ``None`` at EOF between frames."""
    header = rio.readnb(HEADER.size)  # rio_readnb(&rio, hdr, 5)
    if not header:
        return None  # EOF at a frame boundary: done
    if len(header) < HEADER.size:
        raise ProtocolError(f"truncated header: {len(header)} of {HEADER.size} bytes")
    length, kind = HEADER.unpack(header)  # length = ntohl(n)
    if kind not in (TEXT, BINARY):
        raise ProtocolError(f"unknown frame kind {kind!r}")
    if length > MAX_FRAME:
        raise ProtocolError(f"frame of {length} bytes is too long")
    body = rio.readnb(length)  # rio_readnb(&rio, body, length)
    if len(body) < length:
        raise ProtocolError(f"truncated frame: {len(body)} of {length} bytes")
    return kind, body


def describe(kind: bytes, body: bytes) -> str:
    """One line about a frame: text as text, binary as its first bytes in hex."""
    if kind == TEXT:
        return f"T {len(body)} bytes {body.decode('utf-8')!r}"
    more = " ..." if len(body) > 8 else ""
    return f"B {len(body)} bytes [{body[:8].hex(' ')}{more}]"


# ------------------------------------------------------------------ server


def answer(kind: bytes, body: bytes) -> Frame:
    """The server's reply to one frame."""
    if kind == TEXT:
        return TEXT, body.decode("utf-8").upper().encode("utf-8")
    return BINARY, SUMMARY.pack(len(body), zlib.crc32(body))


def serve(connfd: int) -> int:
    """Serve one connection until EOF; returns the number of frames answered."""
    csapp.rio_writen(connfd, GREETING)
    frames = 0
    with csapp.Rio(connfd) as rio:  # rio_readinitb(&rio, connfd)
        while (frame := read_frame(rio)) is not None:
            try:
                reply = answer(*frame)
            except UnicodeDecodeError as exc:
                raise ProtocolError(f"text frame is not UTF-8: {exc.reason}") from None
            write_frame(connfd, *reply)
            frames += 1
    return frames


def accept(listenfd: int, wakeup: int) -> int:
    """``Accept``, woken by a signal too (see examples/echoserveri.py)."""
    while True:
        ready, _, _ = select.select([listenfd, wakeup], [], [])
        if wakeup in ready:
            os.read(wakeup, 512)
        if listenfd in ready:
            break
    listener = socket.socket(fileno=listenfd)
    try:
        conn, _address = listener.accept()
        return conn.detach()
    finally:
        listener.detach()


def run_server(port: str) -> int:
    """``server PORT``: answer frames, one client at a time, until a signal."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    listenfd = csapp.open_listenfd(port)
    try:
        listener = socket.socket(fileno=listenfd)
        print(f"listening on port {listener.getsockname()[1]}", flush=True)
        listener.detach()
        while True:
            connfd = accept(listenfd, wake_r)
            try:
                frames = serve(connfd)
                print(f"answered {frames} frames", flush=True)
            except (ProtocolError, ConnectionError) as exc:
                print(f"dropped a client: {exc}", flush=True)
            finally:
                os.close(connfd)
    except KeyboardInterrupt:
        return 0
    finally:
        os.close(listenfd)


# ------------------------------------------------------------------ client


def exchange(fd: int, frames: List[Frame], split: int = -1) -> List[str]:
    """Read the greeting, send each frame and read its reply; return the log.

    The frame at index ``split`` is sent one byte per write, to show that
    ``readnb`` puts a frame together from however many pieces arrive.
    """
    log: List[str] = []
    with csapp.Rio(fd) as rio:
        greeting = rio.readlineb()  # a text line first ...
        log.append(f"greeting: {greeting.decode().rstrip()}")
        for index, (kind, body) in enumerate(frames):  # ... then frames, same Rio
            if index == split:
                wire = HEADER.pack(len(body), kind) + body
                for i in range(len(wire)):
                    csapp.rio_writen(fd, wire[i : i + 1])
                log.append(f"-> {describe(kind, body)}  (one byte per write)")
            else:
                write_frame(fd, kind, body)
                log.append(f"-> {describe(kind, body)}")
            reply = read_frame(rio)
            if reply is None:
                raise ProtocolError("the server closed the connection")
            log.append(f"<- {describe(*reply)}")
            if reply[0] == BINARY:
                length, crc = SUMMARY.unpack(reply[1])  # ntohl() of each field
                ok = (length, crc) == (len(body), zlib.crc32(body))
                verdict = "match" if ok else "MISMATCH"
                log.append(f"   length {length}, crc32 0x{crc:08x}: {verdict}")
    return log


def frame_of(argument: str) -> Frame:
    """A command-line argument as a frame: ``@FILE`` binary, else text."""
    if argument == "@-":
        return BINARY, sys.stdin.buffer.read()
    if argument.startswith("@"):
        with open(argument[1:], "rb") as f:
            return BINARY, f.read()
    return TEXT, argument.encode("utf-8")


def run_client(host: str, port: str, arguments: List[str]) -> int:
    """``client HOST PORT ARG...``: one frame per argument."""
    frames = [frame_of(a) for a in arguments]
    clientfd = csapp.open_clientfd(host, port)
    try:
        for line in exchange(clientfd, frames):
            print(line)
    finally:
        os.close(clientfd)
    return 0


# -------------------------------------------------------------------- demo


DEMO_FRAMES: List[Frame] = [
    (TEXT, b"hello"),
    (TEXT, "naïve café".encode()),  # 10 characters, 12 bytes
    (BINARY, b"\x00\x01\n\r\xfe\xff"),  # NUL and newline: no line could carry it
    (BINARY, b""),  # an empty frame is fine
    (BINARY, bytes(range(256)) * 400),  # 102400 bytes: many reads
    (TEXT, b"split into 1-byte writes"),
]


def run_demo() -> int:
    """Both sides over a socketpair, the server in a thread; print the exchange."""
    client, server = socket.socketpair()
    served: List[int] = []
    thread = threading.Thread(target=lambda: served.append(serve(server.fileno())), daemon=True)
    thread.start()
    try:
        log = exchange(client.fileno(), DEMO_FRAMES, split=len(DEMO_FRAMES) - 1)
        client.shutdown(socket.SHUT_WR)  # EOF between frames: the end
        thread.join(10)
    finally:
        client.close()
    server.close()
    for line in log:
        print(line)
    print(f"server answered {served[0] if served else '?'} frames, then saw EOF")
    return 0 if served == [len(DEMO_FRAMES)] else 1


def main(argv: List[str]) -> int:
    usage = f"usage: {argv[0]} --demo | server PORT | client HOST PORT ARG...\n"
    try:
        if argv[1:] == ["--demo"]:
            return run_demo()
        if len(argv) == 3 and argv[1] == "server":
            return run_server(argv[2])
        if len(argv) >= 5 and argv[1] == "client":
            return run_client(argv[2], argv[3], argv[4:])
    except (OSError, ProtocolError) as exc:
        sys.stderr.write(f"{argv[0]}: {exc}\n")
        return 1
    sys.stderr.write(usage)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
