"""API edges shared by the routes: problem+json answers and input -> domain conversion."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from cancelflow.cancellations import CancelRequest
from cancelflow.clock import KST
from cancelflow.errors import Problem
from cancelflow.models import Payment, PaymentStatus, PayMethod, RefundAccount
from cancelflow.payments import HistoryQuery
from cancelflow.schemas import CancelIn, PaymentIn

PROBLEM_JSON = "application/problem+json"


def json_text(body: Any) -> str:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def problem_response(problem: Problem, path: str = "") -> Response:
    return Response(problem.status, PROBLEM_JSON, json_text(problem.body(path)))


def _field(loc: Any) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def refuse_non_json(event: dict[str, Any]) -> dict[str, Any] | None:
    """415 for a body not declared JSON, answered before the router tries to parse it."""
    if not event.get("body"):
        return None
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    kind = headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json")):
        return None
    problem = Problem("UNSUPPORTED_MEDIA_TYPE", f"Content-Type {kind or '(none)'} is not JSON.")
    return {
        "statusCode": problem.status,
        "headers": {"Content-Type": PROBLEM_JSON},
        "body": json_text(problem.body(event.get("path", ""))),
        "isBase64Encoded": False,
    }


def install_problem_handlers(app: APIGatewayRestResolver, logger: Logger) -> None:
    """Every refusal becomes problem+json with a stable code; nothing leaks as a bare 500."""

    @app.exception_handler(Problem)
    def _problem(error: Problem) -> Response:
        return problem_response(error, app.current_event.path)

    @app.exception_handler(RequestValidationError)
    def _invalid(error: RequestValidationError) -> Response:
        errors = error.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return problem_response(Problem("MALFORMED_JSON"), app.current_event.path)
        details = [{"field": _field(e.get("loc", ())), "message": e.get("msg", "")} for e in errors]
        missing_key = any(d["field"] == "Idempotency-Key" for d in details)
        problem = Problem(
            "IDEMPOTENCY_KEY_REQUIRED" if missing_key else "VALIDATION_FAILED",
            "; ".join(f"{d['field']}: {d['message']}" for d in details),
            errors=details,
        )
        return problem_response(problem, app.current_event.path)

    @app.not_found
    def _not_found(error: NotFoundError) -> Response:
        return problem_response(Problem("NOT_FOUND"), app.current_event.path)

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response:
        logger.exception("unexpected error")
        return problem_response(Problem("INTERNAL_ERROR"), app.current_event.path)


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
    )


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
        refund_account=RefundAccount(
            account.bank_code, account.number.replace("-", ""), account.holder
        )
        if account
        else None,
    )
