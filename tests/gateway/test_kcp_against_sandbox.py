"""The KCP client against the local KCP sandbox over real HTTP: answers, refusals and faults."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
import urllib3

from cancelflow.adapters.kcp import KST, KcpGateway
from cancelflow.kcp.codes import CATALOGUE, SANDBOX_CODES
from cancelflow.kcp.port import (
    CancelOrder,
    ChargeOrder,
    KcpCredentials,
    Outcome,
    PayMethod,
    RefundAccount,
)
from local.kcp_sandbox import RES_CODES, KcpSandbox

ACCOUNT = RefundAccount("BK04", "110-123-456789", "홍길동")


class Admin:
    """The sandbox's admin API, over HTTP like any test or script would use it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = urllib3.PoolManager(retries=False)

    def _call(self, verb: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.request(verb, self.url + path, json=body, timeout=5.0)
        assert response.status < 300, (response.status, response.data)
        return response.json() if response.data else None

    def payment(self, **fields: Any) -> dict[str, Any]:
        return self._call("POST", "/_sandbox/payments", {"amount": 10000, **fields})

    def state(self, tno: str) -> dict[str, Any]:
        return self._call("GET", f"/_sandbox/payments/{tno}")

    def fault(self, **fields: Any) -> None:
        self._call("POST", "/_sandbox/faults", {"path": "cancel", **fields})

    def cancel_calls(self, tno: str) -> int:
        return sum(1 for c in self._call("GET", "/_sandbox/calls?path=cancel") if c["tno"] == tno)

    def batch_key(self, decline: str | None = None) -> str:
        return self._call("POST", "/_sandbox/batch-keys", {"decline": decline})["batch_key"]

    def charges(self) -> list[dict[str, Any]]:
        return self._call("GET", "/_sandbox/charges")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[KcpSandbox]:
    sandbox = KcpSandbox()
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture(scope="module")
def credentials(sandbox: KcpSandbox) -> KcpCredentials:
    return KcpCredentials(**sandbox.register_merchant("T0000"))


@pytest.fixture(scope="module")
def admin(sandbox: KcpSandbox) -> Admin:
    return Admin(sandbox.url)


@pytest.fixture(autouse=True)
def no_faults_left(admin: Admin) -> Iterator[None]:
    yield
    admin._call("DELETE", "/_sandbox/faults")


def make_gateway(credentials: KcpCredentials, url: str, read_timeout: float = 2.0) -> KcpGateway:
    # A pool per gateway keeps tests independent of each other's connections.
    return KcpGateway(
        credentials, url, connect_timeout=1.0, read_timeout=read_timeout, http=urllib3.PoolManager()
    )


@pytest.fixture(scope="module")
def kcp(credentials: KcpCredentials, sandbox: KcpSandbox) -> KcpGateway:
    return make_gateway(credentials, sandbox.url)


def partial(tno: str, amount: int, balance_before: int, **fields: Any) -> CancelOrder:
    fields.setdefault("method", PayMethod.CARD)
    return CancelOrder(
        tno, reason="부분 취소", amount=amount, balance_before=balance_before, **fields
    )


# --- cancels ------------------------------------------------------------------------------------


def test_full_card_cancel_refunds_everything(kcp, admin):
    payment = admin.payment(amount=25000)
    answer = kcp.cancel(CancelOrder(payment["tno"], PayMethod.CARD, "고객 변심"))
    assert answer.outcome is Outcome.SUCCEEDED
    assert (answer.res_cd, answer.cancelled_amount, answer.remaining_balance) == ("0000", 25000, 0)
    assert answer.cancelled_at is not None and answer.cancelled_at.utcoffset() == timedelta(hours=9)
    state = admin.state(payment["tno"])
    assert (state["balance"], state["status"]) == (0, "CANCELLED")
    assert [c["mod_type"] for c in state["cancels"]] == ["STSC"]


def test_two_partial_cancels_reduce_the_balance_step_by_step(kcp, admin):
    tno = admin.payment(amount=10000)["tno"]
    first = kcp.cancel(partial(tno, 3000, 10000))
    second = kcp.cancel(partial(tno, 2000, first.remaining_balance))
    assert (first.outcome, first.remaining_balance) == (Outcome.SUCCEEDED, 7000)
    assert (second.outcome, second.remaining_balance) == (Outcome.SUCCEEDED, 5000)
    assert first.partial_seq and second.partial_seq and first.partial_seq != second.partial_seq
    inquiry = kcp.inquire(tno, PayMethod.CARD)
    assert inquiry.outcome is Outcome.SUCCEEDED
    assert (inquiry.amount, inquiry.remaining_balance, inquiry.status) == (
        10000,
        5000,
        "PARTIAL_CANCELLED",
    )


def test_mixed_taxation_partial_cancel_is_accepted(kcp, admin):
    tno = admin.payment(amount=20000, tax_free_amount=5000)["tno"]
    answer = kcp.cancel(partial(tno, 7000, 20000, tax_free_amount=2000))
    assert (answer.outcome, answer.remaining_balance) == (Outcome.SUCCEEDED, 13000)
    assert admin.state(tno)["tax_free_balance"] == 3000


def test_tax_free_part_larger_than_the_payment_s_is_declined(kcp, admin):
    tno = admin.payment(amount=20000, tax_free_amount=1000)["tno"]
    answer = kcp.cancel(partial(tno, 7000, 20000, tax_free_amount=2000))
    assert (answer.outcome, answer.res_cd) == (Outcome.DECLINED, "SB11")
    assert admin.state(tno)["balance"] == 20000


def test_virtual_account_refund_goes_to_the_customer_account(kcp, admin):
    tno = admin.payment(amount=30000, method="VIRTUAL_ACCOUNT")["tno"]
    answer = kcp.cancel(CancelOrder(tno, PayMethod.VIRTUAL_ACCOUNT, "환불", refund_account=ACCOUNT))
    assert (answer.outcome, answer.remaining_balance) == (Outcome.SUCCEEDED, 0)
    cancel = admin.state(tno)["cancels"][0]
    assert cancel["mod_type"] == "STHD"
    assert cancel["refund_account"] == {
        "bank_code": "BK04",
        "number": "***6789",
        "holder": "홍길동",
    }


def test_bank_transfer_partial_refund(kcp, admin):
    tno = admin.payment(amount=30000, method="BANK_TRANSFER")["tno"]
    answer = kcp.cancel(
        partial(tno, 10000, 30000, method=PayMethod.BANK_TRANSFER, refund_account=ACCOUNT)
    )
    assert (answer.outcome, answer.remaining_balance) == (Outcome.SUCCEEDED, 20000)
    assert admin.state(tno)["cancels"][0]["mod_type"] == "STPD"


def test_stale_balance_is_declined_and_nothing_moves(kcp, admin):
    tno = admin.payment(amount=10000)["tno"]
    assert kcp.cancel(partial(tno, 1000, 10000)).outcome is Outcome.SUCCEEDED
    stale = kcp.cancel(partial(tno, 1000, 10000))  # someone else cancelled in between
    assert (stale.outcome, stale.res_cd) == (Outcome.DECLINED, "SB09")
    assert admin.state(tno)["balance"] == 9000


def test_partial_cancel_over_the_balance_is_declined(kcp, admin):
    tno = admin.payment(amount=10000)["tno"]
    kcp.cancel(partial(tno, 8000, 10000))
    over = kcp.cancel(partial(tno, 5000, 10000))  # our balance is stale and too high
    assert (over.outcome, over.res_cd) == (Outcome.DECLINED, "SB01")
    assert admin.state(tno)["balance"] == 2000


def test_second_full_cancel_is_declined_as_already_cancelled(kcp, admin):
    tno = admin.payment()["tno"]
    kcp.cancel(CancelOrder(tno, PayMethod.CARD, "x"))
    again = kcp.cancel(CancelOrder(tno, PayMethod.CARD, "x"))
    assert (again.outcome, again.res_cd) == (Outcome.DECLINED, "SB02")
    assert len(admin.state(tno)["cancels"]) == 1


def test_escrow_payment_refuses_partial_cancel_with_8742(kcp, admin):
    tno = admin.payment(escrow=True)["tno"]
    answer = kcp.cancel(partial(tno, 1000, 10000))
    assert (answer.outcome, answer.res_cd) == (Outcome.DECLINED, "8742")
    assert kcp.cancel(CancelOrder(tno, PayMethod.CARD, "전체")).outcome is Outcome.SUCCEEDED


def test_mobile_payment_from_last_month_cannot_be_cancelled(kcp, admin):
    first_of_month = datetime.now(KST).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_month = first_of_month - timedelta(minutes=1)
    tno = admin.payment(method="MOBILE", approved_at=last_month.isoformat())["tno"]
    answer = kcp.cancel(CancelOrder(tno, PayMethod.MOBILE, "x"))
    assert (answer.outcome, answer.res_cd) == (Outcome.DECLINED, "SB03")


def test_unknown_tno_is_declined(kcp):
    answer = kcp.cancel(CancelOrder("20000101999999", PayMethod.CARD, "x"))
    assert (answer.outcome, answer.res_cd) == (Outcome.DECLINED, "SB08")


def test_signature_with_a_wrong_key_is_refused(sandbox, credentials, admin):
    other = KcpCredentials(**sandbox.register_merchant("T9999"))
    forged = KcpCredentials(
        site_cd="T0000",
        cert_pem=credentials.cert_pem,  # the right certificate, but another merchant's key
        private_key_pem=other.private_key_pem,
        key_password=other.key_password,
    )
    tno = admin.payment()["tno"]
    answer = make_gateway(forged, sandbox.url).cancel(CancelOrder(tno, PayMethod.CARD, "x"))
    assert (answer.outcome, answer.res_cd) == (Outcome.DECLINED, "SB04")
    assert admin.state(tno)["balance"] == 10000


def test_concurrent_partial_cancels_on_the_same_balance_apply_once(credentials, sandbox, admin):
    tno = admin.payment(amount=10000)["tno"]
    gateways = [make_gateway(credentials, sandbox.url) for _ in range(6)]
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda g: g.cancel(partial(tno, 4000, 10000)), gateways))
    assert sorted(a.outcome for a in answers).count(Outcome.SUCCEEDED) == 1
    assert {a.res_cd for a in answers if a.outcome is Outcome.DECLINED} == {"SB09"}
    assert admin.state(tno)["balance"] == 6000


# --- faults -------------------------------------------------------------------------------------


def test_http_500_is_unknown_and_nothing_moved(kcp, admin):
    tno = admin.payment()["tno"]
    admin.fault(mode="http_500")
    answer = kcp.cancel(CancelOrder(tno, PayMethod.CARD, "x"))
    assert (answer.outcome, answer.detail) == (Outcome.UNKNOWN, "HTTP 500")
    assert admin.state(tno)["balance"] == 10000
    assert admin.cancel_calls(tno) == 1  # the client did not resend


def test_connection_reset_is_unknown(kcp, admin):
    tno = admin.payment()["tno"]
    admin.fault(mode="reset")
    answer = kcp.cancel(CancelOrder(tno, PayMethod.CARD, "x"))
    assert answer.outcome is Outcome.UNKNOWN
    assert admin.state(tno)["balance"] == 10000  # the sandbox resets before applying
    assert admin.cancel_calls(tno) == 1


def test_malformed_answer_is_unknown_although_the_cancel_happened(kcp, admin):
    tno = admin.payment()["tno"]
    admin.fault(mode="malformed")
    answer = kcp.cancel(CancelOrder(tno, PayMethod.CARD, "x"))
    assert answer.outcome is Outcome.UNKNOWN
    assert "non-JSON" in answer.detail
    assert admin.state(tno)["balance"] == 0  # applied behind the broken proxy


def test_injected_res_cd_is_a_definitive_decline_with_that_code(kcp, admin):
    tno = admin.payment()["tno"]
    admin.fault(mode="res_cd", value="8012")
    answer = kcp.cancel(CancelOrder(tno, PayMethod.CARD, "x"))
    assert (answer.outcome, answer.res_cd) == (Outcome.DECLINED, "8012")
    assert admin.state(tno)["balance"] == 10000


def test_commit_then_timeout_is_unknown_and_inquiry_shows_the_cancel(credentials, sandbox, admin):
    tno = admin.payment(amount=10000)["tno"]
    admin.fault(mode="commit_then_timeout", hold_seconds=1.0)
    impatient = make_gateway(credentials, sandbox.url, read_timeout=0.3)
    answer = impatient.cancel(partial(tno, 4000, 10000))
    assert answer.outcome is Outcome.UNKNOWN
    assert "timeout" in answer.detail
    assert admin.cancel_calls(tno) == 1  # no resend by the client
    inquiry = impatient.inquire(tno, PayMethod.CARD)
    assert (inquiry.outcome, inquiry.remaining_balance) == (Outcome.SUCCEEDED, 6000)


def test_latency_below_the_read_timeout_still_succeeds(kcp, admin):
    tno = admin.payment()["tno"]
    admin.fault(mode="latency_ms", value=200)
    assert kcp.cancel(CancelOrder(tno, PayMethod.CARD, "x")).outcome is Outcome.SUCCEEDED


def test_faults_apply_only_to_the_next_n_matching_calls(kcp, admin):
    tno = admin.payment()["tno"]
    admin.fault(path="inquiry", mode="http_500", times=2)
    assert kcp.inquire(tno, PayMethod.CARD).outcome is Outcome.UNKNOWN
    assert kcp.cancel(partial(tno, 100, 10000)).outcome is Outcome.SUCCEEDED  # not an inquiry
    assert kcp.inquire(tno, PayMethod.CARD).outcome is Outcome.UNKNOWN
    assert kcp.inquire(tno, PayMethod.CARD).remaining_balance == 9900


def test_unused_port_is_not_sent(credentials):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = make_gateway(credentials, f"http://127.0.0.1:{port}")
    answer = gateway.cancel(CancelOrder("20250101000001", PayMethod.CARD, "x"))
    assert answer.outcome is Outcome.NOT_SENT


def test_stopped_server_is_not_sent_even_with_a_pooled_connection():
    sandbox = KcpSandbox()
    url = sandbox.start()
    credentials = KcpCredentials(**sandbox.register_merchant("T0000"))
    admin = Admin(url)
    tno = admin.payment()["tno"]
    gateway = make_gateway(credentials, url)
    assert gateway.inquire(tno, PayMethod.CARD).outcome is Outcome.SUCCEEDED  # pools a connection
    sandbox.stop()
    answer = gateway.cancel(CancelOrder(tno, PayMethod.CARD, "x"))
    assert answer.outcome is Outcome.NOT_SENT
    assert sandbox.ledger.payments[tno].balance == 10000


def test_sequential_calls_reuse_one_connection(credentials, sandbox, admin):
    tno = admin.payment()["tno"]
    gateway = make_gateway(credentials, sandbox.url)
    before = sandbox.connections_accepted
    for _ in range(10):
        gateway.inquire(tno, PayMethod.CARD)
    assert sandbox.connections_accepted - before == 1


# --- batch charges ------------------------------------------------------------------------------


def charge_order(batch_key: str, order_id: str, amount: int = 9900) -> ChargeOrder:
    return ChargeOrder(batch_key, order_id, amount, "월 구독", "홍길동", "buyer@example.com")


def test_batch_charge_succeeds_and_can_be_cancelled(kcp, admin):
    answer = kcp.charge(charge_order(admin.batch_key(), "SUB-2025-01-A"))
    assert (answer.outcome, answer.amount) == (Outcome.SUCCEEDED, 9900)
    assert len(answer.tno) == 14 and answer.tno.isdigit()
    assert answer.approved_at is not None
    cancel = kcp.cancel(CancelOrder(answer.tno, PayMethod.CARD, "구독 해지"))
    assert (cancel.outcome, cancel.cancelled_amount) == (Outcome.SUCCEEDED, 9900)


@pytest.mark.parametrize(
    ("decline", "res_cd"), [("INSUFFICIENT_BALANCE", "SB05"), ("EXPIRED_CARD", "SB06")]
)
def test_batch_charge_declined_by_the_card(kcp, admin, decline, res_cd):
    answer = kcp.charge(charge_order(admin.batch_key(decline), f"SUB-{decline}"))
    assert (answer.outcome, answer.res_cd, answer.tno) == (Outcome.DECLINED, res_cd, "")


def test_unknown_batch_key_is_declined(kcp):
    answer = kcp.charge(charge_order("SBKNOTISSUED", "SUB-NOKEY"))
    assert (answer.outcome, answer.res_cd) == (Outcome.DECLINED, "SB07")


def test_resent_charge_with_the_same_order_id_is_refused_as_duplicate(kcp, admin):
    key = admin.batch_key()
    first = kcp.charge(charge_order(key, "SUB-DUP-1"))
    again = kcp.charge(charge_order(key, "SUB-DUP-1"))
    assert first.outcome is Outcome.SUCCEEDED
    assert (again.outcome, again.res_cd) == (Outcome.DECLINED, "8338")
    assert [c["ordr_idxx"] for c in admin.charges()].count("SUB-DUP-1") == 1


def test_charge_applied_then_timeout_is_unknown_and_a_resend_is_a_duplicate(
    credentials, sandbox, admin
):
    key = admin.batch_key()
    admin.fault(path="charge", mode="commit_then_timeout", hold_seconds=1.0)
    impatient = make_gateway(credentials, sandbox.url, read_timeout=0.3)
    assert impatient.charge(charge_order(key, "SUB-LOST-1")).outcome is Outcome.UNKNOWN
    resend = impatient.charge(charge_order(key, "SUB-LOST-1"))
    assert (resend.outcome, resend.res_cd) == (Outcome.DECLINED, "8338")
    assert [c["ordr_idxx"] for c in admin.charges()].count("SUB-LOST-1") == 1


# --- catalogue and admin API --------------------------------------------------------------------


def test_every_code_the_sandbox_can_answer_is_in_the_catalogue():
    assert set(RES_CODES.values()) == SANDBOX_CODES
    assert CATALOGUE.keys() >= SANDBOX_CODES


def test_admin_api_rejects_bad_input_and_unknown_payments(admin):
    http = admin.http
    bad = http.request("POST", admin.url + "/_sandbox/payments", json={"amount": 0})
    assert bad.status == 400 and bad.json()["code"] == "BAD_AMOUNT"
    bad = http.request("POST", admin.url + "/_sandbox/faults", json={"path": "x", "mode": "reset"})
    assert bad.status == 400
    assert http.request("GET", admin.url + "/_sandbox/payments/00000000000000").status == 404


def test_created_payment_has_a_unique_14_digit_tno_and_korean_time(admin):
    first, second = admin.payment(), admin.payment(amount=500)
    assert first["tno"] != second["tno"]
    assert all(len(p["tno"]) == 14 and p["tno"].isdigit() for p in (first, second))
    assert first["approved_at"].endswith("+09:00")
