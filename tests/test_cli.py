"""The csapp command line: echoclient, hostinfo, copy, demo, bench and bad input."""

from __future__ import annotations

import os
import pkgutil
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
from typing import Callable, Iterator

import pytest

import csapp
from support.netutil import (
    TIMEOUT,
    child_env,
    csapp_command,
    has_ipv6_loopback,
    run_csapp,
    sample_data,
)

CLIENT_INPUT = (
    b"hello\n"
    + b"\0binary\xff\xfe\n"
    + b"x" * (2 * csapp.MAXLINE + 5)
    + b"\n"
    + b"".join(b"line %d\n" % i for i in range(300))
    + b"no newline at the end"
)


def one_error_line(stderr: bytes) -> str:
    text = stderr.decode()
    assert "Traceback" not in text
    assert len(text.splitlines()) == 1, text
    return text


# ------------------------------------------------------------ echoclient


@pytest.mark.parametrize(
    "host", ["localhost", "127.0.0.1"] + (["::1"] if has_ipv6_loopback() else [])
)
def test_echoclient_against_our_server(impl: str, host: str, start_server) -> None:
    server = start_server(impl, "event")
    result = run_csapp(impl, "echoclient", host, str(server.port), input=CLIENT_INPUT)
    assert result.returncode == 0, result.stderr
    assert result.stdout == CLIENT_INPUT
    assert result.stderr == b""


@pytest.fixture
def socat_port() -> Iterator[int]:
    """``socat TCP-LISTEN:<port>,fork,reuseaddr EXEC:cat``: an echo server nobody here wrote."""
    socat = shutil.which("socat")
    if socat is None:
        pytest.skip("socat is not installed (apt-get install socat)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [socat, f"TCP-LISTEN:{port},fork,reuseaddr,bind=127.0.0.1", "EXEC:cat"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("socat did not start listening")
                time.sleep(0.02)
        yield port
    finally:
        proc.kill()
        proc.wait(TIMEOUT)


def test_echoclient_against_socat(impl: str, socat_port: int) -> None:
    result = run_csapp(impl, "echoclient", "127.0.0.1", str(socat_port), input=CLIENT_INPUT)
    assert result.returncode == 0, result.stderr
    assert result.stdout == CLIENT_INPUT


def _peer(action: str) -> tuple[int, threading.Thread]:
    """A one-shot server: it replies to one line, then closes ("close") or resets."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)

    def serve() -> None:
        with listener:
            conn, _address = listener.accept()
            with conn:
                conn.settimeout(TIMEOUT)
                data = b""
                while not data.endswith(b"\n"):
                    data += conn.recv(1)
                conn.sendall(data.upper())
                if action == "reset":
                    conn.recv(1)  # the next line arrives, then the reset
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    # A clean close: FIN now, then read until the client leaves
                    # (closing with unread input would send a reset instead).
                    conn.shutdown(socket.SHUT_WR)
                    while conn.recv(4096):
                        pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread


def test_echoclient_stops_cleanly_when_the_server_closes(impl: str) -> None:
    port, peer = _peer("close")
    result = run_csapp(impl, "echoclient", "127.0.0.1", str(port), input=b"first\nsecond\nthird\n")
    peer.join(TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"FIRST\n"  # the C original printed FIRST twice
    assert result.stderr == b""


def test_echoclient_reports_a_reset(impl: str) -> None:
    port, peer = _peer("reset")
    result = run_csapp(impl, "echoclient", "127.0.0.1", str(port), input=b"first\nsecond\nthird\n")
    peer.join(TIMEOUT)
    assert result.returncode == 1
    assert result.stdout == b"FIRST\n"
    assert "reset" in one_error_line(result.stderr)


def test_echoclient_reports_a_refused_connection(impl: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_csapp(impl, "echoclient", "127.0.0.1", str(port), input=b"hi\n")
    assert result.returncode == 1
    assert "refused" in one_error_line(result.stderr)


def test_echoclient_with_empty_input_exits_at_once(impl: str, start_server) -> None:
    server = start_server(impl, "iterative")
    result = run_csapp(impl, "echoclient", "localhost", str(server.port), input=b"")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")


# -------------------------------------------------------------- hostinfo


def test_hostinfo_localhost(impl: str) -> None:
    result = run_csapp(impl, "hostinfo", "localhost")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert "127.0.0.1" in lines
    expected = {
        info[4][0] for info in socket.getaddrinfo("localhost", None, type=socket.SOCK_STREAM)
    }
    assert set(lines) == expected  # ::1 too where the system maps localhost to it
    assert len(lines) == len(set(lines))


@pytest.mark.parametrize("name", ["127.0.0.1", "::1"])
def test_hostinfo_of_an_address_is_itself(impl: str, name: str) -> None:
    result = run_csapp(impl, "hostinfo", name)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == [name]


def test_hostinfo_unknown_host(impl: str) -> None:
    result = run_csapp(impl, "hostinfo", "no-such-host.invalid")
    assert result.returncode == 1
    assert "no-such-host.invalid" in one_error_line(result.stderr)


# ------------------------------------------------------------------ copy

STATS = re.compile(r"(\d+) bytes, (\d+) system calls, ([\d.]+) s, ([\d.]+) MB/s")


@pytest.mark.parametrize("method", ["byte", "buffered", "fast"])
@pytest.mark.parametrize("source", ["pipe", "file", "empty"])
def test_copy_is_byte_exact(impl: str, method: str, source: str, tmp_path) -> None:
    data = b"" if source == "empty" else os.urandom(60_000) + b"\n\0" + sample_data(1000)
    if source == "pipe":
        result = run_csapp(impl, "copy", "--method", method, "--stats", input=data)
    else:
        path = tmp_path / "input"
        path.write_bytes(data)
        with open(path, "rb") as stdin:
            result = run_csapp(impl, "copy", "--method", method, "--stats", stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert result.stdout == data
    match = STATS.search(one_error_line(result.stderr))
    assert match, result.stderr
    assert int(match.group(1)) == len(data)
    calls = int(match.group(2))
    if method == "byte":
        assert calls == 2 * len(data) + 1
    elif source == "file":  # reads of a file are never short
        chunk = csapp.RIO_BUFSIZE if method == "buffered" else 1 << 20
        assert calls <= 2 * (len(data) // chunk + 1) + 1
    else:  # a pipe may hand over less per read, but never byte by byte
        assert calls <= len(data) // 1000 + 3


@pytest.mark.parametrize("source", ["pipe", "file"])
def test_copy_fast_into_a_file(impl: str, source: str, tmp_path) -> None:
    """Regular-file output: sendfile from a file, splice from a pipe."""
    data = os.urandom(300_000)
    src, dst = tmp_path / "in", tmp_path / "out"
    src.write_bytes(data)
    with open(dst, "wb") as stdout:
        if source == "file":
            with open(src, "rb") as stdin:
                result = run_csapp(
                    impl, "copy", "--method", "fast", "--stats", stdin=stdin, stdout=stdout
                )
        else:
            result = run_csapp(
                impl, "copy", "--method", "fast", "--stats", input=data, stdout=stdout
            )
    assert result.returncode == 0, result.stderr
    assert dst.read_bytes() == data
    path = "sendfile" if source == "file" else "splice"
    assert f"({path})" in result.stderr.decode()


def test_copy_without_stats_prints_nothing_else(impl: str) -> None:
    result = run_csapp(impl, "copy", input=b"abc\n")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"abc\n", b"")


# ----------------------------------------------------------------- bench


@pytest.mark.parametrize(
    "args, command",
    [
        ([], "python -m bench"),
        (
            ["--quick", "--only", "lines,teleport", "--rounds", "0", "--json", "a b.json"],
            "python -m bench --quick --only lines,teleport --rounds 0 --json 'a b.json'",
        ),
        (["--only", "copy", "--only", "echo", "--plot", "p.png"], None),
    ],
)
def test_bench_says_where_the_benchmarks_are(args: list, command: object) -> None:
    """``csapp bench`` runs nothing: it names the source tree's commands, with
    the old options passed on (never a usage error), and exits with status 2."""
    result = run_csapp("python", "bench", *args, input=b"")
    assert (result.returncode, result.stdout) == (2, b"")
    text = result.stderr.decode()
    assert "Traceback" not in text
    assert "From a checkout of the csapp source" in text
    assert "\n    pytest bench --benchmark-only\n" in text
    if command is None:
        command = "python -m bench " + " ".join(args)
    assert f"\n    {command}\n" in text


def test_the_installed_package_holds_no_benchmark() -> None:
    """No module of csapp is a benchmark: they live in the source tree's bench/."""
    names = [module.name for module in pkgutil.walk_packages(csapp.__path__, "csapp.")]
    assert "csapp.cli" in names and "csapp.cli.sweep" in names
    assert not [name for name in names if "bench" in name], names


def test_importing_the_cli_does_not_import_asyncio() -> None:
    """``python -X importtime -c "import csapp.cli"``: asyncio (and csapp.aio)
    come in only with --mode asyncio."""
    done = subprocess.run(
        [csapp_command()[0], "-X", "importtime", "-c", "import csapp.cli"],
        env=child_env("python"),
        capture_output=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert b"csapp.cli" in done.stderr
    assert b" asyncio" not in done.stderr


# ------------------------------------------------------------------ demo


def test_demo(impl: str, figures: Callable[[str], None]) -> None:
    """The demo passes its checks; a demo that hangs fails at the 60 s timeout
    (TimeoutExpired); its duration is a figure, not a bound."""
    started = time.monotonic()
    result = run_csapp(impl, "demo", timeout=60)
    figures(f"demo ran in {time.monotonic() - started:.1f} s")
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    assert f"implementation: {impl}" in text
    assert "system calls" in text and "MB/s" in text
    for method in ("byte", "buffered", "fast"):
        assert re.search(rf"^\s+{method}\s", text, re.MULTILINE), text
    assert "All checks passed" in text


# ------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "args, status, words",
    [
        (["echoserver", "abc"], 2, "port must be a number"),
        (["echoserver", "70000"], 2, "port must be 0..65535"),
        (["echoserver", "--mode", "fork", "0"], 2, "invalid choice"),
        (["echoserver", "--idle-timeout", "-1", "0"], 2, "positive"),
        (["echoserver", "--host", "no-such-host.invalid", "0"], 1, "unknown host"),
        (["echoclient", "localhost", "http"], 2, "port must be a number"),
        (["echoclient", "no-such-host.invalid", "7"], 1, "unknown host"),
        (["echoclient", "a" * 70, "7"], 1, "invalid host name"),
        (["echoserver", "--host", "a" * 70, "0"], 1, "invalid host name"),
        (["hostinfo", "a" * 70], 1, "invalid host name"),
        (["copy", "--method", "teleport"], 2, "invalid choice"),
        (["nonsense"], 2, "invalid choice"),
        ([], 2, "required"),
    ],
)
def test_bad_input_is_one_line_and_a_failure_status(args: list, status: int, words: str) -> None:
    result = run_csapp("python", *args, input=b"")
    assert result.returncode == status
    assert words in one_error_line(result.stderr)


def test_port_in_use(impl: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run_csapp(impl, "echoserver", "--host", "127.0.0.1", str(port))
    assert result.returncode == 1
    assert "Address already in use" in one_error_line(result.stderr)


@pytest.mark.parametrize(
    "command", ["echoserver", "echoclient", "hostinfo", "copy", "demo", "bench"]
)
def test_help(command: str) -> None:
    result = run_csapp("python", command, "--help")
    assert result.returncode == 0
    assert b"usage: csapp " + command.encode() in result.stdout


def test_version_and_console_entry_point() -> None:
    result = run_csapp("python", "--version")
    assert result.returncode == 0
    assert result.stdout.decode().startswith(f"csapp {csapp.__version__}")
    code = "import csapp.cli, sys; sys.exit(csapp.cli.main(['hostinfo', '127.0.0.1']))"
    done = subprocess.run(
        [csapp_command()[0], "-c", code],
        env=child_env("python"),
        capture_output=True,
        timeout=TIMEOUT,
    )
    assert (done.returncode, done.stdout) == (0, b"127.0.0.1\n")
