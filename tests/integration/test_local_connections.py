"""The local stack's three servers (the API, the KCP sandbox, moto) each hold 200 connections
opened at once, and answer every one: no reset, no refusal, no timeout (issue 10)."""

from __future__ import annotations

import http.client
import json
import threading
from typing import Any
from urllib.parse import urlsplit

from local.stack import LocalStack

CONNECTIONS = 200


def _all_at_once(url: str, method: str, path: str, headers: dict[str, str], body: bytes) -> list:
    """Open every connection first, then send one request on each; what each one got."""
    parts = urlsplit(url)
    opened = threading.Barrier(CONNECTIONS, timeout=60)
    answers: list[Any] = [None] * CONNECTIONS

    def one(i: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            conn.connect()
            opened.wait()  # all 200 are connected before any request is sent
            conn.request(method, path, body, headers)
            response = conn.getresponse()
            answers[i] = (response.status, response.read())
        except Exception as error:  # a reset, a refusal, a timeout: the failures looked for
            answers[i] = error
        finally:
            conn.close()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return answers


def _failures(answers: list[Any], status: int) -> list[Any]:
    return [a for a in answers if not (isinstance(a, tuple) and a[0] == status)]


def test_the_api_answers_200_connections_opened_at_once(stack: LocalStack) -> None:
    headers = {"Authorization": f"Bearer {stack.env['SHOP_API_KEY']}"}
    answers = _all_at_once(
        stack.env["API_URL"], "GET", "/v1/cancellations/cnl_000000000000000000000000", headers, b""
    )
    assert _failures(answers, 404) == []
    assert all(json.loads(body)["code"] for _, body in answers)


def test_the_kcp_sandbox_answers_200_connections_opened_at_once(stack: LocalStack) -> None:
    answers = _all_at_once(stack.env["SANDBOX_URL"], "GET", "/_sandbox/faults", {}, b"")
    assert _failures(answers, 200) == []


def test_moto_answers_200_connections_opened_at_once(stack: LocalStack) -> None:
    # A DynamoDB call as the AWS SDK sends it (moto routes by the credential scope).
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": "DynamoDB_20120810.DescribeTable",
        "Authorization": (
            f"AWS4-HMAC-SHA256 Credential=local/20260101/{stack.env['AWS_REGION']}/dynamodb/"
            "aws4_request, SignedHeaders=host, Signature=0"
        ),
    }
    body = json.dumps({"TableName": stack.env["TABLE_NAME"]}).encode()
    answers = _all_at_once(stack.env["AWS_ENDPOINT_URL"], "POST", "/", headers, body)
    assert _failures(answers, 200) == []
    assert all(json.loads(b)["Table"]["TableName"] == stack.env["TABLE_NAME"] for _, b in answers)
