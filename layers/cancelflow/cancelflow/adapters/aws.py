"""The one way to build AWS clients. The endpoint comes from the environment
(AWS_ENDPOINT_URL, read by boto3 itself), so the same code runs on AWS and the local stack."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionError, ReadTimeoutError

_CONFIG = Config(
    connect_timeout=2,
    read_timeout=10,
    retries={"mode": "standard", "max_attempts": 3},
)


@cache
def client(service: str) -> Any:
    """A client reused across warm invocations (clients are thread-safe)."""
    return boto3.session.Session().client(service, config=_CONFIG)


# Error codes AWS answers when it is busy, not when the request is wrong.
_TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
    }
)


def transient(error: BaseException) -> bool:
    """A throttle or an unreachable AWS endpoint, however deep in the cause chain."""
    while error is not None:
        if isinstance(error, (ConnectionError, ReadTimeoutError)):
            return True
        if isinstance(error, ClientError):
            return error.response.get("Error", {}).get("Code", "") in _TRANSIENT_CODES
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    return False
