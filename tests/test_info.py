"""The fallback says so: ``csapp --version`` and ``csapp info`` name the
implementation in use and, for the pure-Python twin, why the compiled
extension is not in use (``csapp._rio.EXTENSION_MISSING``): the switch, an
extension that was never built, or one that fails to import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest

import csapp
from csapp import _rio
from support.netutil import TIMEOUT, child_env, require_impl, run_csapp

PACKAGE = Path(csapp.__file__).resolve().parent
NOTE_WHEEL = "install a csapp wheel, or build with a C compiler"


def lines(stdout: bytes) -> Dict[str, str]:
    """``csapp info``'s ``key: value`` lines (the first line, ``csapp X``, as "csapp")."""
    text = stdout.decode()
    first, *rest = text.splitlines()
    found = {"csapp": first}
    for line in rest:
        key, _, value = line.partition(": ")
        found[key] = value
    return found


def test_the_compiled_implementation_gives_no_reason() -> None:
    require_impl("c")
    result = run_csapp("c", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == f"csapp {csapp.__version__} (implementation: c)\n"
    info = run_csapp("c", "info")
    assert info.returncode == 0, info.stderr
    found = lines(info.stdout)
    assert found["csapp"] == f"csapp {csapp.__version__}"
    assert found["implementation"] == "c (csapp.aio's buffer: c)"
    assert "why" not in found and "note" not in found
    assert found["package"] == str(PACKAGE)
    assert found["python"].startswith(f"CPython {sys.version.split()[0]} (")


def test_the_switch_is_the_reason() -> None:
    result = run_csapp("python", "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == (
        f"csapp {csapp.__version__} (implementation: python; CSAPP_NO_EXTENSIONS=1 is set)\n"
    )
    found = lines(run_csapp("python", "info").stdout)
    assert found["implementation"] == "python (csapp.aio's buffer: python)"
    assert found["why"] == "CSAPP_NO_EXTENSIONS=1 is set"
    if "c" in csapp.IMPLEMENTATIONS:
        assert "the compiled one is installed (unset the switch)" in found["note"]


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    """A copy of the csapp under test without its compiled modules, as a
    build that could not compile installs it; returns the copy's sys.path entry."""
    shutil.copytree(
        PACKAGE,
        tmp_path / "csapp",
        ignore=shutil.ignore_patterns("*.so", "__pycache__", "*.c", "*.pyx"),
    )
    return tmp_path


def run_copy(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    """``python -m csapp ARGS`` importing csapp from ``root``, switches unset."""
    environ = child_env("c")
    environ["PYTHONPATH"] = str(root)
    for name in ("CSAPP_NO_EXTENSIONS", "CSAPP_REQUIRE_EXTENSIONS"):
        environ.pop(name, None)
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "csapp", *args],
        cwd=root,
        env=environ,
        capture_output=True,
        timeout=TIMEOUT,
    )


def test_an_extension_never_built_is_the_reason(package_copy: Path) -> None:
    reason = "the compiled extension is not installed: No module named 'csapp._rio_c'"
    result = run_copy(package_copy, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == (
        f"csapp {csapp.__version__} (implementation: python; {reason})\n"
    )
    info = run_copy(package_copy, "info")
    assert info.returncode == 0, info.stderr
    found = lines(info.stdout)
    assert found["implementation"] == "python (csapp.aio's buffer: python)"
    assert found["why"] == reason
    assert NOTE_WHEEL in found["note"] and "3x slower" in found["note"]
    assert found["package"] == str(package_copy / "csapp")


def test_an_extension_that_fails_to_import_is_the_reason(package_copy: Path) -> None:
    # A module in the extension's place that fails as a broken build does.
    message = "csapp/_rio_c.so: undefined symbol: csapp_rio_readn"
    (package_copy / "csapp" / "_rio_c.py").write_text(f"raise ImportError({message!r})\n")
    result = run_copy(package_copy, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().endswith(
        f"(implementation: python; the compiled extension failed to import: {message})\n"
    )
    both = run_copy(package_copy, "info", CSAPP_NO_EXTENSIONS="yes")
    reason = f"CSAPP_NO_EXTENSIONS=yes is set; the compiled extension failed to import: {message}"
    assert lines(both.stdout)["why"] == reason


def test_require_extensions_turns_the_fallback_into_an_error(package_copy: Path) -> None:
    result = run_copy(package_copy, "--version", CSAPP_REQUIRE_EXTENSIONS="1")
    assert result.returncode == 1
    assert b"No module named 'csapp._rio_c'" in result.stderr


def test_the_reason_is_an_attribute_of_the_chooser() -> None:
    if csapp.IMPLEMENTATION == "c":
        assert _rio.EXTENSION_MISSING is None
    else:
        assert isinstance(_rio.EXTENSION_MISSING, str) and _rio.EXTENSION_MISSING


def test_info_has_help_and_takes_no_argument() -> None:
    helped = run_csapp("python", "info", "--help")
    assert helped.returncode == 0
    assert helped.stdout.startswith(b"usage: csapp info")
    wrong = run_csapp("python", "info", "now")
    assert wrong.returncode == 2
    error = wrong.stderr.decode()
    assert error.count("\n") == 1 and "unrecognized arguments: now" in error
