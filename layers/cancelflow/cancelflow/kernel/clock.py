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


def to_utc_text(moment: datetime, precise: bool = False) -> str:
    """Sortable UTC text for storage and keys: seconds (what KCP gives), or microseconds where
    order within a second matters (a payment's cancellations, in the order they were asked)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: time must be timezone-aware")
    utc = moment.astimezone(UTC)
    # The year by hand: strftime's %Y does not pad years below 1000, which breaks sorting.
    return f"{utc.year:04d}" + utc.strftime(
        "-%m-%dT%H:%M:%S.%fZ" if precise else "-%m-%dT%H:%M:%SZ"
    )


def from_utc_text(text: str) -> datetime:
    shape = "%Y-%m-%dT%H:%M:%S.%fZ" if "." in text else "%Y-%m-%dT%H:%M:%SZ"
    return datetime.strptime(text, shape).replace(tzinfo=UTC)


def to_kst_text(moment: datetime) -> str:
    """What a person in Korea reads: ISO 8601 with +09:00, to the second."""
    return moment.astimezone(KST).replace(microsecond=0).isoformat()
