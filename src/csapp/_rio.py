"""Choose the RIO implementation: the compiled ``_rio_c`` or the ``_rio_py`` twin.

``CSAPP_NO_EXTENSIONS=1`` selects the fallback; ``CSAPP_REQUIRE_EXTENSIONS=1``
makes a missing or broken extension an ImportError instead of a silent fallback
(the switches are parsed by ``csapp._switches.env_flag``, as in ``setup.py``).
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Dict

from . import _rio_py
from ._shared import RIO_NAMES
from ._switches import NO_EXTENSIONS, REQUIRE_EXTENSIONS, env_flag

IMPLEMENTATIONS: Dict[str, ModuleType] = {"python": _rio_py}

if TYPE_CHECKING:  # type checkers read the pure-Python module
    from ._rio_py import *  # noqa: F403

    rio_echo = _rio_py._rio_echo

    IMPLEMENTATION: str
else:
    _impl: ModuleType = _rio_py
    try:
        from . import _rio_c
    except ImportError:
        if env_flag(REQUIRE_EXTENSIONS):
            raise
    else:
        IMPLEMENTATIONS = {"c": _rio_c, "python": _rio_py}
        if not env_flag(NO_EXTENSIONS):
            _impl = _rio_c

    IMPLEMENTATION = "c" if _impl is not _rio_py else "python"
    globals().update((name, getattr(_impl, name)) for name in RIO_NAMES)
    # CSAPP echo's loop (csapp.echo); both twins have it.
    rio_echo = _impl._rio_echo
