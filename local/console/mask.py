"""What an operator's screen must not show: secrets and account or card numbers, masked."""

from __future__ import annotations

import json
import re
from typing import Any

SECRET_KEYS = re.compile(
    r"(secret|password|passwd|token|private|cert|signature|sign_data|batch_key|api_key|"
    r"authorization|credential|kcp_cert)",
    re.IGNORECASE,
)
ACCOUNT_KEYS = re.compile(r"(account_no|acct|card_no|card_number|^number$|bank_num)", re.IGNORECASE)
# 110-123-456789 style account numbers inside free text (dates, 2026-12-03, have a short tail).
ACCOUNT_TEXT = re.compile(r"\b\d{3,6}-\d{2,6}-\d{4,8}\b")
CARD_TEXT = re.compile(r"\b(?:\d{4}[- ]?){3}\d{4}\b")


def _tail(text: str) -> str:
    digits = re.sub(r"\D", "", text)
    return "•" * max(len(digits) - 4, 4) + digits[-4:] if len(digits) > 4 else "••••"


def mask(value: Any, key: str = "") -> Any:
    """The value with secrets replaced and account/card numbers cut to their last 4 digits."""
    if isinstance(value, dict):
        return {k: mask(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v, key) for v in value]
    if isinstance(value, str):
        if key and SECRET_KEYS.search(key):
            return "•••• (masked)"
        if key and ACCOUNT_KEYS.search(key):
            return _tail(value)
        text = ACCOUNT_TEXT.sub(lambda m: _tail(m.group()), value)
        return CARD_TEXT.sub(lambda m: _tail(m.group()), text)
    return value


def pretty(text: str | None) -> str:
    """A state's JSON input or output, masked and indented (text that is not JSON, masked)."""
    if text is None or text == "":
        return ""
    try:
        document = json.loads(text)
    except ValueError:
        return str(mask(text))
    if isinstance(document, str) and document[:1] in "{[":  # a JSON string inside JSON
        try:
            document = json.loads(document)
        except ValueError:
            pass
    return json.dumps(mask(document), ensure_ascii=False, indent=2)
