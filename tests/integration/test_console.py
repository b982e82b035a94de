"""An operator opens the console of the local stack in a real browser (Debian's chromium, driven
by Playwright) and finds what the API did: the cancel in the list, the path it took, the review
case with its evidence, the email that went out. Screenshots land in .local/screenshots/console/.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from local.console import graph
from local.stack import LocalStack

from .batch_support import finished, paid, post_batch
from .billing_support import batch_key, bill, subscribe
from .conftest import Sandbox, ShopClient

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / ".local" / "screenshots" / "console"
# Without the background-networking flags chromium keeps dialling out (a closed network refuses).
HAPPY_PATH = ["Decide", "SendCancel", "Settle", "Notify"]  # README: how a cancel runs


@pytest.fixture
def page(stack: LocalStack, browser: Browser) -> Iterator[Page]:
    """A page on the console that fails the test on anything loaded from outside the stack."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    outside: list[str] = []
    page.on(
        "request",
        lambda r: r.url.startswith(stack.env["CONSOLE_URL"]) or outside.append(r.url),
    )
    yield page
    page.close()
    assert outside == [], f"the console loaded from outside the stack: {outside}"


def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def _state(page: Page, name: str) -> Any:
    """A state's node in the graph (a Map's: its frame)."""
    return page.locator(f'#graph [id="{graph.node_id(name)}"]')


def test_a_cancel_made_through_the_api_is_listed_and_its_page_shows_the_path_it_took(
    stack: LocalStack, shop: ShopClient, paid: dict[str, Any], page: Page
) -> None:
    accepted = shop.cancel(paid["tno"]).body
    cancellation_id = accepted["cancellation_id"]
    assert shop.outcome(cancellation_id)["status"] == "SUCCEEDED"
    stack.wait_for_execution(accepted["execution_id"])

    page.goto(f"{stack.env['CONSOLE_URL']}/executions?lang=en")
    row = page.locator(f'#executions tr[data-name="{cancellation_id}"]')
    expect(row).to_be_visible()
    expect(row.locator(".outcome")).to_have_text("SUCCEEDED")
    expect(row).to_contain_text("₩15,000")
    expect(row).to_contain_text("demo-shop")
    _shot(page, "executions")

    page.get_by_placeholder("cancellation, subscription or run id, or tno").fill(paid["tno"])
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#executions tbody tr")).to_have_count(1)
    expect(row).to_be_visible()  # found by its tno

    row.get_by_role("link", name=cancellation_id).click()
    expect(page.locator("h1")).to_contain_text(cancellation_id)
    for name in HAPPY_PATH:
        expect(_state(page, name)).to_have_class(_has("taken"))
    for name in ("WaitForKcp", "Reconcile", "Busy"):
        expect(_state(page, name)).not_to_have_class(_has("taken"))
    expect(page.locator("#graph g.edge.taken")).to_have_count(len(HAPPY_PATH))  # with the start
    steps = page.locator("#timeline li.step")
    expect(steps).to_have_count(len(HAPPY_PATH))
    assert [steps.nth(i).get_attribute("data-state") for i in range(len(HAPPY_PATH))] == HAPPY_PATH
    expect(steps.first).to_contain_text("s")  # each step says how long it took
    _shot(page, "execution")
    page.locator(".columns").screenshot(path=SCREENSHOTS / "execution-graph-and-timeline.png")

    page.locator("#link-payment").click()
    expect(page.locator("#verdict")).to_have_text("✓ cancelflow and KCP agree.")
    _shot(page, "payment")


def _has(cls: str) -> re.Pattern[str]:
    """A class attribute that holds the class `cls` (among others)."""
    return re.compile(rf"(^|\s){cls}(\s|$)")


def test_a_needs_review_case_shows_its_evidence_and_the_execution_the_path_through_reconcile(
    stack: LocalStack, shop: ShopClient, sandbox: Sandbox, paid: dict[str, Any], page: Page
) -> None:
    # KCP applies the cancel but its answer is lost, and every inquiry fails: nobody can know.
    sandbox.fault(paid["tno"], "commit_then_timeout", hold_seconds=4)
    sandbox.fault(paid["tno"], "http_500", path="inquiry", times=20)
    accepted = shop.cancel(paid["tno"]).body
    cancellation_id = accepted["cancellation_id"]
    assert shop.outcome(cancellation_id)["status"] == "NEEDS_REVIEW"

    page.goto(f"{stack.env['CONSOLE_URL']}/reviews?lang=en")
    case = page.locator(f"#case-{cancellation_id}")
    expect(case).to_be_visible()
    expect(case.locator(".reasons")).to_contain_text("INQUIRY_FAILED")
    expect(case.locator(".reasons")).to_contain_text("could not be confirmed")
    expect(case.locator("table.attempts tbody tr").first).to_contain_text("CANCEL")
    expect(case.locator("table.attempts")).to_contain_text("UNKNOWN")
    expect(case.locator("table.calls")).to_contain_text("applied; never answered")
    # KCP took the money back; cancelflow still holds it open: the balance differs, flagged.
    expect(case.locator('table.sides tr[data-field="balance"]')).to_have_class(_has("differs"))
    if not stack.env.get("OPERATOR_API_URL"):
        expect(case.get_by_role("button", name="Send the decision")).to_be_disabled()
        expect(case.get_by_label("APPLIED at KCP (refunded)")).to_be_disabled()
        expect(page.locator("#no-operator-api")).to_contain_text("OPERATOR_API_URL")
    _shot(page, "reviews")

    case.get_by_role("link", name=cancellation_id).click()
    # The same execution waits for the operator, at the state named for what it waits on.
    for name in ("SendCancel", "WaitForKcp", "Reconcile"):
        expect(_state(page, name)).to_have_class(_has("taken"))
    expect(_state(page, "AwaitOperatorReview")).to_have_class(_has("waiting"))
    expect(_state(page, "Settle")).not_to_have_class(_has("taken"))
    expect(page.locator('#timeline li[data-state="Reconcile"]')).to_have_count(
        int(stack.template.parameters["ReconcileMaxTries"])  # type: ignore[union-attr]
    )
    _shot(page, "execution-review")


def test_a_review_decided_from_the_page_reaches_the_operator_api(
    stack: LocalStack, shop: ShopClient, sandbox: Sandbox, paid: dict[str, Any], page: Page
) -> None:
    if not stack.env.get("OPERATOR_API_URL"):
        pytest.skip(
            "the stack has no operator API yet (OPERATOR_API_URL): wt-operators builds "
            "POST /v1/reviews/{id}/decision; the form posts there once the lead wires it"
        )
    sandbox.fault(paid["tno"], "commit_then_timeout", hold_seconds=4)
    sandbox.fault(paid["tno"], "http_500", path="inquiry", times=20)
    accepted = shop.cancel(paid["tno"]).body
    cancellation_id = accepted["cancellation_id"]
    assert shop.outcome(cancellation_id)["status"] == "NEEDS_REVIEW"

    page.goto(f"{stack.env['CONSOLE_URL']}/reviews?lang=en")
    case = page.locator(f"#case-{cancellation_id}")
    case.get_by_label("APPLIED at KCP (refunded)").check()
    case.locator("textarea[name=note]").fill("KCP admin shows the cancel at 14:02")
    case.get_by_role("button", name="Send the decision").click()
    expect(page.locator(".banner.good")).to_contain_text(cancellation_id)
    assert shop.outcome(cancellation_id)["status"] == "SUCCEEDED"
    # The page answered as the decision left; once the execution settled, the queue is empty of it.
    page.goto(f"{stack.env['CONSOLE_URL']}/reviews?lang=en")
    expect(page.locator(f"#case-{cancellation_id}")).to_have_count(0)


def test_the_email_that_went_out_is_shown_as_its_recipient_reads_it(
    stack: LocalStack, shop: ShopClient, paid: dict[str, Any], page: Page
) -> None:
    accepted = shop.cancel(paid["tno"]).body
    shop.outcome(accepted["cancellation_id"])
    stack.wait_for_execution(accepted["execution_id"])  # Notify is the last step

    query = urllib.parse.urlencode({"q": accepted["cancellation_id"], "lang": "ko"})
    page.goto(f"{stack.env['CONSOLE_URL']}/mail?{query}")
    expect(page.locator(".inbox li")).to_have_count(2)  # the customer's and the shop's
    page.locator(".inbox li").filter(has_text=paid["buyer_email"]).get_by_role("link").click()
    letter = page.locator("#letter")
    expect(letter.locator(".facts")).to_contain_text(paid["buyer_email"])
    # As a mail client shows it: the HTML part, in a sandboxed frame; the text part beside it.
    expect(page.frame_locator("#html-part").locator("body")).to_contain_text("15,000")
    expect(letter.locator(".body")).to_contain_text("15,000")
    _shot(page, "mail")


def test_a_billing_run_shows_its_summary_and_each_charge(
    stack: LocalStack, shop: ShopClient, page: Page
) -> None:
    day = "2044-08-08"  # a day no other test bills
    url = stack.env["SANDBOX_URL"]
    paying = subscribe(shop, batch_key(url), day).body["subscription_id"]
    declined = subscribe(shop, batch_key(url, decline="INSUFFICIENT_BALANCE"), day).body
    summary = bill(stack, day)
    assert (summary["charged"], summary["declined"]) == (1, 1)
    run = summary["execution_arn"].rsplit(":", 1)[-1]

    page.goto(f"{stack.env['CONSOLE_URL']}/billing?lang=en")
    article = page.locator("article.run").filter(has=page.get_by_role("link", name=run))
    expect(article.locator(".figure").filter(has_text="charged")).to_contain_text("1")
    expect(article.locator(".figure").filter(has_text="declined")).to_contain_text("1")
    charges = article.locator("table.charges tbody tr")
    expect(charges).to_have_count(2)
    expect(charges.filter(has_text=paying)).to_contain_text("CHARGED")
    expect(charges.filter(has_text=declined["subscription_id"])).not_to_contain_text("CHARGED")
    _shot(page, "billing")

    article.get_by_role("link", name=run).click()
    for name in ("Begin", "FindDue", "ChargePage", "Tally", "Done"):
        expect(_state(page, name)).to_have_class(_has("taken"))
    _shot(page, "execution-billing")

    page.goto(f"{stack.env['CONSOLE_URL']}/executions?q={paying}")  # found by a subscription id
    expect(page.locator("#executions tbody tr")).to_have_count(1)
    expect(page.locator(f'#executions tr[data-name="{run}"]')).to_contain_text("charged 1")


def test_the_console_is_on_127_0_0_1_and_in_stack_env(stack: LocalStack) -> None:
    url = urllib.parse.urlsplit(stack.env["CONSOLE_URL"])
    assert url.hostname == "127.0.0.1"
    assert f"CONSOLE_URL={stack.env['CONSOLE_URL']}" in (stack.state_dir / "stack.env").read_text()


def test_a_refund_account_number_is_masked_on_every_page_an_operator_opens(
    stack: LocalStack, shop: ShopClient, sandbox: Sandbox, page: Page
) -> None:
    payment = sandbox.approve(method="VIRTUAL_ACCOUNT")
    assert shop.register(payment).status == 201
    account = {"bank_code": "BK04", "number": "110-123-456789", "holder": "김하늘"}
    body = {"reason_code": "CHANGE_OF_MIND", "refund_account": account}
    accepted = shop.cancel(payment["tno"], body).body
    assert shop.outcome(accepted["cancellation_id"])["status"] == "SUCCEEDED"
    stack.wait_for_execution(accepted["execution_id"])

    page.goto(
        f"{stack.env['CONSOLE_URL']}/execution?arn={urllib.parse.quote(accepted['execution_id'])}"
    )
    pages = {"execution": page.content()}
    page.locator("#link-cancellation").click()
    expect(page.locator("pre.record")).to_contain_text("6789")  # the last four tell accounts apart
    pages["cancellation"] = page.content()
    page.go_back()
    page.locator("#link-payment").click()
    pages["payment"] = page.content()
    for name, html in pages.items():
        assert "110-123-456789" not in html and "123-456789" not in html, name


class _OperatorApi:
    """A stand-in for the operator API that keeps what it was sent (the real one: wt-operators)."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"status": "SUCCEEDED"}')

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _signature_holds(request: dict[str, Any], url: str, key: str, secret: str) -> bool:
    """Sign the received request again with the operator's keys, at its own X-Amz-Date."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    headers = {k: v for k, v in request["headers"].items() if k.lower() != "authorization"}
    again = AWSRequest(method="POST", url=url + request["path"], data=request["body"])
    for name in ("Content-Type", "X-Amz-Date"):
        again.headers[name] = headers[name]
    again.context["timestamp"] = headers["X-Amz-Date"]
    auth = SigV4Auth(Credentials(key, secret), "execute-api", "ap-northeast-2")
    canonical = auth.canonical_request(again)
    expected = auth.signature(auth.string_to_sign(again, canonical), again)
    return request["headers"]["Authorization"].endswith(f"Signature={expected}")


def test_the_decide_form_sends_the_operator_apis_decision_signed_with_the_operator_keys(
    stack: LocalStack,
    shop: ShopClient,
    sandbox: Sandbox,
    paid: dict[str, Any],
    page: Page,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sandbox.fault(paid["tno"], "commit_then_timeout", hold_seconds=4)
    sandbox.fault(paid["tno"], "http_500", path="inquiry", times=20)
    cancellation_id = shop.cancel(paid["tno"]).body["cancellation_id"]
    assert shop.outcome(cancellation_id)["status"] == "NEEDS_REVIEW"
    api = _OperatorApi()
    key, secret = "AKIAOPERATOREXAMPLE", "operator-secret-example"
    for name, value in (
        ("OPERATOR_API_URL", api.url),
        ("OPERATOR_AWS_ACCESS_KEY_ID", key),
        ("OPERATOR_AWS_SECRET_ACCESS_KEY", secret),
    ):
        monkeypatch.setitem(stack.console.env, name, value)
    try:
        page.goto(f"{stack.env['CONSOLE_URL']}/reviews?lang=en")
        case = page.locator(f"#case-{cancellation_id}")
        case.get_by_label("APPLIED at KCP (refunded)").check()
        case.locator("textarea[name=note]").fill("KCP 관리자 화면에서 취소 확인")
        case.get_by_role("button", name="Send the decision").click()
        expect(page.locator(".banner.good")).to_contain_text(cancellation_id)
    finally:
        api.close()
    [request] = api.received
    assert request["path"] == f"/v1/reviews/{cancellation_id}/decision"
    assert json.loads(request["body"]) == {
        "outcome": "APPLIED",
        "note": "KCP 관리자 화면에서 취소 확인",
    }
    assert request["headers"]["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={key}/")
    assert "/ap-northeast-2/execute-api/aws4_request" in request["headers"]["Authorization"]
    assert _signature_holds(request, api.url, key, secret)
    assert not _signature_holds(request, api.url, key, "another-secret")


def test_a_cancellation_batch_is_listed_with_its_counts_and_its_lanes(
    stack: LocalStack, shop: ShopClient, sandbox: Sandbox, page: Page
) -> None:
    tnos = paid(shop, sandbox, 2)
    accepted = post_batch(shop, {"items": [{"tno": t, "reason_code": "DEFECTIVE"} for t in tnos]})
    done = finished(shop, accepted.body["id"])
    assert done["counts"]["SUCCEEDED"] == 2, done

    page.goto(f"{stack.env['CONSOLE_URL']}/executions?q={done['id']}")
    row = page.locator(f'#executions tr[data-name="{done["id"]}"]')
    expect(row).to_contain_text("SUCCEEDED 2")
    row.get_by_role("link", name=done["id"]).click()
    for name in ("Begin", "Lanes", "Finish"):
        expect(_state(page, name)).to_have_class(_has("taken"))
    _shot(page, "execution-batch")
