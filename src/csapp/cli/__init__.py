"""The ``csapp`` command, apart from the library it drives.

``main`` parses and runs a subcommand (``commands.py``); the lecture's tools it
runs live beside it: ``demo`` (the main job in a second), ``copying``
(``csapp copy``: byte-at-a-time, buffered and sendfile/splice copies with
system-call counts), ``sweep`` (``copy --sweep``: throughput against buffer
size) and ``hostinfo`` (CSAPP's ``hostinfo``). Nothing in the library
imports this package.
"""

from __future__ import annotations

from .commands import main

__all__ = ["main"]
