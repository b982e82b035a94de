"""Opaque, tamper-proof page cursors: the position and the filters they belong to, signed.

A cursor cannot be forged or reused with other filters; even so, the store only ever resumes
inside the caller's own partition, so a cursor can never reach another shop's items.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

from cancelflow.kernel.errors import Conflict, Problem


class BadCursor(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(position: dict[str, Any], scope: str, key: bytes) -> str:
    body = _b64(json.dumps({"p": position, "s": scope}, separators=(",", ":")).encode())
    return f"{body}.{_b64(hmac.new(key, body.encode(), hashlib.sha256).digest())}"


def decode(cursor: str, scope: str, key: bytes) -> dict[str, Any]:
    """The position, if the cursor is ours, untouched, and made for this same scope."""
    body, _, signature = cursor.partition(".")
    expected = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())
    if not signature or not hmac.compare_digest(signature, expected):
        raise BadCursor("cursor is not valid")
    try:
        doc = json.loads(_unb64(body))
    except ValueError as error:
        raise BadCursor("cursor is not valid") from error
    if doc.get("s") != scope:
        raise BadCursor("cursor belongs to other filters")
    position = doc.get("p")
    if not isinstance(position, dict):
        raise BadCursor("cursor is not valid")
    return position


def resume(cursor: str | None, scope: str, key: bytes) -> dict[str, Any] | None:
    """Where a page starts: None for the first page; 400 INVALID_CURSOR for a bad cursor."""
    if not cursor:
        return None
    try:
        return decode(cursor, scope, key)
    except BadCursor as error:
        raise Problem("INVALID_CURSOR", str(error)) from error


def following(position: dict[str, Any] | None, scope: str, key: bytes) -> str | None:
    """The cursor to the next page, or None at the end."""
    return encode(position, scope, key) if position else None


def page_through[T](
    cursor: str | None,
    scope: str,
    key: bytes,
    read: Callable[[dict[str, Any] | None], tuple[T, dict[str, Any] | None]],
) -> tuple[T, str | None]:
    """The one way every list pages: read from where the cursor says (`read` answers the page
    and where the next one starts), and sign the cursor to the next page. A position the store
    refuses (Conflict: not inside the caller's own list) is 400 INVALID_CURSOR, like a forged
    one."""
    position = resume(cursor, scope, key)
    try:
        found, next_position = read(position)
    except Conflict as error:
        raise Problem("INVALID_CURSOR") from error
    return found, following(next_position, scope, key)
