"""Scheduled: keep records true to KCP's balance (cancellations.sweep), within a time budget."""

from collections import Counter
from datetime import datetime, timedelta
from typing import Any, NotRequired, TypedDict

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from cancelflow import runtime
from cancelflow.adapters import logs
from cancelflow.cancellations import review, sweep
from cancelflow.cancellations import service as cancellations

logger = Logger()
metrics = Metrics(namespace="cancelflow")


class SweepEvent(TypedDict):
    """What statemachine/sweep.asl.json passes: where the last call stopped."""

    position: NotRequired[int]
    execution_id: NotRequired[str]


SPARE_MS = 60_000  # stop with this much of the Lambda's time left; the next call goes on


@metrics.log_metrics
@logs.inject_lambda_context(logger, correlation_id_path="execution_id")
def handler(event: SweepEvent, context: LambdaContext) -> dict:
    store = runtime.store()
    since = runtime.clock.now() - timedelta(days=int(runtime.setting("SWEEP_FAILED_DAYS", "30")))
    todo = store.to_sweep(since)
    position, found = int(event.get("position", 0)), Counter[str]()
    while position < len(todo) and context.get_remaining_time_in_millis() > SPARE_MS:
        shop_id, tno = todo[position]
        try:
            found[_sweep_one(store, shop_id, tno, since)] += 1
        except Exception:  # one payment (a throttle, a missing shop) never stops the others
            logger.exception("sweep failed for one payment", extra={"tno": tno, "shop_id": shop_id})
            found["ERROR"] += 1
        position += 1
    # Every open review's wait is kept alive, and the oldest one's age alarmed on.
    oldest = review.keep_alive(store, runtime.review_waits(), runtime.clock)
    metrics.add_metric(name="OldestOpenReviewSeconds", unit=MetricUnit.Seconds, value=oldest or 0)
    metrics.add_metric(name="SweepCorrections", unit=MetricUnit.Count, value=found["CORRECTED"])
    metrics.add_metric(name="SweepMismatches", unit=MetricUnit.Count, value=found["MISMATCH"])
    metrics.add_metric(name="SweepErrors", unit=MetricUnit.Count, value=found["ERROR"])
    metrics.add_metric(name="SweepOpen", unit=MetricUnit.Count, value=found["OPEN"])
    summary = {"position": position, "more": position < len(todo), "found": dict(found)}
    logger.info("sweep", extra=summary)
    return summary


def _sweep_one(store: Any, shop_id: str, tno: str, since: datetime) -> str:
    shop = runtime.shop(shop_id)
    gateway = runtime.gateway_for(shop)
    swept = sweep.sweep_payment(store, gateway, runtime.clock, shop_id, tno, since)
    if swept.finding in (sweep.Finding.CORRECTED, sweep.Finding.MISMATCH):
        logger.warning("swept", extra={"tno": tno, "shop_id": shop_id} | _facts(swept))
    if swept.waiting and swept.corrected is not None:
        verdict = cancellations.settle_with(swept.corrected.status)
        if runtime.review_waits().succeed(swept.waiting, verdict):
            return swept.finding.value  # the waiting execution emails the outcome itself
    if swept.announce and swept.corrected is not None:
        from cancelflow.cancellations.emails import outcome_emails  # rare: a correction found

        payment = store.get_payment(shop_id, tno)
        language = store.get_policy(shop_id).email_language
        for email in outcome_emails(shop, payment, swept.corrected, language):
            runtime.mailer().send(email)
    return swept.finding.value


def _facts(swept: sweep.Swept) -> dict:
    corrected = swept.corrected
    return {
        "finding": swept.finding.value,
        "kcp_balance": swept.kcp_balance,
        "our_balance": swept.our_balance,
        "cancellation_id": corrected.cancellation_id if corrected else None,
        "corrected_from": corrected.corrected_from if corrected else None,
    }
