"""CPython's own server tests with csapp's handler in place of the standard one.

``test.test_httpservers``, ``test.test_socketserver`` and ``test.test_xmlrpc``
are imported from this interpreter's stdlib ``test`` package at run time (never
copied) and run in subprocesses by ``support/stdlib_suites.py``: once as they are (the
control), and once per RIO twin with ``socketserver.StreamRequestHandler``
replaced by ``csapp.socketserver.StreamRequestHandler`` before ``http.server``
and ``xmlrpc.server`` are imported. Every test that passes in the control must
pass with csapp's handler. The one expected difference: ``test_socketserver``'s
``MiscTestCase.test_all`` checks that every name in ``socketserver.__all__`` is
defined in that module, which the swapped class is not.

The three runs of a module go side by side: ``test_xmlrpc`` spends most of its
30 s waiting on CPython's own timeouts, not on the CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

import csapp
from support.netutil import child_env

SUPPORT = Path(__file__).resolve().parent / "support"
MODULES = ["test.test_httpservers", "test.test_socketserver", "test.test_xmlrpc"]
# Tests that check the swapped class itself, not the server's behaviour.
EXPECTED_DIFFERENCES = {"test.test_socketserver.MiscTestCase.test_all"}
RUN_TIMEOUT = 600  # a hang guard: each run takes seconds to about 30 s

try:
    import test.support  # noqa: F401

    HAVE_TESTS = True
except ImportError:
    HAVE_TESTS = False

pytestmark = pytest.mark.skipif(
    not HAVE_TESTS, reason="this interpreter has no stdlib 'test' package (CPython's own tests)"
)


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Dict[str, Any]]]:
    """Every module run as the control and with each twin's handler, all at once:
    ``reports[f"{module}:{which}"]`` with which in control, c, python."""
    out = tmp_path_factory.mktemp("stdlib")
    runs = {}
    for module in MODULES:
        for which in ["control", *csapp.IMPLEMENTATIONS]:
            path = out / f"{module}-{which}.json"
            mode = "control" if which == "control" else "csapp"
            proc = subprocess.Popen(
                [sys.executable, str(SUPPORT / "stdlib_suites.py"), mode, str(path), module],
                env=dict(os.environ) if which == "control" else child_env(which),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                cwd=out,
            )
            runs[f"{module}:{which}"] = (proc, path)
    results: Dict[str, Dict[str, Any]] = {}
    try:
        for key, (proc, path) in runs.items():
            _, err = proc.communicate(timeout=RUN_TIMEOUT)
            assert proc.returncode == 0, f"{key}: exit {proc.returncode}\n{err.decode()[-3000:]}"
            results[key] = json.loads(path.read_text())
        yield results
    finally:
        for proc, _ in runs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


@pytest.mark.parametrize("module", MODULES)
def test_cpython_server_tests_pass_with_csapp_handler(
    impl: str, module: str, reports: Dict[str, Dict[str, Any]]
) -> None:
    control = reports[f"{module}:control"]["outcomes"]
    swapped = reports[f"{module}:{impl}"]
    assert swapped["implementation"] == impl
    passed = [test for test, outcome in control.items() if outcome == "pass"]
    assert len(passed) >= 20, f"the control ran only {len(passed)} passing tests of {module}"
    lost = {
        test: swapped["details"].get(test, swapped["outcomes"].get(test, "not run"))
        for test in passed
        if swapped["outcomes"].get(test) != "pass" and test not in EXPECTED_DIFFERENCES
    }
    assert not lost, "\n\n".join(f"{test}:\n{detail}" for test, detail in lost.items())
