"""The failure-case report (KCP's error guide: "결제 오류 사례를 검토하고 공통된 문제를 파악"): the
period's failed and rejected cancels and declined subscription charges, grouped by KCP code and
reason code, most frequent first.

Cheap to compute: each outcome is counted when it is recorded (a mark, decided here; the store
adds it to a counter per shop, KST day and group in the outcome's own transaction), and the
report reads the period's counters, never the records. It lives in this slice because the
cancellations' reasons and KCP's codes meet here; subscriptions (ranked above) add their
declined charges as marks of the same shape (subscriptions/failures.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from cancelflow.cancellations.model import Cancellation, CancellationStatus
from cancelflow.kcp import codes
from cancelflow.kernel.clock import KST, Clock
from cancelflow.kernel.errors import Problem
from cancelflow.kernel.reasons import explain

DEFAULT_DAYS = 30
MAX_DAYS = 92  # a quarter: what a periodic review reads at most in one answer
EXAMPLES = 5  # ids kept per counter, and shown per group


class FailureKind(StrEnum):
    CANCEL_FAILED = "CANCEL_FAILED"  # KCP refused, or nothing was applied
    CANCEL_REJECTED = "CANCEL_REJECTED"  # not eligible: never sent to KCP
    CHARGE_DECLINED = "CHARGE_DECLINED"  # a subscription charge KCP declined


@dataclass(frozen=True)
class FailureMark:
    """One outcome to count: its group (kind, KCP code, reason code), day and an example id."""

    shop_id: str
    kind: FailureKind
    kcp_code: str  # "" when KCP gave none (e.g. rejected before sending)
    reason_code: str  # "" when the outcome has none (a declined charge)
    at: datetime
    example: str  # the cancellation or subscription id a support person looks up
    res_msg: str = ""  # KCP's own words, shown for a code the catalogue does not know

    @property
    def day(self) -> date:
        return self.at.astimezone(KST).date()


@dataclass(frozen=True)
class FailureCount:
    """A stored counter: one group's count on one KST day (possibly one of several shards)."""

    kind: FailureKind
    kcp_code: str
    reason_code: str
    day: date
    count: int
    first_seen: datetime
    last_seen: datetime
    examples: tuple[tuple[datetime, str], ...] = ()  # (when, id), at most EXAMPLES
    res_msg: str = ""


@dataclass(frozen=True)
class FailureGroup:
    kind: FailureKind
    kcp_code: str
    reason_code: str
    count: int
    first_seen: datetime
    last_seen: datetime
    message: str
    hint: str
    examples: tuple[str, ...]  # newest first


@dataclass(frozen=True)
class FailureReport:
    since: date
    until: date
    groups: tuple[FailureGroup, ...]


class FailureCounts(Protocol):
    def failure_counts(self, shop_id: str, since: date, until: date) -> list[FailureCount]:
        """The shop's counters of the KST days since..until (both included), by Query."""
        ...


_COUNTED = {
    CancellationStatus.FAILED: FailureKind.CANCEL_FAILED,
    CancellationStatus.REJECTED: FailureKind.CANCEL_REJECTED,
}


def marks_of(cancellation: Cancellation, outcome: Cancellation) -> tuple[FailureMark, ...]:
    """What a cancellation's move to `outcome` adds to the report: one mark per reason code of
    a move *into* FAILED or REJECTED (a rejection for two reasons counts in both groups), with
    KCP's code when KCP answered one; nothing for any other move. Written in the same
    transaction as the move, so a retried settle (which finds the status moved) counts nothing."""
    kind = _COUNTED.get(outcome.status)
    if kind is None or cancellation.status is outcome.status:
        return ()
    kcp_code = outcome.res_cd if outcome.res_cd not in ("", "0000") else ""
    return tuple(
        FailureMark(
            shop_id=outcome.shop_id,
            kind=kind,
            kcp_code=kcp_code,
            reason_code=reason,
            at=outcome.updated_at,
            example=outcome.cancellation_id,
            res_msg=outcome.res_msg if kcp_code else "",
        )
        for reason in (outcome.reasons or ("",))
    )


def period(since: date | None, until: date | None, clock: Clock) -> tuple[date, date]:
    """The report's KST days, both included: up to today and DEFAULT_DAYS back unless given;
    at most MAX_DAYS (400 beyond, as for from after to)."""
    until = until or clock.now().astimezone(KST).date()
    since = since or until - timedelta(days=DEFAULT_DAYS - 1)
    if since > until:
        raise Problem("VALIDATION_FAILED", "from must not be after to.")
    if (until - since).days + 1 > MAX_DAYS:
        raise Problem(
            "VALIDATION_FAILED",
            f"A report covers at most {MAX_DAYS} days; ask for a shorter period.",
            errors=[{"field": "from", "message": f"at most {MAX_DAYS} days before to"}],
        )
    return since, until


def group(found: Iterable[FailureCount], lang: str = "ko") -> tuple[FailureGroup, ...]:
    """The counters merged per group across days (and shards), explained in plain words,
    most frequent first (then the most recently seen)."""
    merged: dict[tuple[FailureKind, str, str], list[FailureCount]] = {}
    for count in found:
        merged.setdefault((count.kind, count.kcp_code, count.reason_code), []).append(count)
    groups = []
    for (kind, kcp_code, reason_code), counts in merged.items():
        newest = max(counts, key=lambda c: c.last_seen)
        examples = sorted((e for c in counts for e in c.examples), reverse=True)
        ids = tuple(dict.fromkeys(i for _, i in examples))[:EXAMPLES]
        message, hint = _explained(kcp_code, reason_code, newest.res_msg, lang)
        groups.append(
            FailureGroup(
                kind=kind,
                kcp_code=kcp_code,
                reason_code=reason_code,
                count=sum(c.count for c in counts),
                first_seen=min(c.first_seen for c in counts),
                last_seen=newest.last_seen,
                message=message,
                hint=hint,
                examples=ids,
            )
        )
    return tuple(sorted(groups, key=lambda g: (-g.count, -g.last_seen.timestamp(), g.kind)))


def _explained(kcp_code: str, reason_code: str, res_msg: str, lang: str) -> tuple[str, str]:
    # KCP's code says most (its catalogue has a hint); a reason alone is our own plain text.
    if kcp_code:
        told = codes.describe(kcp_code, res_msg, lang, audience="shop")
        return str(told["message"]), str(told["hint"])
    if reason_code:
        return explain(reason_code, lang)["message"], ""
    return "", ""


def report(
    store: FailureCounts,
    clock: Clock,
    shop_id: str,
    since: date | None = None,
    until: date | None = None,
    lang: str = "ko",
) -> FailureReport:
    """The shop's failure cases of a period (KST days), read from the counters only."""
    since, until = period(since, until, clock)
    return FailureReport(since, until, group(store.failure_counts(shop_id, since, until), lang))
