"""What a subscription charge adds to the failure-case report (cancellations/failures.py)."""

from __future__ import annotations

from cancelflow.cancellations.failures import FailureKind, FailureMark
from cancelflow.subscriptions.model import Charge, ChargeStatus


def marks_of(charge: Charge) -> tuple[FailureMark, ...]:
    """A charge recorded DECLINED counts once under KCP's code (the charge's record is written
    only from an open status, in the same transaction: a retried record counts nothing)."""
    if charge.status is not ChargeStatus.DECLINED:
        return ()
    mark = FailureMark(
        shop_id=charge.shop_id,
        kind=FailureKind.CHARGE_DECLINED,
        kcp_code=charge.res_cd,
        reason_code="",
        at=charge.updated_at,
        example=charge.order_id,  # ordr_idxx: the subscription id, period and attempt
        res_msg=charge.res_msg,
    )
    return (mark,)
