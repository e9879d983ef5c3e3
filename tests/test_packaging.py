"""The distributions a PyPI user would get: ``python -m build`` makes an sdist,
then a wheel from that sdist; both hold what they must and nothing else.

Runs from a source tree (a clone or the unpacked sdist) under the
``distributions`` marker (``pytest -m distributions``). With CSAPP_DIST_DIR set
it checks the sdist and wheel already built there (CI builds them once, with
``nox -s dist``); without it, it builds them, isolated as pip does, so it
fetches setuptools and Cython like a user's build.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Dict, List

import pytest

import csapp

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.distributions,
    pytest.mark.skipif(not (ROOT / "setup.py").exists(), reason="needs the source tree (setup.py)"),
]


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, List[str]]:
    """Names in the sdist (without its top folder) and in the wheel."""
    built = os.environ.get("CSAPP_DIST_DIR")
    if built:
        out = Path(built)
    else:
        pytest.importorskip("build", reason="the [test] extra installs build")
        out = tmp_path_factory.mktemp("dist")
        subprocess.run(
            [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
            check=True,
            capture_output=True,
            timeout=600,
            env={**os.environ, "CSAPP_REQUIRE_EXTENSIONS": "1"},
        )
    [sdist] = out.glob("*.tar.gz")
    [wheel] = out.glob("*.whl")
    with tarfile.open(sdist) as tar:
        sdist_names = [name.split("/", 1)[1] for name in tar.getnames() if "/" in name]
    with zipfile.ZipFile(wheel) as zf:
        wheel_names = zf.namelist()
    return {"sdist": sdist_names, "wheel": wheel_names, "wheel file": [wheel.name]}


def test_the_sdist_holds_the_sources_tests_and_notices(dists: Dict[str, List[str]]) -> None:
    names = set(dists["sdist"])
    for needed in [
        "csrc/rio.c",
        "csrc/rio.h",
        "csrc/rio.pxd",
        "src/csapp/_rio_c.pyx",
        "src/csapp/_rio_c.pyi",
        "src/csapp/aio/_buffer_c.pyx",
        "src/csapp/aio/_buffer_c.pyi",
        "src/csapp/py.typed",
        "src/csapp/_shared.py",
        "setup.py",
        "pyproject.toml",
        "LICENSE",
        "README.md",
        "CHANGES.md",
        "tests/conftest.py",
        "tests/test_twins.py",
        "docs/CONTRACT.md",
        "scripts/wheels.sh",
        ".github/workflows/wheels.yml",
    ]:
        assert needed in names, needed
    # The benchmarks: their front ends, the harness, the C baselines it compiles.
    for needed in ["bench/__main__.py", "bench/harness/run.py", "bench/csrc/loadgen.c"]:
        assert needed in names, needed
    generated = ("src/csapp/_rio_c.c", "src/csapp/aio/_buffer_c.c")
    junk = [n for n in names if n.endswith((".so", ".o", ".pyc")) or n in generated]
    assert not junk, junk


def test_the_wheel_holds_the_extension_and_types_and_no_sources(
    dists: Dict[str, List[str]],
) -> None:
    names = dists["wheel"]
    for module in ("_rio_c", "aio/_buffer_c"):
        assert any(n.startswith(f"csapp/{module}.") and n.endswith(".so") for n in names), names
    for needed in [
        "csapp/__init__.py",
        "csapp/_rio_py.py",
        "csapp/_shared.py",
        "csapp/_rio_c.pyi",
        "csapp/aio/_buffer_c.pyi",
        "csapp/aio/__init__.py",
        "csapp/servers/coroutines.py",
        "csapp/py.typed",
    ]:
        assert needed in names, needed
    junk = [
        n
        for n in names
        if n.endswith((".c", ".pyx", ".pxd", ".o", ".pyc", ".h"))
        or n.startswith(("tests/", "build/", "src/", "bench/"))
    ]
    assert not junk, junk
    # The benchmarks and their peer servers stay in the source tree.
    benchmarks = [n for n in names if "bench" in n]
    assert not benchmarks, benchmarks
    licenses = [n for n in names if n.endswith("LICENSE") and ".dist-info/" in n]
    assert licenses, "the wheel carries no LICENSE"
    assert dists["wheel file"][0].startswith(f"csapp-{csapp.__version__}-")
