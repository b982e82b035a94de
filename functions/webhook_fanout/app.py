"""The Ledger's stream (event items only, by the mapping's filter) -> one queued delivery per
endpoint that wants the event. The resource is rendered here, once, as the API shows it."""

from typing import Any

from aws_lambda_powertools import Logger

from cancelflow import runtime
from cancelflow.adapters.dynamodb.table import event_from, unmarshal
from cancelflow.kernel.events import Event
from cancelflow.webhooks import service as webhooks

logger = Logger()


def render(event: Event) -> dict[str, Any]:
    """The resource as GET returns it now (seconds after the change; the event's own `change`
    keeps what this change was, whatever came after)."""
    # Here, not at module level: the views build every pydantic response model (~120 ms), and
    # only an event some endpoint wants is rendered.
    from cancelflow.http.views import cancellation_view, payment_view

    store = runtime.webhook_store()
    kind = event.type.split(".")[0]
    if kind == "cancellation":
        found = store.get_cancellation(event.shop_id, event.resource)
        return cancellation_view(found, found.execution_id).model_dump(mode="json") if found else {}
    if kind == "payment":
        payment = store.get_payment(event.shop_id, event.resource)
        return payment_view(payment).model_dump(mode="json") if payment else {}
    if kind == "subscription":
        from cancelflow.http.subscription_views import subscription_view

        sub = runtime.billing_store().get(event.shop_id, event.resource)
        return subscription_view(sub).model_dump(mode="json") if sub else {}
    return {}


@logger.inject_lambda_context
def handler(event: dict, context: object) -> dict:
    failures = []
    for record in event.get("Records", []):
        try:
            recorded = event_from(unmarshal(record["dynamodb"]["NewImage"]))
            queued = webhooks.fan_out(
                runtime.webhook_store(), runtime.webhook_queue(), runtime.clock, recorded, render
            )
            logger.info("fanned out", event_id=recorded.event_id, type=recorded.type, queued=queued)
        except Exception:
            logger.exception("fan-out failed; the stream retries it")
            failures.append({"itemIdentifier": record["dynamodb"]["SequenceNumber"]})
            break  # a stream's records stay in order: retry from the first that failed
    return {"batchItemFailures": failures}
