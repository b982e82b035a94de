"""The one clock: time is stored in UTC and shown in KST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Protocol

KST = timezone(timedelta(hours=9), "KST")


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def to_utc_text(moment: datetime) -> str:
    """Sortable UTC text for storage and keys (second precision is what KCP gives)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: time must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_utc_text(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def to_kst_text(moment: datetime) -> str:
    """What a person in Korea reads: ISO 8601 with +09:00."""
    return moment.astimezone(KST).isoformat()
