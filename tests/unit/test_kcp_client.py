"""KCP client, pure parts: signing, request building, validation, masking, classification."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from cancelflow.adapters.kcp import (
    KST,
    KcpGateway,
    classify,
    masked,
    parse_kst,
    split_vat,
    truncate_utf8,
    validate_cancel,
)
from cancelflow.kcp import codes
from cancelflow.kcp.port import (
    CancelOrder,
    ChargeOrder,
    KcpCredentials,
    Outcome,
    PayMethod,
    RefundAccount,
)

TNO = "20250101000001"
ACCOUNT = RefundAccount("BK04", "123-456-789012", "홍길동")


@pytest.fixture(scope="module")
def merchant() -> tuple[KcpCredentials, rsa.RSAPublicKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "T0000")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret-pw"),
    )
    credentials = KcpCredentials(
        site_cd="T0000",
        cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        private_key_pem=pem.decode(),
        key_password="secret-pw",
        batch_group_id="BA0000000001",
    )
    return credentials, key.public_key()


@pytest.fixture(scope="module")
def gateway(merchant: tuple[KcpCredentials, rsa.RSAPublicKey]) -> KcpGateway:
    return KcpGateway(merchant[0], "https://stg-spl.kcp.co.kr")


def verifies(public_key: rsa.RSAPublicKey, signature_b64: str, text: str) -> bool:
    public_key.verify(
        base64.b64decode(signature_b64), text.encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    return True


# --- signing ------------------------------------------------------------------------------------


def test_cancel_signature_verifies_with_the_merchant_public_key(merchant, gateway):
    _, public_key = merchant
    request = gateway.cancel_request(CancelOrder(TNO, PayMethod.CARD, "고객 변심"))
    assert verifies(public_key, request["kcp_sign_data"], f"T0000^{TNO}^STSC")


def test_inquiry_signature_covers_site_tno_and_pay_type(merchant, gateway):
    request = gateway.inquiry_request(TNO, PayMethod.VIRTUAL_ACCOUNT)
    assert request["pay_type"] == "PAVC"
    assert verifies(merchant[1], request["kcp_sign_data"], f"T0000^{TNO}^PAVC")


def test_charge_request_is_signed_over_site_order_and_amount(merchant, gateway):
    order = ChargeOrder("BATCHKEY123", "ORD-1", 9900, "월 구독", "홍길동", "a@example.com")
    request = gateway.charge_request(order)
    assert verifies(merchant[1], request["kcp_sign_data"], "T0000^ORD-1^9900")
    assert request["pay_method"] == "CARD"
    assert request["currency"] == "410"
    assert request["quota"] == "00"
    assert request["amount"] == request["card_mny"] == "9900"
    assert request["bt_group_id"] == "BA0000000001"
    assert request["bt_batch_key"] == "BATCHKEY123"


def test_certificate_is_sent_without_line_breaks(merchant, gateway):
    cert_info = gateway.cancel_request(CancelOrder(TNO, PayMethod.CARD, "x"))["kcp_cert_info"]
    assert "\n" not in cert_info and "\r" not in cert_info
    assert cert_info.startswith("-----BEGIN CERTIFICATE-----")
    assert cert_info == merchant[0].cert_pem.strip().replace("\n", "")


def test_wrong_key_password_fails_at_construction(merchant):
    credentials = merchant[0]
    wrong = KcpCredentials(
        credentials.site_cd, credentials.cert_pem, credentials.private_key_pem, "wrong"
    )
    with pytest.raises(ValueError):
        KcpGateway(wrong, "https://stg-spl.kcp.co.kr")


def test_gateway_repr_and_credentials_repr_hold_no_secrets(merchant, gateway):
    credentials = merchant[0]
    for text in (repr(gateway), repr(credentials)):
        assert "PRIVATE" not in text and "secret-pw" not in text and "CERTIFICATE" not in text


# --- request building ---------------------------------------------------------------------------


def test_full_card_cancel_is_stsc_without_amounts(gateway):
    request = gateway.cancel_request(CancelOrder(TNO, PayMethod.CARD, "주문 취소"))
    assert request["mod_type"] == "STSC"
    assert request["tno"] == TNO
    assert request["site_cd"] == "T0000"
    assert request["mod_desc"] == "주문 취소"
    assert "mod_mny" not in request and "rem_mny" not in request and "tax_flag" not in request


def test_partial_card_cancel_sends_amount_and_balance_before(gateway):
    order = CancelOrder(TNO, PayMethod.CARD, "부분 반품", amount=3000, balance_before=10000)
    request = gateway.cancel_request(order)
    assert request["mod_type"] == "STPC"
    assert request["mod_mny"] == "3000"
    assert request["rem_mny"] == "10000"
    assert "tax_flag" not in request


def test_partial_cancel_of_mixed_taxation_splits_supply_vat_and_tax_free(gateway):
    order = CancelOrder(
        TNO, PayMethod.CARD, "부분", amount=15000, balance_before=20000, tax_free_amount=4000
    )
    request = gateway.cancel_request(order)
    assert request["tax_flag"] == "TG03"
    assert request["mod_free_mny"] == "4000"
    assert request["mod_tax_mny"] == "10000"  # 11000 taxable = 10000 supply + 1000 VAT
    assert request["mod_vat_mny"] == "1000"
    total = sum(int(request[k]) for k in ("mod_tax_mny", "mod_vat_mny", "mod_free_mny"))
    assert total == int(request["mod_mny"])


def test_virtual_account_full_refund_is_sthd_with_the_account(gateway):
    order = CancelOrder(TNO, PayMethod.VIRTUAL_ACCOUNT, "환불", refund_account=ACCOUNT)
    request = gateway.cancel_request(order)
    assert request["mod_type"] == "STHD"
    assert request["mod_bankcode"] == "BK04"
    assert request["mod_account"] == "123456789012"  # hyphens stripped
    assert request["mod_depositor"] == "홍길동"


def test_bank_transfer_partial_refund_is_stpd(gateway):
    order = CancelOrder(
        TNO,
        PayMethod.BANK_TRANSFER,
        "부분 환불",
        amount=1000,
        balance_before=5000,
        refund_account=ACCOUNT,
    )
    request = gateway.cancel_request(order)
    assert request["mod_type"] == "STPD"
    assert (request["mod_mny"], request["rem_mny"]) == ("1000", "5000")
    assert request["mod_account"] == "123456789012"


def test_mobile_full_cancel_is_stsc(gateway):
    assert gateway.cancel_request(CancelOrder(TNO, PayMethod.MOBILE, "x"))["mod_type"] == "STSC"


def test_card_cancel_never_carries_an_account_number(gateway):
    order = CancelOrder(TNO, PayMethod.CARD, "x", refund_account=ACCOUNT)
    assert "mod_account" not in gateway.cancel_request(order)


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("order", "message"),
    [
        (CancelOrder("2025", PayMethod.CARD, "x"), "tno"),
        (CancelOrder(" 20250101000001", PayMethod.CARD, "x"), "tno"),
        (CancelOrder(TNO, PayMethod.VIRTUAL_ACCOUNT, "x"), "refund account"),
        (CancelOrder(TNO, PayMethod.BANK_TRANSFER, "x"), "refund account"),
        (
            CancelOrder(
                TNO,
                PayMethod.VIRTUAL_ACCOUNT,
                "x",
                refund_account=RefundAccount("04", "123456", "a"),
            ),
            "bank code",
        ),
        (
            CancelOrder(
                TNO,
                PayMethod.VIRTUAL_ACCOUNT,
                "x",
                refund_account=RefundAccount("BK04", "12345", "a"),
            ),
            "6-20 digits",
        ),
        (
            CancelOrder(
                TNO,
                PayMethod.VIRTUAL_ACCOUNT,
                "x",
                refund_account=RefundAccount("BK04", "1" * 21, "a"),
            ),
            "6-20 digits",
        ),
        (
            CancelOrder(
                TNO,
                PayMethod.VIRTUAL_ACCOUNT,
                "x",
                refund_account=RefundAccount("BK04", "12 3456 7", "a"),
            ),
            "6-20 digits",
        ),
        (
            CancelOrder(
                TNO,
                PayMethod.BANK_TRANSFER,
                "x",
                refund_account=RefundAccount("BK04", "123456", " "),
            ),
            "holder",
        ),
        (CancelOrder(TNO, PayMethod.CARD, "x", amount=0, balance_before=100), "positive"),
        (CancelOrder(TNO, PayMethod.CARD, "x", amount=-5, balance_before=100), "positive"),
        (CancelOrder(TNO, PayMethod.CARD, "x", amount=100), "balance_before"),
        (CancelOrder(TNO, PayMethod.CARD, "x", amount=101, balance_before=100), "exceeds"),
        (
            CancelOrder(
                TNO, PayMethod.CARD, "x", amount=100, balance_before=100, tax_free_amount=101
            ),
            "tax_free_amount",
        ),
        (CancelOrder(TNO, PayMethod.CARD, "x", tax_free_amount=100), "partial"),
    ],
)
def test_invalid_cancel_is_refused_before_sending(order, message):
    with pytest.raises(ValueError, match=message):
        validate_cancel(order)


def test_cancel_of_the_whole_balance_as_partial_is_valid():
    validate_cancel(CancelOrder(TNO, PayMethod.CARD, "x", amount=100, balance_before=100))


@pytest.mark.parametrize(
    "order",
    [
        ChargeOrder("", "ORD-1", 100, "p", "b", "e"),
        ChargeOrder("KEY", "", 100, "p", "b", "e"),
        ChargeOrder("KEY", "ORD-1", 0, "p", "b", "e"),
    ],
)
def test_invalid_charge_is_refused_before_sending(gateway, order):
    with pytest.raises(ValueError):
        gateway.charge_request(order)


# --- mod_desc, VAT, times -----------------------------------------------------------------------


def test_korean_reason_is_cut_to_100_bytes_without_splitting_a_character(gateway):
    reason = "가" * 40  # 120 bytes in UTF-8
    mod_desc = gateway.cancel_request(CancelOrder(TNO, PayMethod.CARD, reason))["mod_desc"]
    assert mod_desc == "가" * 33  # 99 bytes: a 34th character would need 102
    assert len(mod_desc.encode()) <= 100


@given(st.text(max_size=120))
def test_truncation_is_the_longest_prefix_within_100_bytes(text):
    cut = truncate_utf8(text)
    assert text.startswith(cut)
    assert len(cut.encode()) <= 100
    if cut != text:
        assert len(text[: len(cut) + 1].encode()) > 100


@given(st.integers(min_value=0, max_value=10**12))
def test_vat_is_one_eleventh_rounded_and_parts_add_up(taxable):
    supply, vat = split_vat(taxable)
    assert supply + vat == taxable
    assert vat == int((Decimal(taxable) / 11).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def test_vat_examples():
    assert split_vat(11000) == (10000, 1000)
    assert split_vat(1000) == (909, 91)
    assert split_vat(0) == (0, 0)


def test_canc_time_is_read_as_korean_time():
    at = parse_kst("20250131235959")
    assert at == datetime(2025, 1, 31, 14, 59, 59, tzinfo=UTC)
    assert at is not None and at.utcoffset() == KST.utcoffset(None)
    assert parse_kst("2025-01-31") is None
    assert parse_kst(None) is None


# --- masking ------------------------------------------------------------------------------------


def test_masked_payload_hides_keys_certificates_batch_keys_and_accounts(gateway):
    order = CancelOrder(TNO, PayMethod.VIRTUAL_ACCOUNT, "x", refund_account=ACCOUNT)
    request = gateway.cancel_request(order)
    safe = masked(request)
    assert safe["kcp_sign_data"] == "***"
    assert safe["kcp_cert_info"] == "***"
    assert safe["mod_account"] == "***9012"
    assert safe["tno"] == TNO
    assert request["mod_account"] == "123456789012"  # the original is untouched
    charge = gateway.charge_request(ChargeOrder("SECRETKEY", "O-1", 100, "p", "b", "e"))
    assert "SECRETKEY" not in json.dumps(masked(charge))


# --- classification -----------------------------------------------------------------------------


def _json(data: object) -> bytes:
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("kwargs", "outcome", "detail"),
    [
        (
            {"status": 200, "body": _json({"res_cd": "0000", "res_msg": "ok"})},
            Outcome.SUCCEEDED,
            "",
        ),
        ({"status": 200, "body": _json({"res_cd": "8012", "res_msg": "no"})}, Outcome.DECLINED, ""),
        ({"status": 200, "body": _json({"res_cd": "SB01"})}, Outcome.DECLINED, ""),
        ({"status": 200, "body": _json({"res_msg": "?"})}, Outcome.UNKNOWN, "without res_cd"),
        ({"status": 200, "body": _json({"res_cd": ""})}, Outcome.UNKNOWN, "without res_cd"),
        ({"status": 200, "body": _json({"res_cd": 0})}, Outcome.UNKNOWN, "without res_cd"),
        ({"status": 200, "body": _json(["0000"])}, Outcome.UNKNOWN, "not an object"),
        ({"status": 200, "body": b"<html>502</html>"}, Outcome.UNKNOWN, "non-JSON"),
        ({"status": 200, "body": b""}, Outcome.UNKNOWN, "non-JSON"),
        ({"status": 200, "body": b"\xff\xfe\x00"}, Outcome.UNKNOWN, "non-JSON"),
        ({"status": 500, "body": _json({"res_cd": "0000"})}, Outcome.UNKNOWN, "HTTP 500"),
        ({"status": 503, "body": b""}, Outcome.UNKNOWN, "HTTP 503"),
        ({"status": 404, "body": b""}, Outcome.UNKNOWN, "HTTP 404"),
        ({"error": ReadTimeoutError(None, "/gw", "timed out")}, Outcome.UNKNOWN, "read timeout"),
        (
            {"error": ProtocolError("Connection aborted.", ConnectionResetError())},
            Outcome.UNKNOWN,
            "ConnectionResetError",
        ),
        ({"error": SSLError("bad handshake")}, Outcome.UNKNOWN, "SSLError"),
        # A pool that retried may have resent: never NOT_SENT, whatever the last error was.
        (
            {"error": MaxRetryError(None, "/gw", NewConnectionError(None, "refused"))},
            Outcome.UNKNOWN,
            "MaxRetryError",
        ),
        ({"error": NewConnectionError(None, "refused")}, Outcome.NOT_SENT, "NewConnectionError"),
        ({"error": ConnectTimeoutError("connect timeout")}, Outcome.NOT_SENT, "ConnectTimeout"),
        (
            {"error": NameResolutionError("spl.kcp.co.kr", None, OSError("no name"))},
            Outcome.NOT_SENT,
            "NameResolutionError",
        ),
    ],
)
def test_classification_table(kwargs, outcome, detail):
    reply = classify(**kwargs)
    assert reply.outcome is outcome
    assert detail in reply.detail


def test_declined_reply_keeps_kcp_code_and_message():
    reply = classify(200, _json({"res_cd": " 8742 ", "res_msg": "에스크로"}))
    assert (reply.outcome, reply.res_cd, reply.res_msg) == (Outcome.DECLINED, "8742", "에스크로")


# --- catalogue ----------------------------------------------------------------------------------


def test_catalogue_explains_known_codes_in_both_languages():
    shop_en = codes.describe("8012", "", "en")
    assert shop_en["retryable"] is True and "IP" in shop_en["message"]
    customer = codes.describe("8742", "", "ko", audience="customer")
    assert customer["retryable"] is False and "에스크로" in customer["message"]


def test_every_code_has_a_hint_in_both_languages_and_describe_picks_by_lang():
    for res_cd, info in codes.CATALOGUE.items():
        assert info.hint_ko.strip() and info.hint_en.strip(), res_cd
        assert info.hint_ko != info.hint_en, res_cd
        assert codes.describe(res_cd, "", "ko")["hint"] == info.hint_ko
        assert codes.describe(res_cd, "", "en")["hint"] == info.hint_en
        assert codes.describe(res_cd, "", "en-US", audience="customer")["hint"] == info.hint_en
    assert codes.describe("8012")["hint"] == codes.CATALOGUE["8012"].hint_ko  # Korean by default
    assert "KCP 상점관리자" in codes.describe("8012", "", "ko")["hint"]


def test_unknown_code_falls_back_to_kcp_message_and_is_not_retryable():
    described = codes.describe("9999", "카드사 응답 없음", "ko")
    assert described == {
        "code": "9999",
        "message": "카드사 응답 없음",
        "hint": described["hint"],
        "retryable": False,
    }
    assert "알 수 없는 KCP 코드" in described["hint"] and "카드사 응답 없음" in described["hint"]
    english = codes.describe("9999", "no answer", "en")["hint"]
    assert english.startswith("Unknown KCP code") and "no answer" in english
    assert codes.category("9999") is codes.Category.DEFINITIVE


# --- answers, through an injected HTTP pool -----------------------------------------------------


class FakeKcp:
    """Stands in for urllib3.PoolManager: answers one canned reply and counts requests."""

    def __init__(self, status: int = 200, body: object = None, error: Exception | None = None):
        self.status, self.error, self.requests = status, error, []
        self.data = body if isinstance(body, bytes) else json.dumps(body).encode()

    def request(self, method: str, url: str, **kwargs: object) -> FakeKcp:
        self.requests.append((method, url, kwargs))
        if self.error:
            raise self.error
        return self


def fake_gateway(merchant, fake: FakeKcp) -> KcpGateway:
    return KcpGateway(merchant[0], "https://stg-spl.kcp.co.kr/", http=fake)  # type: ignore[arg-type]


def test_success_answer_is_read_into_the_cancel_answer(merchant):
    fake = FakeKcp(
        body={
            "res_cd": "0000",
            "res_msg": "정상처리",
            "tno": TNO,
            "canc_time": "20250301093000",
            "mod_mny": "3000",
            "rem_mny": "7000",
            "mod_pcan_seq_no": "0001",
        }
    )
    answer = fake_gateway(merchant, fake).cancel(
        CancelOrder(TNO, PayMethod.CARD, "x", amount=3000, balance_before=10000)
    )
    assert answer.outcome is Outcome.SUCCEEDED
    assert (answer.cancelled_amount, answer.remaining_balance, answer.partial_seq) == (
        3000,
        7000,
        "0001",
    )
    assert answer.cancelled_at == datetime(2025, 3, 1, 0, 30, tzinfo=UTC)
    method, url, _ = fake.requests[0]
    assert (method, url) == ("POST", "https://stg-spl.kcp.co.kr/gw/mod/v1/cancel")


def test_success_naming_another_tno_is_not_trusted(merchant):
    fake = FakeKcp(body={"res_cd": "0000", "tno": "20250101000002", "rem_mny": "0"})
    answer = fake_gateway(merchant, fake).cancel(CancelOrder(TNO, PayMethod.CARD, "x"))
    assert answer.outcome is Outcome.UNKNOWN
    assert "another tno" in answer.detail


def test_odd_amounts_in_an_answer_are_left_unknown(merchant):
    fake = FakeKcp(body={"res_cd": "0000", "tno": TNO, "mod_mny": "²", "rem_mny": "-1"})
    answer = fake_gateway(merchant, fake).cancel(CancelOrder(TNO, PayMethod.CARD, "x"))
    assert answer.outcome is Outcome.SUCCEEDED
    assert (answer.cancelled_amount, answer.remaining_balance) == (None, None)


def test_a_timed_out_cancel_is_sent_once_and_never_retried(merchant):
    fake = FakeKcp(error=ReadTimeoutError(None, "/gw/mod/v1/cancel", "timed out"))
    answer = fake_gateway(merchant, fake).cancel(CancelOrder(TNO, PayMethod.CARD, "x"))
    assert answer.outcome is Outcome.UNKNOWN
    assert len(fake.requests) == 1
    assert fake.requests[0][2]["retries"] is False


def test_inquiry_refused_by_kcp_is_declined_with_its_code(merchant):
    fake = FakeKcp(body={"res_cd": "SB08", "res_msg": "거래번호 오류"})
    answer = fake_gateway(merchant, fake).inquire(TNO, PayMethod.CARD)
    assert (answer.outcome, answer.res_cd, answer.res_msg) == (
        Outcome.DECLINED,
        "SB08",
        "거래번호 오류",
    )


def test_charge_answer_carries_tno_and_approval_time(merchant):
    fake = FakeKcp(
        body={"res_cd": "0000", "tno": TNO, "amount": "9900", "app_time": "20250301120000"}
    )
    answer = fake_gateway(merchant, fake).charge(ChargeOrder("KEY", "O-1", 9900, "p", "b", "e"))
    assert (answer.outcome, answer.tno, answer.amount) == (Outcome.SUCCEEDED, TNO, 9900)
    assert answer.approved_at == datetime(2025, 3, 1, 3, 0, tzinfo=UTC)
