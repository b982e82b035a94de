"""What the failure-case report counts and how it shows it: the domain's rules (which outcome
adds a mark to which group), the merge of days and shards, the period a report may cover."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from cancelflow.cancellations import failures
from cancelflow.cancellations.failures import FailureCount, FailureKind
from cancelflow.cancellations.model import Cancellation, CancellationStatus
from cancelflow.kernel.errors import Problem
from cancelflow.subscriptions import failures as charge_failures
from cancelflow.subscriptions.model import Charge, ChargeStatus

AT = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)  # 2026-12-01 01:00 KST


class FixedClock:
    def now(self) -> datetime:
        return AT


def _cancellation(status: CancellationStatus = CancellationStatus.SENDING) -> Cancellation:
    return Cancellation(
        shop_id="shop-a",
        cancellation_id="cnl_1",
        tno="20261130000001",
        status=status,
        reason_code="OTHER",
        reason="",
        created_at=AT,
        updated_at=AT,
        amount=5000,
    )


def test_a_cancel_kcp_refused_counts_under_kcps_code_on_its_kst_day() -> None:
    sending = _cancellation()
    failed = sending.with_status(
        CancellationStatus.FAILED, reasons=("GATEWAY_DECLINED",), res_cd="8012", res_msg="거부"
    )

    (mark,) = failures.marks_of(sending, failed)

    assert (mark.kind, mark.kcp_code, mark.reason_code) == (
        FailureKind.CANCEL_FAILED,
        "8012",
        "GATEWAY_DECLINED",
    )
    assert mark.day == date(2026, 12, 1)  # KST, not UTC's 30 November
    assert mark.example == "cnl_1"


def test_a_rejection_for_two_reasons_counts_in_both_groups_without_a_kcp_code() -> None:
    requested = _cancellation(CancellationStatus.REQUESTED)
    rejected = requested.with_status(
        CancellationStatus.REJECTED, reasons=("WITHDRAWAL_PERIOD_EXPIRED", "RETURN_REQUIRED")
    )
    marks = failures.marks_of(requested, rejected)
    assert [(m.kind, m.kcp_code, m.reason_code) for m in marks] == [
        (FailureKind.CANCEL_REJECTED, "", "WITHDRAWAL_PERIOD_EXPIRED"),
        (FailureKind.CANCEL_REJECTED, "", "RETURN_REQUIRED"),
    ]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (CancellationStatus.SENDING, CancellationStatus.SUCCEEDED),
        (CancellationStatus.SENDING, CancellationStatus.NEEDS_REVIEW),
        (CancellationStatus.FAILED, CancellationStatus.FAILED),  # a settle run again
        (CancellationStatus.FAILED, CancellationStatus.SUCCEEDED),  # the sweep's correction
    ],
)
def test_successes_open_cases_and_repeats_count_nothing(
    before: CancellationStatus, after: CancellationStatus
) -> None:
    cancellation = _cancellation(before)
    assert failures.marks_of(cancellation, cancellation.with_status(after)) == ()


def test_a_declined_charge_counts_under_kcps_code_with_its_order_id() -> None:
    charge = Charge(
        shop_id="shop-a",
        subscription_id="sub_1",
        period="2026-12",
        attempt=1,
        order_id="sub_1-2026-12-1",
        amount=9900,
        status=ChargeStatus.DECLINED,
        billing_date=date(2026, 12, 1),
        created_at=AT,
        updated_at=AT,
        res_cd="SB11",
        res_msg="잔액 부족",
    )
    (mark,) = charge_failures.marks_of(charge)
    assert (mark.kind, mark.kcp_code, mark.example) == (
        FailureKind.CHARGE_DECLINED,
        "SB11",
        "sub_1-2026-12-1",
    )
    assert charge_failures.marks_of(replace(charge, status=ChargeStatus.SUCCEEDED)) == ()


def _count(kind: FailureKind, code: str, reason: str, day: int, n: int, *ids: str) -> FailureCount:
    seen = datetime(2026, 11, day, 3, tzinfo=UTC)
    examples = tuple((seen + timedelta(minutes=i), x) for i, x in enumerate(ids))
    return FailureCount(
        kind, code, reason, date(2026, 11, day), n, seen, seen + timedelta(hours=1), examples
    )


def test_days_and_shards_merge_per_group_most_frequent_first_with_the_newest_examples() -> None:
    found = [
        _count(FailureKind.CANCEL_FAILED, "8012", "GATEWAY_DECLINED", 2, 3, "a", "b", "c"),
        _count(FailureKind.CANCEL_FAILED, "8012", "GATEWAY_DECLINED", 5, 2, "d", "e"),
        _count(FailureKind.CANCEL_FAILED, "8012", "GATEWAY_DECLINED", 4, 1, "f"),
        _count(FailureKind.CANCEL_REJECTED, "", "AMOUNT_EXCEEDS_BALANCE", 9, 4, "g"),
        _count(FailureKind.CHARGE_DECLINED, "SB11", "", 1, 1, "h"),
    ]

    first, second, third = failures.group(found, "en")

    assert (first.kcp_code, first.count) == ("8012", 6)
    assert first.first_seen == datetime(2026, 11, 2, 3, tzinfo=UTC)
    assert first.last_seen == datetime(2026, 11, 5, 4, tzinfo=UTC)
    assert first.examples == ("e", "d", "f", "c", "b")  # newest first, at most five
    assert first.hint  # KCP's catalogue says what to do
    assert (second.reason_code, second.count, second.hint) == ("AMOUNT_EXCEEDS_BALANCE", 4, "")
    assert second.message == "The amount is more than the payment's cancellable balance."
    assert (third.kind, third.count) == (FailureKind.CHARGE_DECLINED, 1)


def test_an_unknown_kcp_code_shows_kcps_own_words() -> None:
    unknown = replace(
        _count(FailureKind.CANCEL_FAILED, "9999", "GATEWAY_DECLINED", 3, 1, "x"),
        res_msg="기타 오류",
    )
    (group,) = failures.group([unknown], "ko")
    assert group.message == "기타 오류"


def test_the_period_is_the_last_30_kst_days_unless_given_and_at_most_92() -> None:
    clock = FixedClock()
    assert failures.period(None, None, clock) == (date(2026, 11, 2), date(2026, 12, 1))
    assert failures.period(date(2026, 9, 1), date(2026, 11, 30), clock) == (
        date(2026, 9, 1),
        date(2026, 11, 30),
    )
    for since, until in ((date(2026, 8, 30), date(2026, 11, 30)), (date(2026, 12, 2), None)):
        with pytest.raises(Problem) as refused:
            failures.period(since, until, clock)
        assert refused.value.code == "VALIDATION_FAILED"
