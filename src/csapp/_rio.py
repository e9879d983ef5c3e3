"""Choose the RIO implementation: the compiled ``_rio_c`` or the ``_rio_py`` twin.

``CSAPP_NO_EXTENSIONS=1`` selects the fallback; ``CSAPP_REQUIRE_EXTENSIONS=1``
makes a missing or broken extension an ImportError instead of a fallback
(the switches are parsed by ``csapp._switches.env_flag``, as in ``setup.py``).
When the fallback is in use, ``EXTENSION_MISSING`` says why (``csapp
--version`` and ``csapp info`` print it); it is ``None`` with the compiled twin.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import TYPE_CHECKING, Dict, Optional

from . import _rio_py
from ._shared import RIO_NAMES
from ._switches import NO_EXTENSIONS, REQUIRE_EXTENSIONS, env_flag

IMPLEMENTATIONS: Dict[str, ModuleType] = {"python": _rio_py}


def fallback_reason(import_error: Optional[BaseException]) -> str:
    """Why the pure-Python twin is in use: the switch, the failed import, or both."""
    reasons = []
    if env_flag(NO_EXTENSIONS):
        reasons.append(f"{NO_EXTENSIONS}={os.environ[NO_EXTENSIONS]} is set")
    if isinstance(import_error, ModuleNotFoundError):
        reasons.append(f"the compiled extension is not installed: {import_error}")
    elif import_error is not None:
        reasons.append(f"the compiled extension failed to import: {import_error}")
    return "; ".join(reasons) or "the compiled extension is not in use"


if TYPE_CHECKING:  # type checkers read the pure-Python module
    from ._rio_py import *  # noqa: F403

    rio_echo = _rio_py._rio_echo
    rio_echo_turns = _rio_py._rio_echo_turns
    rio_echo_wait = _rio_py._rio_echo_wait

    IMPLEMENTATION: str
    EXTENSION_MISSING: Optional[str]
else:
    _impl: ModuleType = _rio_py
    _import_error: Optional[ImportError] = None
    try:
        # By its full name, so a module that was never built reads "No module
        # named 'csapp._rio_c'" (``from . import`` blames a circular import).
        _rio_c = importlib.import_module(f"{__package__}._rio_c")
    except ImportError as exc:
        if env_flag(REQUIRE_EXTENSIONS):
            raise
        _import_error = exc
    else:
        IMPLEMENTATIONS = {"c": _rio_c, "python": _rio_py}
        if not env_flag(NO_EXTENSIONS):
            _impl = _rio_c

    IMPLEMENTATION = "c" if _impl is not _rio_py else "python"
    EXTENSION_MISSING = None if _impl is not _rio_py else fallback_reason(_import_error)
    del _import_error
    globals().update((name, getattr(_impl, name)) for name in RIO_NAMES)
    # CSAPP echo's loop (csapp.echo) and the event server's turns; both twins have them.
    rio_echo = _impl._rio_echo
    rio_echo_turns = _impl._rio_echo_turns
    rio_echo_wait = _impl._rio_echo_wait
