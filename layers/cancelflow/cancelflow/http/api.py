"""API edges shared by the routes: problem+json answers and input -> domain conversion."""

from __future__ import annotations

import ast
import inspect
import json
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from cancelflow.adapters import aws
from cancelflow.cancellations import eligibility
from cancelflow.cancellations.model import CancellationStatus
from cancelflow.cancellations.ports import CancellationQuery
from cancelflow.cancellations.service import CancelRequest
from cancelflow.http.requests import CancelIn, PaymentIn
from cancelflow.http.responses import GATEWAY_PROBLEMS, status_of
from cancelflow.kcp.port import PayMethod, RefundAccount
from cancelflow.kernel.clock import KST
from cancelflow.kernel.errors import CATALOGUE, Problem
from cancelflow.kernel.reasons import REASONS
from cancelflow.payments.model import Payment, PaymentStatus
from cancelflow.payments.ports import HistoryQuery

PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"

# Every operation can answer these: the gateway's refusals (template.yaml GatewayResponses),
# an unknown query parameter, and what no request can avoid.
COMMON_PROBLEMS = (
    "UNAUTHORIZED",
    "SHOP_NOT_PROVISIONED",
    "RATE_LIMITED",
    "VALIDATION_FAILED",
    "INTERNAL_ERROR",
    "SERVICE_UNAVAILABLE",
)
# The operator API's: IAM refuses what is not signed by an allowed principal (403).
OPERATOR_PROBLEMS = ("FORBIDDEN", "VALIDATION_FAILED", "INTERNAL_ERROR", "SERVICE_UNAVAILABLE")
# An operation with a JSON body can also answer these.
BODY_PROBLEMS = ("MALFORMED_JSON", "UNSUPPORTED_MEDIA_TYPE")


@cache
def eligibility_refusals() -> tuple[str, ...]:
    """The reason codes eligibility.decide can refuse a cancel with (each a 422 `code`),
    read from its source so the contract cannot miss one it gains."""
    tree = ast.parse(inspect.getsource(eligibility))
    found = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in REASONS
    }
    return tuple(sorted(found))


def answers(
    success: dict[int, str],
    *codes: str,
    body: bool = False,
    headers: dict[int, dict[str, str]] | None = None,
    common: tuple[str, ...] = COMMON_PROBLEMS,
) -> dict[int, Any]:
    """The OpenAPI responses of an operation: its successes (the return model's schema) and,
    per status, a problem+json schema whose `code` lists exactly the codes it can answer
    (`common`: what every operation of its API can answer)."""
    declared: dict[int, Any] = {}
    for status, description in success.items():
        declared[status] = {"description": description}
        if headers and status in headers:
            declared[status]["headers"] = {
                name: {"description": text, "schema": {"type": "string"}, "required": True}
                for name, text in headers[status].items()
            }
    by_status: dict[int, set[str]] = {}
    for code in (*common, *(BODY_PROBLEMS if body else ()), *codes):
        by_status.setdefault(status_of(code), set()).add(code)
    for status, found in sorted(by_status.items()):
        listed = sorted(found)
        titles = "\n".join(f"- `{c}`: {_title(c)}" for c in listed)
        declared[status] = {
            "description": titles,
            "content": {
                PROBLEM_JSON: {
                    "schema": {
                        "allOf": [{"$ref": PROBLEM_REF}],
                        "properties": {
                            "status": {"const": status},
                            "code": {"type": "string", "enum": listed},
                        },
                    },
                    "example": _example(listed[0], status),
                }
            },
        }
    return declared


def _title(code: str) -> str:
    return GATEWAY_PROBLEMS[code][1] if code in GATEWAY_PROBLEMS else CATALOGUE[code][1]


def _example(code: str, status: int) -> dict[str, Any]:
    return {
        "type": f"https://cancelflow.dev/problems/{code.lower().replace('_', '-')}",
        "title": _title(code),
        "status": status,
        "code": code,
        "detail": _title(code),
        "request_id": "c0a8e7d2-3f41-4b8e-9a55-0d2b7e61f0aa",
    }


def json_text(body: Any) -> str:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def problem_response(problem: Problem, path: str = "", request_id: str = "") -> Response:
    body = problem.body(path) | ({"request_id": request_id} if request_id else {})
    return Response(problem.status, PROBLEM_JSON, json_text(body))


def request_id(event: dict[str, Any]) -> str:
    """API Gateway's id of the request: on every answer, in problem bodies, on every log line
    (the handlers' correlation id), so a support ticket can quote it."""
    return str((event.get("requestContext") or {}).get("requestId", ""))


def with_request_id(event: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """The answer with a Request-Id header (single- and multi-value forms)."""
    rid = request_id(event)
    if rid:
        answer.setdefault("headers", {})["Request-Id"] = rid
        if "multiValueHeaders" in answer:
            answer["multiValueHeaders"]["Request-Id"] = [rid]
    return answer


def _field(loc: Any) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def content_type(headers: dict[str, str] | None) -> str:
    """The media type a request declares, without parameters, in lower case."""
    named = {k.lower(): v for k, v in (headers or {}).items()}
    return named.get("content-type", "").split(";")[0].strip().lower()


def refuse_non_json(event: dict[str, Any]) -> dict[str, Any] | None:
    """415 for a body not declared JSON, answered before the router tries to parse it."""
    if not event.get("body"):
        return None
    kind = content_type(event.get("headers"))
    if kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json")):
        return None
    problem = Problem("UNSUPPORTED_MEDIA_TYPE", f"Content-Type {kind or '(none)'} is not JSON.")
    return {
        "statusCode": problem.status,
        "headers": {"Content-Type": PROBLEM_JSON},
        "body": json_text(problem.body(event.get("path", "")) | {"request_id": request_id(event)}),
        "isBase64Encoded": False,
    }


MERGE_PATCH_JSON = "application/merge-patch+json"


def json_body(headers: dict[str, str] | None, body: str | None) -> Any:
    """A JSON body a route reads itself: 415 unless sent as application/json, 400 naming the
    body when it is missing or not JSON."""
    kind = content_type(headers)
    if body and kind != "application/json":
        raise Problem("UNSUPPORTED_MEDIA_TYPE", f"Content-Type {kind}: send application/json.")
    if not body:
        raise Problem(
            "VALIDATION_FAILED",
            "body: required",
            errors=[{"field": "body", "message": "required"}],
        )
    try:
        return json.loads(body)
    except ValueError as error:
        raise Problem("MALFORMED_JSON") from error


def merge_patch_body(headers: dict[str, str] | None, body: str | None) -> Any:
    """The JSON Merge Patch (RFC 7396) a PATCH carries; plain application/json is read as one.

    415 for another patch format (e.g. JSON Patch), 400 MALFORMED_JSON for a body that is not JSON.
    """
    kind = content_type(headers)
    if kind not in (MERGE_PATCH_JSON, "application/json"):
        raise Problem(
            "UNSUPPORTED_MEDIA_TYPE",
            f"Content-Type {kind or '(none)'}: send a JSON Merge Patch as {MERGE_PATCH_JSON}.",
        )
    try:
        return json.loads(body or "")
    except ValueError as error:
        raise Problem("MALFORMED_JSON") from error


# The PATCH route reads its body itself (the router parses only application/json), so its
# OpenAPI request body is declared here.
MERGE_PATCH_BODY = {
    "required": True,
    "content": {
        MERGE_PATCH_JSON: {
            "schema": {"$ref": "#/components/schemas/PolicyPatch"},
            "example": {"withdrawal_days": 14, "return_shipping_fee": 3000},
        }
    },
}
# PUT's body is read by the domain (shops.replace_policy names every wrong field); its schema.
POLICY_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PolicyIn"}}},
}


def _unknown_query(unknown: list[str], known: set[str]) -> Problem:
    detail = "Unknown query parameter: " + ", ".join(unknown)
    if known:
        detail += f" (this endpoint takes {', '.join(sorted(known))})"
    errors = [{"field": name, "message": "unknown query parameter"} for name in unknown]
    return Problem("VALIDATION_FAILED", detail + ".", errors=errors)


def _rid(app: APIGatewayRestResolver) -> str:
    return request_id(app.current_event.raw_event)


def resolver() -> APIGatewayRestResolver:
    """The router both API functions use: inputs validated, answers checked against their
    response models (a mismatch is our bug: 500 INTERNAL_ERROR, logged), UTF-8 JSON."""
    return APIGatewayRestResolver(
        enable_validation=True, serializer=json_text, response_validation_error_http_code=500
    )


def install_problem_handlers(app: APIGatewayRestResolver, logger: Logger) -> None:
    """Every refusal becomes problem+json with a stable code; nothing leaks as a bare 500.
    A query parameter the route does not take is refused too (400 naming it)."""

    @app.exception_handler(Problem)
    def _problem(error: Problem) -> Response:
        return problem_response(error, app.current_event.path, _rid(app))

    @app.exception_handler(RequestValidationError)
    def _invalid(error: RequestValidationError) -> Response:
        errors = error.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return problem_response(Problem("MALFORMED_JSON"), app.current_event.path, _rid(app))
        details = [{"field": _field(e.get("loc", ())), "message": e.get("msg", "")} for e in errors]
        missing_key = any(d["field"].lower() == "idempotency-key" for d in details)
        problem = Problem(
            "IDEMPOTENCY_KEY_REQUIRED" if missing_key else "VALIDATION_FAILED",
            "; ".join(f"{d['field']}: {d['message']}" for d in details),
            errors=details,
        )
        return problem_response(problem, app.current_event.path, _rid(app))

    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported(error: RequestUnsupportedContentType) -> Response:
        # A JSON type of another kind (application/*+json) on a route that reads plain JSON.
        kind = content_type(app.current_event.get("headers"))
        problem = Problem("UNSUPPORTED_MEDIA_TYPE", f"Content-Type {kind}: send application/json.")
        return problem_response(problem, app.current_event.path, _rid(app))

    def _known_query(
        app: APIGatewayRestResolver, next_middleware: Callable[[APIGatewayRestResolver], Response]
    ) -> Response:
        # A misspelt filter (?prodcut=) must not be ignored and answer everything (as Stripe).
        # The matched route is in the resolver's context under "_route", where Powertools' own
        # validation middleware reads it; its declared Query parameters are what it takes.
        route = app.context.get("_route")
        if route is not None:
            known = {param.alias for param in route.dependant.query_params}
            asked = app.current_event.query_string_parameters or {}
            unknown = sorted(name for name in asked if name not in known)
            if unknown:
                return problem_response(
                    _unknown_query(unknown, known), app.current_event.path, _rid(app)
                )
        return next_middleware(app)

    app.use(middlewares=[_known_query])

    @app.not_found
    def _not_found(error: NotFoundError) -> Response:
        return problem_response(Problem("NOT_FOUND"), app.current_event.path, _rid(app))

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response:
        if aws.transient(error):  # AWS throttled us or could not be reached: nothing to fix, retry
            logger.warning("transient AWS error", extra={"error": type(error).__name__})
            problem = Problem("SERVICE_UNAVAILABLE", "Retry shortly with the same request.")
            answer = problem_response(problem, app.current_event.path, _rid(app))
            answer.headers["Retry-After"] = "1"
            return answer
        logger.exception("unexpected error")
        return problem_response(Problem("INTERNAL_ERROR"), app.current_event.path, _rid(app))


def moment(text: str | None, name: str, end_of_day: bool = False) -> datetime | None:
    """A KST date (the whole day when it ends a range) or an ISO time with an offset."""
    if not text:
        return None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime.combine(day, time.min, KST)
            return start + timedelta(days=1, seconds=-1) if end_of_day else start
        parsed = datetime.fromisoformat(text)
    except ValueError as error:
        raise Problem("VALIDATION_FAILED", f"{name}: not a date or ISO time") from error
    if parsed.tzinfo is None:
        raise Problem("VALIDATION_FAILED", f"{name}: an ISO time needs an offset, e.g. +09:00")
    return parsed


def history_query(
    since: str | None,
    until: str | None,
    min_amount: int | None,
    max_amount: int | None,
    product: str | None,
    status: PaymentStatus | None,
    method: PayMethod | None,
    limit: int,
    order_id: str | None = None,
    buyer: str | None = None,
) -> HistoryQuery:
    start, end = moment(since, "from"), moment(until, "to", end_of_day=True)
    if start and end and start > end:
        raise Problem("VALIDATION_FAILED", "from must not be after to.")
    return HistoryQuery(
        since=start,
        until=end,
        min_amount=min_amount,
        max_amount=max_amount,
        product=(product or "").strip(),
        status=status,
        method=method,
        limit=limit,
        order_id=(order_id or "").strip(),
        buyer=(buyer or "").strip(),
    )


def cancellation_query(
    since: str | None,
    until: str | None,
    status: CancellationStatus | None,
    tno: str | None,
    limit: int,
) -> CancellationQuery:
    start, end = moment(since, "from"), moment(until, "to", end_of_day=True)
    if start and end and start > end:
        raise Problem("VALIDATION_FAILED", "from must not be after to.")
    return CancellationQuery(since=start, until=end, status=status, tno=tno or "", limit=limit)


def to_payment(shop_id: str, body: PaymentIn, now: datetime) -> Payment:
    return Payment(
        shop_id=shop_id,
        tno=body.tno,
        order_id=body.order_id,
        amount=body.amount,
        method=body.method,
        product_name=body.product_name,
        buyer_email=body.buyer_email,
        buyer_name=body.buyer_name,
        approved_at=body.approved_at.replace(microsecond=0),  # KCP's precision
        registered_at=now,
        tax_free_amount=body.tax_free_amount,
        escrow=body.escrow,
        items=tuple(item.model_dump() for item in body.items),
    )


def to_cancel_request(body: CancelIn) -> CancelRequest:
    account = body.refund_account
    return CancelRequest(
        reason_code=body.reason_code.value,
        reason=body.reason,
        amount=body.amount,
        requested_by=body.requested_by.value,
        removed_items=tuple(body.removed_items),
        tax_free_amount=body.tax_free_amount,
        refund_account=RefundAccount(
            account.bank_code, account.number.replace("-", ""), account.holder
        )
        if account
        else None,
    )
