"""Choose the RIO implementation: the compiled ``_rio_c`` or the ``_rio_py`` twin.

``CSAPP_NO_EXTENSIONS=1`` selects the fallback; ``CSAPP_REQUIRE_EXTENSIONS=1``
makes a missing or broken extension an ImportError instead of a silent fallback.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import TYPE_CHECKING, Callable, Dict, Optional, Tuple

from . import _rio_py


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


NO_EXTENSIONS = _flag("CSAPP_NO_EXTENSIONS")
REQUIRE_EXTENSIONS = _flag("CSAPP_REQUIRE_EXTENSIONS")

IMPLEMENTATIONS: Dict[str, ModuleType] = {"python": _rio_py}

if TYPE_CHECKING:  # type checkers read the pure-Python module
    from ._rio_py import *  # noqa: F401,F403

    IMPLEMENTATION: str
    echo_lines: Optional[Callable[[Rio, int], Tuple[int, bool]]]
else:
    _impl: ModuleType = _rio_py
    try:
        from . import _rio_c
    except ImportError:
        if REQUIRE_EXTENSIONS:
            raise
    else:
        IMPLEMENTATIONS = {"c": _rio_c, "python": _rio_py}
        if not NO_EXTENSIONS:
            _impl = _rio_c

    IMPLEMENTATION = "c" if _impl is not _rio_py else "python"
    RIO_BUFSIZE = _impl.RIO_BUFSIZE
    MAXLINE = _impl.MAXLINE
    LISTENQ = _impl.LISTENQ
    Rio = _impl.Rio
    rio_readn = _impl.rio_readn
    rio_readinto = _impl.rio_readinto
    rio_writen = _impl.rio_writen
    rio_readinitb = _impl.rio_readinitb
    rio_readlineb = _impl.rio_readlineb
    rio_readnb = _impl.rio_readnb
    # CSAPP echo's loop in C, for csapp.echo; None with the fallback.
    echo_lines = getattr(_impl, "_echo_lines", None)
