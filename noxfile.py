"""nox sessions: the test suite on every supported CPython, and the linters.

    nox                                   every session
    nox -s tests                          the suite on 3.10, 3.11, 3.12 and 3.13
    nox -s tests-3.13                     one interpreter
    nox -s lint                           ruff (lint and format), mypy --strict, stubtest

Each tests session builds the compiled extension with CSAPP_REQUIRE_EXTENSIONS=1
(a failed compile fails the session), prints which interpreter and
implementation ran, and runs the default suite over both implementations.
CI runs ``nox --error-on-missing-interpreters``: a missing interpreter fails.
"""

from __future__ import annotations

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = False


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The default suite, both implementations, on one interpreter."""
    env = {"CSAPP_REQUIRE_EXTENSIONS": "1"}
    session.install(".[test]", env=env)
    session.run(
        "python",
        "-c",
        "import sys, csapp; print('nox: CPython', sys.version.split()[0], "
        "'implementation', csapp.IMPLEMENTATION, sorted(csapp.IMPLEMENTATIONS)); "
        "assert csapp.IMPLEMENTATION == 'c'",
        env=env,
    )
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *session.posargs, env=env)


@nox.session(python=PYTHONS[-1])
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check, mypy --strict on src/, stubtest of the extension."""
    session.install(".[lint]", env={"CSAPP_REQUIRE_EXTENSIONS": "1"})
    paths = ["src", "tests", "bench", "examples", "scripts", "fuzz", "noxfile.py", "setup.py"]
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)
    session.run("mypy")
    session.run("python", "-m", "mypy.stubtest", "csapp._rio_c", "csapp._aiobuf_c")
