"""Every program in examples/ runs as its docstring says, and does what it says.

Each example runs as a user would run it: ``python examples/X.py ARGS`` in a
child process, with the arguments taken from the "Run it" commands of its own
docstring (placeholders such as PORT and HOST filled in). Servers listen on a
free loopback port and are killed when the test ends; every wait is bounded.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import random
import re
import shlex
import signal
import socket
import struct
import subprocess
import sys
import zlib
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Iterator, List, Tuple

import pytest

import csapp
from support.netutil import (
    TIMEOUT,
    child_env,
    has_ipv6_loopback,
    read_line,
)

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"

# How many commands each example's docstring documents. A new example, or a
# new documented command, must come with a test that runs it (and an entry here).
DOCUMENTED = {
    "binary_messages.py": 3,
    "cpstdin.py": 2,
    "echoclient.py": 1,
    "echoserveri.py": 1,
    "hostinfo.py": 3,
    "pyclient.py": 2,
    "pyserver.py": 1,
}


# ----------------------------------------------------------------- helpers


def documented_commands(name: str) -> List[List[str]]:
    """The ``python examples/NAME ...`` commands of the example's docstring.

    Each is the argument list after the script name, with shell redirections
    (``< in``, ``> out``) and ``# comments`` dropped.
    """
    source = (EXAMPLES / name).read_text(encoding="utf-8")
    docstring = ast.get_docstring(ast.parse(source)) or ""
    commands = []
    for line in docstring.splitlines():
        line = line.strip()
        if not line.startswith(f"python examples/{name}"):
            continue
        words = shlex.split(line, comments=True)
        args: List[str] = []
        skip = False
        for word in words[2:]:
            if skip:
                skip = False
            elif word in ("<", ">"):
                skip = True
            else:
                args.append(word)
        commands.append(args)
    return commands


def command(name: str, index: int, **values: str) -> List[str]:
    """Documented command ``index`` of ``name`` as an argv, placeholders filled.

    ``values`` maps a documented word (``PORT``, ``HOST``, ``@picture.png``)
    to what to run instead; an upper-case placeholder left unfilled is an error.
    """
    args = []
    for word in documented_commands(name)[index]:
        if word in values:
            args.append(values[word])
        else:
            assert not re.fullmatch(r"[A-Z]+", word), f"{name}: fill in {word}"
            args.append(word)
    return [sys.executable, str(EXAMPLES / name), *args]


def run(
    argv: List[str], impl: str = csapp.IMPLEMENTATION, input: bytes = b"", timeout: float = 30.0
) -> subprocess.CompletedProcess[bytes]:
    """Run an example to completion in the repository root, output captured."""
    return subprocess.run(
        argv,
        input=input,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(impl),
        cwd=ROOT,
        timeout=timeout,
    )


@contextmanager
def server(
    argv: List[str], impl: str = csapp.IMPLEMENTATION
) -> Iterator[Tuple[subprocess.Popen[bytes], int]]:
    """Start an example server; yield it and the port from its first line.

    The server is killed on the way out, whatever happened.
    """
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(impl), cwd=ROOT
    )
    try:
        assert proc.stdout is not None
        first = read_line(proc.stdout.fileno(), TIMEOUT)
        match = re.fullmatch(rb"listening on port (\d+)\n", first)
        assert match, f"first line {first!r}"
        yield proc, int(match.group(1))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(TIMEOUT)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def next_line(proc: subprocess.Popen[bytes]) -> str:
    """The server's next line of standard output (bounded wait)."""
    assert proc.stdout is not None
    return read_line(proc.stdout.fileno(), TIMEOUT).decode()


def stop(proc: subprocess.Popen[bytes], signum: int) -> Tuple[int, bytes]:
    """Send ``signum``; the exit status and everything on standard error."""
    proc.send_signal(signum)
    status = proc.wait(TIMEOUT)
    assert proc.stderr is not None
    return status, proc.stderr.read()


def recv_all(sock: socket.socket) -> bytes:
    chunks = []
    while data := sock.recv(65536):
        chunks.append(data)
    return b"".join(chunks)


def load_example(name: str) -> ModuleType:
    """Import ``examples/NAME`` as a module (its ``main`` does not run)."""
    spec = importlib.util.spec_from_file_location(name[:-3], EXAMPLES / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections (bound, not listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


# ------------------------------------------------------------ docstrings


def test_every_example_documents_how_to_run_it() -> None:
    found = {path.name: len(documented_commands(path.name)) for path in EXAMPLES.glob("*.py")}
    assert found == DOCUMENTED


def test_documented_commands_are_parsed_as_written() -> None:
    # The parser the other tests rely on, checked on two known docstrings.
    assert documented_commands("cpstdin.py") == [[], ["--buffered"]]
    assert documented_commands("pyclient.py") == [
        ["HOST", "PORT", "some message"],
        ["HOST", "PORT"],
    ]


# -------------------------------------------------------------- cpstdin


def copy_input() -> bytes:
    rng = random.Random(6)
    return (
        b"first line\n\0\0NUL bytes\n"
        + bytes(range(256))
        + b"\n"
        + b"x" * (csapp.MAXLINE + 100)
        + b"\n"
        + rng.randbytes(6000)
        + b"last line, no newline"
    )


@pytest.mark.parametrize("index", [0, 1], ids=["bytewise", "buffered"])
def test_cpstdin_copies_every_byte(impl: str, index: int) -> None:
    data = copy_input()
    result = run(command("cpstdin.py", index), impl, input=data)
    assert (result.returncode, result.stderr) == (0, b"")
    assert result.stdout == data


@pytest.mark.parametrize("index", [0, 1], ids=["bytewise", "buffered"])
def test_cpstdin_empty_input(index: int) -> None:
    result = run(command("cpstdin.py", index), input=b"")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")


def syscalls() -> Tuple[int, int]:
    """This process's read and write system calls so far (``/proc/self/io``)."""
    with open("/proc/self/io") as f:
        fields = dict(line.split(": ") for line in f.read().splitlines())
    return int(fields["syscr"]), int(fields["syscw"])


@pytest.mark.skipif(not os.path.exists("/proc/self/io"), reason="needs /proc/self/io")
def test_cpstdin_system_calls_bytewise_and_buffered() -> None:
    # In-process over pipes: one read and one write per byte, against a few
    # reads (8 KiB at a time) and one write per line.
    module = load_example("cpstdin.py")
    data = b"abc\n" * 100
    counts = {}
    for copy in (module.copy_bytewise, module.copy_buffered):
        r, w = os.pipe()
        out_r, out_w = os.pipe()
        os.write(w, data)
        os.close(w)
        try:
            before = syscalls()
            copied = copy(r, out_w)
            after = syscalls()
        finally:
            os.close(r)
            os.close(out_w)
        assert copied == len(data)
        assert os.read(out_r, 1 << 16) == data
        os.close(out_r)
        counts[copy.__name__] = (after[0] - before[0], after[1] - before[1])
    reads, writes = counts["copy_bytewise"]
    assert len(data) + 1 <= reads <= len(data) + 10  # + reading /proc/self/io
    assert len(data) <= writes <= len(data) + 10
    reads, writes = counts["copy_buffered"]
    assert reads <= 10  # 400 bytes: one read, then EOF
    assert 100 <= writes <= 110  # one rio_writen per line


# ---------------------------------------------- echoserveri + echoclient


def echo_input() -> bytes:
    return (
        b"hello\n"
        + b"\tbinary \0\xff bytes\n"
        + b"L" * (2 * csapp.MAXLINE + 5)
        + b"\n"
        + b"\n"
        + b"last, without a newline"
    )


def test_echoclient_and_echoserveri_together(impl: str) -> None:
    data = echo_input()
    with server(command("echoserveri.py", 0, PORT="0"), impl) as (proc, port):
        result = run(
            command("echoclient.py", 0, HOST="localhost", PORT=str(port)), impl, input=data
        )
        assert (result.returncode, result.stderr) == (0, b"")
        assert result.stdout == data
        # localhost may be 127.0.0.1 or ::1 here: any name, then the client's port.
        assert re.fullmatch(r"Connected to \([\w.:-]+, [\w-]+\)\n", next_line(proc))
        assert stop(proc, signal.SIGINT) == (0, b"")


def expected_connected(sock: socket.socket) -> str:
    """The line echoserveri prints for this client: C's getnameinfo, flags 0."""
    host, port = sock.getsockname()[:2]
    name, service = socket.getnameinfo((host, port), 0)
    return f"Connected to ({name}, {service})\n"


def test_echoserveri_names_each_client_and_stops_on_sigint(impl: str) -> None:
    with server(command("echoserveri.py", 0, PORT="0"), impl) as (proc, port):
        hosts = ["127.0.0.1"] + (["::1"] if has_ipv6_loopback() else [])
        for host in hosts:
            with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
                assert next_line(proc) == expected_connected(sock)
                sock.sendall(b"one\ntwo\nno newline")  # two lines and a partial one
                sock.shutdown(socket.SHUT_WR)
                assert recv_all(sock) == b"one\ntwo\nno newline"
        # A client that resets its connection does not take the server down.
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            assert next_line(proc) == expected_connected(sock)
            sock.sendall(b"x" * 100_000)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            assert next_line(proc) == expected_connected(sock)
            sock.sendall(b"still there?\n")
            assert sock.recv(100) == b"still there?\n"
        # Ctrl-C while waiting in accept: status 0, nothing on stderr.
        assert stop(proc, signal.SIGINT) == (0, b"")


def test_echoserveri_stops_on_sigterm_while_serving(impl: str) -> None:
    with server(command("echoserveri.py", 0, PORT="0"), impl) as (proc, port):
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            assert next_line(proc) == expected_connected(sock)
            sock.sendall(b"ping\npartial")
            assert sock.recv(100) == b"ping\n"
            # The server is blocked reading the rest of the line: SIGTERM.
            assert stop(proc, signal.SIGTERM) == (0, b"")
            assert recv_all(sock) == b""  # it closed the connection on its way out


def test_echoclient_refused_connection(refused_port: int) -> None:
    result = run(
        command("echoclient.py", 0, HOST="127.0.0.1", PORT=str(refused_port)), input=b"hello\n"
    )
    assert result.returncode == 1
    assert result.stdout == b""
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and "cannot connect to 127.0.0.1 port" in lines[0]
    assert "refused" in lines[0]


# --------------------------------------------------------------- hostinfo


def test_hostinfo_documented_commands() -> None:
    plain, with_hex, ipv4_only = (run(command("hostinfo.py", i)) for i in range(3))
    expected = [
        socket.getnameinfo(info[4], socket.NI_NUMERICHOST)[0]
        for info in socket.getaddrinfo("localhost", None, type=socket.SOCK_STREAM)
    ]
    assert plain.returncode == 0
    assert plain.stdout.decode().splitlines() == expected
    assert "127.0.0.1" in expected
    assert (with_hex.returncode, with_hex.stdout) == (
        0,
        b"::1  0x00000000000000000000000000000001\n",
    )
    assert (ipv4_only.returncode, ipv4_only.stdout) == (0, b"127.0.0.1\n")


def test_hostinfo_hex_is_network_byte_order() -> None:
    result = run([sys.executable, str(EXAMPLES / "hostinfo.py"), "--hex", "10.1.2.3"])
    assert (result.returncode, result.stdout) == (0, b"10.1.2.3  0x0a010203\n")
    # As in C: 0x0a010203 == ntohl(inet_pton(AF_INET, "10.1.2.3")).
    assert (
        socket.ntohl(struct.unpack("=I", socket.inet_pton(socket.AF_INET, "10.1.2.3"))[0])
        == 0x0A010203
    )


@pytest.mark.parametrize("args", [["-4", "::1"], ["no-such-host.invalid"]])
def test_hostinfo_lookup_failure(args: List[str]) -> None:
    result = run([sys.executable, str(EXAMPLES / "hostinfo.py"), *args])
    assert result.returncode == 1
    assert result.stdout == b""
    assert re.fullmatch(rb"getaddrinfo error: [^\n]+\n", result.stderr)


# ------------------------------------------------------- pyserver/pyclient


def test_pyserver_and_pyclient() -> None:
    big = random.Random(7).randbytes(1_000_000)
    with server(command("pyserver.py", 0, PORT="0")) as (proc, port):
        small = run(command("pyclient.py", 0, HOST="127.0.0.1", PORT=str(port)))
        assert (small.returncode, small.stdout) == (0, b"some message")
        assert re.fullmatch(rb"sent 12 bytes, received 12 bytes in \d+ recv calls\n", small.stderr)
        assert re.fullmatch(r"Connected by \(127\.0\.0\.1, \d+\)\n", next_line(proc))
        assert re.fullmatch(r"received 12 bytes in \d+ recv calls\n", next_line(proc))

        large = run(command("pyclient.py", 1, HOST="127.0.0.1", PORT=str(port)), input=big)
        assert large.returncode == 0
        assert large.stdout == big  # every byte back, in order
        assert re.fullmatch(r"Connected by \(127\.0\.0\.1, \d+\)\n", next_line(proc))
        match = re.fullmatch(r"received 1000000 bytes in (\d+) recv calls\n", next_line(proc))
        assert match
        # recv(1024) never returns more than 1024 bytes: one call could not do.
        assert int(match.group(1)) >= 1_000_000 // 1024 + 1
        assert stop(proc, signal.SIGTERM) == (0, b"")


# -------------------------------------------------------- binary_messages


def frame_lines(sent: List[Tuple[bytes, bytes]], split: int = -1) -> List[str]:
    """The exchange as binary_messages prints it, computed independently."""
    lines = ["greeting: FRAMES/1 ready"]
    for index, (kind, body) in enumerate(sent):
        if kind == b"T":
            text = body.decode()
            note = "  (one byte per write)" if index == split else ""
            lines.append(f"-> T {len(body)} bytes {text!r}{note}")
            lines.append(f"<- T {len(text.upper().encode())} bytes {text.upper()!r}")
        else:
            head = " ".join(f"{b:02x}" for b in body[:8]) + (" ..." if len(body) > 8 else "")
            lines.append(f"-> B {len(body)} bytes [{head}]")
            crc = zlib.crc32(body)
            reply = len(body).to_bytes(4, "big") + crc.to_bytes(4, "big")
            lines.append(f"<- B 8 bytes [{' '.join(f'{b:02x}' for b in reply)}]")
            lines.append(f"   length {len(body)}, crc32 0x{crc:08x}: match")
    return lines


def test_binary_messages_demo(impl: str) -> None:
    sent = [
        (b"T", b"hello"),
        (b"T", "naïve café".encode()),
        (b"B", b"\x00\x01\n\r\xfe\xff"),
        (b"B", b""),
        (b"B", bytes(range(256)) * 400),
        (b"T", b"split into 1-byte writes"),
    ]
    result = run(command("binary_messages.py", 0), impl)
    assert (result.returncode, result.stderr) == (0, b"")
    expected = frame_lines(sent, split=5) + ["server answered 6 frames, then saw EOF"]
    assert result.stdout.decode().splitlines() == expected


def test_binary_messages_server_and_client(tmp_path: Path) -> None:
    picture = tmp_path / "picture.png"
    picture.write_bytes(bytes(range(256)) * 3 + b"\n\0")
    with server(command("binary_messages.py", 1, PORT="0")) as (proc, port):
        result = run(
            command(
                "binary_messages.py",
                2,
                HOST="127.0.0.1",
                PORT=str(port),
                **{"@picture.png": f"@{picture}"},
            )
        )
        assert (result.returncode, result.stderr) == (0, b"")
        sent = [(b"T", b"hello"), (b"T", "naïve café".encode()), (b"B", picture.read_bytes())]
        assert result.stdout.decode().splitlines() == frame_lines(sent)
        assert next_line(proc) == "answered 3 frames\n"

        # A frame cut short by EOF is a protocol error for that client only.
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            sock.sendall(struct.pack("!Ic", 10, b"T") + b"abc")
            sock.shutdown(socket.SHUT_WR)
            assert recv_all(sock) == b"FRAMES/1 ready\n"
        assert next_line(proc) == "dropped a client: truncated frame: 3 of 10 bytes\n"

        # The header may arrive in pieces: readnb still reads a whole frame.
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            wire = struct.pack("!Ic", 2, b"T") + b"ok"
            for i in range(len(wire)):
                sock.sendall(wire[i : i + 1])
            sock.shutdown(socket.SHUT_WR)
            assert recv_all(sock) == b"FRAMES/1 ready\n" + b"\x00\x00\x00\x02TOK"
        assert next_line(proc) == "answered 1 frames\n"
        assert stop(proc, signal.SIGINT) == (0, b"")


def test_binary_messages_header_is_network_byte_order() -> None:
    module = load_example("binary_messages.py")
    assert module.HEADER.pack(0x01020304, b"B") == b"\x01\x02\x03\x04B"
    r, w = os.pipe()
    try:
        module.write_frame(w, b"B", b"\0\n\xff")
        os.write(w, b"\x00\x00")  # a header cut short, then EOF
        os.close(w)
        w = -1
        rio = csapp.Rio(r)
        assert module.read_frame(rio) == (b"B", b"\0\n\xff")
        with pytest.raises(module.ProtocolError, match="truncated header: 2 of 5 bytes"):
            module.read_frame(rio)
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_example_usage_errors() -> None:
    # Wrong arguments: a usage line, no traceback.
    for name in (
        "echoserveri.py",
        "echoclient.py",
        "pyserver.py",
        "pyclient.py",
        "binary_messages.py",
    ):
        result = run([sys.executable, str(EXAMPLES / name)])
        assert result.returncode in (1, 2), name
        assert result.stderr.startswith(b"usage: "), (name, result.stderr)
        assert b"Traceback" not in result.stderr
