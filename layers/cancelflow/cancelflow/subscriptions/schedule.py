"""Billing calendar math. Pure: dates in, dates out (the billing calendar is KST dates).

Monthly charges fall on the anchor day, or on the month's last day when the month is shorter
(the 31st anchor charges on Nov 30 and Feb 28, then again on Dec 31). Weekly charges fall on the
anchor ISO weekday (1 = Monday). A failed charge is retried on the dunning schedule, counted in
days from the period's scheduled date, but never on or after the next period's date.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from enum import StrEnum

from cancelflow.kernel.clock import KST


class Cycle(StrEnum):
    MONTHLY = "MONTHLY"
    WEEKLY = "WEEKLY"


def today_kst(now: datetime) -> date:
    """The billing date a person in Korea would call today."""
    return now.astimezone(KST).date()


def check_anchor(cycle: Cycle, anchor_day: int) -> None:
    """ValueError unless the anchor is a day of the month (1-31) or an ISO weekday (1-7)."""
    top = 31 if cycle is Cycle.MONTHLY else 7
    if not 1 <= anchor_day <= top:
        raise ValueError(f"anchor_day for {cycle.value} must be 1-{top}")


def _on_anchor(year: int, month: int, anchor_day: int) -> date:
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(anchor_day, last))


def _month_after(day: date) -> tuple[int, int]:
    return (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)


def first_charge_date(cycle: Cycle, anchor_day: int, start: date) -> date:
    """The first charge date on or after start that falls on the anchor."""
    check_anchor(cycle, anchor_day)
    if cycle is Cycle.WEEKLY:
        return start + timedelta(days=(anchor_day - start.isoweekday()) % 7)
    candidate = _on_anchor(start.year, start.month, anchor_day)
    if candidate >= start:
        return candidate
    return _on_anchor(*_month_after(start), anchor_day)


def next_charge_date(cycle: Cycle, anchor_day: int, current: date) -> date:
    """The charge date of the period after the one charged on current."""
    check_anchor(cycle, anchor_day)
    if cycle is Cycle.WEEKLY:
        return first_charge_date(cycle, anchor_day, current + timedelta(days=1))
    return _on_anchor(*_month_after(current), anchor_day)


def period_id(cycle: Cycle, scheduled: date) -> str:
    """The period a scheduled charge pays for: "2026-12" (monthly), "2026-W49" (weekly).

    Part of the idempotency key: one period is paid at most once.
    """
    if cycle is Cycle.WEEKLY:
        year, week, _ = scheduled.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{scheduled.year}-{scheduled.month:02d}"


def dunning_date(
    scheduled: date, failures: int, retry_days: Sequence[int], next_period: date
) -> date | None:
    """When to try again after the failures-th declined charge of a period; None: suspend.

    retry_days counts from the scheduled date, e.g. (1, 3, 7): retries on D+1, D+3, D+7.
    A retry on or after the next period's date is dropped: periods never pile up.
    """
    if failures < 1:
        raise ValueError("failures counts declined charges: at least 1")
    if failures > len(retry_days):
        return None
    retry = scheduled + timedelta(days=retry_days[failures - 1])
    return retry if retry < next_period else None


def parse_retry_days(text: str) -> tuple[int, ...]:
    """ "1,3,7" (the template's CommaDelimitedList) as strictly increasing positive days."""
    days = tuple(int(part) for part in text.split(",") if part.strip())
    if any(d <= 0 for d in days) or list(days) != sorted(set(days)):
        raise ValueError("dunning retry days must be increasing positive integers, e.g. 1,3,7")
    return days


def prorata_refund(amount: int, period_start: date, period_end: date, cancelled_on: date) -> int:
    """The unused part of a period's charge, by whole days, rounded down (KRW): the one rule.

    A period is half-open: it runs from period_start up to the day before period_end (the next
    period's date), so a month counts its own 28 to 31 days and a leap February its 29 with no
    end-of-month arithmetic. The day of cancellation counts as used; a cancel before the period
    starts gets everything back, one on or after its end nothing.
    """
    if amount < 0 or period_end <= period_start:
        raise ValueError("amount must be >= 0 and the period at least one day long")
    days = (period_end - period_start).days
    used = min(days, max(0, (cancelled_on - period_start).days + 1))
    return amount * (days - used) // days
