"""The Mailer on Amazon SES (v2)."""

from __future__ import annotations

import logging
from typing import Any

from cancelflow.kernel.email import Email, mask_email

logger = logging.getLogger(__name__)  # printed by the running handler's Logger: adapters/logs.py


class SesMailer:
    def __init__(self, client: Any, sender: str) -> None:
        self._ses = client
        self._sender = sender

    def send(self, email: Email) -> None:
        body = {"Text": {"Data": email.body, "Charset": "UTF-8"}}
        if email.html:  # both parts: SES sends them as multipart/alternative
            body["Html"] = {"Data": email.html, "Charset": "UTF-8"}
        sent = self._ses.send_email(
            FromEmailAddress=self._sender,
            Destination={"ToAddresses": [email.to]},
            Content={
                "Simple": {"Subject": {"Data": email.subject, "Charset": "UTF-8"}, "Body": body}
            },
        )
        # One line per email, with the invocation's correlation id: how `make trace` finds the
        # emails of a cancel or a billing run on a deployed stack (SES keeps no readable copy).
        logger.info(
            "email sent",
            extra={
                "to": mask_email(email.to),
                "subject": email.subject,
                "message_id": sent.get("MessageId", ""),
            },
        )
