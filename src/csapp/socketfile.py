"""``csapp.makefile``: the drop-in for ``sock.makefile("rb")``, a Rio bound to
the socket *object*.

What ``socket.socket.makefile`` readers do and a bare ``Rio(sock.fileno())``
cannot, it does:

* **Lifetime.** The reader takes part in the socket's ``_io_refs`` exactly as
  ``socket.SocketIO`` does: ``sock.close()`` while the reader is open only
  marks the socket closed, and the descriptor is closed when the reader is
  (or is collected). So the reader never reads a descriptor it does not hold.
* **Timeouts.** With ``sock.settimeout(t)`` the descriptor is non-blocking
  underneath; a read that would block waits up to the socket's timeout of the
  moment (``poll``, without the GIL in the compiled twin), then raises
  ``TimeoutError`` with every byte already taken still buffered.
* **TLS and socket-like objects.** An ``ssl.SSLSocket``, or any object that is
  not a plain ``socket.socket``, is read through its ``recv_into``: the same
  buffer and line search, never the descriptor underneath.
"""

from __future__ import annotations

import io
import socket
import sys
import weakref
from types import ModuleType
from typing import Any, Callable, Dict, Optional, Type

from . import _rio
from ._shared import RIO_BUFSIZE

__all__ = ["makefile", "socket_reader_class"]

_CLASSES: Dict[str, type] = {}


def socket_reader_class(implementation: Optional[ModuleType] = None) -> Type[Any]:
    """The ``Rio`` subclass ``makefile`` returns, over one RIO twin (by
    default the one ``import csapp`` chose); the tests take both."""
    module = (
        implementation if implementation is not None else _rio.IMPLEMENTATIONS[_rio.IMPLEMENTATION]
    )
    name = module.__name__
    cls = _CLASSES.get(name)
    if cls is None:
        cls = _CLASSES[name] = _make_reader_class(module.Rio)
    return cls


def _make_reader_class(base: type) -> type:
    class SocketReader(base):  # type: ignore[misc]
        """A ``Rio`` holding its socket as ``sock.makefile("rb")``'s reader
        does (see ``csapp.socketfile``)."""

        __slots__ = ("_release",)
        _release: Optional[Callable[[], Any]]

        def close(self) -> None:
            """Close the reader, then give the socket back its reference:
            a socket closed meanwhile closes now (``SocketIO.close``)."""
            try:
                super().close()
            finally:
                release = getattr(self, "_release", None)
                if release is not None:
                    self._release = None
                    release()

    SocketReader.__qualname__ = SocketReader.__name__ = "SocketReader"
    SocketReader.__module__ = __name__
    return SocketReader


def _reads_through_recv(sock: Any) -> bool:
    """Must reads go through ``sock.recv_into``, not the descriptor?"""
    if type(sock) is socket.socket:
        return False
    ssl = sys.modules.get("ssl")  # no SSLSocket exists unless ssl was imported
    if ssl is not None and isinstance(sock, ssl.SSLSocket):
        return True
    return not isinstance(sock, socket.socket)


def makefile(
    sock: Any,
    mode: str = "rb",
    buffering: Optional[int] = None,
    *,
    encoding: Optional[str] = None,
    errors: Optional[str] = None,
    newline: Optional[str] = None,
    implementation: Optional[ModuleType] = None,
) -> Any:
    """``sock.makefile(mode, buffering, ...)`` with a ``Rio`` as the reader.

    ``"rb"`` (the default) gives a ``Rio`` of ``buffering`` bytes (the Rio's
    own 8 KiB for ``None`` or a negative size); ``"r"`` the same under
    ``io.TextIOWrapper``. Modes that write, and ``buffering=0`` (an unbuffered
    raw reader), are the socket's own ``makefile``. ``implementation`` picks a
    RIO twin (``csapp.IMPLEMENTATIONS``); the default is ``csapp``'s.
    """
    if not set(mode) <= {"r", "w", "b"}:
        raise ValueError(f"invalid mode {mode!r} (only r, w, b allowed)")
    if "w" in mode or "r" not in mode or buffering == 0:
        return sock.makefile(mode, buffering, encoding=encoding, errors=errors, newline=newline)
    if buffering is None or buffering < 0:
        buffering = RIO_BUFSIZE
    via_recv = _reads_through_recv(sock)
    if via_recv and not hasattr(sock, "recv_into"):
        raise TypeError(f"cannot read from '{type(sock).__name__}': it has no recv_into")
    reader = socket_reader_class(implementation)(sock.fileno(), buffering)
    reader._bind_socket(sock, via_recv)
    refs = getattr(sock, "_io_refs", None)
    if refs is not None:  # a socket.socket: hold it as SocketIO does
        sock._io_refs = refs + 1
        reader._release = weakref.finalize(reader, sock._decref_socketios)
    else:
        reader._release = None
    if "b" in mode:
        return reader
    text = io.TextIOWrapper(reader, encoding, errors, newline)
    text.mode = mode  # type: ignore[misc]
    return text
