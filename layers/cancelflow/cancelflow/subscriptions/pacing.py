"""The merchant's KCP budget (transactions per second) as a clock that lanes take turns on.

Time is cut into ticks of 1 / rate seconds on the wall clock (Lambda hosts keep it in sync to
within milliseconds), and tick n belongs to lane n % lanes. A lane sends a KCP call only at the
start of one of its own ticks, at most one call per tick, and never in a tick that has begun:
so the lanes of a run, with no shared counter and no coordination, never send more than one call
per tick between them. A lane that is busy when its tick comes simply waits for its next one.

The ticks run a little slower than the budget (HEADROOM): a call that reaches KCP some
milliseconds after its tick (signing, scheduling, a new TLS connection) must not share a
one-second window with the call `rate` ticks later. A tick train at h x TPS absorbs up to
1/h - 1 seconds of such lateness; a lane that wakes too late for its tick skips it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

HEADROOM = 0.95  # of the budget the ticks use: room for 50 ms of lateness at any rate
# A lane woken later than this after its tick began (a busy host) gives that tick up and waits
# for its next one: a call leaving that late could share a second with `rate` calls after it.
OVERSLEPT = 0.02


def next_tick(now: float, rate: float, lane: int, lanes: int, after: int | None = None) -> int:
    """The first tick of `lane` that starts at or after `now` (seconds) and after tick `after`."""
    if not 0 <= lane < lanes:
        raise ValueError("lane must be in 0..lanes-1")
    tick = math.ceil(now * rate)
    tick += (lane - tick) % lanes
    if after is not None and tick <= after:
        tick = after + lanes * math.ceil((after + 1 - tick) / lanes)
    return tick


class Turns:
    """One lane's turns at KCP: `wait()` returns at the start of the lane's next tick."""

    def __init__(
        self,
        tps: float,
        lanes: int,
        lane: int,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if tps <= 0 or lanes < 1:
            raise ValueError("tps must be > 0 and lanes >= 1")
        self.rate = tps * HEADROOM
        self.lanes = lanes
        self.lane = lane
        self._clock = clock
        self._sleep = sleep
        self._last: int | None = None

    def wait(self) -> None:
        while True:
            now = self._clock()
            tick = next_tick(now, self.rate, self.lane, self.lanes, self._last)
            start = tick / self.rate
            if start > now:
                self._sleep(start - now)
            self._last = tick
            if self._clock() - start <= OVERSLEPT:
                return


def busiest_second(times: Iterable[float]) -> int:
    """How many of these call times fall in the busiest one second: what a TPS limit counts."""
    ordered = sorted(times)
    most, first = 0, 0
    for i, t in enumerate(ordered):
        while ordered[first] <= t - 1.0:
            first += 1
        most = max(most, i - first + 1)
    return most
