"""NHN KCP client: the Gateway port spoken in KCP's JSON (cancel, inquiry, batch charge).

Correctness rules this module keeps:
- it never resends on its own (urllib3 retries disabled): a resend of a cancel or charge is the
  workflow's decision, after an inquiry;
- every answer is classified once, in classify(): only a well-formed KCP answer is SUCCEEDED or
  DECLINED; anything that may have reached KCP without a clear answer is UNKNOWN; only failures
  before a byte left are NOT_SENT;
- keys, certificates, batch keys and account numbers never reach a log: use masked().
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import urllib3
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from urllib3.exceptions import ConnectTimeoutError, HTTPError, ReadTimeoutError

from cancelflow.kcp.port import (
    CancelAnswer,
    CancelOrder,
    ChargeAnswer,
    ChargeOrder,
    InquiryAnswer,
    KcpCredentials,
    Outcome,
    PayMethod,
)

logger = logging.getLogger(__name__)  # printed by the running handler's Logger: adapters/logs.py

KST = timezone(timedelta(hours=9), "KST")  # Korea has no DST: a fixed offset is exact
SUCCESS_CODE = "0000"
MOD_DESC_MAX_BYTES = 100

CANCEL_PATH = "/gw/mod/v1/cancel"
INQUIRY_PATH = "/std/inquery"  # KCP's spelling
CHARGE_PATH = "/gw/hub/v1/payment"

PAY_TYPES: dict[PayMethod, str] = {
    PayMethod.CARD: "PACA",
    PayMethod.BANK_TRANSFER: "PABK",
    PayMethod.VIRTUAL_ACCOUNT: "PAVC",
    PayMethod.MOBILE: "PAMC",
}
REFUND_METHODS = frozenset({PayMethod.VIRTUAL_ACCOUNT, PayMethod.BANK_TRANSFER})

_TNO = re.compile(r"^\d{14}$")
_BANK_CODE = re.compile(r"^BK\d{2}$")
_ACCOUNT = re.compile(r"^\d{6,20}$")
_MASKED_FIELDS = ("bt_batch_key", "mod_account", "kcp_sign_data", "kcp_cert_info")

# One pool per Lambda execution environment: warm invocations reuse KCP's TLS connections.
# retries=False: urllib3 must never resend a cancel or charge by itself.
HTTP = urllib3.PoolManager(num_pools=4, maxsize=4, retries=False)


# --- KCP's unconfirmed wire choices: each lives in exactly one place -----------------------------


def mod_type_for(order: CancelOrder) -> str:
    """KCP mod_type: STSC/STPC (full/partial cancel), STHD/STPD for account refunds.

    STHD/STPD come from KCP's legacy module samples; their REST form is unconfirmed.
    """
    partial = order.amount is not None
    if order.method in REFUND_METHODS:
        return "STPD" if partial else "STHD"
    return "STPC" if partial else "STSC"


def rem_mny_for(order: CancelOrder) -> int:
    """rem_mny sent with a partial cancel.

    KCP's document says: the cancellable balance *before* this cancel, which KCP checks against its
    own balance (so a stale balance is refused, not over-cancelled). Integrators disagree (some send
    the balance after); unconfirmed, so the choice lives only here.
    """
    if order.balance_before is None:  # validate_cancel() already refuses this
        raise ValueError("partial cancel needs balance_before (int KRW)")
    return order.balance_before


def charge_sign_text(site_cd: str, order_id: str, amount: int) -> str:
    """Text signed for a batch charge: our choice "site_cd^ordr_idxx^amount" (unconfirmed)."""
    return f"{site_cd}^{order_id}^{amount}"


def _money(amount: int) -> str:
    # KCP's JSON samples carry amounts as digit strings.
    return str(amount)


# --- small pure functions -----------------------------------------------------------------------


def split_vat(taxable: int) -> tuple[int, int]:
    """Split a VAT-inclusive taxable amount into (supply value, VAT); VAT = round(taxable / 11).

    The one place of this rule: KCP's rounding of mod_vat_mny is unconfirmed (kcp-reference),
    so the 10% VAT inside a VAT-inclusive price, rounded half up, is our reading. The domain
    only splits taxable from tax-free; the VAT inside the taxable part is computed here."""
    vat = (taxable + 5) // 11  # integer round-half-up; taxable/11 is never exactly .5
    return taxable - vat, vat


def truncate_utf8(text: str, max_bytes: int = MOD_DESC_MAX_BYTES) -> str:
    """Cut text to at most max_bytes of UTF-8 without splitting a character."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    # A cut inside a multi-byte character leaves an incomplete tail, which "ignore" drops.
    return raw[:max_bytes].decode("utf-8", errors="ignore")


def cert_info(cert_pem: str) -> str:
    """kcp_cert_info: the certificate PEM with line breaks removed."""
    return cert_pem.strip().replace("\r", "").replace("\n", "")


def masked(payload: dict[str, Any]) -> dict[str, Any]:
    """A copy of a KCP payload that is safe to log or journal."""
    out = dict(payload)
    for key in _MASKED_FIELDS:
        value = out.get(key)
        if not value:
            continue
        if key == "mod_account":
            out[key] = "***" + str(value)[-4:]
        else:
            out[key] = "***"
    return out


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_cancel(order: CancelOrder) -> None:
    """Refuse, before anything is sent, a cancel KCP would refuse or that would move wrong money."""
    if not _TNO.match(order.tno or ""):
        raise ValueError("tno must be KCP's 14-digit transaction number, kept whole")
    if order.method not in PAY_TYPES:
        raise ValueError(f"unknown payment method {order.method!r}")
    if order.amount is None:
        if order.tax_free_amount:
            raise ValueError("tax_free_amount applies only to a partial cancel")
    else:
        if not _is_int(order.amount) or order.amount <= 0:
            raise ValueError("partial cancel amount must be a positive int (KRW)")
        if order.balance_before is None or not _is_int(order.balance_before):
            raise ValueError("partial cancel needs balance_before (int KRW)")
        if order.amount > order.balance_before:
            raise ValueError(
                f"partial cancel amount {order.amount} exceeds balance {order.balance_before}"
            )
        if not _is_int(order.tax_free_amount) or not 0 <= order.tax_free_amount <= order.amount:
            raise ValueError("tax_free_amount must be an int between 0 and the cancel amount")
    if order.method in REFUND_METHODS:
        account = order.refund_account
        if account is None:
            raise ValueError(f"{order.method} refunds need a refund account")
        if not _BANK_CODE.match(account.bank_code or ""):
            raise ValueError("refund bank code must look like BK04")
        if not _ACCOUNT.match((account.number or "").replace("-", "")):
            raise ValueError("refund account number must have 6-20 digits")
        if not (account.holder or "").strip():
            raise ValueError("refund account holder is required")


def cancel_fields(order: CancelOrder) -> dict[str, str]:
    """The cancel request's business fields (no site, certificate or signature); validates first."""
    validate_cancel(order)
    fields = {
        "tno": order.tno,
        "mod_type": mod_type_for(order),
        "mod_desc": truncate_utf8(order.reason or ""),
    }
    if order.amount is not None:
        fields["mod_mny"] = _money(order.amount)
        fields["rem_mny"] = _money(rem_mny_for(order))
        if order.mixed_tax or order.tax_free_amount > 0:
            supply, vat = split_vat(order.amount - order.tax_free_amount)
            fields.update(
                tax_flag="TG03",
                mod_tax_mny=_money(supply),
                mod_vat_mny=_money(vat),
                mod_free_mny=_money(order.tax_free_amount),
            )
    if order.method in REFUND_METHODS and order.refund_account is not None:
        fields.update(
            mod_bankcode=order.refund_account.bank_code,
            mod_account=order.refund_account.number.replace("-", ""),
            mod_depositor=order.refund_account.holder.strip(),
        )
    return fields


def validate_charge(order: ChargeOrder) -> None:
    """Refuse a batch charge that cannot be right before anything is sent."""
    if not order.batch_key:
        raise ValueError("batch key is required")
    if not order.order_id or not order.order_id.strip():
        raise ValueError("order_id (ordr_idxx) is required: it is what makes charges idempotent")
    if not _is_int(order.amount) or order.amount <= 0:
        raise ValueError("charge amount must be a positive int (KRW)")


def parse_kst(value: object) -> datetime | None:
    """KCP's yyyyMMddHHmmss (KST) as a timezone-aware datetime; None if absent or malformed."""
    if not isinstance(value, str) or len(value) != 14:
        return None
    try:
        return datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=KST)
    except ValueError:
        return None


def _int_or_none(value: object) -> int | None:
    """An amount from KCP's answer (a digit string or an int); None if absent or odd."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit():  # isdigit alone accepts e.g. "²"
            return int(text)
    return None


# --- classification: once, here -----------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """A KCP exchange, classified."""

    outcome: Outcome
    body: dict[str, Any] = field(default_factory=dict)
    detail: str = ""

    @property
    def res_cd(self) -> str:
        return str(self.body.get("res_cd", ""))

    @property
    def res_msg(self) -> str:
        return str(self.body.get("res_msg", ""))


def _name(error: BaseException) -> str:
    """Exception type, with the cause urllib3 wraps (e.g. ProtocolError(ConnectionResetError))."""
    inner = [type(a).__name__ for a in error.args if isinstance(a, BaseException)]
    return type(error).__name__ + (f"({inner[0]})" if inner else "")


def classify(
    status: int | None = None, body: bytes | None = None, error: BaseException | None = None
) -> Reply:
    """Classify an HTTP exchange with KCP: either the error raised, or the status and body."""
    if error is not None:
        # Connect-phase failures (refused, DNS, connect timeout): nothing left this machine.
        # NewConnectionError and NameResolutionError are ConnectTimeoutError subclasses.
        if isinstance(error, ConnectTimeoutError):
            return Reply(Outcome.NOT_SENT, detail=f"not sent: {_name(error)}")
        if isinstance(error, ReadTimeoutError):
            return Reply(Outcome.UNKNOWN, detail="read timeout after sending")
        # Everything else (ProtocolError = reset/closed mid-exchange, SSL, MaxRetryError from an
        # injected pool that retried and may have resent, plain OSError) may have reached KCP.
        return Reply(Outcome.UNKNOWN, detail=f"connection error after sending: {_name(error)}")
    if status is None:
        return Reply(Outcome.UNKNOWN, detail="no HTTP status")
    if status != 200:
        # KCP answers business results with 200; a 5xx (or anything else) says nothing about
        # whether the request was applied behind the proxy.
        return Reply(Outcome.UNKNOWN, detail=f"HTTP {status}")
    try:
        data = json.loads(body or b"")
    except ValueError:
        return Reply(Outcome.UNKNOWN, detail="unparseable (non-JSON) body")
    if not isinstance(data, dict):
        return Reply(Outcome.UNKNOWN, detail="JSON body is not an object")
    res_cd = data.get("res_cd")
    if not isinstance(res_cd, str) or not res_cd.strip():
        return Reply(Outcome.UNKNOWN, data, detail="JSON body without res_cd")
    data["res_cd"] = res_cd.strip()
    if data["res_cd"] == SUCCESS_CODE:
        return Reply(Outcome.SUCCEEDED, data)
    return Reply(Outcome.DECLINED, data)


# --- the client ---------------------------------------------------------------------------------


class KcpGateway:
    """The Gateway port for one KCP merchant."""

    def __init__(
        self,
        credentials: KcpCredentials,
        base_url: str,
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
        http: urllib3.PoolManager | None = None,
    ) -> None:
        self._site_cd = credentials.site_cd
        self._cert_info = cert_info(credentials.cert_pem)
        self._group_id = credentials.batch_group_id
        # Decrypting the PKCS#8 key is slow (key derivation): once per instance, not per call.
        key = serialization.load_pem_private_key(
            credentials.private_key_pem.encode(), credentials.key_password.encode()
        )
        if not isinstance(key, rsa.RSAPrivateKey):
            raise TypeError("KCP private key must be RSA")
        self._key = key
        self._base_url = base_url.rstrip("/")
        self._timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        self._http = http if http is not None else HTTP

    def __repr__(self) -> str:
        return f"KcpGateway(site_cd={self._site_cd!r}, base_url={self._base_url!r})"

    def sign(self, text: str) -> str:
        """kcp_sign_data: base64 of an RSA PKCS#1 v1.5 / SHA-256 signature over text."""
        signature = self._key.sign(text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode("ascii")

    # Request builders are public so callers can journal masked(request) next to the answer.

    def cancel_request(self, order: CancelOrder) -> dict[str, str]:
        """The full signed cancel request; raises ValueError for an invalid order."""
        fields = cancel_fields(order)
        sign_text = f"{self._site_cd}^{order.tno}^{fields['mod_type']}"
        return {
            "site_cd": self._site_cd,
            "kcp_cert_info": self._cert_info,
            "kcp_sign_data": self.sign(sign_text),
            **fields,
        }

    def inquiry_request(self, tno: str, method: PayMethod) -> dict[str, str]:
        """The full signed inquiry request."""
        if not _TNO.match(tno or ""):
            raise ValueError("tno must be KCP's 14-digit transaction number, kept whole")
        pay_type = PAY_TYPES[method]
        return {
            "site_cd": self._site_cd,
            "kcp_cert_info": self._cert_info,
            "kcp_sign_data": self.sign(f"{self._site_cd}^{tno}^{pay_type}"),
            "tno": tno,
            "pay_type": pay_type,
        }

    def charge_request(self, order: ChargeOrder) -> dict[str, str]:
        """The full signed batch-charge request; raises ValueError for an invalid order."""
        validate_charge(order)
        return {
            "site_cd": self._site_cd,
            "kcp_cert_info": self._cert_info,
            "kcp_sign_data": self.sign(
                charge_sign_text(self._site_cd, order.order_id, order.amount)
            ),
            "pay_method": "CARD",
            "amount": _money(order.amount),
            "card_mny": _money(order.amount),
            "currency": "410",  # KRW
            "quota": "00",  # lump sum
            "ordr_idxx": order.order_id,
            "good_name": order.product_name,
            "buyr_name": order.buyer_name,
            "buyr_mail": order.buyer_email,
            "bt_batch_key": order.batch_key,
            "bt_group_id": self._group_id,
        }

    # Port methods.

    def cancel(self, order: CancelOrder) -> CancelAnswer:
        """Send one cancel (full or partial) and classify KCP's answer."""
        request = self.cancel_request(order)
        reply = self._post(CANCEL_PATH, request, ref=order.tno)
        body = reply.body
        if reply.outcome is Outcome.SUCCEEDED and body.get("tno") not in (None, "", order.tno):
            # A success for another transaction is not a success for ours.
            reply = Reply(Outcome.UNKNOWN, body, detail="answer names another tno")
        return CancelAnswer(
            outcome=reply.outcome,
            res_cd=reply.res_cd,
            res_msg=reply.res_msg,
            cancelled_at=parse_kst(body.get("canc_time")),
            cancelled_amount=_int_or_none(body.get("mod_mny")),
            remaining_balance=_int_or_none(body.get("rem_mny")),
            partial_seq=str(body.get("mod_pcan_seq_no") or ""),
            detail=reply.detail,
        )

    def inquire(self, tno: str, method: PayMethod) -> InquiryAnswer:
        """Ask KCP for a transaction's amount, remaining balance and status."""
        reply = self._post(INQUIRY_PATH, self.inquiry_request(tno, method), ref=tno)
        body = reply.body
        return InquiryAnswer(
            outcome=reply.outcome,
            amount=_int_or_none(body.get("amount")),
            remaining_balance=_int_or_none(body.get("rem_mny")),
            status=str(body.get("status") or ""),
            res_cd=reply.res_cd,
            res_msg=reply.res_msg,
            detail=reply.detail,
        )

    def charge(self, order: ChargeOrder) -> ChargeAnswer:
        """Charge a registered card (batch key) once; ordr_idxx makes a resend a duplicate."""
        reply = self._post(CHARGE_PATH, self.charge_request(order), ref=order.order_id)
        body = reply.body
        detail = reply.detail
        if reply.outcome is Outcome.SUCCEEDED and not body.get("tno"):
            detail = "approved, but the answer carries no tno"  # still approved: money moved
        return ChargeAnswer(
            outcome=reply.outcome,
            res_cd=reply.res_cd,
            res_msg=reply.res_msg,
            tno=str(body.get("tno") or ""),
            approved_at=parse_kst(body.get("app_time")),
            amount=_int_or_none(body.get("amount")),
            detail=detail,
        )

    def _post(self, path: str, payload: dict[str, str], *, ref: str) -> Reply:
        started = time.monotonic()
        try:
            response = self._http.request(
                "POST",
                self._base_url + path,
                body=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
                headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "Accept": "application/json",
                },
                timeout=self._timeout,
                retries=False,
                redirect=False,
            )
        except (HTTPError, OSError) as exc:
            reply = classify(error=exc)
        else:
            reply = classify(status=response.status, body=response.data)
        logger.info(
            "kcp call",
            extra={
                "kcp_path": path,
                "kcp_ref": ref,
                "outcome": str(reply.outcome),
                "res_cd": reply.res_cd,
                "detail": reply.detail,
                "elapsed_ms": round((time.monotonic() - started) * 1000, 1),
            },
        )
        return reply
