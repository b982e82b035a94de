"""The billing run's steps that need no AWS: a lane's time budget, the summary, the settings."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from cancelflow.subscriptions.billing import (
    LANE_RESERVE_SECONDS,
    ChargeDeps,
    RunSettings,
    begin_run,
    charge_lane,
    tally,
)

DEFAULTS = RunSettings(
    max_concurrency=10,
    tps=20,
    retry_days=(1, 3, 7),
    reconcile_wait_seconds=5,
    reconcile_max_tries=3,
    page_size=500,
    days_back=7,
)


class FixedClock:
    def now(self) -> datetime:
        return datetime(2032, 3, 14, 16, 0, tzinfo=UTC)  # 2032-03-15 01:00 in Korea


class FreeLease:
    def take_run_lease(self, execution_id: str, at: datetime, still_running: object) -> None:
        return None


def no_shop(shop_id: str) -> ChargeDeps:
    raise LookupError(f"shop {shop_id} not found")


def test_a_lane_short_of_time_hands_what_it_did_not_start_to_its_next_invocation() -> None:
    items = [{"shop_id": "gone", "subscription_id": f"sub_{n}"} for n in range(5)]
    left = iter([300.0, 200.0, LANE_RESERVE_SECONDS - 1])  # seconds before the timeout

    out = charge_lane(
        no_shop, date(2032, 3, 15), {"tps": 20}, 0, 1, items, time_left=lambda: next(left)
    )

    assert out["counts"]["failed"] == 3  # these were started (and failed: no such shop)
    assert out["again"] == items[3:] and out["more"] is True
    assert out["charges"] == [f"sub_{n} FAILED LookupError" for n in range(3)]


def test_a_lane_adds_to_what_its_earlier_passes_did() -> None:
    earlier = {"counts": {"charged": 4}, "charges": ["sub_a-2032-03-1 CHARGED 20320315000001"]}
    items = [{"shop_id": "gone", "subscription_id": "sub_b"}]

    out = charge_lane(no_shop, date(2032, 3, 15), {"tps": 20}, 0, 1, items, tries=1, done=earlier)

    assert (out["counts"]["charged"], out["counts"]["failed"], out["tries"]) == (4, 1, 2)
    assert out["charges"] == earlier["charges"] + ["sub_b FAILED LookupError"]
    assert out["again"] == [] and out["more"] is False


def test_the_summary_adds_lane_counts_and_counts_a_failed_lanes_unfinished_as_failed() -> None:
    summary = {"billing_date": "2032-03-15"} | dict.fromkeys(
        ("charged", "declined", "suspended", "skipped", "unknown", "failed"), 0
    )
    lanes = [
        {"lane": 0, "counts": {"charged": 3, "declined": 1}},
        {"lane": 1, "counts": {"charged": 2}, "unfinished": [{"subscription_id": "x"}] * 2},
    ]
    out = tally(summary, lanes)
    assert (out["charged"], out["declined"], out["failed"]) == (5, 1, 2)


def test_a_run_bills_today_in_korea_and_may_go_slower_than_the_allowance_but_not_faster() -> None:
    run = begin_run(FixedClock(), {"config": {"tps": 5}}, DEFAULTS, FreeLease(), "x", bool)
    assert run["billing_date"] == "2032-03-15" and run["config"]["tps"] == 5
    assert run["busy"] is False
    with pytest.raises(ValueError, match="may not exceed BillingKcpTps"):
        begin_run(FixedClock(), {"config": {"tps": 21}}, DEFAULTS, FreeLease(), "x", bool)
    with pytest.raises(ValueError, match="billing_date"):
        begin_run(FixedClock(), {"billing_date": "15/03/2032"}, DEFAULTS, FreeLease(), "x", bool)


def test_a_page_never_takes_a_lane_longer_than_its_time_or_a_state_beyond_its_size() -> None:
    slow = begin_run(
        FixedClock(),
        {"config": {"tps": 1, "max_concurrency": 1, "page_size": 5000}},
        DEFAULTS,
        FreeLease(),
        "x",
        bool,
    )
    assert slow["config"]["page_size"] == 400  # one lane holds at most 400 (256 KB of state)
    fast = begin_run(
        FixedClock(), {"config": {"page_size": 5000}}, DEFAULTS, FreeLease(), "x", bool
    )
    assert fast["config"]["page_size"] == 1000
