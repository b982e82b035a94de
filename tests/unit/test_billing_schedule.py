"""The billing calendar: anchors, month ends, periods, dunning and pro-rata refunds (pure)."""

from __future__ import annotations

import calendar
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cancelflow.subscriptions.model import order_id_for
from cancelflow.subscriptions.schedule import (
    Cycle,
    dunning_date,
    first_charge_date,
    next_charge_date,
    parse_retry_days,
    period_id,
    prorata_refund,
)

days = st.dates(min_value=date(2020, 1, 1), max_value=date(2100, 12, 31))


def test_the_31st_anchor_charges_on_the_months_last_day_and_returns_to_the_31st() -> None:
    charged = [date(2030, 10, 31)]
    for _ in range(5):
        charged.append(next_charge_date(Cycle.MONTHLY, 31, charged[-1]))
    assert charged == [
        date(2030, 10, 31),
        date(2030, 11, 30),
        date(2030, 12, 31),
        date(2031, 1, 31),
        date(2031, 2, 28),
        date(2031, 3, 31),
    ]


def test_a_leap_february_charges_on_the_29th() -> None:
    assert next_charge_date(Cycle.MONTHLY, 30, date(2032, 1, 30)) == date(2032, 2, 29)


def test_weekly_charges_fall_on_the_anchor_weekday() -> None:
    assert first_charge_date(Cycle.WEEKLY, 3, date(2036, 3, 2)) == date(2036, 3, 5)  # a Wednesday
    assert next_charge_date(Cycle.WEEKLY, 3, date(2036, 3, 5)) == date(2036, 3, 12)


def test_periods_name_the_month_or_the_iso_week() -> None:
    assert period_id(Cycle.MONTHLY, date(2026, 12, 1)) == "2026-12"
    assert period_id(Cycle.WEEKLY, date(2026, 12, 1)) == "2026-W49"


def test_dunning_retries_after_1_3_7_days_then_suspends() -> None:
    d, nxt = date(2033, 1, 10), date(2033, 2, 10)
    retries = [dunning_date(d, n, (1, 3, 7), nxt) for n in (1, 2, 3, 4)]
    assert retries == [date(2033, 1, 11), date(2033, 1, 13), date(2033, 1, 17), None]


def test_a_retry_on_the_next_periods_date_is_dropped() -> None:
    d = date(2033, 1, 10)
    assert dunning_date(d, 3, (1, 3, 7), d + timedelta(days=7)) is None


def test_retry_days_must_increase() -> None:
    assert parse_retry_days("1,3,7") == (1, 3, 7)
    for bad in ("3,1", "0,1", "1,1"):
        with pytest.raises(ValueError):
            parse_retry_days(bad)


def test_prorata_refund_counts_the_cancel_day_as_used() -> None:
    start, end = date(2030, 11, 1), date(2030, 12, 1)  # 30 days
    assert prorata_refund(30000, start, end, start) == 29000
    assert prorata_refund(30000, start, end, date(2030, 11, 30)) == 0  # the last day
    assert prorata_refund(30000, start, end, end) == 0  # the next period's first day


@pytest.mark.parametrize(
    ("start", "end", "cancelled_on", "refund"),
    [
        pytest.param(date(2030, 1, 1), date(2030, 2, 1), date(2030, 1, 1), 30000, id="jan"),
        pytest.param(date(2030, 4, 1), date(2030, 5, 1), date(2030, 4, 1), 29000, id="apr"),
        pytest.param(date(2030, 2, 1), date(2030, 3, 1), date(2030, 2, 14), 14000, id="february"),
        pytest.param(date(2028, 2, 1), date(2028, 3, 1), date(2028, 2, 14), 15000, id="leap"),
        pytest.param(date(2028, 2, 1), date(2028, 3, 1), date(2028, 2, 29), 0, id="on feb 29"),
        pytest.param(date(2030, 12, 31), date(2031, 1, 31), date(2030, 12, 31), 30000, id="dec"),
        pytest.param(date(2030, 11, 1), date(2030, 12, 1), date(2030, 10, 31), 30000, id="before"),
    ],
)
def test_prorata_refund_counts_each_months_own_days(
    start: date, end: date, cancelled_on: date, refund: int
) -> None:
    amount = 1000 * (end - start).days  # 1,000 won a day
    assert prorata_refund(amount, start, end, cancelled_on) == refund


def test_prorata_refund_rounds_down_to_the_won_and_refuses_an_empty_period() -> None:
    assert prorata_refund(10000, date(2030, 11, 1), date(2030, 11, 4), date(2030, 11, 1)) == 6666
    with pytest.raises(ValueError):
        prorata_refund(1000, date(2030, 11, 2), date(2030, 11, 2), date(2030, 11, 2))


@given(anchor=st.integers(1, 31), start=days)
def test_monthly_dates_are_one_per_month_on_the_anchor_or_the_last_day(
    anchor: int, start: date
) -> None:
    current = first_charge_date(Cycle.MONTHLY, anchor, start)
    assert current >= start
    for _ in range(14):
        following = next_charge_date(Cycle.MONTHLY, anchor, current)
        months_apart = (following.year - current.year) * 12 + following.month - current.month
        assert months_apart == 1
        last = calendar.monthrange(following.year, following.month)[1]
        assert following.day == min(anchor, last)
        assert period_id(Cycle.MONTHLY, following) != period_id(Cycle.MONTHLY, current)
        current = following


@given(anchor=st.integers(1, 7), start=days)
def test_weekly_dates_are_seven_days_apart_in_distinct_weeks(anchor: int, start: date) -> None:
    current = first_charge_date(Cycle.WEEKLY, anchor, start)
    assert 0 <= (current - start).days < 7 and current.isoweekday() == anchor
    following = next_charge_date(Cycle.WEEKLY, anchor, current)
    assert (following - current).days == 7
    assert period_id(Cycle.WEEKLY, following) != period_id(Cycle.WEEKLY, current)


@given(
    retry=st.lists(st.integers(1, 40), min_size=1, max_size=6, unique=True).map(sorted),
    scheduled=days,
    gap=st.integers(1, 40),
)
def test_dunning_never_reaches_the_next_period(retry: list[int], scheduled: date, gap: int) -> None:
    nxt = scheduled + timedelta(days=gap)
    for failures in range(1, len(retry) + 2):
        when = dunning_date(scheduled, failures, retry, nxt)
        assert when is None or scheduled < when < nxt


@given(
    amount=st.integers(1, 10_000_000),
    start=days,
    length=st.integers(1, 31),
    offset=st.integers(-5, 40),
)
def test_a_prorata_refund_never_exceeds_the_charge_and_shrinks_day_by_day(
    amount: int, start: date, length: int, offset: int
) -> None:
    end, day = start + timedelta(days=length), start + timedelta(offset)
    refund = prorata_refund(amount, start, end, day)
    assert 0 <= refund <= amount
    assert refund >= prorata_refund(amount, start, end, day + timedelta(days=1))
    assert (refund == amount) == (day < start)  # only an unstarted period comes back whole
    if day >= end - timedelta(days=1):
        assert refund == 0


@given(period=st.sampled_from(["2026-12", "2026-W49"]), attempt=st.integers(1, 99))
def test_order_ids_fit_kcps_40_characters(period: str, attempt: int) -> None:
    assert len(order_id_for("sub_" + "f" * 20, period, attempt)) <= 40
