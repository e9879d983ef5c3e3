"""The C baselines (memchr floor, the lecture's byte-at-a-time reader, a
threaded echo server, a load generator), compiled on first use with the
system ``cc`` into a cache directory."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

SOURCES = Path(__file__).resolve().parent.parent / "csrc"


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
            raise RuntimeError("no C compiler (cc) found for the C baselines")
        tmp = binary.with_suffix(".tmp")
        subprocess.run(
            [cc, "-O2", "-o", str(tmp), str(source), "-lpthread"], check=True, capture_output=True
        )
        tmp.rename(binary)
    return str(binary)
