"""Sending a webhook: resolve, refuse unsafe addresses, POST to the address that was checked.

The host is resolved at every attempt and the connection is made to the checked address (the
TLS handshake still verifies the host's certificate by name), so a DNS answer that changes
between the check and the connection cannot point a delivery at a private address. Timeouts
bound every step; only a short excerpt of the answer body is read.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from cancelflow.webhooks.model import EXCERPT_CHARS
from cancelflow.webhooks.ports import Answer
from cancelflow.webhooks.safety import address_refusal, url_refusal

Resolve = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


class HttpPoster:
    def __init__(
        self,
        allow_loopback: bool = False,
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
        resolver: Resolve = resolve,
    ) -> None:
        self.allow_loopback = allow_loopback
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.resolver = resolver
        self._tls = ssl.create_default_context()

    def _target(self, url: str) -> tuple[str, str]:
        """(address to connect to, "") or ("", why it is refused)."""
        refusal = url_refusal(url, self.allow_loopback)
        if refusal:
            return "", refusal
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addresses = self.resolver(parts.hostname or "", port)
        except OSError as error:
            return "", f"cannot resolve {parts.hostname}: {error}"
        if not addresses:
            return "", f"{parts.hostname} has no address"
        for address in addresses:
            why = address_refusal(address, self.allow_loopback)
            if why:
                return "", why
        return addresses[0], ""

    def refusal(self, url: str) -> str:
        return self._target(url)[1]

    def post(self, url: str, headers: dict[str, str], body: str) -> Answer:
        started = time.monotonic()

        def elapsed() -> int:
            return int((time.monotonic() - started) * 1000)

        address, refusal = self._target(url)
        if refusal:
            return Answer(None, "", elapsed(), f"refused: {refusal}")
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection: http.client.HTTPConnection
        try:
            raw = socket.create_connection((address, port), timeout=self.connect_timeout)
            raw.settimeout(self.read_timeout)
            if parts.scheme == "https":
                connection = http.client.HTTPSConnection(host, port, timeout=self.read_timeout)
                connection.sock = self._tls.wrap_socket(raw, server_hostname=host)
            else:
                connection = http.client.HTTPConnection(host, port, timeout=self.read_timeout)
                connection.sock = raw
            try:
                connection.request("POST", path, body=body.encode(), headers=headers)
                response = connection.getresponse()
                excerpt = response.read(EXCERPT_CHARS * 4).decode("utf-8", "replace")
                return Answer(response.status, excerpt[:EXCERPT_CHARS], elapsed())
            finally:
                connection.close()
        except (OSError, http.client.HTTPException) as error:
            return Answer(None, "", elapsed(), f"{type(error).__name__}: {error}"[:200])
