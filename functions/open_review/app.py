"""Workflow step (waitForTaskToken): open the review of a cancel KCP never told the fate of.

The execution then waits at AwaitOperatorReview until an operator's decision or the sweep's
proof completes its token (cancelflow.cancellations.review)."""

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from cancelflow import runtime
from cancelflow.adapters import logs
from cancelflow.cancellations import review
from cancelflow.cancellations.emails import outcome_emails
from cancelflow.cancellations.steps import received

logger = Logger()
metrics = Metrics(namespace="cancelflow")


@metrics.log_metrics
@logs.inject_lambda_context(logger, correlation_id_path="execution_id")
def handler(event: dict, context: LambdaContext) -> dict:
    # The step that sent it here (caught as a route), or the verdict itself from an older input.
    verdict = event.get("verdict") or received(event.get("step") or {}).get("verdict") or {}
    store = runtime.store()
    opened = review.open_review(
        store,
        runtime.review_waits(),
        runtime.clock,
        event["shop_id"],
        event["cancellation_id"],
        event["token"],
        dict(verdict),
        execution_id=event.get("execution_id", ""),
    )
    if opened["opened"]:  # customer and shop hear "we are checking" once
        shop = runtime.shop(event["shop_id"])
        cancellation = store.get_cancellation(shop.shop_id, event["cancellation_id"])
        payment = store.get_payment(shop.shop_id, cancellation.tno) if cancellation else None
        if cancellation and payment:
            language = store.get_policy(shop.shop_id).email_language
            for email in outcome_emails(shop, payment, cancellation, language):
                runtime.mailer().send(email)
        # NEEDS_REVIEW has an alarm in the template (the settle step counted it before).
        metrics.add_metric(name="CancellationsNeedsReview", unit=MetricUnit.Count, value=1)
    logger.info("review", extra=opened)
    return opened
