"""The Mailer on Amazon SES (v2)."""

from __future__ import annotations

from typing import Any

from cancelflow.kernel.email import Email


class SesMailer:
    def __init__(self, client: Any, sender: str) -> None:
        self._ses = client
        self._sender = sender

    def send(self, email: Email) -> None:
        body = {"Text": {"Data": email.body, "Charset": "UTF-8"}}
        if email.html:  # both parts: SES sends them as multipart/alternative
            body["Html"] = {"Data": email.html, "Charset": "UTF-8"}
        self._ses.send_email(
            FromEmailAddress=self._sender,
            Destination={"ToAddresses": [email.to]},
            Content={
                "Simple": {"Subject": {"Data": email.subject, "Charset": "UTF-8"}, "Body": body}
            },
        )
