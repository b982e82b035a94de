"""Wiring: the adapters a Lambda needs, built once per container from its environment.

Handlers import this; the domain modules never do.
"""

from __future__ import annotations

import json
import os
import time
from functools import cache
from typing import TYPE_CHECKING, Any

from cancelflow.adapters import aws
from cancelflow.kernel.clock import SystemClock

if TYPE_CHECKING:  # each Lambda imports only the adapters it uses: cold starts stay short
    from cancelflow.adapters.dynamodb.notifications import DynamoNotifications
    from cancelflow.adapters.dynamodb.store import DynamoStore
    from cancelflow.adapters.s3 import S3Exporter
    from cancelflow.adapters.ses import SesMailer
    from cancelflow.adapters.stepfunctions import StepFunctionsWaits
    from cancelflow.cancellations.model import Cancellation
    from cancelflow.kcp.port import Gateway
    from cancelflow.shops.model import Shop

clock = SystemClock()


def setting(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise RuntimeError(f"missing setting {name}")
    return value


@cache
def store() -> DynamoStore:
    from cancelflow.adapters.dynamodb.store import DynamoStore

    return DynamoStore(aws.client("dynamodb"), setting("TABLE_NAME"))


@cache
def notifications() -> DynamoNotifications:
    from cancelflow.adapters.dynamodb.notifications import DynamoNotifications

    return DynamoNotifications(aws.client("dynamodb"), setting("TABLE_NAME"))


@cache
def mailer() -> SesMailer:
    from cancelflow.adapters.ses import SesMailer

    return SesMailer(aws.client("sesv2"), setting("MAIL_FROM"))


@cache
def exporter() -> S3Exporter:
    from cancelflow.adapters.s3 import S3Exporter

    return S3Exporter(aws.client("s3"), setting("EXPORT_BUCKET"))


@cache
def cursor_key() -> bytes:
    """The key that signs page cursors (a generated secret, read once per container)."""
    secret = aws.client("secretsmanager").get_secret_value(SecretId=setting("CURSOR_SECRET_ID"))
    return str(secret["SecretString"]).encode()


def workflow_config() -> dict[str, int]:
    """Timing knobs the state machine reads from its input (template parameters)."""
    return {
        "reconcile_wait_seconds": int(setting("RECONCILE_WAIT_SECONDS", "5")),
        "reconcile_max_tries": int(setting("RECONCILE_MAX_TRIES", "3")),
        "review_timeout_seconds": int(setting("REVIEW_TIMEOUT_SECONDS", "1209600")),
        "review_heartbeat_seconds": int(setting("REVIEW_HEARTBEAT_SECONDS", "3600")),
    }


@cache
def review_waits() -> StepFunctionsWaits:
    """The executions waiting on reviews, by their task tokens."""
    from cancelflow.adapters.stepfunctions import StepFunctionsWaits

    return StepFunctionsWaits(aws.client("stepfunctions"))


class StepFunctionsStarter:
    """Starts the CancelRefund execution named by the cancellation id (a WorkflowStarter)."""

    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self._sfn = client
        self._arn = state_machine_arn

    def execution_arn(self, name: str) -> str:
        return self._arn.replace(":stateMachine:", ":execution:") + f":{name}"

    def start(self, cancellation: Cancellation) -> str:
        payload = {
            "shop_id": cancellation.shop_id,
            "cancellation_id": cancellation.cancellation_id,
            "tno": cancellation.tno,
            "config": workflow_config(),
        }
        try:
            answer = self._sfn.start_execution(
                stateMachineArn=self._arn,
                name=cancellation.cancellation_id,
                input=json.dumps(payload, sort_keys=True),
            )
            return str(answer["executionArn"])
        except self._sfn.exceptions.ExecutionAlreadyExists:
            return self.execution_arn(cancellation.cancellation_id)


@cache
def starter() -> StepFunctionsStarter:
    return StepFunctionsStarter(aws.client("stepfunctions"), setting("CANCEL_STATE_MACHINE_ARN"))


_CREDENTIALS_TTL = 300.0  # seconds a warm container trusts its cached KCP credentials
_gateways: dict[str, tuple[float, Gateway]] = {}


def gateway_for(shop: Shop) -> Gateway:
    """The shop's KCP client, its credentials read by reference from Secrets Manager."""
    from cancelflow.adapters.kcp import KcpGateway
    from cancelflow.kcp.port import KcpCredentials

    cached = _gateways.get(shop.shop_id)
    if cached and time.monotonic() - cached[0] < _CREDENTIALS_TTL:
        return cached[1]
    secret = aws.client("secretsmanager").get_secret_value(SecretId=shop.kcp_secret_id)
    doc = json.loads(secret["SecretString"])
    credentials = KcpCredentials(
        site_cd=doc["site_cd"],
        cert_pem=doc["cert_pem"],
        private_key_pem=doc["private_key_pem"],
        key_password=doc["key_password"],
        batch_group_id=doc.get("batch_group_id", ""),
    )
    gateway = KcpGateway(
        credentials,
        setting("KCP_BASE_URL"),
        connect_timeout=float(setting("KCP_CONNECT_TIMEOUT", "3")),
        read_timeout=float(setting("KCP_READ_TIMEOUT", "10")),
    )
    _gateways[shop.shop_id] = (time.monotonic(), gateway)
    return gateway


def shop(shop_id: str) -> Shop:
    found = store().get_shop(shop_id)
    if found is None:
        raise LookupError(f"shop {shop_id} not found")
    return found


# --- subscription billing (issue 6) ------------------------------------------------------


@cache
def billing_store() -> Any:
    """The subscriptions' DynamoBilling on the same table."""
    from cancelflow.adapters.dynamodb.subscriptions import DynamoBilling

    return DynamoBilling(aws.client("dynamodb"), setting("TABLE_NAME"))


@cache
def batch_keys() -> Any:
    """Where batch keys are sealed: a per-shop data key in Secrets Manager under a prefix."""
    from cancelflow.adapters.secrets import SecretsVault

    return SecretsVault(aws.client("secretsmanager"), setting("BATCH_KEY_SECRET_PREFIX"))


def billing_settings() -> Any:
    """The billing run's defaults, from the template parameters in the environment."""
    from cancelflow.subscriptions.billing import RunSettings
    from cancelflow.subscriptions.schedule import parse_retry_days

    return RunSettings(
        max_concurrency=int(setting("BILLING_MAX_CONCURRENCY", "5")),
        tps=float(setting("BILLING_KCP_TPS", "5")),
        retry_days=parse_retry_days(setting("DUNNING_RETRY_DAYS", "1,3,7")),
        reconcile_wait_seconds=int(setting("RECONCILE_WAIT_SECONDS", "5")),
        reconcile_max_tries=int(setting("RECONCILE_MAX_TRIES", "3")),
        page_size=int(setting("BILLING_PAGE_SIZE", "500")),
        days_back=int(setting("BILLING_DAYS_BACK", "7")),
    )


def execution_running(execution_arn: str) -> bool:
    """Whether a Step Functions execution is still running (an unknown one is not)."""
    sfn = aws.client("stepfunctions")
    try:
        return bool(sfn.describe_execution(executionArn=execution_arn)["status"] == "RUNNING")
    except sfn.exceptions.ExecutionDoesNotExist:
        return False


def charge_deps(shop_id: str) -> Any:
    """What charging a shop's subscriptions needs: its KCP client, mailer, email language."""
    from cancelflow.subscriptions.billing import ChargeDeps

    found = shop(shop_id)
    return ChargeDeps(
        store=billing_store(),
        vault=batch_keys(),
        gateway=gateway_for(found),
        mailer=mailer(),
        clock=clock,
        shop=found,
        language=store().get_policy(shop_id).email_language,
    )


# --- webhooks (issue 15) -------------------------------------------------------------------


@cache
def webhook_store() -> Any:
    from cancelflow.adapters.dynamodb.webhooks import DynamoWebhooks

    return DynamoWebhooks(aws.client("dynamodb"), setting("TABLE_NAME"))


@cache
def webhook_poster() -> Any:
    from cancelflow.adapters.webhook_http import HttpPoster

    return HttpPoster(
        allow_loopback=setting("WEBHOOK_ALLOW_LOOPBACK", "false") == "true",
        read_timeout=float(setting("WEBHOOK_TIMEOUT_SECONDS", "10")),
    )


@cache
def webhook_queue() -> Any:
    from cancelflow.adapters.sqs import SqsQueue

    return SqsQueue(aws.client("sqs"), setting("WEBHOOK_QUEUE_URL"))


def webhook_backoff_seconds() -> float:
    """The first retry's wait; each next one doubles (a template parameter: tests use ~1 s)."""
    return float(setting("WEBHOOK_RETRY_BASE_SECONDS", "30"))


@cache
def failure_counts() -> Any:
    """The failure-case report's counters (adapters/dynamodb/failures.py) on the same table."""
    from cancelflow.adapters.dynamodb.failures import DynamoFailureCounts

    return DynamoFailureCounts(aws.client("dynamodb"), setting("TABLE_NAME"))


# --- bulk cancels (issue 16) ---------------------------------------------------------------


@cache
def batches() -> Any:
    from cancelflow.adapters.dynamodb.batches import DynamoBatches

    return DynamoBatches(aws.client("dynamodb"), setting("TABLE_NAME"))


class BatchStarter(StepFunctionsStarter):
    """Starts the CancellationBatch execution named by the batch id (a BatchStarter)."""

    def start(self, batch: Any) -> str:  # type: ignore[override]
        payload = {"shop_id": batch.shop_id, "batch_id": batch.batch_id}
        try:
            answer = self._sfn.start_execution(
                stateMachineArn=self._arn, name=batch.batch_id, input=json.dumps(payload)
            )
            return str(answer["executionArn"])
        except self._sfn.exceptions.ExecutionAlreadyExists:
            return self.execution_arn(batch.batch_id)


@cache
def batch_starter() -> BatchStarter:
    return BatchStarter(aws.client("stepfunctions"), setting("BATCH_STATE_MACHINE_ARN"))


def batch_tps() -> float:
    """The KCP calls per second a batch may make: the merchant's allowance for bulk cancels."""
    return float(setting("BATCH_KCP_TPS", "5"))


def batch_max_lanes() -> int:
    return int(setting("BATCH_MAX_CONCURRENCY", "20"))


def lane_deps(shop_id: str) -> Any:
    """What a batch's lane needs: the shop's KCP client, the stores, mailer and email language,
    and the ordinary cancel workflow for an item whose KCP answer is unknown."""
    from cancelflow.batches.service import LaneDeps

    found = shop(shop_id)
    return LaneDeps(
        batches=batches(),
        store=store(),
        gateway=gateway_for(found),
        mailer=mailer(),
        clock=clock,
        shop=found,
        handoff=starter(),
        language=store().get_policy(shop_id).email_language,
    )
