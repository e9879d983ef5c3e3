"""Fuzz the Rio API against a model of the stream, both implementations.

A writer thread feeds a random byte stream (random lines, some longer than any
buffer) through a pipe or a socketpair in random chunks with ``rio_writen``;
the reader runs a random sequence of operations on one ``Rio`` with a random
``bufsize``: every read method, sizes 0, small, large, huge, negative, ``None``
and wrong types; non-blocking toggles (``BlockingIOError`` when no data); the
unbuffered ``rio_readn``/``rio_readinto`` whenever nothing is buffered; a
re-``__init__`` (which drops exactly ``buffered`` bytes), a failed one, and
``close()`` part-way. Model: the concatenation of everything returned is the
stream's prefix, in order, and each result obeys its method's contract (lines
end at ``\\n``, the limit or EOF; ``readnb(n)`` is short only at EOF, ...).

Some segments share one ``Rio`` among 2-4 threads: then the results of all
threads, each thread's in its own order, must tile the stream's prefix exactly
(every byte once, each result one contiguous piece), checked by a search over
the interleavings.

Default: about 20,000 operations per implementation; ``stress``: 100,000 (issue 5).
``CSAPP_FUZZ_SEED`` replays a run (the seed is printed, and named in every
failure); ``CSAPP_FUZZ_OPS`` sets the count.
"""

from __future__ import annotations

import errno
import itertools
import os
import random
import socket
import sys
import threading
import time
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import pytest

from csapp._shared import MSG_CLOSED, MSG_UNINIT

MAXLINE = 8192
HUGE = (1 << 62, 1 << 100)
DEFAULT_OPS = int(os.environ.get("CSAPP_FUZZ_OPS", "0") or 0) or 20_000
STRESS_OPS = max(100_000, DEFAULT_OPS)


def run_seed() -> int:
    env = os.environ.get("CSAPP_FUZZ_SEED")
    return int(env) if env else random.SystemRandom().randrange(1 << 32)


class FuzzFailure(AssertionError):
    pass


# ------------------------------------------------------------------ streams


def make_stream(rng: random.Random, threaded: bool = False) -> bytes:
    kind = rng.random()
    if kind < 0.05:
        return b""
    if kind < 0.25:
        limit = rng.randrange(1, 200)
    elif threaded:
        limit = rng.randrange(200, 8_000)
    elif kind < 0.9:
        limit = rng.randrange(200, 40_000)
    else:
        limit = rng.randrange(40_000, 400_000)
    out = bytearray()
    while len(out) < limit:
        shape = rng.random()
        if threaded and shape > 0.9:
            shape = 0.0
        if shape < 0.6:
            size = rng.randrange(0, 80)
        elif shape < 0.9:
            size = rng.randrange(80, 3000)
        else:
            size = rng.randrange(3000, 20_000)  # past MAXLINE sometimes
        out += rng.randbytes(size).replace(b"\n", b"\x00") + b"\n"
    del out[limit:]  # may end mid-line
    return bytes(out)


class Feed:
    """A descriptor pair and a writer thread sending ``data`` in random chunks."""

    def __init__(
        self, rio: ModuleType, rng: random.Random, data: bytes, trickle: bool = False
    ) -> None:
        self.data = data
        self.trickle = trickle
        self.errors: List[BaseException] = []
        self.stop = threading.Event()
        self.kind = rng.choice(["pipe", "socketpair"])
        if self.kind == "pipe":
            self.rfd, self.wfd = os.pipe()
        else:
            a, b = socket.socketpair()
            self.rfd, self.wfd = a.detach(), b.detach()
        self.rfd_open = True
        wrng = random.Random(rng.random())
        self.thread = threading.Thread(
            target=self._write, args=(rio, wrng), daemon=True, name="fuzz-writer"
        )
        self.thread.start()

    def _write(self, rio: ModuleType, rng: random.Random) -> None:
        view = memoryview(self.data)
        pos = 0
        try:
            while pos < len(view) and not self.stop.is_set():
                if self.trickle:  # small chunks, paced: readers wait in read(2)
                    size = rng.choice(
                        (1, rng.randrange(1, 16), rng.randrange(1, 64), rng.randrange(1, 512))
                    )
                else:
                    size = rng.choice(
                        (1, rng.randrange(1, 64), rng.randrange(1, 4096), rng.randrange(1, 70_000))
                    )
                chunk = view[pos : pos + size]
                if rng.random() < 0.5:
                    sent = rio.rio_writen(self.wfd, chunk)
                else:
                    sent = rio.rio_writen(self.wfd, bytes(chunk))
                if sent != len(chunk):
                    raise AssertionError(f"rio_writen returned {sent}, not {len(chunk)}")
                pos += sent
                if self.trickle:
                    if rng.random() < 0.7:
                        time.sleep(rng.random() * 0.0002)
                elif rng.random() < 0.03:
                    time.sleep(rng.choice((0, 0.0002, 0.001)))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the reader stopped early
        except BaseException as exc:  # pragma: no cover - a failure
            self.errors.append(exc)
        finally:
            os.close(self.wfd)

    def close_reader(self) -> None:
        if self.rfd_open:
            self.rfd_open = False
            os.close(self.rfd)

    def finish(self) -> None:
        self.stop.set()
        self.close_reader()  # a blocked writer gets EPIPE
        self.thread.join(30)
        if self.thread.is_alive():
            raise FuzzFailure("the writer thread hung")
        if self.errors:
            raise FuzzFailure(f"writer failed: {self.errors[0]!r}")


# ------------------------------------------------------------ the operations


class Op:
    """One call: name, a description, the function, what the result must obey."""

    __slots__ = ("call", "check", "consumes", "desc", "limit", "name")

    def __init__(
        self,
        name: str,
        desc: str,
        call: Callable[[], Any],
        check: str,
        limit: int = -1,
        consumes: bool = True,
    ) -> None:
        self.name = name
        self.desc = desc
        self.call = call
        self.check = check  # "line" | "exact" | "all" | "some" | "peek" | ...
        self.limit = limit
        self.consumes = consumes


def choose_size(rng: random.Random, bufsize: int, threaded: bool = False) -> int:
    r = rng.random()
    if threaded:  # small: many calls per stream, threads meet in read(2)
        if r < 0.05:
            return 0
        if r < 0.8:
            return rng.randrange(1, 64)
        if r < 0.97:
            return rng.randrange(1, min(2 * bufsize + 2, 5000))
        if r < 0.995:
            return rng.randrange(1, 20_000)
        return rng.choice(HUGE)
    if r < 0.08:
        return 0
    if r < 0.6:
        return rng.randrange(1, 64)
    if r < 0.85:
        return rng.randrange(1, 2 * bufsize + 2)
    if r < 0.99:
        return rng.randrange(1, 70_000)
    return rng.choice(HUGE)


def bad_args_op(rng: random.Random, rp: Any) -> Op:
    """A call whose arguments are wrong: it must raise and consume nothing."""
    choices: Sequence[Tuple[str, Callable[[], Any], type]] = (
        ("readlineb(1)", lambda: rp.readlineb(1), ValueError),
        ("readlineb(0)", lambda: rp.readlineb(0), ValueError),
        ("readlineb(-5)", lambda: rp.readlineb(-5), ValueError),
        ("readlineb(-2**70)", lambda: rp.readlineb(-(1 << 70)), ValueError),
        ("readlineb(None)", lambda: rp.readlineb(None), TypeError),
        ("readlineb(1.5)", lambda: rp.readlineb(1.5), TypeError),
        ("readnb(-1)", lambda: rp.readnb(-1), ValueError),
        ("readnb(None)", lambda: rp.readnb(None), TypeError),
        ("readnb('3')", lambda: rp.readnb("3"), TypeError),
        ("read(-2)", lambda: rp.read(-2), ValueError),
        ("read(-2**80)", lambda: rp.read(-(1 << 80)), ValueError),
        ("read(2.0)", lambda: rp.read(2.0), TypeError),
        ("read1(-7)", lambda: rp.read1(-7), ValueError),
        ("readline('x')", lambda: rp.readline("x"), TypeError),
        ("readinto(b'')", lambda: rp.readinto(b"abc"), TypeError),
        ("readinto(None)", lambda: rp.readinto(None), TypeError),
        ("peek(None)", lambda: rp.peek(None), TypeError),
    )
    desc, call, exc = rng.choice(choices)

    def run() -> Any:
        try:
            call()
        except exc:
            return b""
        raise FuzzFailure(f"{desc} did not raise {exc.__name__}")

    return Op(desc, desc, run, "none", consumes=False)


def read_op(
    rng: random.Random,
    rio: ModuleType,
    rp: Any,
    bufsize: int,
    threaded: bool,
    nonblocking: bool = False,
) -> Op:
    """A random read that consumes (or, for peek, shows) stream bytes.

    readlines() is one call under the lock: when it raises BlockingIOError
    part-way, the lines it took go back to the Rio, so it is fuzzed on
    non-blocking descriptors and shared Rios too."""
    r = rng.random()
    n = choose_size(rng, bufsize, threaded)
    if r < 0.16:
        if rng.random() < 0.3:
            return Op("readlineb", "readlineb()", rp.readlineb, "line", MAXLINE - 1)
        m = rng.choice((2, 3, rng.randrange(2, 100), rng.randrange(2, 20_000), *HUGE))
        if rng.random() < 0.2:
            return Op(
                "rio_readlineb",
                f"rio_readlineb(rp, {m})",
                lambda: rio.rio_readlineb(rp, m),
                "line",
                min(m - 1, 1 << 62),
            )
        return Op(
            "readlineb", f"readlineb({m})", lambda: rp.readlineb(m), "line", min(m - 1, 1 << 62)
        )
    if r < 0.30:
        if rng.random() < 0.2:
            return Op(
                "rio_readnb", f"rio_readnb(rp, {n})", lambda: rio.rio_readnb(rp, n), "exact", n
            )
        return Op("readnb", f"readnb({n})", lambda: rp.readnb(n), "exact", n)
    if r < 0.42:
        if not threaded and rng.random() < 0.04:  # to EOF: ends the stream
            how = rng.choice(("read()", "read(None)", "read(-1)"))
            call = {
                "read()": lambda: rp.read(),
                "read(None)": lambda: rp.read(None),
                "read(-1)": lambda: rp.read(-1),
            }[how]
            return Op("read", how, call, "all")
        return Op("read", f"read({n})", lambda: rp.read(n), "exact", n)
    if r < 0.54:
        size = rng.choice((None, -1, -(1 << 70), 0, n, n))
        if size is None or (size <= 0 and size != 0):
            return Op("readline", f"readline({size})", lambda: rp.readline(size), "line", -1)
        if size == 0:
            return Op("readline", "readline(0)", lambda: rp.readline(0), "empty")
        return Op("readline", f"readline({size})", lambda: rp.readline(size), "line", size)
    if r < 0.64:
        k = n if n < (1 << 20) else rng.randrange(1, 1 << 20)
        kind = rng.choice(("bytearray", "memoryview", "slice"))
        if kind == "bytearray":
            target: Any = bytearray(k)
            view = target
        elif kind == "memoryview":
            target = memoryview(bytearray(k))
            view = target
        else:
            backing = bytearray(k + 10)
            target = memoryview(backing)[5 : 5 + k]
            view = target

        def readinto() -> bytes:
            count = rp.readinto(target)
            if not isinstance(count, int) or not 0 <= count <= k:
                raise FuzzFailure(f"readinto returned {count!r} for a {k}-byte buffer")
            return bytes(view[:count])

        return Op("readinto", f"readinto({kind}[{k}])", readinto, "exact", k)
    if r < 0.74:
        size = rng.choice((None, -1, 0, n, n))
        return Op(
            "read1",
            f"read1({size})",
            lambda: rp.read1(size),
            "some",
            -1 if size is None or size < 0 else size,
        )
    if r < 0.80 and not threaded:
        p = rng.choice((0, 1, 100, -3, 1 << 70))
        return Op("peek", f"peek({p})", lambda: rp.peek(p), "peek", consumes=False)
    if r < 0.88:

        def nxt() -> bytes:
            try:
                return next(rp)
            except StopIteration:
                return b""

        return Op("next", "next(rp)", nxt, "line", -1)  # whole lines, as io gives them
    if r < 0.92:
        hint = rng.choice((1, 50, 5000, 100_000, 0, -1, None))
        if hint is None or hint <= 0:
            hint = 1  # all lines to EOF: keep the segment going instead
        return Op("readlines", f"readlines({hint})", lambda: rp.readlines(hint), "lines", hint)
    if r < 0.96:
        return Op("buffered", "buffered", lambda: rp.buffered, "buffered", consumes=False)
    return Op("readnb", f"readnb({n})", lambda: rp.readnb(n), "exact", n)


def check_result(op: Op, got: bytes, pos: int, data: bytes, eof: bool) -> None:
    """The result of op, returned at stream offset pos, obeys op's contract.

    eof: the result ends at the stream's end (short results are allowed there)."""
    if not isinstance(got, bytes):
        raise FuzzFailure(f"{op.desc} returned {type(got).__name__}, not bytes")
    if data[pos : pos + len(got)] != got:
        raise FuzzFailure(
            f"{op.desc} returned {len(got)} bytes that are not the stream at offset {pos}"
        )
    check = op.check
    if check == "line":
        limit = op.limit
        if limit >= 0 and len(got) > limit:
            raise FuzzFailure(f"{op.desc}: {len(got)} bytes, more than {limit}")
        if b"\n" in got[:-1]:
            raise FuzzFailure(f"{op.desc}: a newline inside the line")
        if not got.endswith(b"\n") and len(got) != limit and not eof:
            raise FuzzFailure(f"{op.desc}: {len(got)} bytes, no newline, limit {limit}, not at EOF")
    elif check == "exact":
        if len(got) > op.limit or (len(got) < op.limit and not eof):
            raise FuzzFailure(f"{op.desc}: {len(got)} bytes, not at EOF")
    elif check == "all":
        if not eof:
            raise FuzzFailure(f"{op.desc} stopped at {pos + len(got)} of {len(data)}")
    elif check == "some":
        if op.limit >= 0 and len(got) > op.limit:
            raise FuzzFailure(f"{op.desc}: {len(got)} bytes, more than asked")
        if not got and op.limit != 0 and not eof:
            raise FuzzFailure(f"{op.desc}: nothing, not at EOF")
    elif check == "empty" and got:
        raise FuzzFailure(f"{op.desc}: {got!r}, not b''")


# ---------------------------------------------------- single-threaded segment


STATS: Dict[str, int] = {}


def bump(key: str, by: int = 1) -> None:
    STATS[key] = STATS.get(key, 0) + by


def single_segment(rio: ModuleType, rng: random.Random, budget: int, log: List[str]) -> int:
    data = make_stream(rng)
    bufsize = rng.choice((1, 2, 3, 7, 64, 100, 1000, 4096, 8192, 65536, rng.randrange(1, 20_000)))
    closefd = rng.random() < 0.3
    feed = Feed(rio, rng, data)
    rp = rio.Rio(feed.rfd, bufsize, closefd=closefd)
    log.append(f"single: {len(data)} bytes via {feed.kind}, bufsize={bufsize}, closefd={closefd}")
    pos = 0
    nonblocking = False
    ops = 0
    state = "open"
    after_eof = 0
    try:
        while ops < budget and after_eof < 5:  # a few calls at EOF, then stop
            ops += 1
            if pos == len(data):
                after_eof += 1
            x = rng.random()
            if x < 0.03:  # toggle O_NONBLOCK
                nonblocking = not nonblocking
                os.set_blocking(feed.rfd, not nonblocking)
                log.append(f"  set_blocking({not nonblocking})")
                continue
            if x < 0.04:
                op = bad_args_op(rng, rp)
            elif x < 0.055 and rp.buffered == 0:  # unbuffered, safely
                n = choose_size(rng, bufsize)
                if n > (1 << 20):
                    n = rng.randrange(1, 1 << 20)
                if rng.random() < 0.5:
                    op = Op(
                        "rio_readn",
                        f"rio_readn(fd, {n})",
                        lambda n=n: rio.rio_readn(feed.rfd, n),
                        "exact",
                        n,
                    )
                else:
                    buf = bytearray(n)
                    op = Op(
                        "rio_readinto",
                        f"rio_readinto(fd, [{n}])",
                        lambda buf=buf: bytes(buf[: rio.rio_readinto(feed.rfd, buf)]),
                        "exact",
                        n,
                    )
            elif x < 0.06:  # re-__init__: drops buffered
                dropped = rp.buffered
                if rng.random() < 0.5:
                    newsize = rng.choice((1, 5, 8192, 33))
                    rp.__init__(feed.rfd, newsize, closefd=closefd)
                    bufsize = newsize
                    pos += dropped
                    log.append(f"  __init__(bufsize={newsize}) dropped {dropped}")
                    continue
                bad = rng.choice(((-1,), (feed.rfd, 0), (feed.rfd, 1 << 31), (feed.rfd, None)))
                try:
                    rp.__init__(*bad)
                except (ValueError, TypeError, OSError):
                    pass
                else:
                    raise FuzzFailure(f"__init__{bad} did not raise")
                log.append(f"  failed __init__{bad}")
                state = "uninit"
                break
            elif x < 0.063:  # close part-way
                rp.close()
                log.append("  close()")
                state = "closed"
                break
            else:
                op = read_op(rng, rio, rp, bufsize, threaded=False, nonblocking=nonblocking)
            log.append(f"  {op.desc}")
            if len(log) > 60:
                del log[1 : len(log) - 50]
            try:
                got = op.call()
            except BlockingIOError:
                if not nonblocking:
                    raise FuzzFailure(f"{op.desc}: BlockingIOError on a blocking fd") from None
                bump("blocking_io_errors")
                continue  # nothing returned: pos stays
            bump("ops_before_eof" if pos < len(data) else "ops_at_eof")
            if op.check == "none":
                continue
            if op.check == "buffered":
                if not isinstance(got, int) or got < 0:
                    raise FuzzFailure(f"buffered = {got!r}")
                continue
            if op.check == "lines":
                if not isinstance(got, list):
                    raise FuzzFailure(f"{op.desc} returned {type(got).__name__}")
                total = 0
                for line in got:
                    lop = Op("line", f"{op.desc} line", lambda: None, "line", -1)
                    check_result(lop, line, pos, data, pos + len(line) == len(data))
                    if not line:
                        raise FuzzFailure(f"{op.desc}: an empty line in the list")
                    pos += len(line)
                    total += len(line)
                if total < op.limit and pos != len(data):
                    raise FuzzFailure(f"{op.desc}: {total} bytes, short of the hint")
                continue
            if op.check == "peek":
                if not got and pos != len(data):
                    raise FuzzFailure(f"{op.desc}: b'' before EOF")
                check_result(op, got, pos, data, True)
                continue
            short = op.name in ("rio_readn", "rio_readinto") and nonblocking
            check_result(op, got, pos, data, eof=pos + len(got) == len(data) or short)
            pos += len(got)
            bump("bytes", len(got))
        # Now closed or uninitialized (or the budget is spent): every call fails.
        if state != "open":
            message = MSG_CLOSED if state == "closed" else MSG_UNINIT
            for call in (
                rp.readlineb,
                lambda: rp.readnb(1),
                rp.read,
                rp.peek,
                lambda: next(rp),
                rp.fileno,
                lambda: rp.buffered,
                lambda: rp.readinto(bytearray(3)),
                rp.__enter__,
            ):
                try:
                    call()
                except ValueError as exc:
                    if str(exc) != message:
                        raise FuzzFailure(f"{state} Rio: {exc!r}, not {message!r}") from exc
                else:
                    raise FuzzFailure(f"a {state} Rio answered a call")
        if state == "closed":
            rp.close()  # idempotent
            if rp.closed is not True:
                raise FuzzFailure("closed is not True after close()")
            if closefd:  # the Rio closed the fd
                feed.rfd_open = False
                try:
                    os.fstat(feed.rfd)
                except OSError as exc:
                    if exc.errno != errno.EBADF:
                        raise
                else:
                    raise FuzzFailure("close() with closefd=True left the fd open")
    finally:
        if state == "open":
            rp.close()
            state = "closed"
            if closefd:
                feed.rfd_open = False
        feed.finish()
    return ops


# ------------------------------------------------------- threaded segment


def tile(
    data: bytes, seqs: List[List[bytes]], max_steps: int = 2_000_000
) -> Optional[List[List[int]]]:
    """Offsets that place every thread's results, in each thread's order, so
    that together they cover data[:total] exactly once; None if impossible."""
    k = len(seqs)
    lengths = [len(s) for s in seqs]
    start = (0,) * k
    failed = set()
    stack: List[Tuple[Tuple[int, ...], int, List[int]]] = []

    def candidates(state: Tuple[int, ...], pos: int) -> List[int]:
        return [
            t for t in range(k) if state[t] < lengths[t] and data.startswith(seqs[t][state[t]], pos)
        ]

    stack.append((start, 0, candidates(start, 0)))
    steps = 0
    while stack:
        steps += 1
        if steps > max_steps:
            raise FuzzFailure("tiling search too long")
        state, pos, cands = stack[-1]
        if all(state[t] == lengths[t] for t in range(k)):
            offsets: List[List[int]] = [[0] * lengths[t] for t in range(k)]
            for (st, p, _), (nxt, _, _) in itertools.pairwise(stack):
                t = next(i for i in range(k) if nxt[i] != st[i])
                offsets[t][st[t]] = p
            return offsets
        if not cands:
            failed.add(state)
            stack.pop()
            continue
        t = cands.pop()
        new = state[:t] + (state[t] + 1,) + state[t + 1 :]
        if new in failed:
            continue
        npos = pos + len(seqs[t][state[t]])
        stack.append((new, npos, candidates(new, npos)))
    return None


def threaded_segment(rio: ModuleType, rng: random.Random, budget: int, log: List[str]) -> int:
    data = make_stream(rng, threaded=True)
    bufsize = rng.choice((1, 7, 64, 1000, 8192, rng.randrange(1, 20_000)))
    nthreads = rng.randrange(2, 5)
    feed = Feed(rio, rng, data, trickle=True)
    rp = rio.Rio(feed.rfd, bufsize)
    log.append(f"threaded x{nthreads}: {len(data)} bytes via {feed.kind}, bufsize={bufsize}")
    per_thread = max(1, budget // nthreads)
    results: List[List[Tuple[Op, bytes]]] = [[] for _ in range(nthreads)]
    errors: List[BaseException] = []
    plans = []
    for _ in range(nthreads):
        trng = random.Random(rng.random())
        plan = []
        for _ in range(per_thread):
            op = read_op(trng, rio, rp, bufsize, threaded=True)
            if op.check == "buffered":
                continue
            plan.append(op)
        plans.append(plan)
    barrier = threading.Barrier(nthreads, timeout=30)

    def worker(t: int) -> None:
        try:
            barrier.wait()
            for op in plans[t]:
                got = op.call()
                if op.check == "lines":  # one atomic call: contiguous bytes
                    got = b"".join(got)
                results[t].append((op, got))
                if not got and op.check in ("exact", "some", "line") and op.limit:
                    break  # EOF: the rest would be empty too
        except BaseException as exc:  # pragma: no cover - a failure
            errors.append(exc)

    threads = [
        threading.Thread(target=worker, args=(t,), daemon=True, name=f"fuzz-reader-{t}")
        for t in range(nthreads)
    ]
    ops = 0
    # A short switch interval makes the threads meet inside the calls (with
    # the default 5 ms, a thread blocked in read(2) is rarely overtaken).
    interval = sys.getswitchinterval()
    sys.setswitchinterval(rng.choice((1e-6, 1e-5, 1e-4)))
    try:
        for th in threads:
            th.start()
        deadline = time.monotonic() + 60
        for th in threads:
            th.join(max(0.1, deadline - time.monotonic()))
        sys.setswitchinterval(interval)
        if any(th.is_alive() for th in threads):
            raise FuzzFailure("a reader thread hung")
        if errors:
            raise FuzzFailure(f"a reader thread failed: {errors[0]!r}") from errors[0]
        ops = sum(len(r) for r in results)
        seqs = [[got for _, got in r if got] for r in results]
        offsets = tile(data, seqs)
        if offsets is None:
            total = sum(len(g) for s in seqs for g in s)
            raise FuzzFailure(
                f"the results of {nthreads} threads ({total} bytes) "
                "do not tile the stream: a byte lost, repeated or "
                "a result not contiguous"
            )
        consumed = sum(len(g) for s in seqs for g in s)
        bump("threaded_ops", ops)
        bump("threaded_bytes", consumed)
        saw_eof = False
        for t in range(nthreads):
            i = 0
            for op, got in results[t]:
                if got:
                    pos = offsets[t][i]
                    i += 1
                else:
                    pos = consumed
                    if op.limit and op.check in ("exact", "some", "line"):
                        saw_eof = True
                if op.check != "lines":  # the tiling placed its bytes
                    check_result(op, got, pos, data, pos + len(got) == len(data))
        if saw_eof and consumed != len(data):
            raise FuzzFailure(
                f"a thread saw EOF but only {consumed} of {len(data)} bytes were returned"
            )
        rp.close()
    finally:
        sys.setswitchinterval(interval)
        feed.finish()
    return ops


# ------------------------------------------------------------------ driver


def fuzz(rio: ModuleType, seed: int, total_ops: int, time_limit: float) -> Dict[str, int]:
    print(f"fuzz {rio.__name__}: CSAPP_FUZZ_SEED={seed} ops={total_ops}")
    STATS.clear()
    done = segments = threaded = 0
    started = time.monotonic()
    while done < total_ops:
        if time.monotonic() - started > time_limit:
            raise FuzzFailure(
                f"CSAPP_FUZZ_SEED={seed}: only {done} of {total_ops} "
                f"operations in {time_limit:.0f} s"
            )
        seg_rng = random.Random(f"{seed}/{segments}")
        multi = seg_rng.random() < 0.15
        budget = seg_rng.randrange(20, 700)
        log: List[str] = []
        try:
            if multi:
                done += threaded_segment(rio, seg_rng, budget, log)
                threaded += 1
            else:
                done += single_segment(rio, seg_rng, budget, log)
        except BaseException as exc:
            trail = "\n".join(log[-25:])
            raise FuzzFailure(
                f"{rio.__name__}: CSAPP_FUZZ_SEED={seed}, segment {segments} "
                f"({'threaded' if multi else 'single'}): {exc!r}\nlast steps:\n{trail}"
            ) from exc
        segments += 1
    print(
        f"fuzz {rio.__name__}: {done} operations in {segments} segments "
        f"({threaded} threaded) in {time.monotonic() - started:.1f} s; {STATS}"
    )
    return {"ops": done, "segments": segments, "threaded": threaded}


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0


@pytest.mark.parametrize(
    "ops,time_limit",
    [
        pytest.param(DEFAULT_OPS, 600, id="default"),
        pytest.param(STRESS_OPS, 3000, marks=pytest.mark.stress, id="stress"),
    ],
)
def test_fuzz_rio(rio: ModuleType, ops: int, time_limit: float) -> None:
    before = fd_count()
    stats = fuzz(rio, run_seed(), ops, time_limit=time_limit)
    assert stats["ops"] >= ops and stats["threaded"] > 0, stats
    assert fd_count() == before, "the fuzz run leaked descriptors"


def test_tile_rejects_loss_duplication_and_splits() -> None:
    """The checker itself: it accepts a real interleaving and rejects bad ones."""
    data = bytes(range(200)) * 3
    a, b = [data[0:10], data[25:60]], [data[10:25], data[60:100]]
    assert tile(data, [a, b]) == [[0, 25], [10, 60]]
    assert tile(data, [[data[0:10]], [data[11:20]]]) is None  # a byte lost
    assert tile(data, [[data[0:10]], [data[5:20]]]) is None  # repeated
    assert tile(data, [[data[10:20], data[0:10]]]) is None  # out of order
    joined = data[0:5] + data[7:10]
    assert tile(data, [[joined], [data[5:7]]]) is None  # not contiguous
