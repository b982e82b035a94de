"""The shop API: thin routes over the payments, cancellations and shop-policy use cases."""

from datetime import date
from typing import Annotated

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from cancelflow import runtime
from cancelflow.adapters import logs
from cancelflow.cancellations import export as cancellation_export
from cancelflow.cancellations import failures
from cancelflow.cancellations import service as cancellations
from cancelflow.cancellations.model import CancellationStatus
from cancelflow.http import responses as out
from cancelflow.http.api import (
    MERGE_PATCH_BODY,
    POLICY_BODY,
    answers,
    cancellation_query,
    eligibility_refusals,
    history_query,
    install_problem_handlers,
    json_body,
    merge_patch_body,
    refuse_non_json,
    resolver,
    to_cancel_request,
    to_payment,
    with_request_id,
)
from cancelflow.http.requests import CancelIn, FulfillmentIn, PaymentIn, Tno
from cancelflow.http.views import (
    cancellation_list_view,
    cancellation_view,
    failure_report_view,
    payment_detail_view,
    payment_view,
)
from cancelflow.kcp.port import PayMethod
from cancelflow.kernel.clock import KST
from cancelflow.payments import service as payments
from cancelflow.payments.export import csv_chunks
from cancelflow.payments.model import PaymentStatus
from cancelflow.shops import service as shops
from cancelflow.shops.policy import policy_to_doc

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
        description="Any unique string; a retry with the same key gets the same answer",
    ),
]
AcceptLanguage = Annotated[
    str | None, Header(alias="Accept-Language", description="en for English messages")
]
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
LOCATION = {"Location": "Where to read it"}
TAGS_PAY, TAGS_CNL, TAGS_SHOP = ["payments"], ["cancellations"], ["shop"]
TAGS_REPORTS = ["reports"]


def shop_id() -> str:
    # Set by the authorizer; API Gateway never lets a request through without it.
    shop: str = app.current_event.request_context.authorizer.get_context()["shop_id"]
    return shop


def language(accept: str | None) -> str:
    """Messages in the answer: English when the caller prefers it, else Korean."""
    return "en" if (accept or "").lower().startswith("en") else "ko"


@app.post(
    "/v1/payments",
    operation_id="registerPayment",
    summary="Register an approved payment",
    description="Record a payment KCP approved at checkout. cancelflow asks KCP first: a tno, "
    "amount or method KCP does not hold is 422 PAYMENT_MISMATCH, listing what differs. "
    "Idempotent on tno: the same facts again answer 200 with the stored payment.",
    tags=TAGS_PAY,
    responses=answers(
        {201: "Registered", 200: "Already registered with the same facts"},
        "PAYMENT_CONFLICT",
        "PAYMENT_MISMATCH",
        body=True,
    ),
)
def register_payment(body: PaymentIn) -> Response[out.Payment]:
    gateway = runtime.gateway_for(runtime.shop(shop_id()))
    payment, created = payments.register(
        runtime.store(), gateway, runtime.clock, to_payment(shop_id(), body, runtime.clock.now())
    )
    return Response(201 if created else 200, "application/json", payment_view(payment))


@app.get(
    "/v1/payments",
    operation_id="listPayments",
    summary="Search the payment history",
    description="The shop's payments, newest first, filtered by approval time (KST days), "
    "amount, product name (case-insensitive substring), status, method, order id or buyer. "
    "Follow next_cursor for more; a selective filter may give a short page.",
    tags=TAGS_PAY,
    responses=answers({200: "A page of payments"}, "INVALID_CURSOR"),
)
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
) -> out.PaymentPage:
    query = history_query(
        since, until, min_amount, max_amount, product, status, method, limit, order_id, buyer
    )
    page, next_cursor = payments.history(
        runtime.store(), shop_id(), query, cursor, runtime.cursor_key()
    )
    if page.unreadable:  # left out of the page, never a 500 for the whole history
        logger.warning("unreadable records left out", extra={"unreadable": page.unreadable})
    return out.PaymentPage(items=[payment_view(p) for p in page.payments], next_cursor=next_cursor)


@app.get(
    "/v1/payments/export",
    operation_id="exportPayments",
    summary="Export payments as CSV",
    description="Every payment the filters match, as a CSV file (UTF-8 with BOM, so Excel shows "
    "Korean). Answers 303 See Other to a short-lived link; `curl -L` follows it.",
    tags=TAGS_PAY,
    responses=answers({303: "The file's link"}, headers={303: LOCATION}),
)
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
) -> Response[out.ExportLink]:
    query = history_query(
        since, until, min_amount, max_amount, product, status, method, 100, order_id, buyer
    )
    rows = payments.export(runtime.store(), shop_id(), query)
    name = f"payments-{runtime.clock.now().astimezone(KST):%Y%m%d-%H%M%S}.csv"
    url = runtime.exporter().upload(shop_id(), name, csv_chunks(rows, language(accept_language)))
    # See Other: `curl -L` (or a browser) follows it to the file.
    link = out.ExportLink(url=url, file=name)
    return Response(303, "application/json", link, headers={"Location": url})


def _cancellations_of(tno: str, accept_language: str | None) -> tuple[object, list]:
    store = runtime.store()
    payment = payments.get(store, shop_id(), tno)
    lang, starter = language(accept_language), runtime.starter()
    views = [
        cancellation_view(c, starter.execution_arn(c.cancellation_id), lang)
        for c in store.payment_cancellations(payment.shop_id, tno)
    ]
    return payment, views


@app.get(
    "/v1/payments/<tno>",
    operation_id="getPayment",
    summary="Read a payment",
    description="Amounts, balance, fulfillment, and every cancellation of the payment with each "
    "call made to KCP (its code, message and hint).",
    tags=TAGS_PAY,
    responses=answers({200: "The payment"}, "PAYMENT_NOT_FOUND"),
)
def payment_detail(
    tno: Annotated[Tno, Path()], accept_language: AcceptLanguage = None
) -> out.PaymentDetail:
    payment, cancellations_ = _cancellations_of(tno, accept_language)
    return payment_detail_view(payment, cancellations_)  # type: ignore[arg-type]


@app.get(
    "/v1/payments/<tno>/cancellations",
    operation_id="listPaymentCancellations",
    summary="List a payment's cancellations",
    description="Every cancellation of one payment, oldest first, with their KCP attempts "
    "(one page: next_cursor is always null).",
    tags=TAGS_CNL,
    responses=answers({200: "The payment's cancellations"}, "PAYMENT_NOT_FOUND"),
)
def payment_cancellations(
    tno: Annotated[Tno, Path()], accept_language: AcceptLanguage = None
) -> out.CancellationPage:
    _, cancellations_ = _cancellations_of(tno, accept_language)
    return out.CancellationPage(items=cancellations_, next_cursor=None)


@app.patch(
    "/v1/payments/<tno>/fulfillment",
    operation_id="updateFulfillment",
    summary="Update the goods' fulfillment",
    description="Move the goods along PROCESSING → SHIPPED → DELIVERED → RETURN_REQUESTED → "
    "RETURNED (a return can be withdrawn, a parcel refused at the door). The same status "
    "again changes nothing. The delivery time starts the withdrawal window.",
    tags=TAGS_PAY,
    responses=answers(
        {200: "The payment, updated"},
        "PAYMENT_NOT_FOUND",
        "FULFILLMENT_TRANSITION_INVALID",
        body=True,
    ),
)
def update_fulfillment(tno: Annotated[Tno, Path()], body: FulfillmentIn) -> out.Payment:
    payment = payments.update_fulfillment(
        runtime.store(), runtime.clock, shop_id(), tno, body.status, body.at
    )
    return payment_view(payment)


@app.post(
    "/v1/payments/<tno>/cancellations",
    operation_id="requestCancellation",
    summary="Request a cancel (full or partial)",
    description="Without amount, cancels everything left; with amount or removed_items, a "
    "partial cancel. Answers 202 at once, status REQUESTED: the workflow decides, sends it to "
    "KCP and emails the customer; read the outcome at Location. The Idempotency-Key makes a "
    "retry safe: the same key and body answer the same cancellation. A cancel the shop's "
    "policy or the payment method does not allow is 422 with every reason.",
    tags=TAGS_CNL,
    responses=answers(
        {202: "Accepted; the workflow runs"},
        "IDEMPOTENCY_KEY_REQUIRED",
        "PAYMENT_NOT_FOUND",
        "REVIEW_PENDING",
        "IDEMPOTENCY_KEY_REUSED",
        *eligibility_refusals(),
        body=True,
        headers={202: LOCATION},
    ),
)
def request_cancellation(
    tno: Annotated[Tno, Path()],
    body: CancelIn,
    idempotency_key: IdempotencyKey = None,
    accept_language: AcceptLanguage = None,
) -> Response[out.Cancellation]:
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
    location = {"Location": f"/v1/cancellations/{cancellation.cancellation_id}"}
    return Response(202, "application/json", view, headers=location)


@app.get(
    "/v1/cancellations",
    operation_id="listCancellations",
    summary="List the shop's cancellations",
    description="Newest first, filtered by creation time (KST days), status or tno; without "
    "their KCP attempts (read one by id for those). Follow next_cursor for more.",
    tags=TAGS_CNL,
    responses=answers({200: "A page of cancellations"}, "INVALID_CURSOR"),
)
def list_cancellations(
    since: SinceParam = None,
    until: UntilParam = None,
    status: Annotated[CancellationStatus | None, Query()] = None,
    tno: Annotated[Tno | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    accept_language: AcceptLanguage = None,
) -> out.CancellationPage:
    query = cancellation_query(since, until, status, tno, limit)
    page, next_cursor = cancellations.list_cancellations(
        runtime.store(), shop_id(), query, cursor, runtime.cursor_key()
    )
    lang, starter = language(accept_language), runtime.starter()
    found = [
        cancellation_list_view(c, starter.execution_arn(c.cancellation_id), lang)
        for c in page.cancellations
    ]
    return out.CancellationPage(items=found, next_cursor=next_cursor)


@app.get(
    "/v1/cancellations/export",
    operation_id="exportCancellations",
    summary="Export cancellations as CSV",
    description="Every cancellation the list's filters match (creation time in KST days, status, "
    "tno), newest first, as a CSV file by the payment export's rules (UTF-8 with BOM, so Excel "
    "shows Korean). Answers 303 See Other to a short-lived link; `curl -L` follows it.",
    tags=TAGS_CNL,
    responses=answers({303: "The file's link"}, headers={303: LOCATION}),
)
def export_cancellations(
    since: SinceParam = None,
    until: UntilParam = None,
    status: Annotated[CancellationStatus | None, Query()] = None,
    tno: Annotated[Tno | None, Query()] = None,
    accept_language: AcceptLanguage = None,
) -> Response[out.ExportLink]:
    query = cancellation_query(since, until, status, tno, 100)
    rows = cancellation_export.cancellations(runtime.store(), shop_id(), query)
    name = f"cancellations-{runtime.clock.now().astimezone(KST):%Y%m%d-%H%M%S}.csv"
    chunks = cancellation_export.csv_chunks(rows, language(accept_language))
    url = runtime.exporter().upload(shop_id(), name, chunks)
    link = out.ExportLink(url=url, file=name)
    return Response(303, "application/json", link, headers={"Location": url})


@app.get(
    "/v1/cancellations/<cancellation_id>",
    operation_id="getCancellation",
    summary="Read a cancellation's outcome",
    description="Status (SUCCEEDED, REJECTED, FAILED, NEEDS_REVIEW or still open), the refunded "
    "amount, the reasons, KCP's code, message and hint, every attempt, and the execution id. "
    "`settled` is false while KCP's answer is not known (the amount stays held).",
    tags=TAGS_CNL,
    responses=answers({200: "The cancellation"}, "CANCELLATION_NOT_FOUND"),
)
def get_cancellation(
    cancellation_id: str, accept_language: AcceptLanguage = None
) -> out.Cancellation:
    cancellation = cancellations.get_cancellation(runtime.store(), shop_id(), cancellation_id)
    execution = runtime.starter().execution_arn(cancellation_id)
    return cancellation_view(cancellation, execution, language(accept_language))


@app.get(
    "/v1/reports/failures",
    operation_id="failureReport",
    summary="Review the period's failure cases",
    description="The period's failed and rejected cancels and declined subscription charges, "
    "grouped by KCP code and reason code: count, first and last seen, the plain message and "
    "hint, a few example ids; most frequent first. KST days, both included: the last 30 days "
    f"unless given, at most {failures.MAX_DAYS}. Counted as each outcome is recorded, so the "
    "report reads counters, not records.",
    tags=TAGS_REPORTS,
    responses=answers({200: "The failure cases"}),
)
def failure_report(
    since: Annotated[date | None, Query(alias="from", description="First KST day")] = None,
    until: Annotated[date | None, Query(alias="to", description="Last KST day (included)")] = None,
    accept_language: AcceptLanguage = None,
) -> out.FailureReport:
    found = failures.report(
        runtime.failure_counts(), runtime.clock, shop_id(), since, until, language(accept_language)
    )
    return failure_report_view(found)


def _policy(policy: object) -> out.Policy:
    return out.Policy.model_validate(policy_to_doc(policy))  # type: ignore[arg-type]


@app.get(
    "/v1/shop/policy",
    operation_id="getPolicy",
    summary="Read the shop's cancel policy",
    description="The windows and fees cancellations are decided by; until the shop sets its "
    "own, the law's minimum (전자상거래법 §17, §18).",
    tags=TAGS_SHOP,
    responses=answers({200: "The policy"}),
)
def get_policy() -> out.Policy:
    return _policy(shops.get_policy(runtime.store(), shop_id()))


@app.put(
    "/v1/shop/policy",
    operation_id="replacePolicy",
    summary="Replace the shop's cancel policy",
    description="The whole policy, every field but version (set by the server): a field left "
    "out is 400 VALIDATION_FAILED naming it. Each change is a new version.",
    tags=TAGS_SHOP,
    # The domain validates the document (it names every field wrong, with the law's reasons);
    # the contract shows its schema.
    openapi_extensions={"requestBody": POLICY_BODY},
    responses=answers({200: "The new version"}, body=True),
)
def replace_policy() -> out.Policy:
    doc = json_body(app.current_event.get("headers"), app.current_event.body)
    return _policy(shops.replace_policy(runtime.store(), runtime.clock, shop_id(), doc))


@app.patch(
    "/v1/shop/policy",
    operation_id="patchPolicy",
    summary="Change some policy fields",
    description="A JSON Merge Patch (RFC 7396): only the fields named change; null resets one "
    "to its default. Each change is a new version.",
    tags=TAGS_SHOP,
    openapi_extensions={"requestBody": MERGE_PATCH_BODY},
    responses=answers({200: "The new version"}, body=True),
)
def patch_policy() -> out.Policy:
    event = app.current_event
    patch = merge_patch_body(event.get("headers"), event.body)
    return _policy(shops.patch_policy(runtime.store(), runtime.clock, shop_id(), patch))


@logs.inject_lambda_context(logger, correlation_id_path="requestContext.requestId")
def handler(event: dict, context: LambdaContext) -> dict:
    return with_request_id(event, refuse_non_json(event) or app.resolve(event, context))
