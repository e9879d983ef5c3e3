"""csapp: CSAPP's robust I/O (RIO), sockets and echo servers for Python.

``import csapp`` gives the compiled implementation when it was built, else the
pure-Python twin with the same behaviour; ``csapp.IMPLEMENTATION`` says which.
The RIO layer, ``echo``, ``makefile`` and the socket helpers load with the
package; the echo servers (``csapp.servers``) on first use of one of their
names, so a program that reads lines does not import six server modes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, List

from . import _moved
from ._rio import (
    IMPLEMENTATION,
    IMPLEMENTATIONS,
    MAXLINE,
    RIO_BUFSIZE,
    Rio,
    rio_readinitb,
    rio_readinto,
    rio_readlineb,
    rio_readn,
    rio_readnb,
    rio_writen,
)
from .echo_service import echo
from .socketfile import makefile
from .sockets import LISTENQ, open_clientfd, open_listenfd

if TYPE_CHECKING:
    from .servers import (
        SERVERS,
        ServerConfig,
        ServerControl,
        serve_asyncio,
        serve_event,
        serve_iterative,
        serve_prethreaded,
        serve_process,
        serve_thread,
    )

__version__ = "0.1.0"

_moved.install()  # old module names (csapp.sweep, ...) import with a DeprecationWarning

__all__ = [
    "IMPLEMENTATION",
    "IMPLEMENTATIONS",
    "LISTENQ",
    "MAXLINE",
    "RIO_BUFSIZE",
    "SERVERS",
    "Rio",
    "ServerConfig",
    "ServerControl",
    "__version__",
    "echo",
    "makefile",
    "open_clientfd",
    "open_listenfd",
    "rio_readinitb",
    "rio_readinto",
    "rio_readlineb",
    "rio_readn",
    "rio_readnb",
    "rio_writen",
    "serve_asyncio",
    "serve_event",
    "serve_iterative",
    "serve_prethreaded",
    "serve_process",
    "serve_thread",
]

# The exported names not bound above: csapp.servers', imported on first use (PEP 562).
_SERVER_NAMES = frozenset(name for name in __all__ if name not in globals())


def __getattr__(name: str) -> Any:
    """The server names, from ``csapp.servers`` when first asked for."""
    if name in _SERVER_NAMES:
        from . import servers

        value = getattr(servers, name)
        globals()[name] = value  # asked once: a plain attribute from now on
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> List[str]:
    return sorted(set(globals()) | _SERVER_NAMES)
