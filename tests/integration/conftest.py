"""One embedded stack per test process: moto, the real state machines, the API, the sandbox.

Tests talk to it as a shop would (HTTP to the API) and look in as an operator would (the
sandbox's state, the execution history, the mail folder).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local.stack import LocalStack

TERMINAL = {"SUCCEEDED", "REJECTED", "FAILED", "NEEDS_REVIEW"}


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


def http(
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> Answer:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Content-Type": "application/json"} | (headers or {}),
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, text, head = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        status, text, head = error.code, error.read(), dict(error.headers)
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = text.decode()
    return Answer(status, parsed, head)


class Sandbox:
    def __init__(self, url: str) -> None:
        self.url = url

    def approve(self, amount: int = 15000, **fields: Any) -> dict[str, Any]:
        answer = http(
            "POST",
            f"{self.url}/_sandbox/payments",
            {"amount": amount, "product_name": "오가닉 티셔츠", "buyer_email": "kim@example.com"}
            | fields,
        )
        assert answer.status == 201, answer.body
        return answer.body

    def state(self, tno: str) -> dict[str, Any]:
        return http("GET", f"{self.url}/_sandbox/payments/{tno}").body

    def fault(self, tno: str, mode: str, path: str = "cancel", **fields: Any) -> None:
        answer = http(
            "POST", f"{self.url}/_sandbox/faults", {"tno": tno, "path": path, "mode": mode} | fields
        )
        assert answer.status == 201, answer.body

    def calls(self, tno: str, path: str = "cancel") -> list[dict[str, Any]]:
        return [
            c for c in http("GET", f"{self.url}/_sandbox/calls?path={path}").body if c["tno"] == tno
        ]


class ShopClient:
    """A shop's back office, holding its API key."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.auth = {"Authorization": f"Bearer {key}"}

    def register(self, payment: dict[str, Any]) -> Answer:
        fields = (
            "tno",
            "order_id",
            "amount",
            "tax_free_amount",
            "method",
            "product_name",
            "buyer_email",
            "buyer_name",
            "approved_at",
            "escrow",
            "items",
        )
        return http(
            "POST",
            f"{self.url}/v1/payments",
            {k: payment[k] for k in fields if k in payment},
            self.auth,
        )

    def cancel(
        self, tno: str, body: dict[str, Any] | None = None, key: str | None = None
    ) -> Answer:
        headers = self.auth | {"Idempotency-Key": key or str(uuid.uuid4())}
        return http(
            "POST",
            f"{self.url}/v1/payments/{tno}/cancellations",
            {"reason_code": "CHANGE_OF_MIND", "reason": "단순 변심"} if body is None else body,
            headers,
        )

    def payment(self, tno: str) -> dict[str, Any]:
        answer = http("GET", f"{self.url}/v1/payments/{tno}", headers=self.auth)
        assert answer.status == 200, answer.body
        return answer.body

    def cancellation(self, cancellation_id: str) -> Answer:
        return http("GET", f"{self.url}/v1/cancellations/{cancellation_id}", headers=self.auth)

    def outcome(self, cancellation_id: str, timeout: float = 60) -> dict[str, Any]:
        """Poll the cancellation until it reaches a terminal status, as a shop would."""
        deadline = time.monotonic() + timeout
        while True:
            answer = self.cancellation(cancellation_id)
            assert answer.status == 200, answer.body
            if answer.body["status"] in TERMINAL or time.monotonic() > deadline:
                return answer.body
            time.sleep(0.05)


class Operator:
    """An operator with AWS credentials, calling the operator API signed with SigV4."""

    def __init__(self, url: str, key: str, secret: str) -> None:
        self.url = url
        self.key = key
        self.secret = secret

    def call(
        self, method: str, path: str, body: Any = None, secret: str | None = None, sign: bool = True
    ) -> Answer:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        from local.template import REGION

        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        if sign:
            request = AWSRequest(method=method, url=self.url + path, data=data, headers=headers)
            credentials = Credentials(self.key, secret or self.secret)
            SigV4Auth(credentials, "execute-api", REGION).add_auth(request)
            headers = dict(request.headers.items())
        return http(method, self.url + path, raw=data, headers=headers)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    local = LocalStack(
        state_dir=tmp_path_factory.mktemp("stack"),
        # Short waits and timeouts so unknown outcomes settle in seconds, not minutes.
        parameters={
            "ReconcileWaitSeconds": "1",
            "ReconcileMaxTries": "4",
            "KcpReadTimeoutSeconds": "3",  # loaded CI machines answer slowly
            "BillingKcpTps": "100",  # the sandbox's allowance: billing tests need no pacing
        },
        quiet=True,
    )
    local.start()
    yield local
    local.stop()


@pytest.fixture(scope="session")
def shop(stack: LocalStack) -> ShopClient:
    return ShopClient(stack.env["API_URL"], stack.env["SHOP_API_KEY"])


@pytest.fixture(scope="session")
def shop_b(stack: LocalStack) -> ShopClient:
    return ShopClient(stack.env["API_URL"], stack.env["SHOP_B_API_KEY"])


@pytest.fixture(scope="session")
def operator(stack: LocalStack) -> Operator:
    env = stack.env
    return Operator(
        env["OPERATOR_API_URL"],
        env["OPERATOR_AWS_ACCESS_KEY_ID"],
        env["OPERATOR_AWS_SECRET_ACCESS_KEY"],
    )


@pytest.fixture(scope="session")
def sandbox(stack: LocalStack) -> Sandbox:
    return Sandbox(stack.env["SANDBOX_URL"])


@pytest.fixture
def paid(shop: ShopClient, sandbox: Sandbox) -> dict[str, Any]:
    """A payment approved at KCP and registered with the shop's API."""
    payment = sandbox.approve()
    assert shop.register(payment).status == 201
    return payment


def mails_about(stack: LocalStack, outcome: dict[str, Any]) -> list[str]:
    """The emails about a cancellation, once its execution (Notify comes last) has ended, or
    (under review) once it waits at AwaitOperatorReview (its opening step sent them)."""
    if outcome["status"] == "NEEDS_REVIEW":
        waiting_for_review(stack, outcome["execution_id"])
    else:
        stack.wait_for_execution(outcome["execution_id"])
    return [m for m in stack.mail.messages() if outcome["cancellation_id"] in m]


def waiting_for_review(stack: LocalStack, execution_arn: str, timeout: float = 30) -> list[str]:
    """The execution's history once it waits at AwaitOperatorReview (its task submitted):
    the names of the states it entered."""
    sfn = stack.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while True:
        events = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        if any(e["type"] == "TaskSubmitted" for e in events) or time.monotonic() > deadline:
            return [
                e["stateEnteredEventDetails"]["name"]
                for e in events
                if "stateEnteredEventDetails" in e
            ]
        time.sleep(0.05)


# --- a real browser: Debian's chromium driven by Playwright (never its own download) -------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).is_file(), "no chromium: run make setup (it apt-get installs chromium)"
    with tempfile.TemporaryDirectory() as home, sync_playwright() as playwright:
        # chromium_sandbox=False: CI runs as root, where chromium's sandbox cannot start.
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, chromium_sandbox=False, env={"HOME": home}
        )
        yield browser
        browser.close()
