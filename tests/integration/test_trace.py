"""`make trace ID=…` tells an operator one cancel's whole story from one command (issue 13)."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest

from local.log_shipping import LogShipper
from local.stack import LocalStack
from local.template import ROOT
from local.trace import Trace

from .batch_support import finished, paid, post_batch
from .billing_support import batch_key, bill, subscribe
from .conftest import Sandbox, ShopClient, mails_about

# What a deployed stack offers the trace: the operator API, Step Functions, CloudWatch Logs
# (no KCP sandbox journal, no mail folder).
LOCAL_ONLY = ("SANDBOX_URL", "MAIL_DIR", "API_URL", "SHOP_API_KEY", "SHOP_B_API_KEY")


@pytest.fixture
def functions_log_info(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The functions log every step, as on `make run` (the test stack keeps them to warnings)."""
    assert stack.lambdas
    monkeypatch.setitem(stack.lambdas.extra_env, "POWERTOOLS_LOG_LEVEL", "INFO")  # cold starts
    shipped = [  # and the warm ones
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
        and any(isinstance(h, LogShipper) for h in logger.handlers)
    ]
    levels = [logger.level for logger in shipped]
    for logger in shipped:
        logger.setLevel(logging.INFO)
    yield
    for logger, level in zip(shipped, levels, strict=True):
        logger.setLevel(level)


def test_trace_of_a_finished_cancel_names_its_record_states_kcp_call_emails_and_log_lines(
    stack: LocalStack, shop: ShopClient, sandbox: Sandbox, paid: dict, functions_log_info: None
) -> None:
    accepted = shop.cancel(paid["tno"]).body
    outcome = shop.outcome(accepted["cancellation_id"])
    assert len(mails_about(stack, outcome)) == 2  # the execution has ended

    text = "\n".join(Trace(stack.env).lines(accepted["cancellation_id"]))

    sections = [line for line in text.splitlines() if line.startswith("== ")]
    assert [s.split(" ")[1] for s in sections] == [
        "cancellation",
        "execution",
        "KCP",
        "emails",
        "log",
    ]
    assert '"status": "SUCCEEDED"' in text
    assert "status SUCCEEDED" in text
    for state in ("Decide", "SendCancel", "Settle", "Notify"):
        assert f"→ {state} (" in text
    assert "path taken: Decide → SendCancel → Settle → Notify" in text
    assert '"cancellation_id":"' + accepted["cancellation_id"] in text  # a state's input
    kcp = [line for line in text.splitlines() if line.strip().endswith("answer 0000")]
    assert len(kcp) == 1 and "cancel" in kcp[0] and paid["tno"] in kcp[0]  # KCP's journal
    logged = [line for line in text.splitlines() if "SUCCEEDED  res_cd 0000" in line]
    assert len(logged) == 1 and paid["tno"] in logged[0]  # the client's `kcp call` line
    assert "to ki***@example.com:" in text and "to sh***@demo-shop.example:" in text
    assert "To: kim@example.com" in text and "To: shop@demo-shop.example" in text
    logs = text.split("== log lines")[1]
    assert '"message":"settled"' in logs.replace(" ", "")
    assert outcome["execution_id"] in logs


def test_make_trace_of_an_unknown_id_says_so(stack: LocalStack) -> None:
    text = "\n".join(Trace(stack.env).lines("no-such-id"))
    assert "nothing here is named no-such-id" in text


def test_make_trace_without_an_id_prints_its_usage() -> None:
    done = subprocess.run(
        ["make", "-s", "-o", ".venv/bin/.installed", "trace"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable},
    )
    assert done.returncode != 0
    assert "usage: make trace ID=" in done.stdout + done.stderr


def test_trace_reads_a_cancel_from_what_a_deployed_stack_has_operator_api_executions_logs(
    stack: LocalStack, shop: ShopClient, paid: dict, functions_log_info: None
) -> None:
    accepted = shop.cancel(paid["tno"]).body
    outcome = shop.outcome(accepted["cancellation_id"])
    assert len(mails_about(stack, outcome)) == 2
    deployed_like = {k: v for k, v in stack.env.items() if k not in LOCAL_ONLY}

    text = "\n".join(Trace(deployed_like).lines(accepted["cancellation_id"]))

    assert '"status": "SUCCEEDED"' in text and '"shop_id": "demo-shop"' in text
    assert "path taken: Decide → SendCancel → Settle → Notify" in text
    kcp = text.split("== KCP calls")[1].split("== emails")[0]
    assert "SUCCEEDED  res_cd 0000" in kcp and paid["tno"] in kcp
    assert "what KCP received" not in kcp
    emails = text.split("== emails")[1].split("== log lines")[0]
    assert emails.count("  to ") == 2 and "ki***@example.com" in emails
    assert "kim@example.com" not in emails  # the log lines mask the address


def test_trace_of_a_subscription_shows_it_with_its_charges_run_kcp_call_and_receipt(
    stack: LocalStack, shop: ShopClient, functions_log_info: None
) -> None:
    url = stack.env["SANDBOX_URL"]
    day = "2041-06-11"
    sub = subscribe(shop, batch_key(url), day).body["subscription_id"]
    bill(stack, day)

    text = "\n".join(Trace(stack.env).lines(sub))

    sections = [line.split(" ")[1] for line in text.splitlines() if line.startswith("== ")]
    assert sections[:3] == ["subscription", "charges", "execution"]
    assert f"GET /v1/shops/demo-shop/subscriptions/{sub}" in text
    assert '"status": "SUCCEEDED"' in text.split("== charges")[1].split("== execution")[0]
    kcp = text.split("== KCP calls")[1].split("== emails")[0]
    assert "res_cd 0000" in kcp and f"{sub}-" in kcp
    assert "to " in text.split("== emails")[1].split("== log lines")[0]


def test_trace_of_a_cancellation_batch_shows_its_counts_lanes_and_kcp_calls(
    stack: LocalStack, shop: ShopClient, sandbox: Sandbox, functions_log_info: None
) -> None:
    tnos = paid(shop, sandbox, 2)
    accepted = post_batch(shop, {"items": [{"tno": t, "reason_code": "DEFECTIVE"} for t in tnos]})
    done = finished(shop, accepted.body["id"])
    stack.wait_for_execution(_batch_execution(stack, done["id"]))

    text = "\n".join(Trace(stack.env).lines(done["id"]))

    sections = [line.split(" ")[1] for line in text.splitlines() if line.startswith("== ")]
    assert sections == ["cancellation", "execution", "KCP", "log"], sections
    assert '"SUCCEEDED": 2' in text and '"status": "COMPLETED"' in text
    assert "path taken: Begin → Busy? → Lanes → Finish" in text
    assert "2 iteration(s): succeeded 2" in text  # the lanes: one per item here
    kcp = [line for line in text.splitlines() if line.strip().endswith("answer 0000")]
    assert sorted(t for t in tnos if any(t in line for line in kcp)) == sorted(tnos)


def _batch_execution(stack: LocalStack, batch_id: str) -> str:
    assert stack.template
    [arn] = [
        m["arn"]
        for m in stack.template.state_machines()
        if m["logical_id"] == "CancellationBatchStateMachine"
    ]
    return arn.replace(":stateMachine:", ":execution:") + f":{batch_id}"
