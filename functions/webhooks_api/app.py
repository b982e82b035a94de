"""The webhook endpoints API: thin routes over the webhook use cases (issue 15)."""

from typing import Annotated

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from cancelflow import runtime
from cancelflow.adapters import logs
from cancelflow.http.api import (
    install_problem_handlers,
    json_text,
    refuse_non_json,
    with_request_id,
)
from cancelflow.http.webhook_requests import EndpointIn, EndpointPatch
from cancelflow.http.webhook_views import delivery_view, endpoint_view
from cancelflow.webhooks import service as webhooks

logger = Logger()
app = APIGatewayRestResolver(enable_validation=True)
install_problem_handlers(app, logger)


def shop_id() -> str:
    # Set by the authorizer; API Gateway never lets a request through without it.
    shop: str = app.current_event.request_context.authorizer.get_context()["shop_id"]
    return shop


def _json(status: int, body: dict, headers: dict | None = None) -> Response:
    return Response(status, "application/json", json_text(body), headers=headers)


@app.post("/v1/webhook-endpoints")
def create(body: EndpointIn):
    endpoint = webhooks.create_endpoint(
        runtime.webhook_store(),
        runtime.webhook_poster(),
        runtime.clock,
        shop_id(),
        body.url,
        body.events,
        body.description,
    )
    location = {"Location": f"/v1/webhook-endpoints/{endpoint.endpoint_id}"}
    return _json(201, endpoint_view(endpoint, secret=endpoint.secrets[0].secret), location)


@app.get("/v1/webhook-endpoints")
def list_endpoints():
    found = runtime.webhook_store().shop_endpoints(shop_id())
    return _json(200, {"items": [endpoint_view(e) for e in found]})


@app.get("/v1/webhook-endpoints/<endpoint_id>")
def get(endpoint_id: str):
    return _json(
        200, endpoint_view(webhooks.get_endpoint(runtime.webhook_store(), shop_id(), endpoint_id))
    )


@app.patch("/v1/webhook-endpoints/<endpoint_id>")
def change(endpoint_id: str, body: EndpointPatch):
    endpoint = webhooks.change_endpoint(
        runtime.webhook_store(),
        runtime.webhook_poster(),
        runtime.clock,
        shop_id(),
        endpoint_id,
        body.changes(),
    )
    return _json(200, endpoint_view(endpoint))


@app.delete("/v1/webhook-endpoints/<endpoint_id>")
def delete(endpoint_id: str):
    webhooks.delete_endpoint(runtime.webhook_store(), shop_id(), endpoint_id)
    return Response(204, "application/json", "")


@app.post("/v1/webhook-endpoints/<endpoint_id>/rotate-secret")
def rotate(endpoint_id: str):
    endpoint, secret = webhooks.rotate_secret(
        runtime.webhook_store(), runtime.clock, shop_id(), endpoint_id
    )
    return _json(200, endpoint_view(endpoint, secret=secret))


@app.get("/v1/webhook-endpoints/<endpoint_id>/deliveries")
def deliveries(endpoint_id: str, limit: Annotated[int, Query(ge=1, le=100)] = 50):
    _, found = webhooks.deliveries(runtime.webhook_store(), shop_id(), endpoint_id, limit)
    return _json(200, {"items": [delivery_view(d) for d in found]})


@app.post("/v1/webhook-endpoints/<endpoint_id>/deliveries/<delivery_id>/redeliver")
def redeliver(endpoint_id: str, delivery_id: str):
    delivery = webhooks.redeliver(
        runtime.webhook_store(),
        runtime.webhook_queue(),
        runtime.clock,
        shop_id(),
        endpoint_id,
        delivery_id,
    )
    return _json(202, delivery_view(delivery))


@logs.inject_lambda_context(logger, correlation_id_path="requestContext.requestId")
def handler(event: dict, context: LambdaContext) -> dict:
    return with_request_id(event, refuse_non_json(event) or app.resolve(event, context))
