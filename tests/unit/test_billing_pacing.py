"""The billing run's lanes share the merchant's KCP budget with no coordination: each lane calls
only on its own ticks of one clock. Simulated here: every lane on its own timeline (lanes never
wait for each other), calls a little late, work of any length between calls."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from cancelflow.subscriptions.billing import deal
from cancelflow.subscriptions.pacing import Turns, busiest_second


def lane_calls(
    tps: int, lanes: int, lane: int, start: float, work: list[float], late: list[float]
) -> list[float]:
    """When one lane's KCP calls leave: wait for the turn, leave a little late, then work."""
    now = [start]
    turns = Turns(
        tps, lanes, lane, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s)
    )
    sent = []
    for busy, lateness in zip(work, late, strict=True):
        turns.wait()
        sent.append(now[0] + lateness)
        now[0] += lateness + busy
    return sent


def run_lanes(tps: int, lanes: int, calls: int, work: float, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    out: list[float] = []
    for lane in range(lanes):
        out += lane_calls(
            tps,
            lanes,
            lane,
            start=1_700_000_000 + rng.random(),  # lanes start at different moments
            work=[rng.uniform(0, work) for _ in range(calls)],
            late=[rng.uniform(0, 0.045) for _ in range(calls)],  # up to 45 ms late
        )
    return out


@settings(max_examples=60, deadline=None)
@given(
    tps=st.integers(1, 60),
    lanes=st.integers(1, 12),
    work=st.floats(0, 3),
    seed=st.integers(0, 10_000),
)
def test_lanes_together_never_send_more_than_the_budget_in_any_second(
    tps: int, lanes: int, work: float, seed: int
) -> None:
    times = run_lanes(tps, lanes, calls=25, work=work, seed=seed)
    assert busiest_second(times) <= tps


def test_lanes_with_time_to_spare_use_over_90_percent_of_the_budget() -> None:
    tps, lanes = 20, 10  # each lane has 0.5 s per charge; a charge takes up to 0.4 s
    times = sorted(run_lanes(tps, lanes, calls=100, work=0.4))
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert 0.92 * tps <= rate <= 0.95 * tps  # the headroom is the only loss


def test_a_lane_slower_than_its_turns_waits_for_its_next_turn_and_never_crowds_another() -> None:
    tps, lanes = 10, 2  # each lane has 0.2 s per charge; these take up to 1 s
    times = run_lanes(tps, lanes, calls=30, work=1.0)
    assert busiest_second(times) <= tps
    rate = (len(times) - 1) / (max(times) - min(times))
    assert rate < 0.5 * tps  # too few lanes for the budget: the shortfall is visible, not hidden


def test_a_page_is_dealt_into_at_most_max_lanes_of_nearly_equal_size() -> None:
    items = [{"shop_id": "s", "subscription_id": f"sub_{n}"} for n in range(23)]
    lanes = deal(items, 5)
    assert [lane["lane"] for lane in lanes] == [0, 1, 2, 3, 4]
    assert {lane["lanes"] for lane in lanes} == {5}
    assert sorted(len(lane["items"]) for lane in lanes) == [4, 4, 5, 5, 5]
    dealt = [ref for lane in lanes for ref in lane["items"]]
    assert sorted(r["subscription_id"] for r in dealt) == sorted(
        r["subscription_id"] for r in items
    )
    assert [len(lane["items"]) for lane in deal(items[:3], 5)] == [1, 1, 1]
    assert deal([], 5) == []


def test_a_lane_woken_late_for_its_turn_skips_it_rather_than_crowd_the_next_second() -> None:
    """A busy host wakes a sleeping lane late now and then: it gives that tick up."""
    now = [0.0]
    rng = random.Random(7)

    def oversleep(seconds: float) -> None:
        now[0] += seconds + (0.2 if rng.random() < 0.3 else 0.0)  # 200 ms late, 30% of the time

    turns = Turns(10, 1, 0, clock=lambda: now[0], sleep=oversleep)
    sent = []
    for _ in range(200):
        turns.wait()
        sent.append(now[0])
    assert busiest_second(sent) <= 10
