"""Choose csapp.aio's buffer: the compiled ``_aiobuf_c`` or the ``_aiobuf_py`` twin.

The same switches as the RIO twins (``csapp._rio``): ``CSAPP_NO_EXTENSIONS=1``
picks the pure-Python buffer, ``CSAPP_REQUIRE_EXTENSIONS=1`` makes a missing
compiled one an ImportError.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict

from .. import _aiobuf_py
from .._shared import NO_EXTENSIONS, REQUIRE_EXTENSIONS, env_flag

__all__ = ["BUFFERS", "IMPLEMENTATION", "StreamBuffer"]

BUFFERS: Dict[str, type] = {"python": _aiobuf_py.StreamBuffer}

if TYPE_CHECKING:
    from .._aiobuf_py import StreamBuffer

    IMPLEMENTATION: str
else:
    StreamBuffer = _aiobuf_py.StreamBuffer
    try:
        from .. import _aiobuf_c
    except ImportError:
        if env_flag(REQUIRE_EXTENSIONS):
            raise
    else:
        BUFFERS = {"c": _aiobuf_c.StreamBuffer, "python": _aiobuf_py.StreamBuffer}
        if not env_flag(NO_EXTENSIONS):
            StreamBuffer = _aiobuf_c.StreamBuffer
    IMPLEMENTATION = "c" if StreamBuffer is not _aiobuf_py.StreamBuffer else "python"
