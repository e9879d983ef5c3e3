"""The release matrix, written down and checked where it cannot run: the
builds cibuildwheel would make from ``[tool.cibuildwheel]``, the release
workflow as GitHub reads it, and the line a build without a compiler prints.

Under the ``distributions`` marker (CI's distributions step, with the
``[release]`` extra installed); a missing tool skips the test outside CI and
fails it under CI (``CI`` set), as ``support.netutil.require_program`` does.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, List

import pytest

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "wheels.yml"
pytestmark = [
    pytest.mark.distributions,
    pytest.mark.skipif(not (ROOT / "setup.py").exists(), reason="needs the source tree (setup.py)"),
]

PYTHONS = ["cp310", "cp311", "cp312", "cp313", "cp314"]
ARCHS = ["x86_64", "aarch64"]
# Every build of the release: CPython 3.10-3.14 x manylinux, musllinux x x86_64,
# aarch64. No free-threaded cp314t, no PyPy, no 3.15 until they are tested.
MATRIX = sorted(
    f"{python}-{libc}_{arch}"
    for python in PYTHONS
    for libc in ("manylinux", "musllinux")
    for arch in ARCHS
)


def require(module: str) -> ModuleType:
    """Import ``module`` of the ``[release]`` extra, or skip (fail under CI)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        reason = f"{module} is not installed (pip install '.[release]', CPython 3.11+)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI installs it", pytrace=False)
        pytest.skip(reason)


def pyproject() -> Dict[str, Any]:
    tomllib = require("tomllib")
    with open(ROOT / "pyproject.toml", "rb") as f:
        data: Dict[str, Any] = tomllib.load(f)
    return data


def workflow() -> Dict[Any, Any]:
    yaml = require("yaml")
    data: Dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    return data


def build_identifiers(**env: str) -> List[str]:
    """``cibuildwheel --print-build-identifiers --platform linux`` in the checkout."""
    if importlib.util.find_spec("cibuildwheel") is None:
        require("cibuildwheel")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CIBW_")}
    environ.update(env)
    done = subprocess.run(
        [sys.executable, "-m", "cibuildwheel", "--print-build-identifiers", "--platform", "linux"],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_cibuildwheel_builds_the_release_matrix() -> None:
    assert sorted(build_identifiers()) == MATRIX
    assert len(MATRIX) == 20


def test_each_runner_of_the_workflow_builds_its_architecture() -> None:
    """The workflow's runners, one per architecture, build the whole matrix between them."""
    matrix = workflow()["jobs"]["wheels"]["strategy"]["matrix"]["include"]
    assert sorted(entry["arch"] for entry in matrix) == sorted(ARCHS)
    assert {entry["arch"]: entry["os"] for entry in matrix} == {
        "x86_64": "ubuntu-latest",
        "aarch64": "ubuntu-24.04-arm",
    }
    built: List[str] = []
    for entry in matrix:
        ids = build_identifiers(CIBW_ARCHS_LINUX=entry["arch"])
        assert ids and all(i.endswith("_" + entry["arch"]) for i in ids), ids
        built += ids
    assert sorted(built) == MATRIX


def test_the_cibuildwheel_options() -> None:
    """Each wheel's build must compile, and the suite runs on the installed
    wheel from outside the project (cibuildwheel's test directory)."""
    options = pyproject()["tool"]["cibuildwheel"]
    assert "*t-*" in options["skip"]  # free-threaded: not until tested
    assert options["environment"] == {"CSAPP_REQUIRE_EXTENSIONS": "1"}
    assert options["test-environment"] == {"CSAPP_REQUIRE_EXTENSIONS": "1"}
    assert options["test-extras"] == ["test"]
    command = options["test-command"]
    assert command.startswith("python -m pytest ")
    assert "-c {project}/pyproject.toml" in command and command.endswith(" {project}/tests")
    assert options["linux"]["archs"] == ARCHS


def test_the_workflow_is_one_github_runs() -> None:
    data = workflow()
    # YAML 1.1 reads the key "on" as True.
    triggers = data.get("on", data.get(True))
    assert isinstance(triggers, dict) and triggers, "no 'on' triggers"
    assert triggers["push"]["tags"] == ["v*"] and "workflow_dispatch" in triggers
    jobs = data["jobs"]
    assert set(jobs) == {"wheels", "sdist"}
    for name, job in jobs.items():
        assert job.get("runs-on"), f"job {name} has no runs-on"
        assert isinstance(job.get("steps"), list) and job["steps"], f"job {name} has no steps"
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), f"{name}: a step needs uses or run: {step}"
    uses = {name: [s["uses"] for s in job["steps"] if "uses" in s] for name, job in jobs.items()}
    # The action's version is the cibuildwheel pinned in the [release] extra.
    release = pyproject()["project"]["optional-dependencies"]["release"]
    [pin] = [re.match(r"cibuildwheel==(\d+\.\d+)\.\*", r) for r in release if "cibuildwheel" in r]
    assert pin is not None
    [action] = [u for u in uses["wheels"] if u.startswith("pypa/cibuildwheel@")]
    assert action.startswith(f"pypa/cibuildwheel@v{pin.group(1)}."), action
    runs = " ".join(s.get("run", "") for s in jobs["sdist"]["steps"])
    assert "python -m build --sdist" in runs and "twine check --strict" in runs
    for name in jobs:
        assert any(u.startswith("actions/upload-artifact@") for u in uses[name]), name


def test_a_build_without_a_compiler_says_so(tmp_path: Path) -> None:
    """No compiler: the build prints its one WARNING line (``pip -v`` shows
    it) and makes a wheel of the pure-Python twin."""
    sdist = release_sdist(tmp_path)
    shims = tmp_path / "no-compiler"
    shims.mkdir()
    for name in ("cc", "gcc", "clang", "x86_64-linux-gnu-gcc", "aarch64-linux-gnu-gcc"):
        (shims / name).write_text("#!/bin/sh\nexit 127\n")
        (shims / name).chmod(0o755)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CSAPP_")}
    environ.update(PATH=f"{shims}{os.pathsep}{environ['PATH']}", CC="false", CXX="false")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-cache-dir"]
        + ["-w", str(tmp_path / "out"), str(sdist)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    warnings = [
        line.strip()
        for line in (done.stdout + done.stderr).splitlines()
        if "csapp: WARNING" in line
    ]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("csapp: WARNING: the compiled extension was not built (")
    assert "installing the pure-Python implementation only" in warnings[0]
    assert "about 3x slower" in warnings[0] and "`csapp info`" in warnings[0]
    [wheel] = (tmp_path / "out").glob("csapp-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        assert not [n for n in zf.namelist() if n.endswith(".so")]
        assert "csapp/_rio_py.py" in zf.namelist()


def release_sdist(tmp_path: Path) -> Path:
    """The sdist CI built (CSAPP_DIST_DIR), else one built here."""
    built = os.environ.get("CSAPP_DIST_DIR")
    if built:
        [sdist] = Path(built).glob("csapp-*.tar.gz")
        return sdist
    require("build")
    out = tmp_path / "sdist"
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    [sdist] = out.glob("csapp-*.tar.gz")
    return sdist
