"""The subscriptions API: thin routes over the billing use cases (issue 6)."""

from datetime import date
from typing import Annotated

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Header, Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from cancelflow import runtime
from cancelflow.adapters import logs
from cancelflow.http import responses as out
from cancelflow.http.api import (
    answers,
    eligibility_refusals,
    install_problem_handlers,
    refuse_non_json,
    resolver,
    with_request_id,
)
from cancelflow.http.subscription_requests import BatchKeyIn, CancelSubscriptionIn, SubscriptionIn
from cancelflow.http.subscription_views import charge_view, subscription_view
from cancelflow.subscriptions import emails
from cancelflow.subscriptions import service as subscriptions
from cancelflow.subscriptions.model import Status

logger = Logger()
app = resolver()
install_problem_handlers(app, logger)

# Required (local/openapi.py marks it so): the use case refuses a request without one, saying
# why for what it creates.
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Any unique string; a retry with the same key answers the same subscription",
    ),
]
TAGS = ["subscriptions"]
NOT_FOUND = "SUBSCRIPTION_NOT_FOUND"


def shop_id() -> str:
    # Set by the authorizer; API Gateway never lets a request through without it.
    shop: str = app.current_event.request_context.authorizer.get_context()["shop_id"]
    return shop


@app.post(
    "/v1/subscriptions",
    operation_id="createSubscription",
    summary="Create a subscription",
    description="Charge a customer's KCP batch key once per cycle (monthly on anchor_day, or "
    "weekly on an ISO weekday), from first_charge_date on. The Idempotency-Key makes a retry "
    "safe: the same key and body answer 200 with the same subscription.",
    tags=TAGS,
    responses=answers(
        {201: "Created", 200: "Created before with this key"},
        "IDEMPOTENCY_KEY_REQUIRED",
        "IDEMPOTENCY_KEY_REUSED",
        body=True,
        headers={201: {"Location": "Where to read it"}, 200: {"Location": "Where to read it"}},
    ),
)
def create(
    body: SubscriptionIn, idempotency_key: IdempotencyKey = None
) -> Response[out.Subscription]:
    sub, created = subscriptions.create(
        runtime.billing_store(),
        runtime.batch_keys(),
        runtime.clock,
        shop_id(),
        body.to_domain(),
        idempotency_key or "",
    )
    location = {"Location": f"/v1/subscriptions/{sub.subscription_id}"}
    return Response(201 if created else 200, "application/json", subscription_view(sub), location)


@app.get(
    "/v1/subscriptions",
    operation_id="listSubscriptions",
    summary="List the shop's subscriptions",
    description="Filtered by status and the next charge date; follow next_cursor for more.",
    tags=TAGS,
    responses=answers({200: "A page of subscriptions"}, "INVALID_CURSOR"),
)
def list_subscriptions(
    status: Annotated[Status | None, Query()] = None,
    next_charge_from: Annotated[date | None, Query()] = None,
    next_charge_to: Annotated[date | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> out.SubscriptionPage:
    found, next_cursor = subscriptions.list_subscriptions(
        runtime.billing_store(),
        shop_id(),
        status.value if status else None,
        next_charge_from,
        next_charge_to,
        limit,
        cursor,
        key=runtime.cursor_key(),
    )
    return out.SubscriptionPage(
        items=[subscription_view(s) for s in found], next_cursor=next_cursor
    )


@app.get(
    "/v1/subscriptions/<subscription_id>",
    operation_id="getSubscription",
    summary="Read a subscription",
    description="Its status, the next charge, the last paid period and, once cancelled, the "
    "pro-rata refund.",
    tags=TAGS,
    responses=answers({200: "The subscription"}, NOT_FOUND),
)
def get(subscription_id: str) -> out.Subscription:
    return subscription_view(subscriptions.get(runtime.billing_store(), shop_id(), subscription_id))


@app.post(
    "/v1/subscriptions/<subscription_id>/pause",
    operation_id="pauseSubscription",
    summary="Pause a subscription",
    description="No charges until it is resumed; pausing a paused one changes nothing.",
    tags=TAGS,
    responses=answers({200: "Paused"}, NOT_FOUND, "SUBSCRIPTION_STATE_CONFLICT"),
)
def pause(subscription_id: str) -> out.Subscription:
    sub = subscriptions.pause(runtime.billing_store(), runtime.clock, shop_id(), subscription_id)
    return subscription_view(sub)


@app.post(
    "/v1/subscriptions/<subscription_id>/resume",
    operation_id="resumeSubscription",
    summary="Resume a subscription",
    description="A paused or suspended subscription charges again from the next due period; "
    "periods missed meanwhile are not charged.",
    tags=TAGS,
    responses=answers({200: "Active again"}, NOT_FOUND, "SUBSCRIPTION_STATE_CONFLICT"),
)
def resume(subscription_id: str) -> out.Subscription:
    sub = subscriptions.resume(runtime.billing_store(), runtime.clock, shop_id(), subscription_id)
    return subscription_view(sub)


@app.put(
    "/v1/subscriptions/<subscription_id>/batch-key",
    operation_id="replaceCard",
    summary="Replace the customer's card",
    description="A new KCP batch key for the next charges, sealed like the first and shown only "
    "as its last 4 characters. Refused while a charge is in flight: its fate is settled by "
    "resending it to the card it was first sent with.",
    tags=TAGS,
    responses=answers(
        {200: "The subscription, with its new card"},
        NOT_FOUND,
        "SUBSCRIPTION_STATE_CONFLICT",
        body=True,
    ),
)
def replace_card(subscription_id: str, body: BatchKeyIn) -> out.Subscription:
    sub = subscriptions.replace_card(
        runtime.billing_store(),
        runtime.batch_keys(),
        runtime.clock,
        shop_id(),
        subscription_id,
        body.batch_key,
    )
    return subscription_view(sub)


@app.post(
    "/v1/subscriptions/<subscription_id>/cancel",
    operation_id="cancelSubscription",
    summary="Cancel a subscription",
    description="PERIOD_END: the paid period runs out. IMMEDIATELY: the unused days are "
    "refunded pro rata through the cancel workflow (its refusals are answered here).",
    tags=TAGS,
    responses=answers(
        {200: "Cancelled"},
        NOT_FOUND,
        "PAYMENT_NOT_FOUND",
        "REVIEW_PENDING",
        *eligibility_refusals(),
        body=True,
    ),
)
def cancel(subscription_id: str, body: CancelSubscriptionIn) -> out.Subscription:
    refund = subscriptions.refund_through_cancel_workflow(
        runtime.store(), runtime.starter(), runtime.clock
    )
    shop = runtime.shop(shop_id())
    language = runtime.store().get_policy(shop.shop_id).email_language
    notice = emails.cancellation_notice(runtime.mailer(), shop, language)
    sub = subscriptions.cancel(
        runtime.billing_store(),
        refund,
        runtime.clock,
        shop_id(),
        subscription_id,
        body.when,
        notice,
    )
    return subscription_view(sub)


@app.get(
    "/v1/subscriptions/<subscription_id>/charges",
    operation_id="listCharges",
    summary="List a subscription's charges",
    description="Every attempt at charging each period, with KCP's answer (one page).",
    tags=TAGS,
    responses=answers({200: "The charges"}, NOT_FOUND),
)
def charges(subscription_id: str) -> out.ChargePage:
    found = subscriptions.charges(runtime.billing_store(), shop_id(), subscription_id)
    return out.ChargePage(items=[charge_view(c) for c in found], next_cursor=None)


@logs.inject_lambda_context(logger, correlation_id_path="requestContext.requestId")
def handler(event: dict, context: LambdaContext) -> dict:
    return with_request_id(event, refuse_non_json(event) or app.resolve(event, context))
