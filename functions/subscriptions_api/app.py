"""The subscriptions API: thin routes over the billing use cases (issue 6)."""

from datetime import date
from typing import Annotated

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Header, Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from cancelflow import runtime
from cancelflow.adapters import logs
from cancelflow.http.api import (
    install_problem_handlers,
    json_text,
    refuse_non_json,
    with_request_id,
)
from cancelflow.http.subscription_requests import BatchKeyIn, CancelSubscriptionIn, SubscriptionIn
from cancelflow.http.subscription_views import charge_view, subscription_view
from cancelflow.subscriptions import service as subscriptions
from cancelflow.subscriptions.model import Status

logger = Logger()
app = APIGatewayRestResolver(enable_validation=True)
install_problem_handlers(app, logger)

IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)
]


def shop_id() -> str:
    # Set by the authorizer; API Gateway never lets a request through without it.
    shop: str = app.current_event.request_context.authorizer.get_context()["shop_id"]
    return shop


def _json(status: int, body: dict, headers: dict | None = None) -> Response:
    return Response(status, "application/json", json_text(body), headers=headers)


@app.post("/v1/subscriptions")
def create(body: SubscriptionIn, idempotency_key: IdempotencyKey = None):
    sub, created = subscriptions.create(
        runtime.billing_store(),
        runtime.batch_keys(),
        runtime.clock,
        shop_id(),
        body.to_domain(),
        idempotency_key or "",
    )
    location = {"Location": f"/v1/subscriptions/{sub.subscription_id}"}
    return _json(201 if created else 200, subscription_view(sub), location)


@app.get("/v1/subscriptions")
def list_subscriptions(
    status: Annotated[Status | None, Query()] = None,
    next_charge_from: Annotated[date | None, Query()] = None,
    next_charge_to: Annotated[date | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
):
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
    return _json(200, {"items": [subscription_view(s) for s in found], "cursor": next_cursor})


@app.get("/v1/subscriptions/<subscription_id>")
def get(subscription_id: str):
    sub = subscriptions.get(runtime.billing_store(), shop_id(), subscription_id)
    return _json(200, subscription_view(sub))


@app.post("/v1/subscriptions/<subscription_id>/pause")
def pause(subscription_id: str):
    sub = subscriptions.pause(runtime.billing_store(), runtime.clock, shop_id(), subscription_id)
    return _json(200, subscription_view(sub))


@app.post("/v1/subscriptions/<subscription_id>/resume")
def resume(subscription_id: str):
    sub = subscriptions.resume(runtime.billing_store(), runtime.clock, shop_id(), subscription_id)
    return _json(200, subscription_view(sub))


@app.put("/v1/subscriptions/<subscription_id>/batch-key")
def replace_card(subscription_id: str, body: BatchKeyIn):
    sub = subscriptions.replace_card(
        runtime.billing_store(),
        runtime.batch_keys(),
        runtime.clock,
        shop_id(),
        subscription_id,
        body.batch_key,
    )
    return _json(200, subscription_view(sub))


@app.post("/v1/subscriptions/<subscription_id>/cancel")
def cancel(subscription_id: str, body: CancelSubscriptionIn):
    refund = subscriptions.refund_through_cancel_workflow(
        runtime.store(), runtime.starter(), runtime.clock
    )
    sub = subscriptions.cancel(
        runtime.billing_store(), refund, runtime.clock, shop_id(), subscription_id, body.when
    )
    return _json(200, subscription_view(sub))


@app.get("/v1/subscriptions/<subscription_id>/charges")
def charges(subscription_id: str):
    found = subscriptions.charges(runtime.billing_store(), shop_id(), subscription_id)
    return _json(200, {"items": [charge_view(c) for c in found]})


@logs.inject_lambda_context(logger, correlation_id_path="requestContext.requestId")
def handler(event: dict, context: LambdaContext) -> dict:
    return with_request_id(event, refuse_non_json(event) or app.resolve(event, context))
