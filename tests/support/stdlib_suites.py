"""Run CPython's own test modules, as they are, from the interpreter's stdlib
``test`` package; print each test's outcome as JSON into the file OUT (a test that forks leaves
standard output to its children too).

    python stdlib_suites.py control OUT MODULE...   the standard library as it is
    python stdlib_suites.py csapp OUT MODULE...     socketserver.StreamRequestHandler
                                                replaced by csapp's before the
                                                modules (http.server, xmlrpc.server)
                                                are imported

The RIO twin behind csapp's handler is the one ``import csapp`` picks
(``CSAPP_NO_EXTENSIONS=1`` for the pure-Python one). Used by
``tests/test_stdlib_servers.py``; nothing here is copied from CPython.
"""

from __future__ import annotations

import json
import socketserver
import sys
import unittest
from typing import Any, Dict


class Outcomes(unittest.TestResult):
    """Each test's id and outcome: pass, fail, error, skip, xfail, xpass."""

    def __init__(self) -> None:
        super().__init__()
        self.outcomes: Dict[str, str] = {}
        self.details: Dict[str, str] = {}

    def addSuccess(self, test: Any) -> None:
        self.outcomes[test.id()] = "pass"

    def addFailure(self, test: Any, err: Any) -> None:
        super().addFailure(test, err)
        self.outcomes[test.id()] = "fail"
        self.details[test.id()] = self.failures[-1][1][-2000:]

    def addError(self, test: Any, err: Any) -> None:
        super().addError(test, err)
        self.outcomes[test.id()] = "error"
        self.details[test.id()] = self.errors[-1][1][-2000:]

    def addSkip(self, test: Any, reason: str) -> None:
        self.outcomes[test.id()] = "skip"

    def addExpectedFailure(self, test: Any, err: Any) -> None:
        self.outcomes[test.id()] = "xfail"

    def addUnexpectedSuccess(self, test: Any) -> None:
        self.outcomes[test.id()] = "xpass"


def main(argv: list[str]) -> int:
    which, out, modules = argv[1], argv[2], argv[3:]
    import test.support

    test.support.verbose = False  # CPython's own runner sets it; its default prints
    if which == "csapp":
        import csapp
        import csapp.socketserver

        socketserver.StreamRequestHandler = csapp.socketserver.StreamRequestHandler  # type: ignore[misc]
        implementation = csapp.IMPLEMENTATION
    else:
        implementation = None
    suite = unittest.defaultTestLoader.loadTestsFromNames(modules)
    result = Outcomes()
    suite.run(result)
    report = {
        "implementation": implementation,
        "outcomes": result.outcomes,
        "details": result.details,
    }
    with open(out, "w") as f:
        json.dump(report, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
