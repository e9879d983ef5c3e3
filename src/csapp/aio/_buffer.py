"""Choose csapp.aio's receive buffer: the compiled ``_buffer_c`` or the
``_buffer_py`` twin (as ``csapp._rio`` chooses the RIO twin).

The same switches: ``CSAPP_NO_EXTENSIONS=1`` picks the pure-Python buffer,
``CSAPP_REQUIRE_EXTENSIONS=1`` makes a missing compiled one an ImportError.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Dict

from .._switches import NO_EXTENSIONS, REQUIRE_EXTENSIONS, env_flag
from . import _buffer_py

__all__ = ["IMPLEMENTATION", "IMPLEMENTATIONS", "StreamBuffer"]

# The twins by name, as csapp.IMPLEMENTATIONS: "c" (when built) and "python".
IMPLEMENTATIONS: Dict[str, ModuleType] = {"python": _buffer_py}

if TYPE_CHECKING:  # type checkers read the pure-Python module
    from ._buffer_py import StreamBuffer

    IMPLEMENTATION: str
else:
    _impl: ModuleType = _buffer_py
    try:
        from . import _buffer_c
    except ImportError:
        if env_flag(REQUIRE_EXTENSIONS):
            raise
    else:
        IMPLEMENTATIONS = {"c": _buffer_c, "python": _buffer_py}
        if not env_flag(NO_EXTENSIONS):
            _impl = _buffer_c
    IMPLEMENTATION = "c" if _impl is not _buffer_py else "python"
    StreamBuffer = _impl.StreamBuffer
