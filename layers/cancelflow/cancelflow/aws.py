"""The one way to build AWS clients. The endpoint comes from the environment
(AWS_ENDPOINT_URL, read by boto3 itself), so the same code runs on AWS and the local stack."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(
    connect_timeout=2,
    read_timeout=10,
    retries={"mode": "standard", "max_attempts": 3},
)


@cache
def client(service: str) -> Any:
    """A client reused across warm invocations (clients are thread-safe)."""
    return boto3.session.Session().client(service, config=_CONFIG)
