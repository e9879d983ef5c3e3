"""The twins are twins: ``csapp._rio_c`` and ``csapp._rio_py`` expose the same
names, constants and signatures (held against ``_rio_c.pyi``, their one
written source), raise the same errors with the same messages, and make the
same ``read(2)`` calls for the same calls (seen with strace).

Needs the compiled extension (skipped without it, like every "c" case).
"""

from __future__ import annotations

import ast
import inspect
import io
import json
import os
import pickle
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

import csapp
from csapp import _rio_py, _shared
from support.rioutil import strace_argv

rio_c = pytest.importorskip("csapp._rio_c") if "c" in csapp.IMPLEMENTATIONS else None
pytestmark = pytest.mark.skipif(rio_c is None, reason="the compiled extension is not built here")

STUB = Path(_rio_py.__file__).with_name("_rio_c.pyi")
TWINS = {"c": rio_c, "python": _rio_py}


# ------------------------------------------------------------ names, constants


def public_names(module: Optional[ModuleType]) -> List[str]:
    return sorted(name for name in dir(module) if not name.startswith("_"))


def test_same_public_names_and_all() -> None:
    names = sorted(_shared.RIO_NAMES)  # the one written list
    assert sorted(rio_c.__all__) == sorted(_rio_py.__all__) == names
    stub = ast.parse(STUB.read_text())
    stub_all = next(
        ast.literal_eval(node.value)
        for node in stub.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "__all__"
    )
    assert sorted(stub_all) == names
    assert set(names) <= set(csapp.__all__)
    chosen = csapp.IMPLEMENTATIONS[csapp.IMPLEMENTATION]
    for name in names:  # csapp's names are the chosen twin's objects
        assert getattr(csapp, name) is getattr(chosen, name), name
    for twin in TWINS.values():
        assert set(twin.__all__) <= set(public_names(twin))
    assert public_names(rio_c.Rio) == public_names(_rio_py.Rio)
    for private in ("_rio_echo", "_rio_echo_turns", "_rio_echo_wait"):  # the echo services' cores
        assert hasattr(rio_c, private) and hasattr(_rio_py, private), private


def test_same_constants_from_the_shared_module() -> None:
    for twin in TWINS.values():
        assert (twin.RIO_BUFSIZE, twin.MAXLINE) == (_shared.RIO_BUFSIZE, _shared.MAXLINE)
        assert not hasattr(twin, "LISTENQ")  # the sockets layer's: csapp.sockets.LISTENQ
    assert csapp.LISTENQ == csapp.sockets.LISTENQ == 1024
    assert (csapp.RIO_BUFSIZE, csapp.MAXLINE) == (8192, 8192)


def test_both_register_as_buffered_io() -> None:
    for twin in TWINS.values():
        assert issubclass(twin.Rio, io.BufferedIOBase)


# ------------------------------------------------------------ signatures


Params = List[Tuple[str, str, Any]]  # (name, kind, default or None for "none")
NO_DEFAULT = "<required>"


def _params(args: ast.arguments, values: Callable[[ast.expr], Any]) -> Params:
    out: Params = []
    positional = args.posonlyargs + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    for arg, default in zip(positional, defaults):
        out.append((arg.arg, "positional", NO_DEFAULT if default is None else values(default)))
    if args.vararg:
        out.append((args.vararg.arg, "*", NO_DEFAULT))
    for arg, default in zip(args.kwonlyargs, args.kw_defaults):
        out.append((arg.arg, "keyword", NO_DEFAULT if default is None else values(default)))
    if args.kwarg:
        out.append((args.kwarg.arg, "**", NO_DEFAULT))
    return out


def stub_signatures() -> Dict[str, Params]:
    """``name`` or ``Rio.name`` -> parameters, as the stub writes them."""
    tree = ast.parse(STUB.read_text())
    out: Dict[str, Params] = {}

    def visit(body: List[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                visit(node.body, f"{node.name}.")
            elif isinstance(node, ast.FunctionDef) and not any(
                isinstance(d, ast.Name) and d.id == "property" for d in node.decorator_list
            ):
                out[prefix + node.name] = _params(node.args, ast.literal_eval)

    visit(tree.body, "")
    return out


def fallback_signature(obj: Callable[..., Any]) -> Params:
    kinds = {
        inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional",
        inspect.Parameter.POSITIONAL_ONLY: "positional",
        inspect.Parameter.VAR_POSITIONAL: "*",
        inspect.Parameter.KEYWORD_ONLY: "keyword",
        inspect.Parameter.VAR_KEYWORD: "**",
    }
    return [
        (p.name, kinds[p.kind], NO_DEFAULT if p.default is inspect.Parameter.empty else p.default)
        for p in inspect.signature(obj).parameters.values()
    ]


# Defaults the .pyx spells with names (identity markers of its fast paths).
COMPILED_DEFAULT_NAMES = {
    "MAXLINE": 8192,
    "RIO_BUFSIZE": 8192,
    "DEFAULT_MAXLEN": 8192,
    "DEFAULT_SIZE": -1,
}


def compiled_signature(obj: Any) -> Params:
    """The signature Cython embeds as the docstring's first line (embedsignature)."""
    first = (obj.__doc__ or "").splitlines()[0]
    func = ast.parse(f"def {first}: pass").body[0]
    assert isinstance(func, ast.FunctionDef)

    def value(node: ast.expr) -> Any:
        if isinstance(node, ast.Name):
            return COMPILED_DEFAULT_NAMES[node.id]
        return ast.literal_eval(node)

    return _params(func.args, value)


def _lookup(module: Any, dotted: str) -> Any:
    obj = module
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


STUBBED = stub_signatures()


@pytest.mark.parametrize("name", sorted(STUBBED))
def test_the_fallback_matches_the_stub(name: str) -> None:
    assert fallback_signature(_lookup(_rio_py, name)) == STUBBED[name]


@pytest.mark.parametrize(
    "name", sorted(n for n in STUBBED if n != "Rio.__init__" and not n.startswith("Rio.__"))
)
def test_the_compiled_twin_matches_the_stub(name: str) -> None:
    assert compiled_signature(_lookup(rio_c, name)) == STUBBED[name]


def test_every_public_callable_is_in_the_stub() -> None:
    for twin in TWINS.values():
        for name in twin.__all__:
            if callable(getattr(twin, name)) and name != "Rio":
                assert name in STUBBED, name
        for name in public_names(twin.Rio):
            if name not in ("buffered", "closed", "mode", "name"):
                assert f"Rio.{name}" in STUBBED, name


@pytest.mark.parametrize("impl", ["c", "python"])
def test_rio_constructor_takes_closefd_by_keyword_only(impl: str) -> None:
    """The one signature introspection cannot show for the compiled class."""
    r, w = os.pipe()
    try:
        with pytest.raises(TypeError):
            TWINS[impl].Rio(r, 16, True)
        TWINS[impl].Rio(fd=r, bufsize=16, closefd=False).close()
    finally:
        os.close(r)
        os.close(w)


# ------------------------------------------------------------ errors


def _raised(call: Callable[[], Any]) -> Tuple[str, str]:
    try:
        call()
    except BaseException as exc:
        return type(exc).__name__, str(exc)
    return "no exception", ""


def _bad_calls(twin: ModuleType, fd: int, closed: Any, blank: Any) -> Dict[str, Callable[[], Any]]:
    rp = twin.Rio(fd)
    noncontiguous = memoryview(bytearray(8))[::2]
    return {
        "Rio(-1)": lambda: twin.Rio(-1),
        "Rio(2**40)": lambda: twin.Rio(2**40),
        "Rio('x')": lambda: twin.Rio("x"),
        "Rio(fd, 0)": lambda: twin.Rio(fd, 0),
        "Rio(fd, 2**30 + 1)": lambda: twin.Rio(fd, 2**30 + 1),
        "readlineb(1)": lambda: rp.readlineb(1),
        "readlineb('x')": lambda: rp.readlineb("x"),
        "readnb(-1)": lambda: rp.readnb(-1),
        "read(-2)": lambda: rp.read(-2),
        "read1(-2)": lambda: rp.read1(-2),
        "read(1.5)": lambda: rp.read(1.5),
        "readinto(b'')": lambda: rp.readinto(b"abc"),
        "readinto(3)": lambda: rp.readinto(3),
        "readinto(strided)": lambda: rp.readinto(noncontiguous),
        "peek('x')": lambda: rp.peek("x"),
        "pickle": lambda: pickle.dumps(rp),
        "rio_readn(fd, -1)": lambda: twin.rio_readn(fd, -1),
        "rio_readn(-1, 1)": lambda: twin.rio_readn(-1, 1),
        "rio_readinto(fd, b'x')": lambda: twin.rio_readinto(fd, b"x"),
        "rio_writen(fd, 5)": lambda: twin.rio_writen(fd, 5),
        "rio_writen(fd, 'text')": lambda: twin.rio_writen(fd, "text"),
        "rio_writen(2**31, b'x')": lambda: twin.rio_writen(2**31, b"x"),
        "rio_readlineb(object())": lambda: twin.rio_readlineb(object()),
        "rio_readnb(None, 1)": lambda: twin.rio_readnb(None, 1),
        "_rio_echo(object(), 1)": lambda: twin._rio_echo(object(), 1),
        "closed.readlineb()": lambda: closed.readlineb(),
        "closed.read()": lambda: closed.read(),
        "closed.fileno()": lambda: closed.fileno(),
        "closed.__enter__()": lambda: closed.__enter__(),
        "closed iteration": lambda: iter(closed),
        "closed._rio_echo": lambda: twin._rio_echo(closed, fd),
        "blank.readline()": lambda: blank.readline(),
        "blank.closed": lambda: blank.closed,
        "blank.close()": lambda: blank.close(),
        "blank.buffered": lambda: blank.buffered,
    }


def test_the_same_errors_and_messages() -> None:
    seen: Dict[str, Dict[str, Tuple[str, str]]] = {}
    r, w = os.pipe()
    try:
        for impl, twin in TWINS.items():
            closed = twin.Rio(r)
            closed.close()
            blank = twin.Rio.__new__(twin.Rio)
            seen[impl] = {
                name: _raised(call) for name, call in _bad_calls(twin, r, closed, blank).items()
            }
    finally:
        os.close(r)
        os.close(w)
    assert seen["c"] == seen["python"]
    for name, (kind, _message) in seen["c"].items():
        assert kind != "no exception", name
    messages = {message for _kind, message in seen["c"].values()}
    for shared in (
        _shared.MSG_CLOSED,
        _shared.MSG_UNINIT,
        _shared.MSG_BUFSIZE,
        _shared.MSG_MAXLEN,
        _shared.MSG_NEGATIVE_N,
        _shared.MSG_READ_LENGTH,
        _shared.MSG_CONTIGUOUS,
    ):
        assert shared in messages, shared


@pytest.mark.parametrize("impl", ["c", "python"])
def test_repr_is_the_shared_one(impl: str) -> None:
    twin = TWINS[impl]
    r, w = os.pipe()
    try:
        os.write(w, b"abc\n")
        rp = twin.Rio(r)
        rp.peek()
        assert repr(rp) == f"<{twin.__name__}.Rio fd={r} buffered=4>"
        rp.close()
        assert repr(rp) == f"<{twin.__name__}.Rio closed>"
        assert repr(twin.Rio.__new__(twin.Rio)) == f"<{twin.__name__}.Rio uninitialized>"
    finally:
        os.close(r)
        os.close(w)


# ------------------------------------------------------------ system calls

# A child runs scenarios (a bufsize, the bytes in a pipe, the calls) with one
# twin, under strace; between scenarios it stats a marker path, so the reads
# of each scenario's descriptor can be told apart.
CHILD = r"""
import json, os, sys
impl, path = sys.argv[1], sys.argv[2]
if impl == "python":
    from csapp import _rio_py as twin
else:
    from csapp import _rio_c as twin
scenarios = json.load(open(path))
devnull = os.open(os.devnull, os.O_WRONLY)
for number, (bufsize, data, calls) in enumerate(scenarios):
    data = data.encode("latin-1")
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    try:
        os.stat(f"/csapp-scenario-{number}-fd-{r}")
    except OSError:
        pass
    rp = twin.Rio(r, bufsize)
    for name, arg in calls:
        if name == "readinto":
            rp.readinto(bytearray(arg))
        elif name == "next":
            next(rp, None)
        elif name == "echo":
            twin._rio_echo(rp, devnull, bool(arg))
        elif arg is None:
            getattr(rp, name)()
        else:
            getattr(rp, name)(arg)
    rp.close()
    os.close(r)
"""

STRACE_LINE = re.compile(
    r'^(?:stat|newfstatat|statx)\((?:AT_FDCWD, )?"/csapp-scenario-(\d+)-fd-(\d+)"'
    r"|^(read|readv)\((\d+), (.*)\) += (-?\d+)"
)


def strace_reads(impl: str, scenarios: List[Any], tmp_path: Path) -> List[List[Tuple[int, int]]]:
    """For each scenario, the (asked, got) of every read of its descriptor."""
    spec = tmp_path / f"scenarios-{impl}.json"
    spec.write_text(json.dumps(scenarios))
    trace = tmp_path / f"trace-{impl}"
    env = dict(os.environ, CSAPP_NO_EXTENSIONS="1" if impl == "python" else "0")
    subprocess.run(
        strace_argv("read,readv", str(trace)) + [sys.executable, "-c", CHILD, impl, str(spec)],
        check=True,
        timeout=120,
        env=env,
    )
    reads: List[List[Tuple[int, int]]] = [[] for _ in scenarios]
    current, fd = -1, -1
    for line in trace.read_text().splitlines():
        line = re.sub(r"^\d+ +", "", line)  # -f prefixes the pid
        m = STRACE_LINE.match(line)
        if not m:
            continue
        if m.group(1) is not None:
            current, fd = int(m.group(1)), int(m.group(2))
        elif current >= 0 and int(m.group(4)) == fd:
            if m.group(3) == "read":
                asked = int(m.group(5).rsplit(",", 1)[1])
            else:
                asked = sum(int(n) for n in re.findall(r"iov_len=(\d+)", m.group(5)))
            reads[current].append((asked, int(m.group(6))))
    return reads


def strace_works() -> bool:
    if shutil.which("strace") is None:
        return False
    probe = subprocess.run(
        ["strace", "-qq", "-o", os.devnull, "true"], capture_output=True, timeout=30
    )
    return probe.returncode == 0


needs_strace = pytest.mark.skipif(
    not strace_works(),
    reason="strace is missing or cannot trace here (apt-get install strace; CI installs it)",
)

# CPython's Lib/test/test_io.py, BufferedReaderTest.test_buffering: (bufsize,
# the reads, what io.BufferedReader's raw reads return).
CPYTHON_BUFFERING = [
    (100, [3, 1, 4, 8], [9, 0]),
    (100, [3, 3, 3], [9]),
    (4, [1, 2, 4, 2], [4, 4, 1]),
]


def test_cpython_test_buffering_cases_for_io_itself() -> None:
    """The control: what the raw reads of io.BufferedReader are."""

    class Recording(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self.data, self.history = data, []  # type: ignore[var-annotated]

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            n = min(len(buffer), len(self.data))
            buffer[:n], self.data = self.data[:n], self.data[n:]
            self.history.append(n)
            return n

    for bufsize, sizes, raw in CPYTHON_BUFFERING:
        recording = Recording(b"abcdefghi")
        reader = io.BufferedReader(recording, bufsize)
        for n in sizes:
            reader.read(n)
        assert recording.history == raw


@needs_strace
def test_cpython_test_buffering_cases(tmp_path: Path) -> None:
    """Both twins read 4, 3, 2 where io reads 4, 4, 1 (docs/CONTRACT.md says why:
    a Rio keeps the pending "d" in its buffer and reads into the free space)."""
    scenarios = [
        [bufsize, "abcdefghi", [["read", n] for n in sizes]]
        for bufsize, sizes, _raw in CPYTHON_BUFFERING
    ]
    for impl in ("c", "python"):
        got = [
            [count for _asked, count in reads] for reads in strace_reads(impl, scenarios, tmp_path)
        ]
        assert got == [[9, 0], [9], [4, 3, 2]], impl


def random_scenarios(seed: int, count: int) -> List[Any]:
    rnd = random.Random(seed)
    scenarios = []
    for _ in range(count):
        bufsize = rnd.choice([1, 2, 3, 4, 7, 16, 64, 100, 1000, 8192])
        # Small buffers get little data: every read is traced, and traced reads are slow.
        budget = 300 if bufsize < 16 else 30000
        lines = []
        for _ in range(rnd.randrange(0, 60)):
            length = rnd.choice([0, 1, 5, 30, 200, 3000, 9000])
            lines.append("x" * length + ("\n" if rnd.random() < 0.9 else ""))
        data = "".join(lines)[:budget]
        calls = []
        for _ in range(rnd.randrange(1, 40)):
            name = rnd.choice(
                [
                    "readlineb",
                    "readline",
                    "read",
                    "readnb",
                    "read1",
                    "peek",
                    "readinto",
                    "readlines",
                    "next",
                    "echo",
                ]
            )
            if name == "readlineb":
                arg: Any = rnd.choice([None, 2, 3, 10, 8192, 20000])
            elif name == "readline":
                arg = rnd.choice([None, -1, 0, 1, 5, 100, 10000])
            elif name in ("read", "read1"):
                arg = rnd.choice([None, -1, 0, 1, 3, 50, 4096, 9000, 70000])
            elif name == "readnb":
                arg = rnd.choice([0, 1, 7, 5000, 70000])
            elif name == "readinto":
                arg = rnd.choice([0, 1, 9, 100, 5000, 20000])
            elif name == "readlines":
                arg = rnd.choice([None, 1, 100, 5000])
            elif name == "echo":
                arg = rnd.choice([0, 1])
            else:
                arg = None
            calls.append([name, arg])
        scenarios.append([bufsize, data, calls])
    return scenarios


@needs_strace
@pytest.mark.parametrize(
    "count", [60, pytest.param(200, marks=pytest.mark.stress, id="200-stress")]
)
def test_both_twins_make_the_same_reads(tmp_path: Path, count: int) -> None:
    """Random scenarios (every read under strace: 60 take about 3 s)."""
    scenarios = random_scenarios(seed=20261202 + count, count=count)
    c_reads = strace_reads("c", scenarios, tmp_path)
    py_reads = strace_reads("python", scenarios, tmp_path)
    assert sum(map(len, c_reads)) > 2 * count  # the trace saw the reads
    for number, (c, py) in enumerate(zip(c_reads, py_reads)):
        assert c == py, (number, scenarios[number][0], scenarios[number][2])


def test_readlines_that_raises_part_way_leaves_the_same_buffer_in_both() -> None:
    """An atheris finding (CI, 2026-12-06): readlines that took lines and then
    hit EAGAIN puts them back; the C core's csapp_rio_unread sizes its buffer
    for them, so the pure twin's model must too, or the next refill asks for
    another size and the twins' buffers part (here, 1 byte against 0)."""
    data = b"\n\n\n#\n\xff\xff\x90\x95\x95\xf6\xf5\n\xff\xff\xff\xff\xff"
    # (bytes sent before the call, None: the rest and EOF; readlines' hint)
    steps = [(1, -3), (11, 1), (0, 1), (0, -3), (0, 1), (None, 3)]
    seen: Dict[str, List[Any]] = {}
    for name, twin in TWINS.items():
        r, w = os.pipe()
        os.set_blocking(r, False)
        rp = twin.Rio(r, 2)
        sent, trail = 0, []
        try:
            for count, hint in steps:
                chunk = data[sent:] if count is None else data[sent : sent + count]
                if chunk:
                    os.write(w, chunk)
                sent += len(chunk)
                if count is None:
                    os.close(w)
                    w = -1
                try:
                    result: Any = rp.readlines(hint)
                except BlockingIOError:
                    result = "EAGAIN"
                trail.append((result, rp.buffered))
            trail.append(rp.read())
        finally:
            rp.close()
            os.close(r)
            if w >= 0:
                os.close(w)
        seen[name] = trail
    assert seen["c"] == seen["python"]
    assert seen["c"][-2] == ([b"#\n", b"\xff\xff\x90\x95\x95\xf6\xf5\n"], 1)
    assert seen["c"][-1] == b"\xff" * 5
