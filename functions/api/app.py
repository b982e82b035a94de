"""The shop API: thin routes over the payments and cancellations use cases."""

from typing import Annotated

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Header, Path

from cancelflow import cancellations, payments, runtime
from cancelflow.api import install_problem_handlers, json_text, to_cancel_request, to_payment
from cancelflow.schemas import CancelIn, PaymentIn, Tno
from cancelflow.views import cancellation_view, payment_view

logger = Logger()
app = APIGatewayRestResolver(enable_validation=True)
install_problem_handlers(app, logger)

IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)
]


def shop_id() -> str:
    # Set by the authorizer; API Gateway never lets a request through without it.
    return app.current_event.request_context.authorizer.get_context()["shop_id"]


def _json(status: int, body: dict, headers: dict | None = None):
    return Response(status, "application/json", json_text(body), headers=headers)


@app.post("/v1/payments")
def register_payment(body: PaymentIn):
    payment, created = payments.register(
        runtime.store(), runtime.clock, to_payment(shop_id(), body, runtime.clock.now())
    )
    return _json(201 if created else 200, payment_view(payment))


@app.post("/v1/payments/<tno>/cancellations")
def request_cancellation(
    tno: Annotated[Tno, Path()], body: CancelIn, idempotency_key: IdempotencyKey = None
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
    view = cancellation_view(
        cancellation, runtime.starter().execution_arn(cancellation.cancellation_id)
    )
    return _json(202, view, {"Location": f"/v1/cancellations/{cancellation.cancellation_id}"})


@app.get("/v1/cancellations/<cancellation_id>")
def get_cancellation(cancellation_id: str):
    cancellation = cancellations.get_cancellation(runtime.store(), shop_id(), cancellation_id)
    view = cancellation_view(cancellation, runtime.starter().execution_arn(cancellation_id))
    return _json(200, view)


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
def handler(event: dict, context: object) -> dict:
    return app.resolve(event, context)
