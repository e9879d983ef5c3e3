"""Build csapp: the Cython extensions (every ``.pyx`` under ``src/``:
``csapp._rio_c``, ``csapp.aio._buffer_c``) over the C core in ``csrc/``.

Switches (``csapp/_switches.py``, read here and by the choosers at import):
  CSAPP_NO_EXTENSIONS=1       build no extension: the pure-Python twin only.
  CSAPP_REQUIRE_EXTENSIONS=1  a failed compile is an error (CI sets it);
                              without it a failed compile warns and installs
                              the pure-Python twin.
  CSAPP_DEBUG_BUILD=1         compile with -O1 -g and ASan/UBSan.
"""

import glob
import os
import runpy
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# The switches are parsed by the package's own csapp/_switches.py (run as a
# file: importing csapp here would import the extension being built).
HERE = os.path.dirname(os.path.abspath(__file__))
SWITCHES = runpy.run_path(os.path.join(HERE, "src", "csapp", "_switches.py"))
flag = SWITCHES["env_flag"]

NO_EXTENSIONS = flag(SWITCHES["NO_EXTENSIONS"])
REQUIRE_EXTENSIONS = flag(SWITCHES["REQUIRE_EXTENSIONS"])
DEBUG_BUILD = flag(SWITCHES["DEBUG_BUILD"])

if NO_EXTENSIONS and REQUIRE_EXTENSIONS:
    sys.exit("csapp: CSAPP_NO_EXTENSIONS and CSAPP_REQUIRE_EXTENSIONS are both set")


# The one line a failed compile prints (pip shows it with `pip install -v`).
FALLBACK = (
    "installing the pure-Python implementation only: the same behaviour, about 3x "
    "slower on the hot paths. For the compiled one, install a C compiler and Python's "
    "headers and reinstall, or install a csapp wheel; `csapp info` says which you have"
)


def say(message):
    print(f"csapp: {message}", file=sys.stderr, flush=True)


def one_line(exc):
    return " ".join(str(exc).split()) or type(exc).__name__


class OptionalBuildExt(build_ext):
    """build_ext that falls back to the pure-Python twin unless it is required."""

    failed = False

    def run(self):
        try:
            super().run()
        except Exception as exc:  # compiler missing, Cython missing, ...
            self._give_up(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._give_up(exc)
        else:
            say(f"built the compiled extension {ext.name}")

    def _give_up(self, exc):
        if REQUIRE_EXTENSIONS:
            raise
        if self.failed:
            return
        self.failed = True
        say(f"WARNING: the compiled extension was not built ({one_line(exc)}); {FALLBACK}")


def extensions():
    if NO_EXTENSIONS:
        say("CSAPP_NO_EXTENSIONS is set: installing the pure-Python implementation only")
        return []
    compile_args = ["-O2", "-std=c11", "-Wall", "-Wno-unused-function"]
    link_args = []
    if DEBUG_BUILD:
        sanitize = "-fsanitize=address,undefined"
        compile_args = ["-O1", "-g", "-fno-omit-frame-pointer", sanitize, "-std=c11"]
        link_args = [sanitize]
    # Every .pyx under src/ (the RIO twin, csapp.aio's buffer), each over the
    # same C core; the module's name is its path.
    pyx_files = sorted(glob.glob("src/csapp/**/*.pyx", recursive=True))
    exts = [
        Extension(
            os.path.splitext(os.path.relpath(path, "src"))[0].replace(os.sep, "."),
            sources=[path, "csrc/rio.c"],
            include_dirs=["csrc"],
            depends=["csrc/rio.h", "csrc/rio.pxd"],
            extra_compile_args=compile_args,
            extra_link_args=link_args,
            define_macros=[("_GNU_SOURCE", "1")],
        )
        for path in pyx_files
    ]
    try:
        from Cython.Build import cythonize
    except ImportError as exc:
        if REQUIRE_EXTENSIONS:
            raise
        say(f"WARNING: Cython is not available ({one_line(exc)}); {FALLBACK}")
        return []
    # The compiler directives are in the .pyx's own "# cython:" line, so
    # every build of it (this one, the scripts' debug builds) uses the same.
    return cythonize(exts, include_path=["csrc"], quiet=True)


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
