"""The local stack builds the same shapes AWS does: the samples in events/ are the reference."""

from __future__ import annotations

import json
from typing import Any

from cancelflow.cancellations.model import Cancellation, CancellationStatus
from cancelflow.runtime import StepFunctionsStarter
from local.api_gateway import LocalApi
from local.template import ROOT, Template

EVENTS = ROOT / "events"


def _sample(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


class _RecordingLambdas:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def invoke(self, name: str, event: Any) -> Any:
        self.calls.append((name, event))
        if event.get("type") == "TOKEN":
            return {
                "principalId": "demo-shop",
                "policyDocument": {"Statement": [{"Effect": "Allow"}]},
                "context": {"shop_id": "demo-shop"},
                "usageIdentifierKey": "cancelflow-usage-key-demo-shop",
            }
        return {"statusCode": 202, "headers": {}, "body": "{}"}


def test_the_local_gateway_builds_proxy_events_shaped_like_api_gateways() -> None:
    sample = _sample("api_request_cancellation.json")
    lambdas = _RecordingLambdas()
    api = LocalApi(Template(), lambdas)  # type: ignore[arg-type]
    status, _, _ = api.handle("POST", sample["path"], sample["headers"], sample["body"].encode())
    assert status == 202
    (_, token), (function, event) = lambdas.calls
    assert token["type"] == "TOKEN" and token["authorizationToken"].startswith("Bearer ")
    assert function == "cancelflow-ApiFunction"
    assert set(event) == set(sample)
    assert set(event["requestContext"]) == set(sample["requestContext"])
    assert event["pathParameters"] == sample["pathParameters"]
    assert event["resource"] == sample["resource"]
    assert event["requestContext"]["authorizer"]["shop_id"] == "demo-shop"


def test_the_workflow_input_has_the_shape_the_state_machine_reads() -> None:
    sample = _sample("cancel_refund_input.json")
    started: dict[str, Any] = {}

    class Sfn:
        class exceptions:
            ExecutionAlreadyExists = RuntimeError

        def start_execution(self, **kwargs: Any) -> dict[str, str]:
            started.update(kwargs)
            return {"executionArn": "arn"}

    from datetime import UTC, datetime

    now = datetime.now(UTC)
    cancellation = Cancellation(
        "demo-shop",
        sample["cancellation_id"],
        sample["tno"],
        CancellationStatus.REQUESTED,
        "OTHER",
        "",
        now,
        now,
    )
    StepFunctionsStarter(Sfn(), "arn:aws:states:r:1:stateMachine:m").start(cancellation)
    assert started["name"] == sample["cancellation_id"]
    payload = json.loads(started["input"])
    assert set(payload) == set(sample)
    assert set(payload["config"]) == set(sample["config"])
