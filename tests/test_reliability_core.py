"""No growth: long runs of RIO calls leave descriptors, Python memory and RSS flat.

Both implementations, through the ``rio`` fixture. What is measured:

* the open descriptor count, ``len(os.listdir('/proc/self/fd'))``;
* tracemalloc's traced total (Python objects: a leaked ``bytes`` shows here);
* ``sys.getallocatedblocks()``, which sees every leaked object at no cost
  (tracemalloc makes the pure-Python twin six times slower): the 400,000
  ``Rio`` objects of the stress run count blocks only;
* the resident set size from ``/proc/self/statm``, because tracemalloc does not
  see the C core's ``malloc``/``realloc`` (a leaked ``rio_t`` buffer shows here).

The RSS check is skipped under AddressSanitizer or valgrind (their allocators
quarantine freed memory, and they check leaks themselves: scripts/sanitize.sh,
scripts/valgrind.sh). ``CSAPP_TEST_SCALE`` (a float, default 1) scales the
default counts, for those slow runs; the full counts are behind ``stress``.
"""

from __future__ import annotations

import gc
import os
import random
import sys
import tempfile
import tracemalloc
from types import ModuleType
from typing import Callable, Iterator, Tuple

import pytest

from support.rioutil import fd_is_open

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux /proc")

MiB = 1 << 20
SCALE = float(os.environ.get("CSAPP_TEST_SCALE", "1") or "1")
TRACED_LIMIT = 1 * MiB
RSS_LIMIT = 4 * MiB
BLOCKS_LIMIT = 10_000  # a leak of one object per call is 100,000s


def scaled(count: int) -> int:
    return max(500, int(count * SCALE))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_tool() -> str:
    """'asan' or 'valgrind' when this process runs under one, else ''."""
    with open("/proc/self/maps") as f:
        maps = f.read()
    if "libasan" in maps:
        return "asan"
    if "vgpreload" in maps:
        return "valgrind"
    return ""


def line_file(seed: int, lines: int, long_every: int) -> int:
    """An unlinked temporary file of lines (some longer than a buffer); its fd."""
    rng = random.Random(seed)
    parts = []
    for i in range(lines):
        size = rng.randrange(0, 200)
        if long_every and i % long_every == 0:
            size = rng.randrange(9000, 20000)  # longer than MAXLINE: in pieces
        parts.append(b"%d:" % i + b"x" * size + b"\n")
    data = b"".join(parts) + b"no newline at the end"
    fd, path = tempfile.mkstemp(prefix="csapp-rel-")
    os.unlink(path)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


class Growth:
    """Baselines of fds, traced memory and RSS after warm-up; check() compares."""

    def __init__(self, rio: ModuleType) -> None:
        self.rio = rio
        gc.collect()
        self.fds = open_fds()
        self.traced = tracemalloc.get_traced_memory()[0]
        self.blocks = sys.getallocatedblocks()
        self.rss = rss()

    def check(self, what: str) -> Tuple[int, int, int]:
        gc.collect()
        fds = open_fds() - self.fds
        traced = tracemalloc.get_traced_memory()[0] - self.traced
        blocks = sys.getallocatedblocks() - self.blocks
        grown = rss() - self.rss
        assert fds == 0, f"{what}: {fds} descriptors more than before"
        assert traced < TRACED_LIMIT, f"{what}: Python memory grew by {traced} bytes"
        assert blocks < BLOCKS_LIMIT, f"{what}: {blocks} more Python memory blocks"
        tool = memory_tool()
        if not tool:
            assert grown < RSS_LIMIT, f"{what}: RSS grew by {grown} bytes"
        return fds, traced, grown


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


@pytest.fixture
def untraced() -> None:
    """For the long runs: blocks and RSS only (see the module docstring)."""
    assert not tracemalloc.is_tracing()


# A no-growth test's default run and its stressed one (-m stress), through the
# ``stress`` fixture (``indirect``): the full counts, blocks and RSS only.
STRESS = [
    pytest.param(False, id="default"),
    pytest.param(True, marks=pytest.mark.stress, id="stress"),
]


@pytest.fixture
def stress(request: pytest.FixtureRequest) -> bool:
    """The parameter (``STRESS``): False is the default run, ``traced``; True the
    stress run, ``untraced``."""
    request.getfixturevalue("untraced" if request.param else "traced")
    return bool(request.param)


def run_readlineb(rio: ModuleType, calls: int, bufsize: int, maxlen: int) -> None:
    fd = line_file(seed=bufsize, lines=3000, long_every=97)
    try:
        rp = rio.Rio(fd, bufsize)
        readlineb = rp.readlineb
        total = 0

        eofs = [0]

        def spin(count: int) -> int:
            got = 0
            for _ in range(count):
                line = readlineb(maxlen)
                if line:
                    got += len(line)
                else:  # EOF: start the file again
                    eofs[0] += 1
                    os.lseek(fd, 0, os.SEEK_SET)
            return got

        spin(20000)  # warm-up: buffers, caches, arenas
        assert eofs[0] > 0, "the warm-up never went round the file"
        growth = Growth(rio)
        total += spin(calls)
        growth.check(f"{calls} readlineb calls (bufsize={bufsize}, maxlen={maxlen})")
        assert total > calls  # it really read lines
        rp.close()
    finally:
        os.close(fd)


@pytest.mark.parametrize("stress", STRESS, indirect=True)
@pytest.mark.parametrize(
    "bufsize,maxlen,calls", [(8192, 8192, 200_000), (61, 8192, 20_000), (8192, 100, 20_000)]
)
def test_readlineb_no_growth(
    rio: ModuleType, stress: bool, bufsize: int, maxlen: int, calls: int
) -> None:
    """readlineb calls (x CSAPP_TEST_SCALE), traced: 200,000 with the default
    buffer; with bufsize 61 every long line grows and shrinks the C buffer;
    maxlen 100 returns long lines in pieces. Stress: a million calls in each
    case, untraced, counting blocks and RSS (see the module docstring; traced,
    the pure-Python twin's bufsize-61 case took 128 s of CI)."""
    run_readlineb(rio, 1_000_000 if stress else scaled(calls), bufsize, maxlen)


def run_rio_objects(rio: ModuleType, count: int) -> None:
    """Rio objects made and dropped every way; closefd=True ones over a dup."""
    fd = line_file(seed=7, lines=200, long_every=0)
    rng = random.Random(count)
    try:

        def one(i: int) -> None:
            os.lseek(fd, 0, os.SEEK_SET)
            way = i % 8
            bufsize = (1, 17, 4096, 8192, 65536)[i % 5]
            if way == 0:  # dropped with bytes buffered
                rp = rio.Rio(fd, bufsize)
                assert rp.readlineb()
            elif way == 1:  # closed, then dropped
                rp = rio.Rio(fd, bufsize)
                rp.readnb(rng.randrange(0, 300))
                rp.close()
            elif way == 2:  # a with block
                with rio.Rio(fd, bufsize) as rp:
                    rp.peek()
            elif way == 3:  # closefd=True, dropped unclosed
                rp = rio.Rio(os.dup(fd), bufsize, closefd=True)
                rp.read1(100)
            elif way == 4:  # closefd=True, closed
                rp = rio.Rio(os.dup(fd), bufsize, closefd=True)
                rp.readline()
                rp.close()
                rp.close()
            elif way == 5:  # never used: no buffer at all
                rp = rio.Rio(fd, bufsize)
            elif way == 6:  # a failed re-__init__: unusable
                rp = rio.Rio(fd, bufsize)
                rp.readlineb()
                for call in (lambda r=rp: r.__init__(fd, 0), rp.readlineb):
                    try:
                        call()
                    except ValueError:
                        pass
                    else:
                        raise AssertionError("a failed re-__init__ left the Rio usable")
            else:  # re-__init__ drops the buffer
                rp = rio.Rio(fd, bufsize)
                rp.readlineb()
                rp.__init__(fd, 33)
                rp.readnb(40)
            del rp

        for i in range(2000):  # warm-up
            one(i)
        if not tracemalloc.is_tracing():  # the stress run: blocks and RSS
            growth = Growth(rio)
            for i in range(count):
                one(i)
            growth.check(f"{count} Rio objects")
            return
        # The first quarter runs traced (tracemalloc slows the pure-Python
        # twin tenfold); descriptors, blocks and RSS are compared over the whole run.
        traced_part = count // 4
        growth = Growth(rio)
        for i in range(traced_part):
            one(i)
        traced_growth = tracemalloc.get_traced_memory()[0] - growth.traced
        tracemalloc.stop()
        try:
            for i in range(traced_part, count):
                one(i)
        finally:
            tracemalloc.start()
        growth.traced = tracemalloc.get_traced_memory()[0] - traced_growth
        growth.check(f"{count} Rio objects ({traced_part} traced)")
    finally:
        os.close(fd)


@pytest.mark.parametrize("stress", STRESS, indirect=True)
def test_rio_objects_no_growth(rio: ModuleType, stress: bool) -> None:
    """100,000 Rio objects (x CSAPP_TEST_SCALE), a quarter traced; stress: 400,000."""
    run_rio_objects(rio, 400_000 if stress else scaled(100_000))


def test_unbuffered_and_error_paths_no_growth(rio: ModuleType, traced: None) -> None:
    """rio_readn / rio_readinto / rio_writen, and their error paths (EAGAIN,
    EBADF, EPIPE), free what they allocate."""
    count = scaled(4_000)
    r, w = os.pipe()
    os.set_blocking(r, False)
    payload = bytes(range(256)) * 16
    closed_r, closed_w = os.pipe()
    os.close(closed_r)  # writing to closed_w: EPIPE
    try:

        def one(i: int) -> None:
            k = (i % 37) * 61 + 1
            assert rio.rio_writen(w, memoryview(payload)[:k]) == k
            assert rio.rio_readn(r, 1 << 30) == payload[:k]  # short: EAGAIN
            with pytest.raises(BlockingIOError):
                rio.rio_readn(r, 100000)
            with pytest.raises(BlockingIOError):
                rio.rio_readinto(r, bytearray(10))
            with pytest.raises(BrokenPipeError) as info:
                rio.rio_writen(closed_w, b"x" * k)
            assert info.value.characters_written == 0
            rp = rio.Rio(r, 64)
            with pytest.raises(BlockingIOError):
                rp.readlineb()
            rio.rio_writen(w, b"half a line")
            with pytest.raises(BlockingIOError):
                rp.readlineb()  # keeps the half line
            rio.rio_writen(w, b"\n")
            assert rp.readlineb() == b"half a line\n"

        for i in range(500):
            one(i)
        growth = Growth(rio)
        for i in range(count):
            one(i)
        growth.check(f"{count} unbuffered rounds")
    finally:
        for fd in (r, w, closed_w):
            os.close(fd)


# ------------------------------------------------- closefd=True and dropping


Maker = Callable[[ModuleType, int], object]


def _dropped_plain(rio: ModuleType, fd: int) -> object:
    return rio.Rio(fd, closefd=True)


def _dropped_with_buffered_bytes(rio: ModuleType, fd: int) -> object:
    rp = rio.Rio(fd, 16, closefd=True)
    assert rp.readnb(3) == b"abc"
    assert rp.buffered > 0
    return rp


def _dropped_after_eof(rio: ModuleType, fd: int) -> object:
    rp = rio.Rio(fd, closefd=True)
    assert rp.read() == b"abcdefghij" * 10
    return rp


def _dropped_after_exception(rio: ModuleType, fd: int) -> object:
    rp = rio.Rio(fd, closefd=True)
    with pytest.raises(ValueError):
        rp.readlineb(1)
    return rp


@pytest.mark.parametrize(
    "make",
    [_dropped_plain, _dropped_with_buffered_bytes, _dropped_after_eof, _dropped_after_exception],
)
def test_closefd_true_dropped_without_close_closes_fd(rio: ModuleType, make: Maker) -> None:
    r, w = os.pipe()
    try:
        os.write(w, b"abcdefghij" * 10)
    finally:
        os.close(w)
    before = open_fds()
    rp = make(rio, r)
    assert fd_is_open(r)
    del rp
    gc.collect()
    assert not fd_is_open(r), "closefd=True Rio dropped without close() leaked its fd"
    assert open_fds() == before - 1


def test_closefd_false_dropped_leaves_fd_open(rio: ModuleType) -> None:
    r, w = os.pipe()
    try:
        os.write(w, b"line\nrest")
        os.close(w)
        w = -1
        rp = rio.Rio(r)
        assert rp.readlineb() == b"line\n"
        del rp
        gc.collect()
        assert fd_is_open(r)
        assert os.read(r, 100) == b""  # the Rio had taken "rest" into its buffer
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_many_closefd_true_dropped(rio: ModuleType, traced: None) -> None:
    """Thousands of unclosed closefd=True Rio objects over fresh pipes: no fd left."""
    count = scaled(5000)
    growth = Growth(rio)
    for i in range(count):
        r, w = os.pipe()
        os.write(w, b"x\n")
        os.close(w)
        rp = rio.Rio(r, closefd=True)
        if i % 2:
            assert rp.readlineb() == b"x\n"
        del rp
    growth.check(f"{count} closefd=True Rio objects dropped")
