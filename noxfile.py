"""nox sessions: the test suite on every supported CPython, the linters, the
distributions.

    nox                                   tests on every interpreter, then lint
    nox -s tests                          the suite on 3.10, 3.11, 3.12 and 3.13
    nox -s tests-3.13                     one interpreter
    nox -s lint                           ruff (lint and format), mypy --strict, stubtest
    nox -s dist                           sdist + wheel into dist/, twine check --strict

Each tests session builds the compiled extension with CSAPP_REQUIRE_EXTENSIONS=1
(a failed compile fails the session), prints which interpreter and
implementation ran, and runs the default suite over both implementations.
With CSAPP_SDIST=path/to/csapp-X.tar.gz it installs that sdist instead of the
source tree. CI runs ``lint`` and ``dist`` (``--error-on-missing-interpreters``);
it proves the other interpreters through their wheels instead, built from the
``dist`` sdist, repaired and installed with no compiler (scripts/wheels.sh).
"""

from __future__ import annotations

import glob
import os

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = False


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The default suite, both implementations, on one interpreter."""
    env = {"CSAPP_REQUIRE_EXTENSIONS": "1"}
    source = os.environ.get("CSAPP_SDIST") or "."
    session.install(f"{source}[test]", env=env)
    session.run(
        "python",
        "-c",
        "import sys, csapp; print('nox: CPython', sys.version.split()[0], "
        "'implementation', csapp.IMPLEMENTATION, sorted(csapp.IMPLEMENTATIONS), "
        "'from', csapp.__file__); "
        "assert csapp.IMPLEMENTATION == 'c'",
        env=env,
    )
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *session.posargs, env=env)


@nox.session(python=PYTHONS[-1])
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check, mypy --strict on src/ and the bench harness,
    stubtest of the extension."""
    session.install(".[lint]", env={"CSAPP_REQUIRE_EXTENSIONS": "1"})
    paths = ["src", "tests", "bench", "examples", "scripts", "fuzz", "noxfile.py", "setup.py"]
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)
    session.run("mypy")
    session.run("python", "-m", "mypy.stubtest", "csapp._rio_c", "csapp.aio._buffer_c")


@nox.session(python=PYTHONS[-1])
def dist(session: nox.Session) -> None:
    """The sdist, and the wheel built from it, into dist/ (or the first posarg);
    twine check --strict on both. Built once: CI's other steps install these."""
    out = session.posargs[0] if session.posargs else "dist"
    session.install("build>=1", "twine>=5")
    session.run(
        "python", "-m", "build", "--outdir", out, ".", env={"CSAPP_REQUIRE_EXTENSIONS": "1"}
    )
    session.run("twine", "check", "--strict", *sorted(glob.glob(os.path.join(out, "csapp-*"))))
