"""The operator API (IAM-authorised, SigV4): the review queue, a case, the decision, any
cancellation across shops. Thin routes over cancelflow.cancellations.review."""

from datetime import timedelta
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from cancelflow import runtime
from cancelflow.adapters import logs
from cancelflow.cancellations import review
from cancelflow.cancellations.ports import ReviewQuery
from cancelflow.http import operator_responses as out
from cancelflow.http.api import (
    OPERATOR_PROBLEMS,
    answers,
    install_problem_handlers,
    refuse_non_json,
    resolver,
    with_request_id,
)
from cancelflow.http.operator_requests import DecisionIn, ShopIn
from cancelflow.http.operator_views import (
    api_key_view,
    operator_cancellation_view,
    review_summary_view,
    shop_view,
)
from cancelflow.http.subscription_views import charge_view, subscription_view
from cancelflow.kernel.errors import Problem
from cancelflow.shops import keys
from cancelflow.shops.model import Shop
from cancelflow.subscriptions import service as subscriptions

logger = Logger()
app = resolver()
install_problem_handlers(app, logger)

CancellationId = Annotated[str, Path(pattern=r"^cnl_[A-Za-z0-9_-]{1,64}$")]
ShopId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{1,39}$")]
KeyId = Annotated[str, Path(pattern=r"^key_[a-f0-9]{16}$")]
SubscriptionId = Annotated[str, Path(pattern=r"^sub_[A-Za-z0-9_-]{1,64}$")]
BatchId = Annotated[str, Path(pattern=r"^cbt_[a-f0-9]{24}$")]


TAGS_REVIEW, TAGS_CNL, TAGS_SHOP = ["reviews"], ["cancellations"], ["shops"]


def _answers(success: dict[int, str], *codes: str, body: bool = False) -> dict[int, Any]:
    return answers(success, *codes, body=body, common=OPERATOR_PROBLEMS)


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


@app.get(
    "/v1/reviews",
    operation_id="listReviews",
    summary="The review queue across shops",
    description="Open reviews (cancels KCP never told the fate of), oldest first; filter by "
    "shop, age and amount. Follow next_cursor for more.",
    tags=TAGS_REVIEW,
    responses=_answers({200: "A page of open reviews"}, "INVALID_CURSOR"),
)
def list_reviews(
    shop: Annotated[str | None, Query(max_length=64, description="one shop's reviews")] = None,
    min_age_minutes: Annotated[
        int | None, Query(ge=0, description="only reviews open at least this long")
    ] = None,
    min_amount: Annotated[int | None, Query(ge=0, description="KRW")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
) -> out.ReviewPage:
    now = runtime.clock.now()
    query = ReviewQuery(
        shop_id=shop or "",
        min_age=timedelta(minutes=min_age_minutes) if min_age_minutes else None,
        min_amount=min_amount,
        limit=limit,
        as_of=now,
    )
    page, next_cursor = review.list_reviews(runtime.store(), query, cursor, runtime.cursor_key())
    items = [review_summary_view(c, now) for c in page.cancellations]
    return out.ReviewPage(items=items, next_cursor=next_cursor)


@app.get(
    "/v1/reviews/<cancellation_id>",
    operation_id="getReview",
    summary="A review case with its evidence",
    description="The cancellation with every attempt, KCP's answer to a fresh inquiry, both "
    "sides' balances and what each outcome would read as (`evidence`).",
    tags=TAGS_REVIEW,
    responses=_answers({200: "The case"}, "CANCELLATION_NOT_FOUND"),
)
def review_case(cancellation_id: CancellationId) -> out.OperatorCancellation:
    case = _find(cancellation_id)
    gateway = runtime.gateway_for(runtime.shop(case.shop_id))
    evidence = review.evidence(runtime.store(), gateway, case)
    return operator_cancellation_view(case, _execution(case), runtime.clock.now(), evidence)


@app.post(
    "/v1/reviews/<cancellation_id>/decision",
    operation_id="decideReview",
    summary="Decide a review: APPLIED or NOT_APPLIED, with a note",
    description="Recorded on the cancellation (who, when, note, the evidence shown); the "
    "waiting execution then settles and notifies. The same decision again re-sends it.",
    tags=TAGS_REVIEW,
    responses=_answers(
        {202: "Recorded; the execution goes on"},
        "CANCELLATION_NOT_FOUND",
        "REVIEW_NOT_OPEN",
        "REVIEW_DECIDED",
        "REVIEW_CHANGED",
        body=True,
    ),
)
def decide(cancellation_id: CancellationId, body: DecisionIn) -> Response[out.DecidedCancellation]:
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
    answer = out.DecidedCancellation(**view.model_dump(exclude_unset=True), workflow=how)
    return Response(202, "application/json", answer)


@app.get(
    "/v1/cancellations/<cancellation_id>",
    operation_id="getAnyCancellation",
    summary="Any shop's cancellation by id",
    tags=TAGS_CNL,
    responses=_answers({200: "The cancellation"}, "CANCELLATION_NOT_FOUND"),
)
def cancellation(cancellation_id: CancellationId) -> out.OperatorCancellation:
    found = _find(cancellation_id)
    return operator_cancellation_view(found, _execution(found), runtime.clock.now())


@app.get(
    "/v1/shops/<shop_id>/subscriptions/<subscription_id>",
    operation_id="getShopSubscription",
    summary="A shop's subscription with every charge",
    description="Read-only: what the shop sees, its shop, and each charge (KCP's answer "
    "included). `make trace` reads a subscription here.",
    tags=TAGS_SHOP,
    responses=_answers({200: "The subscription and its charges"}, "SUBSCRIPTION_NOT_FOUND"),
)
def shop_subscription(shop_id: ShopId, subscription_id: SubscriptionId) -> out.OperatorSubscription:
    store = runtime.billing_store()
    sub = subscriptions.get(store, shop_id, subscription_id)
    charges = [charge_view(c, "en") for c in subscriptions.charges(store, shop_id, subscription_id)]
    view = subscription_view(sub).model_dump(mode="json")
    return out.OperatorSubscription.model_validate(view | {"shop_id": shop_id, "charges": charges})


@app.get(
    "/v1/shops/<shop_id>/cancellation-batches/<batch_id>",
    operation_id="getShopCancellationBatch",
    summary="A shop's cancellation batch",
    description="Read-only: what the shop sees, its shop and its execution. `make trace` reads "
    "a batch here.",
    tags=TAGS_SHOP,
    responses=_answers({200: "The batch"}, "BATCH_NOT_FOUND"),
)
def shop_batch(shop_id: ShopId, batch_id: BatchId) -> out.OperatorBatch:
    from cancelflow.batches import service as batches  # only this route reads batches
    from cancelflow.http.batch_views import batch_view

    store = runtime.batches()
    batch = batches.get_batch(store, shop_id, batch_id)
    failed = batches.failed_items(store, shop_id, batch, 20)
    view = batch_view(batch, failed).model_dump(mode="json")
    extra = {"shop_id": shop_id, "execution_id": batch.execution_id or None}
    return out.OperatorBatch.model_validate(view | extra)


@app.post(
    "/v1/shops",
    operation_id="createShop",
    summary="Onboard a shop",
    description="Then issue its first API key (POST /v1/shops/{shop_id}/api-keys).",
    tags=TAGS_SHOP,
    responses=_answers({201: "Created"}, "SHOP_EXISTS", body=True),
)
def create_shop(body: ShopIn) -> Response[out.ShopOnboarded]:
    prefix = runtime.setting("KCP_SECRET_PREFIX", "cancelflow/kcp/")
    shop = Shop(body.shop_id, body.name, body.email, body.kcp_secret_id or prefix + body.shop_id)
    created = keys.create_shop(runtime.store(), runtime.clock, shop)
    logger.info("shop created", extra={"shop_id": shop.shop_id, "by": operator()})
    return Response(201, "application/json", shop_view(created))


@app.post(
    "/v1/shops/<shop_id>/api-keys",
    operation_id="issueApiKey",
    summary="Issue an API key (shown once)",
    tags=TAGS_SHOP,
    responses=_answers({201: "Issued"}, "SHOP_NOT_FOUND"),
)
def issue_key(shop_id: ShopId) -> Response[out.IssuedApiKey]:
    """A new key (shown once). Keys issued before keep working: rotate by issuing a new one,
    moving the shop's servers to it, then revoking the old one."""
    key, secret = keys.issue_key(runtime.store(), runtime.clock, shop_id)
    logger.info(
        "api key issued", extra={"shop_id": shop_id, "key_id": key.key_id, "by": operator()}
    )
    issued = out.IssuedApiKey(**api_key_view(key).model_dump(), api_key=secret)
    return Response(201, "application/json", issued)


@app.get(
    "/v1/shops/<shop_id>/api-keys",
    operation_id="listApiKeys",
    summary="A shop's keys and their last use",
    description="Active and revoked keys, never their secrets.",
    tags=TAGS_SHOP,
    responses=_answers({200: "The shop's keys"}, "SHOP_NOT_FOUND"),
)
def list_keys(shop_id: ShopId) -> out.ApiKeyPage:
    items = [api_key_view(k) for k in keys.list_keys(runtime.store(), shop_id)]
    return out.ApiKeyPage(items=items, next_cursor=None)


@app.delete(
    "/v1/shops/<shop_id>/api-keys/<key_id>",
    operation_id="revokeApiKey",
    summary="Revoke an API key",
    tags=TAGS_SHOP,
    responses=_answers({200: "Revoked"}, "SHOP_NOT_FOUND", "API_KEY_NOT_FOUND"),
)
def revoke_key(shop_id: ShopId, key_id: KeyId) -> out.ApiKey:
    """Revoke a key: refused on a fresh request at once, and everywhere within the shop
    authorizer's cache time (60 s)."""
    key = keys.revoke_key(runtime.store(), runtime.clock, shop_id, key_id)
    logger.info("api key revoked", extra={"shop_id": shop_id, "key_id": key_id, "by": operator()})
    return api_key_view(key)


@logs.inject_lambda_context(logger, correlation_id_path="requestContext.requestId")
def handler(event: dict, context: LambdaContext) -> dict:
    return with_request_id(event, refuse_non_json(event) or app.resolve(event, context))
