"""The lecture's own test tool: ``telnet`` (Debian ``telnet``), driven through a
pseudo-terminal as a person types into it, against every echo server mode.

Each line typed comes back from the server: the terminal shows it twice (the
local echo of what was typed, then the server's reply), and the server's
verbose log counts the bytes telnet sent, the CR LF of the Enter key
included, so what went back is what was sent."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from typing import Callable

import pytest

from support.netutil import HANG_GUARD, MODES, ServerProcess, require_program, wait_until

pytestmark = pytest.mark.usefixtures("watchdog")

LINES = [b"hello from telnet", b"a second line, longer: " + b"x" * 200]


class Terminal:
    """``telnet HOST PORT`` on a pseudo-terminal: type, and read the screen."""

    def __init__(self, telnet: str, port: int) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [telnet, "127.0.0.1", str(port)],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            env={**os.environ, "TERM": "dumb"},
        )
        os.close(slave)
        self.screen = b""

    def read_until(self, wanted: Callable[[bytes], bool]) -> bool:
        deadline = time.monotonic() + HANG_GUARD
        while not wanted(self.screen):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the terminal closed: telnet exited
                    return wanted(self.screen)
                if not chunk:
                    return wanted(self.screen)
                self.screen += chunk
        return True

    def type(self, text: bytes) -> None:
        os.write(self.master, text)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(HANG_GUARD)
        os.close(self.master)


@pytest.mark.parametrize("mode", MODES)
def test_telnet_lines_come_back(impl: str, mode: str, start_server) -> None:
    telnet = require_program("telnet", "telnet")
    server: ServerProcess = start_server(impl, mode, "-v")
    term = Terminal(telnet, server.port)
    try:
        assert term.read_until(lambda s: b"Escape character is" in s), term.screen
        for line in LINES:
            term.type(line + b"\r")  # the Enter key; telnet sends CR LF
            assert term.read_until(lambda s, line=line: s.count(line) >= 2), term.screen
        sent = [f"server received {len(line) + 2} bytes" for line in LINES]
        assert wait_until(lambda: all(s in server.stderr() for s in sent), timeout=HANG_GUARD), (
            server.stderr()
        )
        term.type(b"\x1d")  # Ctrl-], telnet's escape, then quit
        assert term.read_until(lambda s: b"telnet>" in s), term.screen
        term.type(b"quit\r")
        assert term.proc.wait(HANG_GUARD) == 0
        assert server.alive()  # the client left; the server goes on
    finally:
        term.close()
