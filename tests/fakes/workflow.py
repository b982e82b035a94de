"""What the cancel steps need besides a store and a gateway: a clock that moves, a starter."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cancelflow.cancellations.model import Cancellation
from tests.fakes.examples import NOW


@dataclass
class SteppingClock:
    """Each reading is one second after the last: every write is ordered, none equal."""

    at: datetime = NOW

    def now(self) -> datetime:
        self.at += timedelta(seconds=1)
        return self.at


@dataclass
class RecordingStarter:
    """The WorkflowStarter: records starts; Standard workflows start once per name."""

    started: list[str] = field(default_factory=list)
    fail: bool = False

    def start(self, cancellation: Cancellation) -> str:
        if self.fail:
            raise ConnectionError("Step Functions unavailable")
        if cancellation.cancellation_id not in self.started:
            self.started.append(cancellation.cancellation_id)
        return f"exec:{cancellation.cancellation_id}"
