"""csapp: CSAPP's robust I/O (RIO), sockets and echo servers for Python.

``import csapp`` gives the compiled implementation when it was built, else the
pure-Python twin with the same behaviour; ``csapp.IMPLEMENTATION`` says which.
"""

from __future__ import annotations

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
from .echo import echo
from .servers import (
    SERVERS,
    ServerConfig,
    ServerControl,
    serve_event,
    serve_iterative,
    serve_prethreaded,
    serve_process,
    serve_thread,
)
from .socketfile import makefile
from .sockets import LISTENQ, open_clientfd, open_listenfd

__version__ = "0.1.0"

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
    "serve_event",
    "serve_iterative",
    "serve_prethreaded",
    "serve_process",
    "serve_thread",
]
