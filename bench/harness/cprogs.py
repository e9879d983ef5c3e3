"""The C baselines (memchr floor, the lecture's byte-at-a-time reader, a
threaded and a one-thread epoll echo server, a load generator), compiled on
first use with the system ``cc`` into a cache directory."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

SOURCES = Path(__file__).resolve().parent.parent / "csrc"


class NoCompiler(RuntimeError):
    """No C compiler to build a baseline that is not in the cache yet."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(base) / "csapp-bench"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        path = Path(tempfile.gettempdir()) / f"csapp-bench-{os.getuid()}"
        path.mkdir(parents=True, exist_ok=True)
    return path


def program(name: str) -> str:
    """The path of the compiled baseline ``name`` (``bench/csrc/<name>.c``), built if needed."""
    source = SOURCES / f"{name}.c"
    text = source.read_bytes()
    digest = hashlib.sha256(text).hexdigest()[:12]
    binary = cache_dir() / f"{name}-{digest}"
    if not binary.exists():
        cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        if not cc:
            raise NoCompiler("no C compiler (cc) found for the C baselines")
        tmp = binary.with_suffix(".tmp")
        try:
            subprocess.run(
                [cc, "-O2", "-o", str(tmp), str(source), "-lpthread"],
                check=True,
                capture_output=True,
            )
        except (OSError, subprocess.CalledProcessError) as exc:
            if not compiles(cc, binary.with_suffix(".probe")):  # CC=false, a failing shim
                raise NoCompiler(f"the C compiler {cc!r} does not work here ({exc})") from None
            raise  # the compiler works: the baseline itself failed to build
        tmp.rename(binary)
    return str(binary)


def compiles(cc: str, out: Path) -> bool:
    """Does ``cc`` build the smallest C program? (Tells a compiler that cannot
    run apart from a baseline that does not compile.)"""
    try:
        done = subprocess.run(
            [cc, "-x", "c", "-o", str(out), "-"],
            input=b"int main(void) { return 0; }\n",
            capture_output=True,
            timeout=120,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        out.unlink(missing_ok=True)
    return done.returncode == 0
