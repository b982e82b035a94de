"""What subscriptions and the billing run need from storage, and from the batch-key vault."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Protocol

from cancelflow.payments.model import Payment
from cancelflow.subscriptions.model import Charge, Subscription


class BillingStore(Protocol):
    def create(self, sub: Subscription) -> Subscription | None:
        """Create it; the existing subscription if the id is taken."""
        ...

    def get(self, shop_id: str, subscription_id: str) -> Subscription | None: ...

    def page(
        self,
        shop_id: str,
        status: str | None,
        date_from: date | None,
        date_to: date | None,
        limit: int,
        position: dict[str, Any] | None,
    ) -> tuple[list[Subscription], dict[str, Any] | None]:
        """A page of the shop's subscriptions, newest first, and where the next one starts.

        Conflict for a position outside this shop's list."""
        ...

    def save(self, before: Subscription, after: Subscription) -> Subscription:
        """Write after if before is still current (version); Conflict otherwise."""
        ...

    def take_run_lease(
        self, execution_id: str, at: datetime, still_running: Callable[[str], bool]
    ) -> str | None:
        """Hold the billing run's lease for this execution. None when held; the holder's id
        when another execution holds it and is still running."""
        ...

    def due_page(
        self, billing_date: date, days_back: int, cursor: dict[str, Any] | None, limit: int
    ) -> tuple[list[dict[str, str]], dict[str, Any] | None]:
        """Due (shop_id, subscription_id) pairs from the sparse due index, by Query only."""
        ...

    def claim(self, sub: Subscription, charge: Charge) -> Charge | None:
        """Journal the attempt before it is sent. None if claimed now (or earlier under the same
        claim_token); the existing charge if another claim holds it; Conflict if the
        subscription changed."""
        ...

    def charges(self, shop_id: str, subscription_id: str) -> list[Charge]: ...

    def link_tno(self, charge: Charge, payment: Payment) -> None:
        """Set a SUCCEEDED charge's tno and create its ledger Payment (each once; a repeat is
        a no-op)."""
        ...

    def record(self, sub: Subscription, charge: Charge, payment: Payment | None = None) -> bool:
        """Write a charge's new state with the subscription's (version-checked), and register the
        approved payment, atomically. False if the charge was settled by someone else;
        Conflict if the subscription changed."""
        ...

    def journal(self, charge: Charge) -> None:
        """Update an open charge (sends, status, KCP's tno once approved) and nothing else."""
        ...


class BatchKeyVault(Protocol):
    def seal(self, shop_id: str, subscription_id: str, batch_key: str) -> str: ...

    def open(self, shop_id: str, subscription_id: str, sealed: str) -> str: ...
