"""The HTTP server under the local API and the KCP sandbox: many connections at once.

http.server's default listen backlog is 5: with 100 clients connecting together most were
refused or reset before a thread ever saw them. And BaseHTTPRequestHandler writes the headers
and the body in two sends, so Nagle held the body back until the client's delayed ACK (~40 ms).
"""

from __future__ import annotations

import socket
from http.server import ThreadingHTTPServer
from typing import Any

LISTEN_BACKLOG = 1024  # the kernel caps it at net.core.somaxconn (4096 on current Linux)


class LocalHTTPServer(ThreadingHTTPServer):
    """A thread per connection, a deep accept queue, no Nagle delay."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = LISTEN_BACKLOG

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, address
