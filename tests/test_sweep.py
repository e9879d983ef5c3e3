"""``csapp copy --sweep``: every buffer size from 1 B to 1 MiB, then sendfile and
splice, each copy byte-exact, with the system calls a Rio of that size makes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Dict, List

import pytest

from csapp.cli import sweep

NBYTES = 40_000


def run_sweep_command(
    rio: ModuleType, *args: str, stdin: object = subprocess.DEVNULL
) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("CSAPP_NO_EXTENSIONS", None)
    if rio.__name__.endswith("_py"):
        env["CSAPP_NO_EXTENSIONS"] = "1"
        env.pop("CSAPP_REQUIRE_EXTENSIONS", None)
    return subprocess.run(
        [sys.executable, "-m", "csapp", "copy", "--sweep", *args],
        stdin=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def table(stdout: str) -> Dict[str, List[str]]:
    rows = {}
    for line in stdout.splitlines():
        fields = line.split()
        if len(fields) >= 5 and re.fullmatch(r"[\d,]+", fields[-4]):
            label = " ".join(fields[:-4])
            rows[label] = fields[-4:]
    return rows


def test_every_size_and_the_kernel_copies(rio: ModuleType) -> None:
    done = run_sweep_command(rio, "--bytes", str(NBYTES))
    assert done.returncode == 0, done.stderr
    impl = "python" if rio.__name__.endswith("_py") else "c"
    assert f"{NBYTES:,} bytes from a file into a pipe, implementation {impl}" in done.stdout
    rows = table(done.stdout)
    labels = [sweep._size_label(size) for size in sweep.SWEEP_SIZES]
    assert list(rows)[: len(labels)] == labels
    assert {"sendfile", "splice"} <= set(rows)
    for size, label in zip(sweep.SWEEP_SIZES, labels):
        calls = int(rows[label][0].replace(",", ""))
        reads = -(-NBYTES // size) + 1  # the last one sees EOF
        assert calls == reads + (reads - 1), (label, calls)  # one write per full read


def test_a_regular_file_on_standard_input_is_what_is_copied(
    rio: ModuleType, tmp_path: Path
) -> None:
    source = tmp_path / "data"
    source.write_bytes(os.urandom(5000))
    with open(source, "rb") as stdin:
        done = run_sweep_command(rio, stdin=stdin)
    assert done.returncode == 0, done.stderr
    assert "5,000 bytes from a file into a pipe" in done.stdout
    assert int(table(done.stdout)["1 B"][0].replace(",", "")) == 2 * 5000 + 1


def test_copy_with_buffer_is_byte_exact(
    rio: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweep, "Rio", rio.Rio)
    monkeypatch.setattr(sweep, "rio_writen", rio.rio_writen)
    data = os.urandom(12345)
    source, target = tmp_path / "in", tmp_path / "out"
    source.write_bytes(data)
    for size in (1, 7, 4096, 1 << 20):
        with open(source, "rb") as src, open(target, "wb") as dst:
            stats = sweep.copy_with_buffer(src.fileno(), dst.fileno(), size)
        assert target.read_bytes() == data
        assert stats.nbytes == len(data)


def test_plot_draws_a_png_or_says_what_is_missing(rio: ModuleType, tmp_path: Path) -> None:
    png = tmp_path / "sweep.png"
    done = run_sweep_command(rio, "--bytes", "4096", "--plot", str(png))
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert done.returncode == 1
        assert done.stderr.strip() == (
            "csapp copy: --plot needs matplotlib: pip install 'csapp[bench]'"
        )
    else:
        assert done.returncode == 0, done.stderr
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_sweep_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "csapp", "copy", "--plot", "x.png"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == "csapp copy: --plot goes with --sweep"
