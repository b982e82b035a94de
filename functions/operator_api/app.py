"""The operator API (IAM-authorised, SigV4): the review queue, a case, the decision, any
cancellation across shops. Thin routes over cancelflow.cancellations.review."""

from datetime import timedelta
from typing import Annotated

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from cancelflow import runtime
from cancelflow.adapters import logs
from cancelflow.cancellations import review
from cancelflow.cancellations.ports import ReviewQuery
from cancelflow.http.api import (
    install_problem_handlers,
    json_text,
    refuse_non_json,
    with_request_id,
)
from cancelflow.http.operator_requests import DecisionIn, ShopIn
from cancelflow.http.operator_views import (
    api_key_view,
    operator_cancellation_view,
    review_summary_view,
    shop_view,
)
from cancelflow.kernel.errors import Problem
from cancelflow.shops import keys
from cancelflow.shops.model import Shop

logger = Logger()
app = APIGatewayRestResolver(enable_validation=True)
install_problem_handlers(app, logger)

CancellationId = Annotated[str, Path(pattern=r"^cnl_[A-Za-z0-9_-]{1,64}$")]
ShopId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{1,39}$")]
KeyId = Annotated[str, Path(pattern=r"^key_[a-f0-9]{16}$")]


def _json(status: int, body: dict) -> Response:
    return Response(status, "application/json", json_text(body))


def operator() -> str:
    """Who is calling: the SigV4 principal API Gateway verified (IAM user or role ARN)."""
    identity = app.current_event.request_context.identity
    return identity.user_arn or identity.caller or "unknown"


def _find(cancellation_id: str):
    found = runtime.store().find_cancellation(cancellation_id)
    if found is None:
        raise Problem("CANCELLATION_NOT_FOUND", f"No cancellation {cancellation_id} in any shop.")
    return found


def _execution(cancellation) -> str:
    return cancellation.execution_id or runtime.starter().execution_arn(
        cancellation.cancellation_id
    )


@app.get("/v1/reviews")
def list_reviews(
    shop: Annotated[str | None, Query(max_length=64, description="one shop's reviews")] = None,
    min_age_minutes: Annotated[
        int | None, Query(ge=0, description="only reviews open at least this long")
    ] = None,
    min_amount: Annotated[int | None, Query(ge=0, description="KRW")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
):
    now = runtime.clock.now()
    query = ReviewQuery(
        shop_id=shop or "",
        min_age=timedelta(minutes=min_age_minutes) if min_age_minutes else None,
        min_amount=min_amount,
        limit=limit,
        as_of=now,
    )
    page, next_cursor = review.list_reviews(runtime.store(), query, cursor, runtime.cursor_key())
    return _json(
        200,
        {
            "reviews": [review_summary_view(c, now) for c in page.cancellations],
            "next_cursor": next_cursor,
        },
    )


@app.get("/v1/reviews/<cancellation_id>")
def review_case(cancellation_id: CancellationId):
    case = _find(cancellation_id)
    gateway = runtime.gateway_for(runtime.shop(case.shop_id))
    evidence = review.evidence(runtime.store(), gateway, case)
    return _json(
        200, operator_cancellation_view(case, _execution(case), runtime.clock.now(), evidence)
    )


@app.post("/v1/reviews/<cancellation_id>/decision")
def decide(cancellation_id: CancellationId, body: DecisionIn):
    case = _find(cancellation_id)
    decided, how = review.decide(
        runtime.store(),
        runtime.gateway_for(runtime.shop(case.shop_id)),
        runtime.review_waits(),
        runtime.clock,
        case.shop_id,
        cancellation_id,
        body.outcome,
        body.note,
        operator(),
    )
    logger.info(
        "review decided",
        extra={
            "cancellation_id": cancellation_id,
            "outcome": body.outcome,
            "by": operator(),
            "workflow": how,
        },
    )
    view = operator_cancellation_view(decided, _execution(decided), runtime.clock.now())
    return _json(202, view | {"workflow": how})


@app.get("/v1/cancellations/<cancellation_id>")
def cancellation(cancellation_id: CancellationId):
    found = _find(cancellation_id)
    return _json(200, operator_cancellation_view(found, _execution(found), runtime.clock.now()))


@app.post("/v1/shops")
def create_shop(body: ShopIn):
    prefix = runtime.setting("KCP_SECRET_PREFIX", "cancelflow/kcp/")
    shop = Shop(body.shop_id, body.name, body.email, body.kcp_secret_id or prefix + body.shop_id)
    created = keys.create_shop(runtime.store(), runtime.clock, shop)
    logger.info("shop created", extra={"shop_id": shop.shop_id, "by": operator()})
    return _json(201, shop_view(created))


@app.post("/v1/shops/<shop_id>/keys")
def issue_key(shop_id: ShopId):
    """A new key (shown once). Keys issued before keep working: rotate by issuing a new one,
    moving the shop's servers to it, then revoking the old one."""
    key, secret = keys.issue_key(runtime.store(), runtime.clock, shop_id)
    logger.info(
        "api key issued", extra={"shop_id": shop_id, "key_id": key.key_id, "by": operator()}
    )
    return _json(201, api_key_view(key) | {"api_key": secret})


@app.get("/v1/shops/<shop_id>/keys")
def list_keys(shop_id: ShopId):
    return _json(200, {"keys": [api_key_view(k) for k in keys.list_keys(runtime.store(), shop_id)]})


@app.delete("/v1/shops/<shop_id>/keys/<key_id>")
def revoke_key(shop_id: ShopId, key_id: KeyId):
    """Revoke a key: refused on a fresh request at once, and everywhere within the shop
    authorizer's cache time (60 s)."""
    key = keys.revoke_key(runtime.store(), runtime.clock, shop_id, key_id)
    logger.info("api key revoked", extra={"shop_id": shop_id, "key_id": key_id, "by": operator()})
    return _json(200, api_key_view(key))


@logs.inject_lambda_context(logger, correlation_id_path="requestContext.requestId")
def handler(event: dict, context: LambdaContext) -> dict:
    return with_request_id(event, refuse_non_json(event) or app.resolve(event, context))
