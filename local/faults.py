"""AWS-side faults for the local stack: DynamoDB throttling, conditional-check races, SES down.

For the fault bench (`make faults`, bench/faults.py) and its test only: nothing here runs unless
a harness installs an AwsFaults (install() ... uninstall()); the stack itself never does.

How: botocore's public event system, the one the local stack already uses for Lambda and mail.
The hooks go on the clients the handlers use (cancelflow.aws.client: one cached client per
service, shared by every handler in the process; see local/lambdas.py), and strike only calls made
while a Lambda handler runs (the thread's scoped environment names the function), so the harness's
own reads, the seeding and moto's interpreter are never touched. Each class has a probability:

- throttle (per DynamoDB call): the call is answered 400 ProvisionedThroughputExceededException or
  ThrottlingException on its first k HTTP attempts, through the SDK's own retry logic; k is 1 or 2
  (the retries absorb it) or every attempt (the handler sees the error, as under a real burst).
- race (per conditional DynamoDB write): a concurrent twin of the same write lands first, as when
  a step runs twice at once (a duplicate invocation, a retry of a timed-out step): the write is
  sent once more just before the handler's own, so the write is applied and the handler's one
  meets the changed item (usually ConditionalCheckFailed / TransactionCanceled). A failed
  condition without any writer is not injected: DynamoDB never answers that.
- ses_down (per SendEmail): SES cannot be reached on any attempt (EndpointConnectionError after
  the SDK's retries).

Every strike is counted per class, and tagged with what the harness's `tag()` returns for the
current thread (the cancellation a handler works on), so a report can say what each fault did.
"""

from __future__ import annotations

import json
import os
import random
import threading
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import EndpointConnectionError

THROTTLE_CODES = ("ProvisionedThroughputExceededException", "ThrottlingException")
_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems")


@dataclass(frozen=True)
class AwsFaultRates:
    throttle: float = 0.0  # per DynamoDB call
    race: float = 0.0  # per conditional DynamoDB write
    ses_down: float = 0.0  # per SES SendEmail
    functions: frozenset[str] | None = None  # only these function names (None: every one)


class _Raw(BytesIO):
    def stream(self, **_: Any) -> Any:
        chunk = self.read()
        while chunk:
            yield chunk
            chunk = self.read()


class AwsFaults:
    """Draws and applies the AWS-side faults on the handlers' clients (install/uninstall)."""

    def __init__(
        self,
        rates: AwsFaultRates,
        seed: int = 0,
        tag: Callable[[], str | None] = lambda: None,
        allow: Callable[[str | None], bool] = lambda tag: True,
    ) -> None:
        self.rates = rates
        self.enabled = True
        self._random = random.Random(seed)
        self._tag = tag
        self._allow = allow  # whether the work a tag names may be struck at all
        self._lock = threading.Lock()
        self._call = threading.local()  # the plan of the API call this thread is making
        self.counts: Counter[str] = Counter()  # strikes per class (throttle_surfaced, ...)
        self.tagged: dict[str, Counter[str]] = {}  # tag -> strikes per class

    # --- drawing -----------------------------------------------------------------------------

    def _draw(self, probability: float) -> bool:
        if probability <= 0:
            return False
        with self._lock:
            return self._random.random() < probability

    def _choice(self, options: tuple[Any, ...]) -> Any:
        with self._lock:
            return self._random.choice(options)

    def _count(self, kind: str) -> None:
        tag = self._tag()
        with self._lock:
            self.counts[kind] += 1
            if tag:
                self.tagged.setdefault(tag, Counter())[kind] += 1

    def _in_handler(self) -> bool:
        if not self.enabled:
            return False
        name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")  # per thread: see local/lambdas.py
        if not name:
            return False
        if self.rates.functions is not None and name not in self.rates.functions:
            return False
        return self._allow(self._tag())

    # --- hooks -------------------------------------------------------------------------------

    def hooks(self) -> list[tuple[str, str, Any]]:
        return [
            ("dynamodb", "before-call.dynamodb", self._plan_dynamodb),
            ("dynamodb", "before-send.dynamodb", self._send_dynamodb),
            ("sesv2", "before-call.sesv2.SendEmail", self._plan_ses),
            ("sesv2", "before-send.sesv2.SendEmail", self._send_ses),
        ]

    def install(self) -> None:
        """Hook the handlers' clients (created here if no handler has made them yet: the same
        cached clients the handlers then use; the stack must be started)."""
        from cancelflow.adapters import aws

        for service, event, handler in self.hooks():
            aws.client(service).meta.events.register(event, handler)

    def uninstall(self) -> None:
        from cancelflow.adapters import aws

        for service, event, handler in self.hooks():
            aws.client(service).meta.events.unregister(event, handler)

    def _plan_dynamodb(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        plan: dict[str, Any] = {}
        if self._in_handler():
            if self._draw(self.rates.throttle):
                attempts = self._choice((1, 1, 2, 99))  # 99: every attempt (the SDK gives up)
                code = self._choice(THROTTLE_CODES)
                plan["throttle"] = (attempts, code)
                self._count("throttle_surfaced" if attempts == 99 else "throttle_absorbed")
            conditional = model.name in _WRITES and _conditional(
                model.name, _json(params.get("body"))
            )
            if conditional and self._draw(self.rates.race):
                plan["race"] = True
                self._count("race")
        self._call.plan = plan

    def _send_dynamodb(self, request: Any, **_: Any) -> AWSResponse | None:
        plan = getattr(self._call, "plan", None) or {}
        throttle = plan.get("throttle")
        if throttle and throttle[0] > 0:
            plan["throttle"] = (throttle[0] - 1, throttle[1])
            body = json.dumps(
                {
                    "__type": f"com.amazonaws.dynamodb.v20120810#{throttle[1]}",
                    "message": "injected by local/faults.py",
                }
            ).encode()
            headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "fault"}
            url = request.url
            # Every before-send hook runs, and the local stack's in-process transport (moto_fixes
            # InProcess) would carry the request to moto anyway: aim this attempt nowhere, so a
            # throttled call is applied by nobody, as in DynamoDB. This answer is the one used.
            request.url = "http://throttled.invalid/"
            return AWSResponse(url, 400, headers, _Raw(body))
        if plan.pop("race", False):
            _send_twin(request)
        return None

    def _plan_ses(self, **_: Any) -> None:
        down = self._in_handler() and self._draw(self.rates.ses_down)
        if down:
            self._count("ses_down")
        self._call.ses_down = down

    def _send_ses(self, request: Any, **_: Any) -> None:
        if getattr(self._call, "ses_down", False):
            raise EndpointConnectionError(endpoint_url=request.url)


def _json(body: Any) -> Any:
    try:
        return json.loads(body) if isinstance(body, bytes | str) else body
    except ValueError:
        return None


def _conditional(operation: str, body: Any) -> bool:
    """Whether a write carries a condition (a twin of an unconditional write is not a race)."""
    if not isinstance(body, dict):
        return False
    if operation != "TransactWriteItems":
        return "ConditionExpression" in body
    return any(
        "ConditionExpression" in part
        for item in body.get("TransactItems", [])
        for part in item.values()
        if isinstance(part, dict)
    )


def _send_twin(request: Any) -> None:
    """The same signed request, sent first (moto does not check that a signature is fresh)."""
    body = request.body
    if hasattr(body, "read"):
        position = body.tell()
        data = body.read()
        body.seek(position)
    else:
        data = body.encode() if isinstance(body, str) else body
    twin = urllib.request.Request(  # noqa: S310 (the local moto endpoint)
        request.url, data=data, method=request.method, headers=dict(request.headers.items())
    )
    try:
        with urllib.request.urlopen(twin, timeout=10) as answer:  # noqa: S310 (local)
            answer.read()
    except OSError:
        pass  # an HTTPError (the twin lost a race of its own) or moto busy: the twin is gone
