"""The cancellation batches API: thin routes over the bulk cancel use cases (issue 16)."""

from typing import Annotated

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Header, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from cancelflow import runtime
from cancelflow.adapters import logs
from cancelflow.batches import service as batches
from cancelflow.batches.model import ItemStatus
from cancelflow.http import responses as out
from cancelflow.http.api import (
    answers,
    content_type,
    install_problem_handlers,
    resolver,
    with_request_id,
)
from cancelflow.http.batch_requests import BatchIn
from cancelflow.http.batch_views import batch_view, item_view
from cancelflow.kernel.errors import Problem

logger = Logger()
app = resolver()
install_problem_handlers(app, logger)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Any unique string; a retry with the same key answers the same batch and "
        "never cancels a payment twice",
    ),
]
TAGS = ["cancellation batches"]
NOT_FOUND = "BATCH_NOT_FOUND"
CSV = "text/csv"
NOT_SUCCEEDED_SHOWN = 20
# The body is read here (JSON or a CSV upload), then checked by BatchIn either way.
BATCH_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/BatchIn"}},
        CSV: {
            "schema": {
                "type": "string",
                "description": "A header row naming tno, reason_code and optionally amount "
                "(empty: everything left) and reason; one row per payment (UTF-8)",
            },
            "example": "tno,amount,reason_code,reason\n20261203123456,,DEFECTIVE,리콜\n"
            "20261203123457,5000,DEFECTIVE,\n",
        },
    },
}


def shop_id() -> str:
    # Set by the authorizer; API Gateway never lets a request through without it.
    shop: str = app.current_event.request_context.authorizer.get_context()["shop_id"]
    return shop


def _body() -> BatchIn:
    event = app.current_event
    kind, text = content_type(event.get("headers")), event.decoded_body or ""
    if not text:
        raise Problem(
            "VALIDATION_FAILED", "body: required", errors=[{"field": "body", "message": "required"}]
        )
    if kind == CSV:
        doc: object = {"items": batches.read_csv(text)}
    elif kind == "application/json":
        import json

        try:
            doc = json.loads(text)
        except ValueError as error:
            raise Problem("MALFORMED_JSON") from error
    else:
        raise Problem(
            "UNSUPPORTED_MEDIA_TYPE",
            f"Content-Type {kind or '(none)'}: send application/json or text/csv.",
        )
    try:
        return BatchIn.model_validate(doc)
    except ValidationError as error:
        details = [
            {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
            for e in error.errors()[:20]
        ]
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
        raise Problem("VALIDATION_FAILED", summary, errors=details) from error


@app.post(
    "/v1/cancellation-batches",
    operation_id="createCancellationBatch",
    summary="Cancel many payments at once",
    description="Up to 10,000 payments of the shop, as JSON or a CSV upload. Each becomes an "
    "ordinary cancellation requested by the shop (the same eligibility, records, emails and "
    "webhooks), sent to KCP within the TPS budget; one batch of a shop runs at a time. "
    "Answered 202 at once: follow the batch with GET. The Idempotency-Key makes a retry safe: "
    "the same key and body answer 200 with the same batch.",
    tags=TAGS,
    openapi_extensions={"requestBody": BATCH_BODY},
    responses=answers(
        {202: "Accepted: the batch runs", 200: "Accepted before with this key"},
        "IDEMPOTENCY_KEY_REQUIRED",
        "IDEMPOTENCY_KEY_REUSED",
        "BATCH_DUPLICATE_TNO",
        body=True,
        headers={202: {"Location": "Where to follow it"}, 200: {"Location": "Where to follow it"}},
    ),
)
def create(idempotency_key: IdempotencyKey = None) -> Response[out.Batch]:
    body = _body()
    items, tps = [item.to_domain() for item in body.items], body.tps
    del body  # up to 10,000 validated models: not held while the items are written
    batch, created = batches.accept_batch(
        runtime.batches(),
        runtime.batch_starter(),
        runtime.clock,
        shop_id(),
        items,
        idempotency_key or "",
        allowance=runtime.batch_tps(),
        tps=tps,
    )
    location = {"Location": f"/v1/cancellation-batches/{batch.batch_id}"}
    return Response(202 if created else 200, "application/json", batch_view(batch), location)


@app.get(
    "/v1/cancellation-batches/<batch_id>",
    operation_id="getCancellationBatch",
    summary="Follow a cancellation batch",
    description="Counts by item status, progress, and the first items that did not succeed "
    "with why.",
    tags=TAGS,
    responses=answers({200: "The batch"}, NOT_FOUND),
)
def get(batch_id: str) -> out.Batch:
    store = runtime.batches()
    batch = batches.get_batch(store, shop_id(), batch_id)
    failed = batches.failed_items(store, shop_id(), batch, NOT_SUCCEEDED_SHOWN)
    return batch_view(batch, failed)


@app.get(
    "/v1/cancellation-batches/<batch_id>/items",
    operation_id="listCancellationBatchItems",
    summary="List a batch's items",
    description="By position, optionally one status; each with its cancellation once it has "
    "one. Follow next_cursor for more.",
    tags=TAGS,
    responses=answers({200: "A page of items"}, NOT_FOUND, "INVALID_CURSOR"),
)
def items(
    batch_id: str,
    status: Annotated[ItemStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> out.BatchItemPage:
    found, next_cursor = batches.list_items(
        runtime.batches(), shop_id(), batch_id, status, limit, cursor, runtime.cursor_key()
    )
    return out.BatchItemPage(items=[item_view(i) for i in found], next_cursor=next_cursor)


@app.post(
    "/v1/cancellation-batches/<batch_id>/cancel",
    operation_id="cancelCancellationBatch",
    summary="Stop a cancellation batch",
    description="Items not yet started are skipped; an item already started (perhaps sent to "
    "KCP) runs to its end, so nothing sent is lost. Stopping a stopped batch changes nothing.",
    tags=TAGS,
    responses=answers({200: "Stopping, or stopped"}, NOT_FOUND, "BATCH_ENDED"),
)
def cancel(batch_id: str) -> out.Batch:
    store = runtime.batches()
    batch = batches.cancel_batch(store, runtime.clock, shop_id(), batch_id)
    return batch_view(batch, batches.failed_items(store, shop_id(), batch, NOT_SUCCEEDED_SHOWN))


@logs.inject_lambda_context(logger, correlation_id_path="requestContext.requestId")
def handler(event: dict, context: LambdaContext) -> dict:
    return with_request_id(event, app.resolve(event, context))
