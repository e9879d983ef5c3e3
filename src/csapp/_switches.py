"""The ``CSAPP_*`` switches, read by ``setup.py`` at build time and by the
choosers (``csapp._rio``, ``csapp.aio._buffer``) at import.

``setup.py`` runs this file by path (importing ``csapp`` there would import
the extension being built), so it imports nothing of the package.
"""

from __future__ import annotations

import os
from typing import Any, Optional

__all__ = ["DEBUG_BUILD", "NO_EXTENSIONS", "REQUIRE_EXTENSIONS", "env_flag"]

NO_EXTENSIONS = "CSAPP_NO_EXTENSIONS"  # build or import no extension: the pure-Python twins
REQUIRE_EXTENSIONS = "CSAPP_REQUIRE_EXTENSIONS"  # a missing extension is an error
DEBUG_BUILD = "CSAPP_DEBUG_BUILD"  # compile with -O1 -g and ASan/UBSan

FALSE_WORDS = ("", "0", "false", "no")


def env_flag(name: str, environ: Optional[Any] = None) -> bool:
    """Is switch ``name`` on? Unset, empty, ``0``, ``false`` and ``no`` mean off."""
    value = (os.environ if environ is None else environ).get(name, "")
    return value.strip().lower() not in FALSE_WORDS
