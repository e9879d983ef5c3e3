"""Unbuffered RIO: ``rio_readn``, ``rio_readinto`` and ``rio_writen`` (docs/CONTRACT.md).

Every test runs over both implementations through the ``rio`` fixture.
"""

from __future__ import annotations

import array
import errno
import os
import resource
import select
import signal
import socket
import struct
import threading
from types import ModuleType
from typing import List

import pytest

from csapp._shared import MSG_NEGATIVE_N
from support.rioutil import Fds, Writer, exactly

pytestmark = [
    pytest.mark.skipif(os.name != "posix", reason="POSIX descriptors"),
    pytest.mark.usefixtures("watchdog"),
]

EBADF_TEXT = str(OSError(errno.EBADF, os.strerror(errno.EBADF)))


# ------------------------------------------------------------------ helpers


def written(exc: BaseException) -> int:
    """The ``characters_written`` a failed ``rio_writen`` put on ``exc``."""
    value = exc.characters_written
    assert isinstance(value, int)
    return value


def split(data: bytes, size: int) -> List[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def closed_fd() -> int:
    """A descriptor number that is certainly not open."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    candidates = []
    if soft != resource.RLIM_INFINITY and soft < 2**31 - 1:
        candidates.append(int(soft))
    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)
    candidates.append(fd)
    for fd in candidates:
        try:
            os.fstat(fd)
        except OSError as exc:
            if exc.errno == errno.EBADF:
                return fd
    pytest.skip("no closed descriptor number found")


# --------------------------------------------------------------- rio_readn


def test_readn_short_count_only_at_eof(rio: ModuleType, fds: Fds) -> None:
    """Small chunks from a thread still give whole ``n``-byte results."""
    r, w = fds.pipe()
    data = bytes(range(256)) * 3 + b"tail"
    writer = Writer(fds, w, split(data, 7), pause=0.0005)
    writer.start()
    got = []
    for _ in range(len(data) // 100):
        chunk = rio.rio_readn(r, 100)
        assert len(chunk) == 100
        got.append(chunk)
    rest = rio.rio_readn(r, 100)
    assert 0 < len(rest) < 100
    got.append(rest)
    assert rio.rio_readn(r, 100) == b""
    assert rio.rio_readn(r, 1) == b""
    writer.finish()
    assert b"".join(got) == data


def test_readn_eof_at_once(rio: ModuleType, fds: Fds) -> None:
    r, w = fds.pipe()
    fds.close(w)
    assert rio.rio_readn(r, 10) == b""


def test_readn_exact_does_not_read_ahead(rio: ModuleType, fds: Fds) -> None:
    """Having ``n`` bytes, it returns without another (blocking) read."""
    r, w = fds.pipe()
    os.write(w, b"abcdef")
    assert rio.rio_readn(r, 6) == b"abcdef"
    os.write(w, b"gh")
    assert rio.rio_readn(r, 1) == b"g"
    assert rio.rio_readn(r, 1) == b"h"


def test_readn_zero_makes_no_system_call(rio: ModuleType) -> None:
    bad = closed_fd()
    assert rio.rio_readn(bad, 0) == b""
    assert rio.rio_readinto(bad, bytearray()) == 0


@pytest.mark.parametrize("n", [-1, -2, -(1 << 70)])
def test_readn_negative_n(rio: ModuleType, fds: Fds, n: int) -> None:
    r, w = fds.pipe()
    os.write(w, b"xyz")
    with pytest.raises(ValueError, match=exactly(MSG_NEGATIVE_N)):
        rio.rio_readn(r, n)
    assert rio.rio_readn(r, 3) == b"xyz"  # nothing was consumed


@pytest.mark.parametrize("n", [1 << 50, 2**63 - 1, 1 << 64, 1 << 200])
def test_readn_huge_n_on_short_stream(rio: ModuleType, fds: Fds, n: int) -> None:
    """Memory follows the data, not ``n``: no MemoryError or OverflowError (work
    following ``n`` would hang: the watchdog fails it)."""
    r, w = fds.pipe()
    os.write(w, b"short stream")
    fds.close(w)
    assert rio.rio_readn(r, n) == b"short stream"


def test_readn_huge_n_on_long_stream(rio: ModuleType, fds: Fds) -> None:
    r, w = fds.pipe()
    data = os.urandom(3 << 20)
    writer = Writer(fds, w, split(data, 100003))
    writer.start()
    assert rio.rio_readn(r, 1 << 50) == data
    writer.finish()


@pytest.mark.parametrize(
    "args",
    [
        ("0", 1),
        (0.0, 1),
        (None, 1),
        (b"0", 1),
        ("fd", "1"),
        ("fd", 1.0),
        ("fd", None),
        ("fd", b"1"),
    ],
)
def test_readn_wrong_types(rio: ModuleType, fds: Fds, args: tuple) -> None:
    r, w = fds.pipe()
    os.write(w, b"data")
    fd, n = args
    with pytest.raises(TypeError):
        rio.rio_readn(r if fd == "fd" else fd, n)
    with pytest.raises(TypeError):
        rio.rio_readn(r)  # type: ignore[call-arg]
    assert rio.rio_readn(r, 4) == b"data"


def test_readn_index_objects(rio: ModuleType, fds: Fds) -> None:
    """Anything with ``__index__`` is an integer, as for ``os.read``."""

    class Idx:
        def __init__(self, v: int) -> None:
            self.v = v

        def __index__(self) -> int:
            return self.v

    r, w = fds.pipe()
    os.write(w, b"abcdef")
    assert rio.rio_readn(Idx(r), Idx(4)) == b"abcd"
    assert rio.rio_readinto(Idx(r), bytearray(2)) == 2


# ------------------------------------------------------------ rio_readinto


def test_readinto_bytearray_short_only_at_eof(rio: ModuleType, fds: Fds) -> None:
    r, w = fds.pipe()
    data = os.urandom(1000)
    writer = Writer(fds, w, split(data, 13), pause=0.0005)
    writer.start()
    buf = bytearray(300)
    got = []
    for _ in range(3):
        assert rio.rio_readinto(r, buf) == 300
        got.append(bytes(buf))
    buf[:] = b"\xee" * 300
    assert rio.rio_readinto(r, buf) == 100
    assert buf[100:] == b"\xee" * 200  # the rest of the buffer is untouched
    got.append(bytes(buf[:100]))
    assert rio.rio_readinto(r, buf) == 0
    writer.finish()
    assert b"".join(got) == data


def test_readinto_memoryview_slice(rio: ModuleType, fds: Fds) -> None:
    r, w = fds.pipe()
    os.write(w, b"HELLO")
    buf = bytearray(b"..........")
    assert rio.rio_readinto(r, memoryview(buf)[2:7]) == 5
    assert buf == b"..HELLO..."


def test_readinto_array_counts_bytes(rio: ModuleType, fds: Fds) -> None:
    r, w = fds.pipe()
    data = struct.pack("=4i", 1, -2, 3, 1 << 30)
    os.write(w, data + b"rest")
    arr = array.array("i", [0, 0, 0, 0])
    assert rio.rio_readinto(r, arr) == 16
    assert arr.tolist() == [1, -2, 3, 1 << 30]
    assert rio.rio_readn(r, 4) == b"rest"


def test_readinto_multidimensional(rio: ModuleType, fds: Fds) -> None:
    r, w = fds.pipe()
    os.write(w, bytes(range(12)))
    store = bytearray(12)
    view = memoryview(store).cast("B", (3, 4))
    assert rio.rio_readinto(r, view) == 12
    assert store == bytes(range(12))


@pytest.mark.parametrize(
    "make",
    [
        lambda: b"ro bytes",
        lambda: memoryview(b"ro bytes"),
        lambda: memoryview(bytearray(8)).toreadonly(),
    ],
)
def test_readinto_read_only_buffer(rio: ModuleType, fds: Fds, make) -> None:
    r, w = fds.pipe()
    os.write(w, b"12345678")
    with pytest.raises(TypeError):
        rio.rio_readinto(r, make())
    assert rio.rio_readn(r, 8) == b"12345678"  # nothing consumed


@pytest.mark.parametrize(
    "make",
    [
        lambda: "text",
        lambda: 42,
        lambda: None,
        lambda: [0] * 4,
        lambda: memoryview(bytearray(8))[::2],
    ],
)
def test_readinto_not_a_writable_contiguous_buffer(rio: ModuleType, fds: Fds, make) -> None:
    r, w = fds.pipe()
    os.write(w, b"12345678")
    with pytest.raises(TypeError):
        rio.rio_readinto(r, make())
    assert rio.rio_readn(r, 8) == b"12345678"


# -------------------------------------------------------------- rio_writen


@pytest.mark.parametrize(
    "make",
    [
        lambda: b"plain bytes",
        lambda: bytearray(b"a bytearray"),
        lambda: memoryview(b"a memoryview"),
        lambda: memoryview(b"..a slice..")[2:9],
        lambda: array.array("i", [1, -2, 3, 4]),
        lambda: array.array("d", [1.5, -2.25]),
        lambda: memoryview(bytes(range(12))).cast("B", (3, 4)),
        lambda: b"",
    ],
)
def test_writen_bytes_like(rio: ModuleType, fds: Fds, make) -> None:
    r, w = fds.pipe()
    data = make()
    expected = memoryview(data).tobytes()
    assert rio.rio_writen(w, data) == len(expected)
    fds.close(w)
    assert rio.rio_readn(r, 1000) == expected


def test_writen_large_returns_nbytes(rio: ModuleType, fds: Fds) -> None:
    """More than a pipe holds: every byte goes out, the count is ``len``."""
    r, w = fds.pipe()
    data = os.urandom(4 << 20)
    got: List[bytes] = []
    reader = threading.Thread(target=lambda: got.append(rio.rio_readn(r, 1 << 30)), daemon=True)
    reader.start()
    try:
        assert rio.rio_writen(w, data) == len(data)
    finally:
        fds.close(w)
        reader.join(10)
    assert not reader.is_alive()
    assert got == [data]


@pytest.mark.parametrize(
    "make",
    [
        lambda: "a str",
        lambda: 7,
        lambda: None,
        lambda: [1, 2],
        lambda: memoryview(b"abcdef")[::2],
        lambda: memoryview(bytearray(range(24)))[1::3],
    ],
)
def test_writen_rejects_non_buffers(rio: ModuleType, fds: Fds, make) -> None:
    r, w = fds.pipe()
    with pytest.raises(TypeError):
        rio.rio_writen(w, make())
    fds.close(w)
    assert rio.rio_readn(r, 10) == b""  # nothing was written


@pytest.mark.parametrize("fd", ["1", 1.0, None])
def test_writen_wrong_fd_type(rio: ModuleType, fd: object) -> None:
    with pytest.raises(TypeError):
        rio.rio_writen(fd, b"x")
    with pytest.raises(TypeError):
        rio.rio_readinto(fd, bytearray(1))


# ------------------------------------------------------------------ errors


def test_bad_fd_is_ebadf_with_shared_message(rio: ModuleType) -> None:
    bad = closed_fd()
    calls = [
        lambda: rio.rio_readn(bad, 1),
        lambda: rio.rio_readinto(bad, bytearray(1)),
        lambda: rio.rio_writen(bad, b"x"),
    ]
    for call in calls:
        with pytest.raises(OSError) as info:
            call()
        assert type(info.value) is OSError
        assert info.value.errno == errno.EBADF
        assert str(info.value) == EBADF_TEXT
        assert info.value.args == (errno.EBADF, os.strerror(errno.EBADF))


@pytest.mark.parametrize("fd", [-1, -(1 << 40), 2**31, 1 << 70])
def test_impossible_fd_is_ebadf(rio: ModuleType, fd: int) -> None:
    for call in (
        lambda: rio.rio_readn(fd, 1),
        lambda: rio.rio_readinto(fd, bytearray(1)),
        lambda: rio.rio_writen(fd, b"x"),
    ):
        with pytest.raises(OSError) as info:
            call()
        assert info.value.errno == errno.EBADF
        assert str(info.value) == EBADF_TEXT


def test_epipe_is_broken_pipe(rio: ModuleType, fds: Fds) -> None:
    """Python ignores SIGPIPE, so the write fails with EPIPE."""
    assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN
    r, w = fds.pipe()
    fds.close(r)
    with pytest.raises(BrokenPipeError) as info:
        rio.rio_writen(w, b"nobody listens")
    assert info.value.errno == errno.EPIPE
    assert written(info.value) == 0
    assert str(info.value) == str(OSError(errno.EPIPE, os.strerror(errno.EPIPE)))


def test_epipe_on_socket(rio: ModuleType, fds: Fds) -> None:
    a, b = fds.socketpair()
    b.close()
    with pytest.raises(BrokenPipeError):
        rio.rio_writen(a.fileno(), b"x" * 100)


def _reset_connection(fds: Fds) -> socket.socket:
    """A TCP loopback client whose peer closed with RST (SO_LINGER 0)."""
    try:
        srv = fds.track(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        cli = fds.track(socket.create_connection(srv.getsockname(), timeout=5))
        cli.settimeout(None)
    except OSError as exc:
        pytest.skip(f"no IPv4 loopback: {exc}")
    conn, _ = srv.accept()
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
    readable, _, _ = select.select([cli], [], [], 5)
    if not readable:
        pytest.skip("the reset did not arrive")
    return cli


def test_econnreset_on_read(rio: ModuleType, fds: Fds) -> None:
    cli = _reset_connection(fds)
    with pytest.raises(ConnectionResetError) as info:
        rio.rio_readn(cli.fileno(), 10)
    assert info.value.errno == errno.ECONNRESET
    assert str(info.value) == str(OSError(errno.ECONNRESET, os.strerror(errno.ECONNRESET)))


def test_econnreset_on_readinto(rio: ModuleType, fds: Fds) -> None:
    cli = _reset_connection(fds)
    with pytest.raises(ConnectionResetError):
        rio.rio_readinto(cli.fileno(), bytearray(10))


def test_econnreset_on_write(rio: ModuleType, fds: Fds) -> None:
    cli = _reset_connection(fds)
    with pytest.raises(ConnectionResetError) as info:
        rio.rio_writen(cli.fileno(), b"hello")
    assert written(info.value) == 0
