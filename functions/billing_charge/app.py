"""Billing run step: charge one lane's due subscriptions, each once for its period, each KCP call
on the lane's own turn of the merchant's TPS budget (or resend the lane's unknown charges)."""

from datetime import date
from functools import cache
from typing import Any, NotRequired, TypedDict

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from cancelflow import runtime
from cancelflow.adapters import logs
from cancelflow.subscriptions import billing as run

logger = Logger()


class LaneEvent(TypedDict):
    """One lane of a page (statemachine/subscription_billing.asl.json): its due subscriptions,
    and on a resend the lane's tries, counts and charges so far."""

    lane: int
    lanes: int
    items: list[run.Ref]
    billing_date: str
    config: dict[str, Any]
    tries: NotRequired[int]
    counts: NotRequired[dict[str, int] | None]
    charges: NotRequired[list[dict[str, Any]] | None]
    execution_id: NotRequired[str]


@logs.inject_lambda_context(logger, correlation_id_path="execution_id")
def handler(event: LaneEvent, context: LambdaContext) -> dict:
    deps_for = cache(runtime.charge_deps)  # per invocation: a shop's policy may change
    out = run.charge_lane(
        deps_for,
        date.fromisoformat(event["billing_date"]),
        event["config"],
        int(event["lane"]),
        int(event["lanes"]),
        event["items"],
        int(event.get("tries", 0)),
        {"counts": event.get("counts"), "charges": event.get("charges")},
        lambda: context.get_remaining_time_in_millis() / 1000,
    )
    logger.info("lane", extra={"lane": event["lane"], "again": len(out["again"])})
    return out
