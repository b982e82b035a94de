"""A shop's webhook receiver on the local stack (WEBHOOK_INBOX_URL): it verifies each delivery's
Standard Webhooks signature with the published `standardwebhooks` verifier and keeps what came.

    POST {inbox}/_inbox/secrets   {"secret": "whsec_…"}   the endpoint's secret, to verify with
    GET  {inbox}/_inbox/events    what arrived, oldest first: headers, body, verified or why not
    POST {inbox}/_inbox/answer    {"status": 503}  answer deliveries so from now on (200: again)
    DELETE {inbox}/_inbox/events  forget what arrived

Any other POST is a delivery. Tests also stop() and start() it (same port) to make deliveries
fail and be retried.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from local.http_server import LocalHTTPServer


class LocalInbox:
    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.secrets: list[str] = []
        self.arrivals: list[dict[str, Any]] = []
        self.answer_status = 200
        self._lock = threading.Lock()
        self._server: LocalHTTPServer | None = None

    @property
    def url(self) -> str:
        """The URL a shop registers as its endpoint."""
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> str:
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def _answer(self, status: int, doc: Any = None) -> None:
                body = json.dumps(doc, ensure_ascii=False).encode() if doc is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self) -> None:
                if self.path.startswith("/_inbox/events"):
                    with inbox._lock:
                        self._answer(200, list(inbox.arrivals))
                else:
                    self._answer(404, {"error": "not found"})

            def do_DELETE(self) -> None:
                with inbox._lock:
                    inbox.arrivals.clear()
                self._answer(204)

            def do_POST(self) -> None:
                raw = self._body()
                if self.path == "/_inbox/secrets":
                    with inbox._lock:
                        inbox.secrets.append(json.loads(raw)["secret"])
                    self._answer(204)
                elif self.path == "/_inbox/answer":
                    inbox.answer_status = int(json.loads(raw)["status"])
                    self._answer(204)
                else:
                    status = inbox.receive(self.path, dict(self.headers.items()), raw)
                    self._answer(status, {"received": status < 300})

        self._server = LocalHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.url

    def stop(self) -> None:
        """Refuse connections (deliveries fail and are retried) until start() again."""
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def receive(self, path: str, headers: dict[str, str], raw: bytes) -> int:
        verified, error, body = False, "", None
        with self._lock:
            secrets = list(self.secrets)
        for secret in secrets:
            try:
                body = Webhook(secret).verify(raw, headers)
                verified, error = True, ""
                break
            except WebhookVerificationError as e:
                error = str(e)
        if not secrets:
            error = "no secret registered (POST /_inbox/secrets)"
        if body is None:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        named = {k.lower(): v for k, v in headers.items()}
        arrival = {
            "received_at": datetime.now(UTC).isoformat(),
            "path": path,
            "webhook_id": named.get("webhook-id"),
            "webhook_timestamp": named.get("webhook-timestamp"),
            "webhook_signature": named.get("webhook-signature"),
            "verified": verified,
            "error": error or None,
            "answered": self.answer_status,
            "body": body,
        }
        with self._lock:
            self.arrivals.append(arrival)
        return self.answer_status
