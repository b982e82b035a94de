"""The webhook endpoints API: thin routes over the webhook use cases (issue 15)."""

from typing import Annotated

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from cancelflow import runtime
from cancelflow.adapters import logs
from cancelflow.http import responses as out
from cancelflow.http.api import (
    answers,
    install_problem_handlers,
    refuse_non_json,
    resolver,
    with_request_id,
)
from cancelflow.http.webhook_requests import EndpointIn, EndpointPatch
from cancelflow.http.webhook_views import delivery_view, endpoint_view
from cancelflow.webhooks import service as webhooks

logger = Logger()
app = resolver()
install_problem_handlers(app, logger)

TAGS = ["webhooks"]
NOT_FOUND = "WEBHOOK_ENDPOINT_NOT_FOUND"


def shop_id() -> str:
    # Set by the authorizer; API Gateway never lets a request through without it.
    shop: str = app.current_event.request_context.authorizer.get_context()["shop_id"]
    return shop


@app.post(
    "/v1/webhook-endpoints",
    operation_id="createWebhookEndpoint",
    summary="Register a webhook endpoint",
    description="POST the shop's events to this HTTPS URL, signed per Standard Webhooks. The "
    "answer carries the signing secret (whsec_…) once: store it to verify deliveries.",
    tags=TAGS,
    responses=answers(
        {201: "Registered"},
        "WEBHOOK_URL_REFUSED",
        "WEBHOOK_EVENT_UNKNOWN",
        "WEBHOOK_ENDPOINT_LIMIT",
        body=True,
        headers={201: {"Location": "Where to read it"}},
    ),
)
def create(body: EndpointIn) -> Response[out.WebhookEndpoint]:
    endpoint = webhooks.create_endpoint(
        runtime.webhook_store(),
        runtime.webhook_poster(),
        runtime.clock,
        shop_id(),
        body.url,
        body.events,
        body.description,
    )
    view = endpoint_view(endpoint, secret=endpoint.secrets[0].secret)
    location = {"Location": f"/v1/webhook-endpoints/{endpoint.endpoint_id}"}
    return Response(201, "application/json", view, location)


@app.get(
    "/v1/webhook-endpoints",
    operation_id="listWebhookEndpoints",
    summary="List webhook endpoints",
    description="Every endpoint of the shop (one page; secrets are never shown here).",
    tags=TAGS,
    responses=answers({200: "The endpoints"}),
)
def list_endpoints() -> out.WebhookEndpointPage:
    found = runtime.webhook_store().shop_endpoints(shop_id())
    return out.WebhookEndpointPage(items=[endpoint_view(e) for e in found], next_cursor=None)


@app.get(
    "/v1/webhook-endpoints/<endpoint_id>",
    operation_id="getWebhookEndpoint",
    summary="Read a webhook endpoint",
    description="The endpoint, whether it is enabled, and since when it has been failing.",
    tags=TAGS,
    responses=answers({200: "The endpoint"}, NOT_FOUND),
)
def get(endpoint_id: str) -> out.WebhookEndpoint:
    return endpoint_view(webhooks.get_endpoint(runtime.webhook_store(), shop_id(), endpoint_id))


@app.patch(
    "/v1/webhook-endpoints/<endpoint_id>",
    operation_id="changeWebhookEndpoint",
    summary="Change, enable or disable a webhook endpoint",
    description="Change its URL, events or description, or enable or disable it "
    "(`enabled`); what is not named stays as it is.",
    tags=TAGS,
    responses=answers(
        {200: "Changed"}, NOT_FOUND, "WEBHOOK_URL_REFUSED", "WEBHOOK_EVENT_UNKNOWN", body=True
    ),
)
def change(endpoint_id: str, body: EndpointPatch) -> out.WebhookEndpoint:
    endpoint = webhooks.change_endpoint(
        runtime.webhook_store(),
        runtime.webhook_poster(),
        runtime.clock,
        shop_id(),
        endpoint_id,
        body.changes(),
    )
    return endpoint_view(endpoint)


@app.delete(
    "/v1/webhook-endpoints/<endpoint_id>",
    operation_id="deleteWebhookEndpoint",
    summary="Delete a webhook endpoint",
    description="Nothing more is sent to it; deliveries on their way are skipped.",
    tags=TAGS,
    responses=answers({204: "Deleted"}, NOT_FOUND),
)
def delete(endpoint_id: str) -> Response[None]:
    webhooks.delete_endpoint(runtime.webhook_store(), shop_id(), endpoint_id)
    return Response(204, "application/json", None)


@app.post(
    "/v1/webhook-endpoints/<endpoint_id>/rotate-secret",
    operation_id="rotateWebhookSecret",
    summary="Rotate an endpoint's signing secret",
    description="A new secret, shown once; the previous one goes on signing beside it for a "
    "grace period (`secrets_in_grace`), so a receiver can switch without missing a delivery.",
    tags=TAGS,
    responses=answers({200: "Rotated: the new secret"}, NOT_FOUND),
)
def rotate(endpoint_id: str) -> out.WebhookEndpoint:
    endpoint, secret = webhooks.rotate_secret(
        runtime.webhook_store(), runtime.clock, shop_id(), endpoint_id
    )
    return endpoint_view(endpoint, secret=secret)


@app.get(
    "/v1/webhook-endpoints/<endpoint_id>/deliveries",
    operation_id="listWebhookDeliveries",
    summary="List an endpoint's deliveries",
    description="Newest first: each event sent to it, its status and every attempt (time, "
    "answer code, latency, a short excerpt of the answer).",
    tags=TAGS,
    responses=answers({200: "The deliveries"}, NOT_FOUND),
)
def deliveries(
    endpoint_id: str, limit: Annotated[int, Query(ge=1, le=100)] = 50
) -> out.WebhookDeliveryPage:
    _, found = webhooks.deliveries(runtime.webhook_store(), shop_id(), endpoint_id, limit)
    return out.WebhookDeliveryPage(items=[delivery_view(d) for d in found], next_cursor=None)


@app.post(
    "/v1/webhook-endpoints/<endpoint_id>/deliveries/<delivery_id>/redeliver",
    operation_id="redeliverWebhook",
    summary="Send one event again",
    description="Queue the delivery (by its dlv_ id or its event's evt_ id) to be sent again "
    "now, signed anew.",
    tags=TAGS,
    responses=answers(
        {202: "Queued"}, NOT_FOUND, "WEBHOOK_DELIVERY_NOT_FOUND", "WEBHOOK_ENDPOINT_DISABLED"
    ),
)
def redeliver(endpoint_id: str, delivery_id: str) -> Response[out.WebhookDelivery]:
    delivery = webhooks.redeliver(
        runtime.webhook_store(),
        runtime.webhook_queue(),
        runtime.clock,
        shop_id(),
        endpoint_id,
        delivery_id,
    )
    return Response(202, "application/json", delivery_view(delivery))


@logs.inject_lambda_context(logger, correlation_id_path="requestContext.requestId")
def handler(event: dict, context: LambdaContext) -> dict:
    return with_request_id(event, refuse_non_json(event) or app.resolve(event, context))
