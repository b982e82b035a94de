"""The shop API: thin routes over the payments, cancellations and shop-policy use cases."""

from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path

from cancelflow import cancellations, payments, runtime, shops
from cancelflow.api import install_problem_handlers, json_text, to_cancel_request, to_payment
from cancelflow.policy import policy_to_doc
from cancelflow.schemas import CancelIn, FulfillmentIn, PaymentIn, Tno
from cancelflow.views import cancellation_view, payment_view

logger = Logger()
app = APIGatewayRestResolver(enable_validation=True)
install_problem_handlers(app, logger)

IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)
]
AcceptLanguage = Annotated[str | None, Header(alias="Accept-Language")]


def shop_id() -> str:
    # Set by the authorizer; API Gateway never lets a request through without it.
    return app.current_event.request_context.authorizer.get_context()["shop_id"]


def language(accept: str | None) -> str:
    """Messages in the answer: English when the caller prefers it, else Korean."""
    return "en" if (accept or "").lower().startswith("en") else "ko"


def _json(status: int, body: dict, headers: dict | None = None):
    return Response(status, "application/json", json_text(body), headers=headers)


@app.post("/v1/payments")
def register_payment(body: PaymentIn):
    payment, created = payments.register(
        runtime.store(), runtime.clock, to_payment(shop_id(), body, runtime.clock.now())
    )
    return _json(201 if created else 200, payment_view(payment))


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


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
