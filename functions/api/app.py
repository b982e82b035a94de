"""The shop API: thin routes over the payments, cancellations and shop-policy use cases."""

from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from cancelflow import runtime
from cancelflow.adapters import logs
from cancelflow.cancellations import service as cancellations
from cancelflow.cancellations.model import CancellationStatus
from cancelflow.http.api import (
    MERGE_PATCH_BODY,
    cancellation_query,
    history_query,
    install_problem_handlers,
    json_text,
    merge_patch_body,
    refuse_non_json,
    to_cancel_request,
    to_payment,
    with_request_id,
)
from cancelflow.http.requests import CancelIn, FulfillmentIn, PaymentIn, Tno
from cancelflow.http.views import cancellation_list_view, cancellation_view, payment_view
from cancelflow.kcp.port import PayMethod
from cancelflow.kernel.clock import KST
from cancelflow.payments import service as payments
from cancelflow.payments.export import csv_chunks
from cancelflow.payments.model import PaymentStatus
from cancelflow.shops import service as shops
from cancelflow.shops.policy import policy_to_doc

logger = Logger()
app = APIGatewayRestResolver(enable_validation=True)
install_problem_handlers(app, logger)

IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)
]
AcceptLanguage = Annotated[str | None, Header(alias="Accept-Language")]
SinceParam = Annotated[
    str | None, Query(alias="from", description="KST date (2026-11-01) or ISO time with offset")
]
UntilParam = Annotated[
    str | None, Query(alias="to", description="KST date (whole day included) or ISO time")
]

OrderIdParam = Annotated[str | None, Query(max_length=40, description="the shop's order id, exact")]
BuyerParam = Annotated[
    str | None, Query(max_length=254, description="the buyer's email or name, exact")
]


def shop_id() -> str:
    # Set by the authorizer; API Gateway never lets a request through without it.
    shop: str = app.current_event.request_context.authorizer.get_context()["shop_id"]
    return shop


def language(accept: str | None) -> str:
    """Messages in the answer: English when the caller prefers it, else Korean."""
    return "en" if (accept or "").lower().startswith("en") else "ko"


def _json(status: int, body: dict, headers: dict | None = None):
    return Response(status, "application/json", json_text(body), headers=headers)


@app.post("/v1/payments")
def register_payment(body: PaymentIn):
    gateway = runtime.gateway_for(runtime.shop(shop_id()))
    payment, created = payments.register(
        runtime.store(), gateway, runtime.clock, to_payment(shop_id(), body, runtime.clock.now())
    )
    return _json(201 if created else 200, payment_view(payment))


@app.get("/v1/payments")
def payment_history(
    since: SinceParam = None,
    until: UntilParam = None,
    min_amount: Annotated[int | None, Query(ge=0)] = None,
    max_amount: Annotated[int | None, Query(ge=0)] = None,
    product: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[PaymentStatus | None, Query()] = None,
    method: Annotated[PayMethod | None, Query()] = None,
    order_id: OrderIdParam = None,
    buyer: BuyerParam = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
):
    query = history_query(
        since, until, min_amount, max_amount, product, status, method, limit, order_id, buyer
    )
    page, next_cursor = payments.history(
        runtime.store(), shop_id(), query, cursor, runtime.cursor_key()
    )
    if page.unreadable:  # left out of the page, never a 500 for the whole history
        logger.warning("unreadable records left out", extra={"unreadable": page.unreadable})
    body = {"payments": [payment_view(p) for p in page.payments], "next_cursor": next_cursor}
    return _json(200, body)


@app.get("/v1/payments/export")
def export_payments(
    since: SinceParam = None,
    until: UntilParam = None,
    min_amount: Annotated[int | None, Query(ge=0)] = None,
    max_amount: Annotated[int | None, Query(ge=0)] = None,
    product: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[PaymentStatus | None, Query()] = None,
    method: Annotated[PayMethod | None, Query()] = None,
    order_id: OrderIdParam = None,
    buyer: BuyerParam = None,
    accept_language: AcceptLanguage = None,
):
    query = history_query(
        since, until, min_amount, max_amount, product, status, method, 100, order_id, buyer
    )
    rows = payments.export(runtime.store(), shop_id(), query)
    name = f"payments-{runtime.clock.now().astimezone(KST):%Y%m%d-%H%M%S}.csv"
    url = runtime.exporter().upload(shop_id(), name, csv_chunks(rows, language(accept_language)))
    # See Other: `curl -L` (or a browser) follows it to the file.
    return _json(303, {"url": url, "file": name}, {"Location": url})


def _cancellations_of(tno: str, accept_language: str | None) -> tuple[dict, list[dict]]:
    store = runtime.store()
    payment = payments.get(store, shop_id(), tno)
    lang, starter = language(accept_language), runtime.starter()
    views = [
        cancellation_view(c, starter.execution_arn(c.cancellation_id), lang)
        for c in store.payment_cancellations(payment.shop_id, tno)
    ]
    return payment_view(payment), views


@app.get("/v1/payments/<tno>")
def payment_detail(tno: Annotated[Tno, Path()], accept_language: AcceptLanguage = None):
    payment, cancellations_ = _cancellations_of(tno, accept_language)
    return _json(200, payment | {"cancellations": cancellations_})


@app.get("/v1/payments/<tno>/cancellations")
def payment_cancellations(tno: Annotated[Tno, Path()], accept_language: AcceptLanguage = None):
    _, cancellations_ = _cancellations_of(tno, accept_language)
    return _json(200, {"cancellations": cancellations_})


@app.patch("/v1/payments/<tno>/fulfillment")
def update_fulfillment(tno: Annotated[Tno, Path()], body: FulfillmentIn):
    payment = payments.update_fulfillment(
        runtime.store(), runtime.clock, shop_id(), tno, body.status, body.at
    )
    return _json(200, payment_view(payment))


@app.post("/v1/payments/<tno>/cancellations")
def request_cancellation(
    tno: Annotated[Tno, Path()],
    body: CancelIn,
    idempotency_key: IdempotencyKey = None,
    accept_language: AcceptLanguage = None,
):
    cancellation, _ = cancellations.request_cancellation(
        runtime.store(),
        runtime.starter(),
        runtime.clock,
        shop_id(),
        tno,
        to_cancel_request(body),
        idempotency_key or "",
    )
    execution = runtime.starter().execution_arn(cancellation.cancellation_id)
    view = cancellation_view(cancellation, execution, language(accept_language))
    return _json(202, view, {"Location": f"/v1/cancellations/{cancellation.cancellation_id}"})


@app.get("/v1/cancellations")
def list_cancellations(
    since: SinceParam = None,
    until: UntilParam = None,
    status: Annotated[CancellationStatus | None, Query()] = None,
    tno: Annotated[Tno | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    accept_language: AcceptLanguage = None,
):
    query = cancellation_query(since, until, status, tno, limit)
    page, next_cursor = cancellations.list_cancellations(
        runtime.store(), shop_id(), query, cursor, runtime.cursor_key()
    )
    lang, starter = language(accept_language), runtime.starter()
    found = [
        cancellation_list_view(c, starter.execution_arn(c.cancellation_id), lang)
        for c in page.cancellations
    ]
    return _json(200, {"cancellations": found, "next_cursor": next_cursor})


@app.get("/v1/cancellations/<cancellation_id>")
def get_cancellation(cancellation_id: str, accept_language: AcceptLanguage = None):
    cancellation = cancellations.get_cancellation(runtime.store(), shop_id(), cancellation_id)
    execution = runtime.starter().execution_arn(cancellation_id)
    return _json(200, cancellation_view(cancellation, execution, language(accept_language)))


@app.get("/v1/shop/policy")
def get_policy():
    return _json(200, policy_to_doc(shops.get_policy(runtime.store(), shop_id())))


@app.put("/v1/shop/policy")
def replace_policy(body: Annotated[dict[str, Any], Body()]):
    policy = shops.replace_policy(runtime.store(), runtime.clock, shop_id(), body)
    return _json(200, policy_to_doc(policy))


@app.patch("/v1/shop/policy", openapi_extensions={"requestBody": MERGE_PATCH_BODY})
def patch_policy():
    event = app.current_event
    patch = merge_patch_body(event.get("headers"), event.body)
    policy = shops.patch_policy(runtime.store(), runtime.clock, shop_id(), patch)
    return _json(200, policy_to_doc(policy))


@logs.inject_lambda_context(logger, correlation_id_path="requestContext.requestId")
def handler(event: dict, context: LambdaContext) -> dict:
    return with_request_id(event, refuse_non_json(event) or app.resolve(event, context))
