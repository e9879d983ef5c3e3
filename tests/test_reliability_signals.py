"""Signals under volume: every byte arrives once, in order; nothing is lost.

Both implementations. The large-volume side of PEP 475 (tests/test_rio_signals.py
has the small, focused cases):

* a SIGALRM every millisecond while 1 MiB + 1 (``stress``: 4 MiB + 1 through a
  pipe, 16 MiB + 1 through a socketpair) goes through with ``rio_writen`` in a
  thread and ``Rio.readnb``/``readlineb``/``read``/``readinto`` and
  ``rio_readn`` in the main thread; and the same with the main thread blocked
  in one big ``rio_writen`` while a thread reads;
* a handler that raises, sent (``pthread_kill``) only while the main thread is
  seen blocked in ``write(2)`` (``/proc/self/task/TID/syscall``), over and over
  during a large ``rio_writen``: each time ``characters_written`` is exact
  (what the peer got plus what is still in the channel) and the next byte the
  peer reads is the right one;
* the same on the read side: the handler raises while a ``Rio`` call is blocked
  in ``read(2)`` with a partial result taken; the next calls return it.

Timers are cancelled and handlers restored in ``finally``; threads are joined
with timeouts; every descriptor is closed.
"""

from __future__ import annotations

import contextlib
import os
import platform
import random
import signal
import socket
import threading
import time
from types import ModuleType
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest

from support.rioutil import TEST_TIMEOUT, pending

pytestmark = pytest.mark.skipif(
    not hasattr(signal, "setitimer") or not hasattr(signal, "pthread_kill"), reason="POSIX signals"
)

MiB = 1 << 20
# CSAPP_TEST_SCALE < 1 (valgrind, sanitizers) shrinks the default run, to 256 KiB + 1 at least.
SCALE = float(os.environ.get("CSAPP_TEST_SCALE", "1") or "1")
DEFAULT_SIZE = (MiB if SCALE >= 1 else max(256 << 10, int(MiB * SCALE))) + 1
STRESS_SIZE = {"pipe": 4 * MiB + 1, "socketpair": 16 * MiB + 1}
# The bytes per channel kind of a default run, and of the stressed one (-m stress).
SIZES = [
    pytest.param(dict.fromkeys(STRESS_SIZE, DEFAULT_SIZE), id="default"),
    pytest.param(STRESS_SIZE, marks=pytest.mark.stress, id="stress"),
]
STORM = 0.001  # seconds between SIGALRMs
MIN_SIGNALS = 10 if SCALE >= 1 else 2  # handled during one transfer, at least
MIN_INTERRUPTIONS = 5 if SCALE >= 1 else 1  # raising handler runs per transfer

# (read-like, write-like) system call numbers, for /proc/self/task/TID/syscall
SYSCALLS = {
    "x86_64": ({0, 19, 17, 295}, {1, 20, 18, 296}),  # read readv pread64 preadv
    "aarch64": ({63, 65, 67, 69}, {64, 66, 68, 70}),
}


class Alarm(Exception):
    """What the raising handler raises."""


# ------------------------------------------------------------------ helpers


def make_data(size: int, seed: int) -> bytes:
    """Random bytes; newlines about every 256 bytes, and some long lines."""
    rng = random.Random(seed)
    data = bytearray(rng.randbytes(size))
    for start in range(0, size, 300_000):  # a 20 KB line now and then
        end = min(size, start + 20_000)
        data[start:end] = data[start:end].replace(b"\n", b"N")
    return bytes(data)


class Chan:
    """A pipe or a socketpair: r (read end) and w (write end), each closed once."""

    def __init__(self, kind: str) -> None:
        if kind == "pipe":
            self.r, self.w = os.pipe()
        else:
            a, b = socket.socketpair()
            self.r, self.w = a.detach(), b.detach()
        self._open = {self.r, self.w}
        self._lock = threading.Lock()

    def close(self, fd: int) -> None:
        with self._lock:
            if fd not in self._open:
                return
            self._open.discard(fd)
        os.close(fd)

    def close_w(self) -> None:
        self.close(self.w)

    def close_all(self) -> None:
        self.close(self.w)
        self.close(self.r)


@contextlib.contextmanager
def channel(kind: str) -> Iterator[Chan]:
    chan = Chan(kind)
    try:
        yield chan
    finally:
        chan.close_all()


class Counter:
    """A SIGALRM handler that counts; wait_next() waits for the next signal."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, signum: int, frame: Any) -> None:
        self.count += 1

    def wait_next(self, timeout: float) -> None:
        seen = self.count
        end = time.monotonic() + timeout
        while self.count == seen and time.monotonic() < end:
            time.sleep(0.0002)


def quiesce(signum: int) -> None:
    """Take a signal still pending (sent before its timer was cancelled), so
    that it cannot reach the default handler restored next (which would kill
    the process: valgrind, for one, delivers signals late)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signum})
    try:
        for _ in range(100):
            if signum not in signal.sigpending():
                break
            signal.sigtimedwait({signum}, 0)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})


@contextlib.contextmanager
def storm(handler: Callable[[int, Any], None]) -> Iterator[None]:
    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, STORM, STORM)
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        quiesce(signal.SIGALRM)
        signal.signal(signal.SIGALRM, old)


@contextlib.contextmanager
def raising_on(signum: int) -> Iterator[None]:
    def handler(sig: int, frame: Any) -> None:
        raise Alarm("signal")

    old = signal.signal(signum, handler)
    try:
        yield
    finally:
        quiesce(signum)
        signal.signal(signum, old)


def join(thread: threading.Thread, errors: List[BaseException], timeout: float = 60.0) -> None:
    thread.join(timeout)
    assert not thread.is_alive(), f"{thread.name} hung"
    if errors:
        raise errors[0]


def syscall_numbers() -> Optional[Tuple[set, set]]:
    nums = SYSCALLS.get(platform.machine())
    if nums is None:
        return None
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/syscall") as f:
            f.read()
    except OSError:
        return None
    return nums


def blocked_in(tid: int, calls: set, fd: int) -> bool:
    """Is thread tid inside one of the system calls `calls` on fd?"""
    try:
        with open(f"/proc/self/task/{tid}/syscall") as f:
            fields = f.read().split()
    except OSError:
        return False
    if len(fields) < 2 or not fields[0].isdigit():
        return False  # "running"
    return int(fields[0]) in calls and int(fields[1], 16) == fd


def settled_in_write(tid: int, calls: set, w: int, r: int) -> bool:
    """tid is blocked writing to w and the channel stays full: what r holds
    does not change over a few milliseconds (nobody reads it meanwhile)."""
    if not blocked_in(tid, calls, w):
        return False
    held = pending(r)
    for _ in range(3):
        time.sleep(0.001)
        if pending(r) != held or not blocked_in(tid, calls, w):
            return False
    return True


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.0002)
    return predicate()


needs_proc_syscall = pytest.mark.skipif(
    syscall_numbers() is None, reason="needs /proc/self/task/TID/syscall (x86_64, aarch64)"
)


# ------------------------------------------- a storm of non-raising SIGALRMs


def writer_thread(
    rio: ModuleType,
    chan: Chan,
    data: bytes,
    seed: int,
    counter: Counter,
    errors: List[BaseException],
) -> threading.Thread:
    """rio_writen in random chunks; after each one it waits for the next
    SIGALRM, so that signals land while the reader waits in read(2)."""

    def run() -> None:
        rng = random.Random(seed)
        view = memoryview(data)
        pos = 0
        try:
            while pos < len(view):
                size = rng.choice(
                    (
                        1,
                        rng.randrange(1, 4096),
                        rng.randrange(1, 1 << 16),
                        rng.randrange(1, 1 << 17),
                    )
                )
                chunk = view[pos : pos + size]
                sent = rio.rio_writen(chan.w, chunk)
                assert sent == len(chunk), (sent, len(chunk))
                pos += sent
                counter.wait_next(0.02)
        except BaseException as exc:
            errors.append(exc)
        finally:
            chan.close_w()

    thread = threading.Thread(target=run, daemon=True, name="storm-writer")
    thread.start()
    return thread


def read_all_mixed(
    rio: ModuleType, fd: int, data: bytes, seed: int, unbuffered_only: bool
) -> Tuple[int, int]:
    """Read the whole stream in the main thread with a random mix of calls;
    check every piece against the stream as it comes. (calls, unbuffered calls)"""
    rng = random.Random(seed)
    rp = rio.Rio(fd, rng.choice((1 << 13, 1 << 13, 1000, 1 << 16)))
    got = 0
    calls = unbuffered = 0
    try:
        for _ in range(4 * len(data) + 10):  # bounded: a byte a call at worst
            calls += 1
            k = rng.choice(
                (1, rng.randrange(1, 100), rng.randrange(1, 20_000), rng.randrange(1, 300_000))
            )
            way = (
                "rio_readn"
                if unbuffered_only
                else rng.choice(
                    ("readnb", "readlineb", "read", "readinto", "rio_readn", "readline")
                )
            )
            if way == "rio_readn" and rp.buffered == 0:
                piece = rio.rio_readn(fd, k)
                unbuffered += 1
            elif way == "readlineb":
                piece = rp.readlineb(rng.choice((rio.MAXLINE, 2, 100, 1 << 20)))
            elif way == "readline":
                piece = rp.readline()
            elif way == "read":
                piece = rp.read(k)
            elif way == "readinto":
                buf = bytearray(k)
                piece = bytes(buf[: rp.readinto(buf)])
            else:
                piece = rp.readnb(k)
            if not piece:
                break
            assert data[got : got + len(piece)] == piece, (
                f"{way}: wrong bytes at offset {got} (piece of {len(piece)})"
            )
            got += len(piece)
        assert got == len(data), f"EOF after {got} of {len(data)} bytes"
        assert rp.readnb(1) == b"" and rio.rio_readn(fd, 1) == b""
    finally:
        rp.close()
    return calls, unbuffered


def run_storm_transfer(rio: ModuleType, kind: str, size: int, reader: str) -> None:
    seed = random.randrange(1 << 30)
    data = make_data(size, seed)
    counter = Counter()
    errors: List[BaseException] = []
    with channel(kind) as chan, storm(counter):
        thread = writer_thread(rio, chan, data, seed, counter, errors)
        try:
            calls, unbuffered = read_all_mixed(
                rio, chan.r, data, seed + 1, unbuffered_only=reader == "rio_readn"
            )
        finally:
            chan.close(chan.r)  # a writer still blocked gets EPIPE
            join(thread, errors)
    print(f"{rio.__name__} {kind}: {len(data)} bytes, {counter.count} SIGALRMs handled")
    assert counter.count >= MIN_SIGNALS, f"only {counter.count} signals during the transfer"
    if reader == "rio_readn":
        assert unbuffered == calls


@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("reader", ["mixed", "rio_readn"])
@pytest.mark.parametrize("kind", ["pipe", "socketpair"])
def test_storm_transfer(rio: ModuleType, kind: str, reader: str, sizes: Dict[str, int]) -> None:
    run_storm_transfer(rio, kind, sizes[kind], reader)


def run_storm_main_writer(rio: ModuleType, kind: str, size: int) -> None:
    """The main thread blocked in one big rio_writen under the storm; a thread
    reads slowly (so the channel is full and write(2) is interrupted)."""
    seed = random.randrange(1 << 30)
    data = make_data(size, seed)
    counter = Counter()
    errors: List[BaseException] = []
    received: List[bytes] = []

    def reader(r: int) -> None:
        rng = random.Random(seed)
        rp = rio.Rio(r)
        try:
            for _ in range(len(data) + 1):
                piece = rp.readnb(rng.randrange(1, 1 << 15))
                if not piece:
                    break
                received.append(piece)
                counter.wait_next(0.02)
        except BaseException as exc:
            errors.append(exc)
        finally:
            rp.close()

    with channel(kind) as chan:
        thread = threading.Thread(target=reader, args=(chan.r,), daemon=True, name="storm-reader")
        thread.start()
        try:
            with storm(counter):
                assert rio.rio_writen(chan.w, data) == len(data)
        finally:
            chan.close_w()  # the reader sees EOF in any case
            join(thread, errors)
    assert b"".join(received) == data
    print(f"{rio.__name__} {kind}: {len(data)} bytes, {counter.count} SIGALRMs handled")
    assert counter.count >= MIN_SIGNALS, f"only {counter.count} signals during the transfer"


@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("kind", ["pipe", "socketpair"])
def test_storm_main_thread_writen(rio: ModuleType, kind: str, sizes: Dict[str, int]) -> None:
    run_storm_main_writer(rio, kind, sizes[kind])


# ------------------- a raising handler while rio_writen is blocked, repeatedly


def run_raising_writen(rio: ModuleType, kind: str, size: int) -> None:
    """Send SIGUSR1 (its handler raises) each time the main thread is blocked in
    write(2) inside rio_writen; resume with the rest. Each interruption:
    characters_written == bytes the peer has read + bytes still in the channel."""
    _, writes = syscall_numbers()  # type: ignore[misc]
    seed = random.randrange(1 << 30)
    data = make_data(size, seed)
    main_tid = threading.get_native_id()
    main_ident = threading.get_ident()
    received = bytearray()
    acked = threading.Event()
    finished = threading.Event()
    errors: List[BaseException] = []
    sent = [0]

    def peer(r: int, w: int) -> None:
        rng = random.Random(seed)
        try:
            while len(received) < len(data) and not finished.is_set():
                if not wait_for(
                    lambda: finished.is_set() or settled_in_write(main_tid, writes, w, r),
                    TEST_TIMEOUT,
                ):
                    raise AssertionError("rio_writen never blocked in write(2)")
                if finished.is_set():
                    break
                acked.clear()
                sent[0] += 1
                signal.pthread_kill(main_ident, signal.SIGUSR1)
                if not acked.wait(TEST_TIMEOUT):
                    raise AssertionError(
                        "the raising handler did not run while rio_writen was blocked "
                        f"(interruption {sent[0]}, {len(received)} bytes read)"
                    )
                if rng.random() < 0.2:
                    continue  # interrupt again with nothing drained
                want = min(rng.randrange(1, 1 << 16), len(data) - len(received))
                while want > 0:
                    piece = os.read(r, want)
                    if not piece:
                        break
                    received.extend(piece)
                    want -= len(piece)
        except BaseException as exc:
            errors.append(exc)
        finally:
            # Whatever happened, unblock the writer: read the rest.
            os.set_blocking(r, False)
            for _ in range(100_000):
                if finished.is_set():
                    break
                try:
                    piece = os.read(r, 1 << 16)
                except BlockingIOError:
                    time.sleep(0.001)
                    continue
                if not piece:
                    break
                received.extend(piece)

    with channel(kind) as chan, raising_on(signal.SIGUSR1):
        r, w = chan.r, chan.w
        thread = threading.Thread(target=peer, args=(r, w), daemon=True, name="peer")
        thread.start()
        view = memoryview(data)
        done = interrupts = zero = late = 0
        try:
            for _ in range(len(data) + 1):
                if done == len(data):
                    break
                try:
                    assert rio.rio_writen(w, view[done:]) == len(data) - done
                    done = len(data)
                except Alarm as exc:
                    written = getattr(exc, "characters_written", None)
                    if written is None:
                        # The handler ran just after rio_writen returned: the
                        # peer's read woke the write, which then finished all
                        # of it. Allowed once, at the very end.
                        late += 1
                        assert late == 1 and len(received) + pending(r) == len(data), (
                            "Alarm raised outside rio_writen (no characters_written) "
                            f"with {len(received) + pending(r)} of {len(data)} bytes out"
                        )
                        written = len(data) - done
                    assert 0 <= written <= len(data) - done
                    done += written
                    interrupts += 1
                    zero += written == 0
                    # The peer waits for the ack: count what it has and what is
                    # in the channel; together they are exactly what went out.
                    assert len(received) + pending(r) == done, (
                        f"characters_written={written}: the peer has {len(received)}, "
                        f"the channel {pending(r)}, rio_writen says {done}"
                    )
                    acked.set()
        finally:
            finished.set()
            acked.set()
            if done != len(data):
                chan.close_w()  # a failure: the peer's read sees EOF
            join(thread, errors)
        # Let the peer's tail arrive: read what is left in the channel.
        os.set_blocking(r, False)
        with contextlib.suppress(BlockingIOError):
            for _ in range(len(data)):
                piece = os.read(r, 1 << 16)
                if not piece:
                    break
                received.extend(piece)
    assert done == len(data)
    print(
        f"{rio.__name__} {kind}: {len(data)} bytes, rio_writen interrupted "
        f"{interrupts} times ({zero} with nothing written, {late} late)"
    )
    assert interrupts == sent[0] and interrupts >= MIN_INTERRUPTIONS, (interrupts, sent[0])
    assert bytes(received) == data, "the peer's bytes are not the stream"


@needs_proc_syscall
@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("kind", ["pipe", "socketpair"])
def test_raising_handler_during_writen_repeatedly(
    rio: ModuleType, kind: str, sizes: Dict[str, int]
) -> None:
    run_raising_writen(rio, kind, sizes[kind])


# ----------------- a raising handler while a Rio read is blocked, repeatedly


def run_raising_rio_reads(rio: ModuleType, kind: str, size: int) -> None:
    """The peer writes in chunks; whenever the main thread is blocked in read(2)
    inside a Rio call, it sends SIGUSR1 (the handler raises). The Rio must keep
    what that call had taken: the concatenation of all results is the stream."""
    reads, _ = syscall_numbers()  # type: ignore[misc]
    seed = random.randrange(1 << 30)
    data = make_data(size, seed)
    main_tid = threading.get_native_id()
    main_ident = threading.get_ident()
    acked = threading.Event()
    finished = threading.Event()
    errors: List[BaseException] = []
    sent = [0]

    def peer(chan: Chan) -> None:
        r, w = chan.r, chan.w
        rng = random.Random(seed)
        view = memoryview(data)
        pos = 0
        try:
            while pos < len(view) and not finished.is_set():
                size = rng.choice((1, rng.randrange(1, 1000), rng.randrange(1, 1 << 16)))
                chunk = view[pos : pos + size]
                assert rio.rio_writen(w, chunk) == len(chunk)
                pos += len(chunk)
                if rng.random() < 0.3 and pos < len(view):
                    # Blocked in read(2) with nothing to read: only the
                    # signal can end that read.
                    if not wait_for(
                        lambda: (
                            finished.is_set()
                            or (blocked_in(main_tid, reads, r) and pending(r) == 0)
                        ),
                        1,
                    ):
                        continue  # the reader is not waiting: no signal
                    if finished.is_set():
                        break
                    acked.clear()
                    sent[0] += 1
                    signal.pthread_kill(main_ident, signal.SIGUSR1)
                    if not acked.wait(TEST_TIMEOUT):
                        raise AssertionError(
                            "the raising handler did not run while a Rio call was "
                            f"blocked in read(2) (interruption {sent[0]})"
                        )
        except (BrokenPipeError, ConnectionResetError) as exc:
            if not finished.is_set():
                errors.append(exc)
        except BaseException as exc:
            errors.append(exc)
        finally:
            chan.close_w()

    with channel(kind) as chan, raising_on(signal.SIGUSR1):
        r = chan.r
        thread = threading.Thread(target=peer, args=(chan,), daemon=True, name="peer")
        thread.start()
        rng = random.Random(seed + 1)
        rp = rio.Rio(r, rng.choice((1 << 13, 100, 1 << 16)))
        got = interrupts = 0
        try:
            for _ in range(4 * len(data) + 10):
                k = rng.choice(
                    (rng.randrange(1, 100), rng.randrange(1, 20_000), rng.randrange(1, 300_000))
                )
                way = rng.choice(("readnb", "readlineb", "read", "readinto", "line"))
                try:
                    if way == "readnb":
                        piece = rp.readnb(k)
                    elif way == "readlineb":
                        piece = rp.readlineb(rng.choice((rio.MAXLINE, 1 << 20)))
                    elif way == "line":
                        piece = rp.readline()
                    elif way == "read":
                        piece = rp.read(k)
                    else:
                        buf = bytearray(k)
                        piece = bytes(buf[: rp.readinto(buf)])
                except Alarm:
                    interrupts += 1
                    acked.set()
                    continue
                if not piece:
                    break
                assert data[got : got + len(piece)] == piece, (
                    f"{way}: wrong bytes at offset {got} after {interrupts} "
                    "interruptions: a byte lost or repeated"
                )
                got += len(piece)
        finally:
            finished.set()
            acked.set()
            rp.close()
            chan.close(r)  # a peer still writing gets EPIPE
            join(thread, errors)
    assert got == len(data), f"EOF after {got} of {len(data)} bytes"
    print(f"{rio.__name__} {kind}: {len(data)} bytes, Rio calls interrupted {interrupts} times")
    assert interrupts == sent[0] and interrupts >= MIN_INTERRUPTIONS, (interrupts, sent[0])


@needs_proc_syscall
@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("kind", ["pipe", "socketpair"])
def test_raising_handler_during_rio_reads_repeatedly(
    rio: ModuleType, kind: str, sizes: Dict[str, int]
) -> None:
    run_raising_rio_reads(rio, kind, sizes[kind])
