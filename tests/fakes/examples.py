"""Example payments and cancellations the fake-backed tests start from."""

from __future__ import annotations

from datetime import UTC, datetime

from cancelflow.cancellations.model import Cancellation, CancellationStatus
from cancelflow.kcp.port import PayMethod
from cancelflow.payments.model import Payment

SHOP = "shop_a"
NOW = datetime(2026, 11, 23, 9, 0, 0, 123456, tzinfo=UTC)


def a_payment(tno: str = "20261123000001", amount: int = 30000, shop: str = SHOP) -> Payment:
    return Payment(
        shop_id=shop,
        tno=tno,
        order_id=f"ORD-{tno[-4:]}",
        amount=amount,
        method=PayMethod.CARD,
        product_name="오가닉 티셔츠",
        buyer_email="kim@example.com",
        approved_at=NOW,
        registered_at=NOW,
    )


def a_cancellation(
    cancellation_id: str = "cnl_000000000000000000000001",
    tno: str = "20261123000001",
    amount: int | None = None,
    shop: str = SHOP,
    at: datetime = NOW,
) -> Cancellation:
    return Cancellation(
        shop_id=shop,
        cancellation_id=cancellation_id,
        tno=tno,
        status=CancellationStatus.REQUESTED,
        reason_code="CHANGE_OF_MIND",
        reason="단순 변심",
        created_at=at,
        updated_at=at,
        requested_amount=amount,
        requested_by="SHOP",
    )
