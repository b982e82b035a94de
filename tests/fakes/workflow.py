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


@dataclass
class WaitingExecutions:
    """The ReviewWaits: executions waiting on task tokens; a token is used once."""

    waiting: set[str] = field(default_factory=set)
    results: dict[str, dict] = field(default_factory=dict)  # token -> the output handed over
    heartbeats: list[str] = field(default_factory=list)
    redriven: list[str] = field(default_factory=list)
    redrivable: bool = True

    def succeed(self, token: str, output: dict) -> bool:
        if token not in self.waiting:
            return False
        self.waiting.discard(token)
        self.results[token] = output
        return True

    def heartbeat(self, token: str) -> bool:
        self.heartbeats.append(token)
        return token in self.waiting

    def redrive(self, execution_id: str) -> bool:
        if self.redrivable:
            self.redriven.append(execution_id)
        return self.redrivable
