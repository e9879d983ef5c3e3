"""An HTTPS file server on csapp's handler, as a user would run one: the
standard library's ``http.server`` with ``socketserver.StreamRequestHandler``
replaced by ``csapp.socketserver.StreamRequestHandler`` before it is imported.

    python https_server.py DIRECTORY CERT KEY   prints "port N", serves until killed
"""

from __future__ import annotations

import socketserver
import ssl
import sys
from functools import partial

import csapp.socketserver

socketserver.StreamRequestHandler = csapp.socketserver.StreamRequestHandler  # type: ignore[misc]

import http.server  # noqa: E402  (after the swap, as the swap requires)


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args: object) -> None:
        pass


def main(directory: str, cert: str, key: str) -> None:
    assert issubclass(Handler, csapp.socketserver.StreamRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(Handler, directory=directory)
    )
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print("port", server.server_address[1], csapp.IMPLEMENTATION, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(*sys.argv[1:4])
