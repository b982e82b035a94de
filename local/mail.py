"""SES mail on the local stack: every SendEmail that succeeded, mirrored into a readable file
(the text part, headers first) and, beside it, its HTML part as the recipient's client shows it."""

from __future__ import annotations

import os
import re
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


class MailDrop:
    """Mirror every SES SendEmail that succeeded into a readable file under a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._count = 0
        self._lock = threading.Lock()

    def _before(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["cancelflow_mail"] = params

    def _after(self, http_response: Any, context: dict[str, Any], **_: Any) -> None:
        params = context.get("cancelflow_mail")
        if not params or http_response.status_code >= 300:
            return
        simple = params["Content"]["Simple"]
        to = ", ".join(params["Destination"].get("ToAddresses", []))
        subject = simple["Subject"]["Data"]
        body = simple["Body"].get("Text", {}).get("Data", "")
        html = simple["Body"].get("Html", {}).get("Data", "")
        with self._lock:
            self._count += 1
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            slug = re.sub(r"[^A-Za-z0-9@.]+", "_", to)[:60]
            # The pid keeps names apart when functions run in worker processes (benches).
            path = self.folder / f"{stamp}-{self._count:04d}-{os.getpid()}-{slug}.txt"
        self.folder.mkdir(parents=True, exist_ok=True)
        path.write_text(
            f"From: {params['FromEmailAddress']}\nTo: {to}\nSubject: {subject}\n"
            f"Date: {datetime.now(UTC).isoformat()}\n\n{body}",
            encoding="utf-8",
        )
        if html:  # the part a mail client shows, beside the text: open it in a browser
            path.with_suffix(".html").write_text(html, encoding="utf-8")

    def hooks(self) -> list[tuple[str, Any]]:
        return [
            ("before-parameter-build.sesv2.SendEmail", self._before),
            ("after-call.sesv2.SendEmail", self._after),
        ]

    def messages(self) -> list[str]:
        if not self.folder.exists():
            return []
        return [p.read_text(encoding="utf-8") for p in sorted(self.folder.glob("*.txt"))]
