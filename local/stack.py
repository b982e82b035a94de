"""The embedded stack: moto as AWS, the real state machines, the API and the KCP sandbox.

Everything on 127.0.0.1, every resource from template.yaml. Used by `make run` (local/__main__)
and by the integration tests (one stack per test session, on free ports).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.handlers

from local.api_gateway import IamUsers, LocalApi
from local.lambdas import LocalLambdas
from local.mail import MailDrop
from local.template import ACCOUNT, REGION, ROOT, Template

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
}


@dataclass(frozen=True)
class DemoShop:
    shop_id: str
    name: str
    email: str
    site_cd: str
    language: str
    api_key: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]  # (host, port) for AF_INET
        return port


class LocalStack:
    def __init__(
        self,
        state_dir: Path = ROOT / ".local",
        ports: dict[str, int] | None = None,
        parameters: dict[str, str] | None = None,
        quiet: bool = False,
        isolate: bool = False,
        sandbox_process: bool = False,
    ) -> None:
        self.state_dir = state_dir
        self.ports = {
            "moto": 0,
            "api": 0,
            "sandbox": 0,
            "inbox": 0,
            "kcp_notify": 0,
            "operator": 0,
            "console": 0,
        } | (ports or {})
        self.parameter_overrides = parameters or {}
        self.isolate = isolate  # each function in worker processes of its own (benches)
        self.sandbox_process = sandbox_process  # the KCP sandbox in its own process (benches)
        # Tests and benches keep the handlers' logs and metrics to warnings and errors.
        self.quiet_env = (
            {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}
            if quiet
            else {}
        )
        self.mail = MailDrop(state_dir / "mail")
        self.shops: list[DemoShop] = []
        self._moto: Any = None
        self._in_process: Any = None
        self.api: LocalApi | None = None
        self.kcp_notify_api: LocalApi | None = None
        self.operator_api: LocalApi | None = None
        self.sandbox: Any = None
        self.lambdas: LocalLambdas | None = None
        self.template: Template | None = None
        self.env: dict[str, str] = {}
        self.inbox: Any = None  # the shops' webhook receiver (local/webhook_inbox.py)
        self.event_sources: Any = None  # Lambda's stream and queue pollers
        self.console: Any = None

    # --- start ---------------------------------------------------------------------------

    def start(self) -> dict[str, str]:
        from local.kcp_sandbox import KcpSandbox, SandboxProcess

        self.state_dir.mkdir(parents=True, exist_ok=True)
        moto_port = self.ports["moto"] or free_port()
        aws_url = f"http://127.0.0.1:{moto_port}"
        os.environ.update(FAKE_CREDENTIALS)
        os.environ["MOTO_PORT"] = str(moto_port)  # where the ASL interpreter calls services
        os.environ["AWS_ENDPOINT_URL"] = aws_url
        for hook in self.mail.hooks():
            botocore.handlers.BUILTIN_HANDLERS.append(hook)
        boto3.DEFAULT_SESSION = None  # new sessions pick up the hooks

        kind = SandboxProcess if self.sandbox_process else KcpSandbox
        self.sandbox = kind(port=self.ports["sandbox"])
        sandbox_url = self.sandbox.start()

        self.template = Template(
            parameters={
                "KcpBaseUrl": sandbox_url,
                "ReconcileWaitSeconds": "1",
                "ReconcileMaxTries": "3",
                "KcpReadTimeoutSeconds": "3",
                # Throttling as deployed, with limits no test, bench or `make run` user reaches
                # (tests/integration/test_rate_limits.py runs its own API with low ones).
                "ApiRateLimit": "100000",
                "ApiBurstLimit": "100000",
                "ShopRateLimit": "100000",
                "ShopBurstLimit": "100000",
                # Webhooks to the local inbox (loopback, plain HTTP), retried quickly.
                "WebhookAllowLoopback": "true",
                "WebhookRetryBaseSeconds": "2",
                # KCP's notifications come from the sandbox, on this machine.
                "KcpNotifySourceIps": "127.0.0.1/32",
            }
            | self.parameter_overrides
        )
        self.lambdas = LocalLambdas(
            self.template,
            extra_env={"POWERTOOLS_TRACE_DISABLED": "1"} | self.quiet_env,
            isolate=self.isolate,
            mail_dir=self.mail.folder,
        )
        self.lambdas.install()
        self._start_moto(moto_port)
        self._create_resources()
        from local.event_sources import EventSources
        from local.webhook_inbox import LocalInbox

        self.event_sources = EventSources(self.template, self.lambdas, self.client)
        self.event_sources.start()
        self.inbox = LocalInbox(port=self.ports["inbox"])
        self.inbox.start()

        self.api = LocalApi(self.template, self.lambdas)
        api_url = self.api.start(port=self.ports["api"])
        # The operator API is IAM-authorised: one local operator's keys, checked as SigV4.
        operator_key = "AKIALOCAL" + secrets.token_hex(6).upper()
        operator_secret = secrets.token_urlsafe(30)
        operator_arn = f"arn:aws:iam::{ACCOUNT}:user/local-operator"
        self.operator_api = LocalApi(
            self.template,
            self.lambdas,
            "OperatorApi",
            IamUsers({operator_key: (operator_secret, operator_arn)}),
        )
        operator_url = self.operator_api.start(port=self.ports["operator"])
        self.kcp_notify_api = LocalApi(self.template, self.lambdas, api_id="KcpNotifyApi")
        kcp_notify_url = self.kcp_notify_api.start(port=self.ports["kcp_notify"])
        kcp_notify_url += "/kcp/notifications"
        self._seed_shops(kcp_notify_url)
        machines = self.template.state_machines()
        self.env = {
            "API_URL": api_url,
            "SANDBOX_URL": sandbox_url,
            "KCP_NOTIFY_URL": kcp_notify_url,
            "AWS_ENDPOINT_URL": aws_url,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "CANCEL_STATE_MACHINE_ARN": next(
                m["arn"] for m in machines if m["logical_id"] == "CancelRefundStateMachine"
            ),
            "TABLE_NAME": self.template.physical_name("Ledger"),
            "MAIL_DIR": str(self.mail.folder),
            "SHOP_API_KEY": self.shops[0].api_key,
            "SHOP_B_API_KEY": self.shops[1].api_key,
            "SHOP_IDS": ",".join(s.shop_id for s in self.shops),
            "WEBHOOK_INBOX_URL": self.inbox.url,
            "OPERATOR_API_URL": operator_url,
            "OPERATOR_AWS_ACCESS_KEY_ID": operator_key,
            "OPERATOR_AWS_SECRET_ACCESS_KEY": operator_secret,
            # The same keys under the names issue 13 gives them.
            "OPERATOR_ACCESS_KEY_ID": operator_key,
            "OPERATOR_SECRET_ACCESS_KEY": operator_secret,
        }
        self.env["CONSOLE_URL"] = self._start_console()
        (self.state_dir / "stack.env").write_text(
            "".join(f"export {k}={v}\n" for k, v in self.env.items())
        )
        return self.env

    def _start_console(self) -> str:
        """The operator console (local/console), reading this stack as an operator would."""
        from cancelflow.adapters.dynamodb.store import DynamoStore
        from local.console import Console

        assert self.template
        store = DynamoStore(self.client("dynamodb"), self.template.physical_name("Ledger"))
        console = Console(self.env, self.client, store)
        self.console = console
        return console.start(port=self.ports["console"])

    def _start_moto(self, port: int) -> None:
        from moto.core.config import default_user_config
        from moto.server import ThreadedMotoServer

        from local import moto_fixes

        moto_fixes.install()
        # Let moto's Step Functions run the definitions (LocalStack's ASL interpreter).
        default_user_config["stepfunctions"]["execute_state_machine"] = True
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per AWS call is noise
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._moto.start()
        # This process's own AWS calls skip the socket; other processes use the server.
        self._in_process = moto_fixes.InProcess(self._moto._server.app, port)
        self._in_process.install()

    def client(self, service: str) -> Any:
        return boto3.session.Session().client(
            service, region_name=REGION, endpoint_url=os.environ["AWS_ENDPOINT_URL"]
        )

    def _create_resources(self) -> None:
        assert self.template
        ddb = self.client("dynamodb")
        for table in self.template.table_definitions():
            ddb.create_table(**table["create"])
            if table["ttl"]:
                ddb.update_time_to_live(
                    TableName=table["create"]["TableName"],
                    TimeToLiveSpecification=table["ttl"],
                )
        sfn = self.client("stepfunctions")
        for machine in self.template.state_machines():
            sfn.create_state_machine(
                name=machine["name"],
                definition=machine["definition"],
                roleArn=f"arn:aws:iam::123456789012:role/{machine['name']}",
                type=machine["type"],
            )
        s3 = self.client("s3")
        for bucket in self.template.buckets():
            s3.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
        smgr = self.client("secretsmanager")
        for name, length in self.template.generated_secrets():
            smgr.create_secret(Name=name, SecretString=secrets.token_urlsafe(length)[:length])
        sqs = self.client("sqs")
        for queue in self.template.queues():  # dead-letter queues first
            sqs.create_queue(**queue)
        ses = self.client("sesv2")
        for identity in self.template.email_identities():
            ses.create_email_identity(EmailIdentity=identity)

    def _seed_shops(self, kcp_notify_url: str) -> None:
        """Two demo shops, each with its own API key and KCP merchant at the sandbox, whose
        common notification URL (공통 URL) is the local notification API."""
        from cancelflow.adapters.dynamodb.notifications import DynamoNotifications
        from cancelflow.adapters.dynamodb.store import DynamoStore
        from cancelflow.shops.model import Shop
        from cancelflow.shops.policy import default_policy

        assert self.template
        store = DynamoStore(self.client("dynamodb"), self.template.physical_name("Ledger"))
        notifications = DynamoNotifications(
            self.client("dynamodb"), self.template.physical_name("Ledger")
        )
        prefix = self.template.parameters["KcpSecretPrefix"]
        smgr = self.client("secretsmanager")
        seeds = [
            ("demo-shop", "데모상점", "shop@demo-shop.example", "T0000", "ko"),
            ("shop-b", "B Shop", "owner@shop-b.example", "T0001", "en"),
        ]
        for shop_id, name, email, site_cd, language in seeds:
            credentials = self.sandbox.register_merchant(site_cd)
            secret_id = f"{prefix}{shop_id}"
            smgr.create_secret(Name=secret_id, SecretString=json.dumps(credentials))
            api_key = "sk_test_" + secrets.token_urlsafe(24)
            store.put_shop(Shop(shop_id, name, email, secret_id), [api_key])
            notifications.link_site(site_cd, shop_id)
            self.sandbox.set_common_url(site_cd, kcp_notify_url)
            if language != default_policy().email_language:
                policy = replace(default_policy(), email_language=language, version=2)
                store.put_policy(shop_id, policy, replaces=1, at=datetime.now(UTC))
            self.shops.append(DemoShop(shop_id, name, email, site_cd, language, api_key))

    # --- stop ----------------------------------------------------------------------------

    def stop(self) -> None:
        if self.console:
            self.console.stop()
        if self.event_sources:
            self.event_sources.stop()
        if self.inbox:
            self.inbox.stop()
        if self.api:
            self.api.stop()
        if self.kcp_notify_api:
            self.kcp_notify_api.stop()
        if self.operator_api:
            self.operator_api.stop()
        if self.sandbox:
            self.sandbox.stop()
        if self._in_process:
            self._in_process.uninstall()
        if self._moto:
            self._moto.stop()
        if self.lambdas:
            self.lambdas.uninstall()
        for hook in self.mail.hooks():
            if hook in botocore.handlers.BUILTIN_HANDLERS:
                botocore.handlers.BUILTIN_HANDLERS.remove(hook)

    # --- looking in (tests, bench, operators) --------------------------------------------

    def wait_for_execution(self, execution_arn: str, timeout: float = 30) -> dict[str, Any]:
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            answer: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
            if answer["status"] != "RUNNING" or time.monotonic() > deadline:
                return answer
            time.sleep(0.05)
