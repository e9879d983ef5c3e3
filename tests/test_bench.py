"""``python -m bench`` from the checkout's root: the benchmark harness that
``csapp bench`` once ran, kept out of the installed package."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import csapp
from bench.__main__ import build_parser
from bench.harness import cprogs, report
from bench.harness.core import Result
from bench.harness.run import LIMITS, REFERENCES, WORKLOADS
from bench.harness.server_process import C_EPOLL, C_THREADED
from support.netutil import child_env

ROOT = Path(__file__).resolve().parent.parent


def run_bench(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[bytes]:
    """``python -m bench ARGS`` in the checkout's root, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        env=child_env("c"),
        input=b"",
        capture_output=True,
        timeout=timeout,
    )


def test_bench_copy_runs_and_reports_its_targets(tmp_path: Path) -> None:
    """End to end on the smallest workload: every copy row measured for both
    implementations and the peers, the copy targets checked."""
    out = tmp_path / "bench.json"
    result = run_bench(
        "--quick", "--only", "copy", "--rounds", "1", "--json", str(out), timeout=120
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    data = json.loads(out.read_text())
    rows = {(r["group"].split(",")[0], r["case"]): r for r in data["results"]}
    impls = sorted(csapp.IMPLEMENTATIONS)
    for impl in impls:
        for method in ("buffered", "fast", "byte"):
            row = rows["copy: file → pipe", f"csapp copy {method} [{impl}]"]
            assert row["median"] > 0 and "system calls" in row["note"], row
    assert rows["copy: file → pipe", "cat"]["median"] > 0
    targets = {t["target"]: t["ratio"] for t in data["targets"]}
    if "c" in impls:  # the targets are stated for the compiled implementation
        assert targets["copy fast [c] ÷ cat, into a pipe"] > 0
    assert b"Targets (ratios measured in this run)" in result.stdout


@pytest.mark.parametrize(
    "argv, only",
    [
        ([], None),
        (["--only", "copy"], ["copy"]),
        (["--only", "lines,echo"], ["lines", "echo"]),
        (["--only", "lines", "--only", "echo"], ["lines", "echo"]),
        (["--only", "lines, echo", "--only", "memory"], ["lines", "echo", "memory"]),
    ],
)
def test_only_takes_commas_and_repeats(argv: list, only: object) -> None:
    assert build_parser().parse_args(argv).only == only


def test_every_workload_can_be_chosen() -> None:
    assert build_parser().parse_args(["--only", ",".join(WORKLOADS)]).only == list(WORKLOADS)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--only", "lines,teleport"], "unknown workload 'teleport'"),
        (["--only", "lines,"], "unknown workload ''"),
        (["--rounds", "0"], "positive whole number"),
        (["--rounds", "-3"], "positive whole number"),
        (["--rounds", "2.5"], "positive whole number"),
        (["--fast"], "unrecognized arguments"),
    ],
)
def test_bad_options_are_one_line_and_status_2(args: list, words: str) -> None:
    result = run_bench(*args)
    text = result.stderr.decode()
    assert (result.returncode, result.stdout) == (2, b""), text
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    assert text.startswith("python -m bench: error: ") and words in text, text


@pytest.mark.parametrize("rounds", ["0", "x"])
def test_event_limit_wants_a_positive_count_of_rounds(rounds: str) -> None:
    """Zero rounds would have no median to print: refused before any server runs."""
    result = subprocess.run(
        [sys.executable, "-m", "bench.event_limit", "--rounds", rounds],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (2, b""), result.stderr.decode()
    assert b"positive whole number" in result.stderr


def test_help() -> None:
    result = run_bench("--help")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.startswith(b"usage: python -m bench ")
    assert b"--only WORKLOAD" in result.stdout


def test_echo_ratios_to_both_c_servers_in_the_tables_and_the_json(tmp_path: Path) -> None:
    """Echo rows get a ratio to the C threaded server and one to the C epoll
    server; the JSON keeps its fields and adds each result's ``ratios``."""
    group = "echo 64 B request/response, N=10"
    rates = {"csapp event [c]": 90.0, C_THREADED: 100.0, C_EPOLL: 120.0}
    results = [Result(group, case, "k req/s", [rate]) for case, rate in rates.items()]
    results.append(Result(group, "asyncio streams", "k req/s", [], "failed: no"))
    table = report.format_tables(results, REFERENCES, LIMITS).splitlines()
    assert table[2].index(f"÷ {C_THREADED}") < table[2].index(f"÷ {C_EPOLL}")
    assert table[3].split()[-3:] == ["90.000", "0.90×", "0.75×"]
    assert table[6].split()[-4:] == ["–", "–", "(failed:", "no)"]
    out = tmp_path / "bench.json"
    report.to_json(results, [], str(out), [REFERENCES, LIMITS])
    rows = json.loads(out.read_text())["results"]
    assert set(rows[0]) == {"group", "case", "unit", "median", "values", "note", "ratios"}
    assert rows[0]["ratios"] == {C_THREADED: 0.9, C_EPOLL: 0.75}
    assert rows[3]["ratios"] == {}


def test_event_limit_measures_the_event_server_beside_c_epoll_and_another_install() -> None:
    """``python -m bench.event_limit``: both twins' event servers, the same
    from another interpreter (``--against``, here this one), and the C epoll
    server, each with a median and a ratio to the C epoll server, and the
    spread and per-round ratios of each server's rounds."""
    conns, mib = 2, 1
    try:  # the C epoll server and the load generator, compiled if needed
        cprogs.program("echo_epoll")
        cprogs.program("loadgen")
    except cprogs.NoCompiler as exc:
        pytest.skip(str(exc))
    result = subprocess.run(
        [sys.executable, "-m", "bench.event_limit", "--rounds", "1", "--seconds", "0.3"]
        + ["--mib", str(mib), "--conns", str(conns), "--against", sys.executable],
        cwd=ROOT,
        env=child_env("c"),
        input=b"",
        capture_output=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    out = result.stdout.decode()
    cases = [f"csapp event [{impl}]" for impl in sorted(csapp.IMPLEMENTATIONS)]
    cases += [f"{case} @ {sys.executable}" for case in cases] + [C_EPOLL]
    for group in (f"request/response, N={conns}", f"bulk, {mib} MiB"):
        table = out[out.index(group) :].split("\n\n")[0].splitlines()
        assert f"÷ {C_EPOLL}" in table[1], table
        for case in cases:
            row = next(line for line in table if line.strip().startswith(case + "  "))
            median, ratio = row[len(case) + 2 :].split()[:2]
            assert float(median) > 0 and ratio.endswith("×"), row
        assert any(line.strip().startswith(C_EPOLL) and "1.00×" in line for line in table)
    assert "max ÷ min" in out and "failed" not in out, out
    paired = out[out.index("per-round ratio") :].splitlines()[1:]
    for case in cases:  # one round: one per-round ratio, so median = min = max
        row = next(line for line in paired if f"  {case}  " in line)
        found = re.search(r"(\d+\.\d\d) \[(\d+\.\d\d) – (\d+\.\d\d)\]$", row)
        assert found and len(set(found.groups())) == 1, row
