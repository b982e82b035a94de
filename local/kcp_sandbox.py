"""A local imitation of NHN KCP's cancel, inquiry and batch-charge APIs, with fault injection.

KCP endpoints (JSON in/out, HTTP 200 with res_cd/res_msg for every business answer):
    POST /gw/mod/v1/cancel    STSC/STPC (card, mobile), STHD/STPD (virtual account, transfer)
    POST /std/inquery         amount, rem_mny, status
    POST /gw/hub/v1/payment   batch charge; a reused ordr_idxx answers 8338
Admin endpoints (JSON) under /_sandbox/: merchants, payments, batch-keys, charges, faults, calls.

KCP's notifications (공통 통보): each merchant's common URL (POST /_sandbox/merchants/{site_cd}/
common-url {"url"}) receives a form POST, sent again until it answers KCP's success page
(result 0000), for:
    POST /_sandbox/payments/{tno}/admin-cancel   the merchant cancels in KCP's admin, full or
                                                 {"amount": n}: TX06, or TX01 (a virtual-account
                                                 refund); {"notify": false} keeps it unsent
    POST /_sandbox/payments/{tno}/deposit        the customer pays into a virtual account made
                                                 with {"deposited": false}: TX00
    GET  /_sandbox/notifications[/{id}]          each one, its form, every delivery and answer
    POST /_sandbox/notifications/{id}/send       send it (again), as KCP's resend would
Field names beyond KCP's samples (TX05/TX06's mod_mny, rem_mny, …) are the sandbox's guess.

Fault modes (POST /_sandbox/faults; apply to the next `times` matching KCP calls):
    latency_ms           wait `value` ms, then answer normally
    http_500             answer HTTP 500; nothing applied
    reset                close the socket with a TCP reset before applying anything
    malformed            apply the call (a cancel or charge really happens), then answer HTTP 200
                         with a non-JSON body, like a broken proxy in front of KCP
    res_cd               answer res_cd=`value` without applying
    commit_then_timeout  apply the call, then hold the connection `hold_seconds` (default 30)
                         without answering, then close it
Add "tno" to a fault to strike only calls for that payment.
Codes starting with "SB" are invented here: (sandbox; KCP's code unconfirmed).

Run standalone: python -m local.kcp_sandbox --port 8765
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import re
import secrets
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from local.http_server import LocalHTTPServer

logger = logging.getLogger(__name__)

KST = timezone(timedelta(hours=9), "KST")

# Every res_cd the sandbox answers by itself; SB* are (sandbox; KCP's code unconfirmed).
RES_CODES: dict[str, str] = {
    "OK": "0000",
    "DUPLICATE_ORDER": "8338",
    "ESCROW_PARTIAL": "8742",
    "OVER_BALANCE": "SB01",
    "ALREADY_CANCELLED": "SB02",
    "MOBILE_PREVIOUS_MONTH": "SB03",
    "BAD_SIGNATURE": "SB04",
    "INSUFFICIENT_BALANCE": "SB05",
    "EXPIRED_CARD": "SB06",
    "INVALID_BATCH_KEY": "SB07",
    "UNKNOWN_TNO": "SB08",
    "REM_MNY_MISMATCH": "SB09",
    "BAD_REFUND_ACCOUNT": "SB10",
    "TAX_MISMATCH": "SB11",
    "BAD_REQUEST": "SB12",
}
_MESSAGES = {
    "OK": "정상처리",
    "DUPLICATE_ORDER": "중복된 주문번호입니다",
    "ESCROW_PARTIAL": "에스크로 거래는 부분취소가 불가합니다",
    "OVER_BALANCE": "취소 가능 금액을 초과하였습니다",
    "ALREADY_CANCELLED": "이미 취소된 거래입니다",
    "MOBILE_PREVIOUS_MONTH": "휴대폰 결제는 당월에만 취소 가능합니다",
    "BAD_SIGNATURE": "인증서/서명 검증 오류",
    "INSUFFICIENT_BALANCE": "잔액(한도) 부족",
    "EXPIRED_CARD": "유효기간 경과 카드",
    "INVALID_BATCH_KEY": "유효하지 않은 배치키",
    "UNKNOWN_TNO": "거래번호 오류",
    "REM_MNY_MISMATCH": "취소 가능 잔액 불일치",
    "BAD_REFUND_ACCOUNT": "환불 계좌 정보 오류",
    "TAX_MISMATCH": "복합과세 금액 오류",
    "BAD_REQUEST": "요청 항목 오류",
}
METHODS = ("CARD", "BANK_TRANSFER", "VIRTUAL_ACCOUNT", "MOBILE")
REFUND_METHODS = ("BANK_TRANSFER", "VIRTUAL_ACCOUNT")
PAY_TYPES = {"CARD": "PACA", "BANK_TRANSFER": "PABK", "VIRTUAL_ACCOUNT": "PAVC", "MOBILE": "PAMC"}
MOD_TYPES = ("STSC", "STPC", "STHD", "STPD")
KCP_PATHS = {
    "/gw/mod/v1/cancel": "cancel",
    "/std/inquery": "inquiry",
    "/gw/hub/v1/payment": "charge",
}
FAULT_PATHS = ("cancel", "inquiry", "charge", "*")
FAULT_MODES = ("latency_ms", "http_500", "reset", "malformed", "res_cd", "commit_then_timeout")
DECLINES = {"INSUFFICIENT_BALANCE": "INSUFFICIENT_BALANCE", "EXPIRED_CARD": "EXPIRED_CARD"}
_BANK_CODE = re.compile(r"^BK\d{2}$")
_ACCOUNT = re.compile(r"^\d{6,20}$")


class BadInput(ValueError):
    """An admin request the sandbox refuses (HTTP 400)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def _now() -> datetime:
    return datetime.now(KST)


def _kcp_time(at: datetime) -> str:
    return at.astimezone(KST).strftime("%Y%m%d%H%M%S")


def _amount(value: object) -> int | None:
    """KCP sends amounts as digit strings; accept ints too."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def _flat(pem: str) -> str:
    return pem.strip().replace("\r", "").replace("\n", "")


def _mask_account(number: str) -> str:
    return "***" + number[-4:]


@dataclass
class Merchant:
    site_cd: str
    cert_pem: str
    private_key_pem: str
    key_password: str
    batch_group_id: str
    public_key: rsa.RSAPublicKey
    common_url: str = ""  # where KCP sends this merchant's notifications (공통 URL)

    def credentials(self) -> dict[str, str]:
        return {
            "site_cd": self.site_cd,
            "cert_pem": self.cert_pem,
            "private_key_pem": self.private_key_pem,
            "key_password": self.key_password,
            "batch_group_id": self.batch_group_id,
        }


@dataclass
class Payment:
    tno: str
    site_cd: str
    order_id: str
    method: str
    amount: int
    tax_free_amount: int
    product_name: str
    buyer_name: str
    buyer_email: str
    escrow: bool
    approved_at: datetime
    balance: int
    tax_free_balance: int
    card_cd: str = ""
    card_name: str = ""
    cancels: list[dict[str, Any]] = field(default_factory=list)
    partial_count: int = 0
    awaiting_deposit: bool = False  # a virtual account issued, not paid into yet

    @property
    def status(self) -> str:
        if self.awaiting_deposit:
            return "AWAITING_DEPOSIT"  # (sandbox; KCP's inquiry status unconfirmed)
        if self.balance == 0:
            return "CANCELLED"
        return "PAID" if self.balance == self.amount else "PARTIAL_CANCELLED"

    def summary(self) -> dict[str, Any]:
        return {
            "tno": self.tno,
            "order_id": self.order_id,
            "amount": self.amount,
            "tax_free_amount": self.tax_free_amount,
            "method": self.method,
            "product_name": self.product_name,
            "buyer_name": self.buyer_name,
            "buyer_email": self.buyer_email,
            "escrow": self.escrow,
            "approved_at": self.approved_at.isoformat(),
            "site_cd": self.site_cd,
        }

    def state(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "balance": self.balance,
            "tax_free_balance": self.tax_free_balance,
            "status": self.status,
            "cancels": [dict(c) for c in self.cancels],
        }


@dataclass
class Fault:
    path: str
    mode: str
    value: Any
    times: int
    hold_seconds: float
    tno: str = ""  # only calls for this tno (so concurrent tests keep their faults apart)

    def view(self) -> dict[str, Any]:
        return {
            "tno": self.tno or None,
            "path": self.path,
            "mode": self.mode,
            "value": self.value,
            "times": self.times,
            "hold_seconds": self.hold_seconds,
        }


def _answer(name: str, **fields: Any) -> dict[str, Any]:
    return {"res_cd": RES_CODES[name], "res_msg": _MESSAGES[name], **fields}


class KcpLedger:
    """The sandbox's in-memory KCP: merchants, payments, batch keys, charges, faults, calls.

    One lock guards everything, so concurrent cancels cannot over-cancel here either.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.merchants: dict[str, Merchant] = {}
        self.payments: dict[str, Payment] = {}
        self.batch_keys: dict[str, dict[str, Any]] = {}
        self.charges: list[dict[str, Any]] = []
        self.orders: dict[tuple[str, str], str] = {}  # (site_cd, ordr_idxx) -> tno
        self.faults: list[Fault] = []
        self.calls: list[dict[str, Any]] = []
        self.notifications: dict[str, dict[str, Any]] = {}  # id -> form, url, deliveries
        self.wait: Any = time.sleep  # between resends (the sandbox makes stop() cut it short)
        self._tno_seq = secrets.randbelow(500_000)

    # --- merchants ------------------------------------------------------------------------------

    def register_merchant(self, site_cd: str) -> dict[str, str]:
        if not isinstance(site_cd, str) or not re.fullmatch(r"[A-Za-z0-9]{1,10}", site_cd):
            raise BadInput("BAD_SITE_CD", "site_cd must be 1-10 letters or digits")
        with self.lock:
            existing = self.merchants.get(site_cd)
        if existing:
            return existing.credentials()
        merchant = _new_merchant(site_cd)  # slow (key generation): outside the lock
        with self.lock:
            return self.merchants.setdefault(site_cd, merchant).credentials()

    def _authentic(self, request: dict[str, Any], sign_text: str) -> bool:
        merchant = self.merchants.get(str(request.get("site_cd")))
        if merchant is None:
            return False
        if _flat(str(request.get("kcp_cert_info", ""))) != _flat(merchant.cert_pem):
            return False
        try:
            signature = base64.b64decode(str(request.get("kcp_sign_data", "")), validate=True)
            merchant.public_key.verify(
                signature, sign_text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256()
            )
        except (InvalidSignature, ValueError):
            return False
        return True

    # --- admin ----------------------------------------------------------------------------------

    def _new_tno(self) -> str:
        while True:
            self._tno_seq = (self._tno_seq + 1) % 1_000_000
            tno = _now().strftime("%Y%m%d") + f"{self._tno_seq:06d}"
            if tno not in self.payments:
                return tno

    def create_payment(self, body: dict[str, Any]) -> dict[str, Any]:
        method = body.get("method", "CARD")
        if method not in METHODS:
            raise BadInput("BAD_METHOD", f"method must be one of {', '.join(METHODS)}")
        amount = body.get("amount")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            raise BadInput("BAD_AMOUNT", "amount must be an integer > 0 (KRW)")
        tax_free = body.get("tax_free_amount", 0)
        if (
            not isinstance(tax_free, int)
            or isinstance(tax_free, bool)
            or not 0 <= tax_free <= amount
        ):
            raise BadInput("BAD_TAX_FREE_AMOUNT", "tax_free_amount must be an integer 0..amount")
        escrow = body.get("escrow", False)
        if not isinstance(escrow, bool):
            raise BadInput("BAD_ESCROW", "escrow must be true or false")
        approved_at = _now()
        if body.get("approved_at") is not None:
            try:
                approved_at = datetime.fromisoformat(str(body["approved_at"]))
            except ValueError as exc:
                raise BadInput("BAD_APPROVED_AT", "approved_at must be an ISO 8601 time") from exc
            if approved_at.tzinfo is None:
                approved_at = approved_at.replace(tzinfo=KST)  # a naive time is read as KST
        deposited = body.get("deposited", True)
        if not isinstance(deposited, bool) or (not deposited and method != "VIRTUAL_ACCOUNT"):
            raise BadInput("BAD_DEPOSITED", "deposited: false is only for a VIRTUAL_ACCOUNT")
        site_cd = body.get("site_cd", "T0000")
        strings = {}
        for name in ("product_name", "buyer_name", "buyer_email", "order_id"):
            value = body.get(name, "")
            if not isinstance(value, str):
                raise BadInput("BAD_FIELD", f"{name} must be a string")
            strings[name] = value
        with self.lock:
            if site_cd not in self.merchants:
                raise BadInput("UNKNOWN_SITE_CD", f"register merchant {site_cd!r} first")
            tno = self._new_tno()
            payment = Payment(
                tno=tno,
                site_cd=site_cd,
                order_id=strings["order_id"] or f"ORD-{secrets.token_hex(6)}",
                method=method,
                amount=amount,
                tax_free_amount=tax_free,
                product_name=strings["product_name"] or "sandbox product",
                buyer_name=strings["buyer_name"] or "홍길동",
                buyer_email=strings["buyer_email"] or "buyer@example.com",
                escrow=escrow,
                approved_at=approved_at.astimezone(KST),
                balance=amount,
                tax_free_balance=tax_free,
                card_cd="CCLG" if method == "CARD" else "",
                card_name="신한카드" if method == "CARD" else "",
                awaiting_deposit=not deposited,
            )
            self.payments[tno] = payment
            return payment.summary()

    def payment_state(self, tno: str) -> dict[str, Any] | None:
        with self.lock:
            payment = self.payments.get(tno)
            return payment.state() if payment else None

    def issue_batch_key(self, body: dict[str, Any]) -> dict[str, Any]:
        decline = body.get("decline")
        if decline is not None and decline not in DECLINES:
            raise BadInput(
                "BAD_DECLINE", "decline must be null, INSUFFICIENT_BALANCE or EXPIRED_CARD"
            )
        site_cd = body.get("site_cd", "T0000")
        with self.lock:
            if site_cd not in self.merchants:
                raise BadInput("UNKNOWN_SITE_CD", f"register merchant {site_cd!r} first")
            key = "SBK" + secrets.token_hex(10).upper()
            self.batch_keys[key] = {"site_cd": site_cd, "decline": decline, "card_name": "신한카드"}
            return {"batch_key": key, "card_name": "신한카드"}

    def charge_list(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(c) for c in self.charges]

    def add_fault(self, body: dict[str, Any]) -> dict[str, Any]:
        path, mode = body.get("path"), body.get("mode")
        if path not in FAULT_PATHS:
            raise BadInput("BAD_FAULT_PATH", f"path must be one of {', '.join(FAULT_PATHS)}")
        if mode not in FAULT_MODES:
            raise BadInput("BAD_FAULT_MODE", f"mode must be one of {', '.join(FAULT_MODES)}")
        value = body.get("value")
        if mode == "latency_ms" and (not isinstance(value, int) or value < 0):
            raise BadInput("BAD_FAULT_VALUE", "latency_ms needs value: milliseconds (int >= 0)")
        if mode == "res_cd" and (not isinstance(value, str) or not value):
            raise BadInput("BAD_FAULT_VALUE", "res_cd needs value: the code as a string")
        times = body.get("times", 1)
        if not isinstance(times, int) or isinstance(times, bool) or times < 1:
            raise BadInput("BAD_FAULT_TIMES", "times must be an integer >= 1")
        hold = body.get("hold_seconds", 30)
        if not isinstance(hold, int | float) or isinstance(hold, bool) or hold < 0:
            raise BadInput("BAD_FAULT_HOLD", "hold_seconds must be a number >= 0")
        tno = body.get("tno") or ""
        if not isinstance(tno, str):
            raise BadInput("BAD_FAULT_TNO", "tno must be a string")
        fault = Fault(str(path), str(mode), value, times, float(hold), tno)
        with self.lock:
            self.faults.append(fault)
        return fault.view()

    def take_fault(self, kind: str, tno: str = "") -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.path in (kind, "*") and fault.tno in ("", tno):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def record_call(self, kind: str, request: dict[str, Any] | None) -> dict[str, Any]:
        """Journal a KCP call as it arrives; the caller fills in "answer" once it is known."""
        request = request or {}
        call = {
            "path": kind,
            "tno": request.get("tno", ""),
            "mod_type": request.get("mod_type", ""),
            "ordr_idxx": request.get("ordr_idxx", ""),
            "time": _now().isoformat(),
            "answer": "",  # res_cd, or what the caller got instead (a fault)
        }
        # A partial cancel's amounts, and the mixed-taxation fields, as KCP received them.
        fields = ("mod_mny", "rem_mny", "tax_flag", "mod_tax_mny", "mod_vat_mny", "mod_free_mny")
        call |= {k: request[k] for k in fields if k in request}
        with self.lock:
            self.calls.append(call)
        return call

    def call_list(self, kind: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(c) for c in self.calls if kind in (None, "", c["path"])]

    # --- notifications (공통 통보) ---------------------------------------------------------------

    def set_common_url(self, site_cd: str, url: str) -> dict[str, str]:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise BadInput("BAD_URL", "url must be an http(s) URL")
        with self.lock:
            merchant = self.merchants.get(site_cd)
            if merchant is None:
                raise BadInput("UNKNOWN_SITE_CD", f"register merchant {site_cd!r} first")
            merchant.common_url = url
        return {"site_cd": site_cd, "common_url": url}

    def admin_cancel(self, tno: str, body: dict[str, Any]) -> dict[str, Any]:
        """The merchant cancels in KCP's admin (not through the API): applied, then notified."""
        with self.lock:
            payment = self._payment(tno)
            if payment.awaiting_deposit or payment.balance == 0:
                raise BadInput("NOTHING_TO_CANCEL", "nothing is left to cancel")
            amount = body.get("amount", payment.balance)
            if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
                raise BadInput("BAD_AMOUNT", "amount must be an integer > 0 (KRW)")
            if amount > payment.balance:
                raise BadInput("OVER_BALANCE", f"only {payment.balance} is left")
            partial = amount < payment.balance
            refund = payment.method in REFUND_METHODS
            mod_type = (
                ("STPD" if partial else "STHD") if refund else ("STPC" if partial else "STSC")
            )
            free = min(payment.tax_free_balance, amount) if not partial else 0
            payment.balance -= amount
            payment.tax_free_balance = max(0, min(payment.tax_free_balance - free, payment.balance))
            seq = ""
            if partial:
                payment.partial_count += 1
                seq = f"{payment.partial_count:04d}"
            canc_time = _kcp_time(_now())
            payment.cancels.append(
                {
                    "mod_type": mod_type,
                    "amount": amount,
                    "balance_after": payment.balance,
                    "seq_no": seq,
                    "canc_time": canc_time,
                    "refund_account": None,
                    "by": "ADMIN",
                }
            )
            form = self._form(payment, "TX01" if payment.method == "VIRTUAL_ACCOUNT" else "TX06")
            form["tx_tm"] = canc_time
            if form["tx_cd"] == "TX01":
                form |= {"refund_nm": payment.buyer_name, "refund_mny": str(amount)}
                form["bank_code"] = "BK04"
            form |= {"mod_type": mod_type, "mod_mny": str(amount), "rem_mny": str(payment.balance)}
            form["mod_pcan_seq_no"] = seq
            notice = self._notice(payment, form)
        if body.get("notify", True):
            self.deliver(notice["id"])
        return self.notification(notice["id"]) or notice

    def deposit(self, tno: str, body: dict[str, Any]) -> dict[str, Any]:
        """The customer pays into a virtual account: it becomes paid, then KCP notifies TX00."""
        with self.lock:
            payment = self._payment(tno)
            if not payment.awaiting_deposit:
                raise BadInput("NOT_AWAITING_DEPOSIT", "not a virtual account awaiting its deposit")
            payment.awaiting_deposit = False
            form = self._form(payment, "TX00")
            form |= {
                "ipgm_name": payment.buyer_name,
                "remitter": str(body.get("remitter") or payment.buyer_name),
                "ipgm_mnyx": str(payment.amount),
                "totl_mnyx": str(payment.amount),
                "ipgm_time": form["tx_tm"],
                "bank_code": "BK04",
                "account": "T" + payment.tno[-9:],
                "op_cd": "00",
                "noti_id": form["tx_tm"] + secrets.token_hex(3),
            }
            notice = self._notice(payment, form)
        if body.get("notify", True):
            self.deliver(notice["id"])
        return self.notification(notice["id"]) or notice

    def _payment(self, tno: str) -> Payment:
        payment = self.payments.get(tno)
        if payment is None:
            raise BadInput("UNKNOWN_TNO", "no payment with this tno")
        return payment

    @staticmethod
    def _form(payment: Payment, tx_cd: str) -> dict[str, str]:
        return {
            "site_cd": payment.site_cd,
            "tno": payment.tno,
            "order_no": payment.order_id,
            "tx_cd": tx_cd,
            "tx_tm": _kcp_time(_now()),
        }

    def _notice(self, payment: Payment, form: dict[str, str]) -> dict[str, Any]:
        notice: dict[str, Any] = {
            "id": f"noti_{len(self.notifications) + 1:06d}",
            "site_cd": payment.site_cd,
            "tno": payment.tno,
            "tx_cd": form["tx_cd"],
            "form": form,
            "url": "",
            "answered": False,
            "deliveries": [],
        }
        self.notifications[notice["id"]] = notice
        return notice

    def notification(self, notice_id: str) -> dict[str, Any] | None:
        with self.lock:
            notice = self.notifications.get(notice_id)
            return json.loads(json.dumps(notice)) if notice else None

    def notification_list(self) -> list[dict[str, Any]]:
        with self.lock:
            found: list[dict[str, Any]] = json.loads(json.dumps(list(self.notifications.values())))
            return found

    def deliver(self, notice_id: str) -> dict[str, Any]:
        """Send it to the merchant's common URL now, and again until KCP's success page comes
        back (in the background, a few times over about a minute; KCP's own schedule is not
        published)."""
        with self.lock:
            notice = self.notifications.get(notice_id)
            if notice is None:
                raise BadInput("UNKNOWN_NOTIFICATION", "no notification with this id")
            merchant = self.merchants[notice["site_cd"]]
            if not merchant.common_url:
                raise BadInput("NO_COMMON_URL", "the merchant registered no common URL")
            notice["url"] = merchant.common_url
            notice["answered"] = False
        threading.Thread(target=self._send_until_answered, args=(notice_id,), daemon=True).start()
        return {"id": notice_id, "sending": True}

    def _send_until_answered(self, notice_id: str) -> None:
        for delay in RESEND_DELAYS:
            with self.lock:
                notice = self.notifications[notice_id]
                url, form = notice["url"], dict(notice["form"])
            delivery = _post_form(url, form)
            with self.lock:
                notice["deliveries"].append(delivery)
                if delivery["taken"]:
                    notice["answered"] = True
                    return
            self.wait(delay)

    # --- KCP ------------------------------------------------------------------------------------

    def handle(self, kind: str, request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if kind == "cancel":
                return self._cancel(request)
            if kind == "inquiry":
                return self._inquire(request)
            return self._charge(request)

    def _cancel(self, req: dict[str, Any]) -> dict[str, Any]:
        site_cd, tno, mod_type = req.get("site_cd"), req.get("tno"), req.get("mod_type")
        if not self._authentic(req, f"{site_cd}^{tno}^{mod_type}"):
            return _answer("BAD_SIGNATURE")
        if mod_type not in MOD_TYPES:
            return _answer("BAD_REQUEST")
        payment = self.payments.get(str(tno))
        if payment is None or payment.site_cd != site_cd:
            return _answer("UNKNOWN_TNO")
        if payment.awaiting_deposit:
            return _answer("BAD_REQUEST")  # nothing paid in to refund
        if payment.balance == 0:
            return _answer("ALREADY_CANCELLED")
        now = _now()
        if payment.method == "MOBILE" and (payment.approved_at.year, payment.approved_at.month) != (
            now.year,
            now.month,
        ):
            return _answer("MOBILE_PREVIOUS_MONTH")
        partial = mod_type in ("STPC", "STPD")
        refund = mod_type in ("STHD", "STPD")
        if payment.method in REFUND_METHODS and not refund:
            return _answer("BAD_REFUND_ACCOUNT")  # these methods are refunded to an account
        if refund and payment.method not in REFUND_METHODS:
            return _answer("BAD_REQUEST")
        account = None
        if refund:
            bank, number = str(req.get("mod_bankcode", "")), str(req.get("mod_account", ""))
            holder = str(req.get("mod_depositor", "")).strip()
            number = number.replace("-", "")
            if not (_BANK_CODE.match(bank) and _ACCOUNT.match(number) and holder):
                return _answer("BAD_REFUND_ACCOUNT")
            account = {"bank_code": bank, "number": _mask_account(number), "holder": holder}
        if partial:
            if payment.escrow:
                return _answer("ESCROW_PARTIAL")
            amount = _amount(req.get("mod_mny"))
            if amount is None or amount <= 0:
                return _answer("BAD_REQUEST")
            if amount > payment.balance:
                return _answer("OVER_BALANCE")
            if _amount(req.get("rem_mny")) != payment.balance:
                return _answer("REM_MNY_MISMATCH")
            free = self._tax_free_part(req, payment, amount)
            if free is None:
                return _answer("TAX_MISMATCH")
        else:
            amount, free = payment.balance, payment.tax_free_balance
        tax_free_before = payment.tax_free_balance
        payment.balance -= amount
        payment.tax_free_balance = min(payment.tax_free_balance - free, payment.balance)
        seq = ""
        if partial:
            payment.partial_count += 1
            seq = f"{payment.partial_count:04d}"
        canc_time = _kcp_time(now)
        payment.cancels.append(
            {
                "mod_type": mod_type,
                "amount": amount,
                "balance_after": payment.balance,
                "tax_free_amount": tax_free_before - payment.tax_free_balance,
                "tax_free_balance_after": payment.tax_free_balance,
                "seq_no": seq,
                "canc_time": canc_time,
                "refund_account": account,
            }
        )
        return _answer(
            "OK",
            tno=payment.tno,
            canc_time=canc_time,
            mod_mny=str(amount),
            rem_mny=str(payment.balance),
            mod_pcan_seq_no=seq,
            amount=str(payment.amount),
            card_cd=payment.card_cd,
            card_name=payment.card_name,
        )

    @staticmethod
    def _tax_free_part(req: dict[str, Any], payment: Payment, amount: int) -> int | None:
        """Tax-free part of a partial cancel; None when the mixed-taxation fields disagree."""
        tax_keys = ("tax_flag", "mod_tax_mny", "mod_vat_mny", "mod_free_mny")
        if not any(k in req for k in tax_keys):
            # All taxable: it must fit in the taxable balance, unless only tax-free money is left.
            taxable_left = payment.balance - payment.tax_free_balance
            return max(0, amount - taxable_left)
        if req.get("tax_flag") != "TG03":
            return None
        tax, vat, free = (_amount(req.get(k)) for k in tax_keys[1:])
        if tax is None or vat is None or free is None or tax + vat + free != amount:
            return None
        # mod_vat_mny is the 10% VAT inside the taxable part (tax + vat). KCP's rounding is
        # unconfirmed: either way of rounding passes, so the client's one rule is tested here,
        # not copied (a supply value sent as the total, or VAT left out, is refused).
        if vat not in ((tax + vat) // 11, -(-(tax + vat) // 11)):
            return None
        if free > payment.tax_free_balance:
            return None
        if tax + vat > payment.balance - payment.tax_free_balance:
            return None
        return free

    def _inquire(self, req: dict[str, Any]) -> dict[str, Any]:
        site_cd, tno, pay_type = req.get("site_cd"), req.get("tno"), req.get("pay_type")
        if not self._authentic(req, f"{site_cd}^{tno}^{pay_type}"):
            return _answer("BAD_SIGNATURE")
        payment = self.payments.get(str(tno))
        if payment is None or payment.site_cd != site_cd:
            return _answer("UNKNOWN_TNO")
        if pay_type != PAY_TYPES[payment.method]:
            return _answer("BAD_REQUEST")
        return _answer(
            "OK",
            tno=payment.tno,
            pay_type=pay_type,
            amount=str(payment.amount),
            rem_mny="0" if payment.awaiting_deposit else str(payment.balance),
            status=payment.status,
        )

    def _charge(self, req: dict[str, Any]) -> dict[str, Any]:
        site_cd, order_id = req.get("site_cd"), req.get("ordr_idxx")
        if not self._authentic(req, f"{site_cd}^{order_id}^{req.get('amount')}"):
            return _answer("BAD_SIGNATURE")
        amount = _amount(req.get("amount"))
        if (
            not isinstance(order_id, str)
            or not order_id
            or amount is None
            or amount <= 0
            or _amount(req.get("card_mny")) != amount
            or req.get("pay_method") != "CARD"
            or req.get("currency") != "410"
        ):
            return _answer("BAD_REQUEST")
        if (str(site_cd), order_id) in self.orders:
            return _answer("DUPLICATE_ORDER")
        merchant = self.merchants[str(site_cd)]
        key = self.batch_keys.get(str(req.get("bt_batch_key")))
        if (
            key is None
            or key["site_cd"] != site_cd
            or req.get("bt_group_id") != merchant.batch_group_id
        ):
            return _answer("INVALID_BATCH_KEY")
        if key["decline"]:
            return _answer(DECLINES[key["decline"]])
        now = _now()
        payment = Payment(
            tno=self._new_tno(),
            site_cd=str(site_cd),
            order_id=order_id,
            method="CARD",
            amount=amount,
            tax_free_amount=0,
            product_name=str(req.get("good_name", "")),
            buyer_name=str(req.get("buyr_name", "")),
            buyer_email=str(req.get("buyr_mail", "")),
            escrow=False,
            approved_at=now,
            balance=amount,
            tax_free_balance=0,
            card_cd="CCLG",
            card_name=key["card_name"],
        )
        self.payments[payment.tno] = payment
        self.orders[(payment.site_cd, order_id)] = payment.tno
        app_no = f"{secrets.randbelow(10**8):08d}"
        self.charges.append(
            {
                "tno": payment.tno,
                "ordr_idxx": order_id,
                "amount": amount,
                "site_cd": payment.site_cd,
                "batch_key": "***" + str(req.get("bt_batch_key"))[-4:],
                "app_no": app_no,
                "app_time": _kcp_time(now),
            }
        )
        return _answer(
            "OK",
            tno=payment.tno,
            amount=str(amount),
            app_no=app_no,
            app_time=_kcp_time(now),
            card_cd=payment.card_cd,
            card_name=payment.card_name,
        )


RESEND_DELAYS = (0.2, 0.5, 1, 2, 4, 8, 15, 30)  # then KCP gives up (its real schedule: unknown)
_RESULT = re.compile(r'<input[^>]*name="result"[^>]*value="([^"]*)"', re.IGNORECASE)


def _post_form(url: str, form: dict[str, str]) -> dict[str, Any]:
    """One delivery of a notification, as KCP posts it (urlencoded, EUC-KR: KCP's sample pages
    are EUC-KR; unconfirmed), and whether the answer was KCP's success page."""
    data = urllib.parse.urlencode(form, encoding="euc-kr").encode("ascii")
    request = urllib.request.Request(  # noqa: S310 (the merchant's URL, set by an admin call)
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=euc-kr"},
    )
    delivery: dict[str, Any] = {"time": _now().isoformat(), "status": None, "result": ""}
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            delivery["status"], text = answer.status, answer.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as refused:
        delivery["status"], text = refused.code, refused.read().decode("utf-8", "replace")
    except OSError as error:
        delivery["error"], text = type(error).__name__, ""
    found = _RESULT.search(text)
    delivery["result"] = found.group(1) if found else ""
    delivery["taken"] = delivery["status"] == 200 and delivery["result"] == "0000"
    return delivery


def _new_merchant(site_cd: str) -> Merchant:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "KR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "KCP sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, site_cd),
        ]
    )
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    password = secrets.token_urlsafe(12)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password.encode()),
    )
    return Merchant(
        site_cd=site_cd,
        cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        private_key_pem=key_pem.decode(),
        key_password=password,
        batch_group_id=f"BA{secrets.randbelow(10**10):010d}",
        public_key=key.public_key(),
    )


# --- HTTP -----------------------------------------------------------------------------------------


class _Server(LocalHTTPServer):
    """Counts accepted connections and can cut every open one (so stop() never hangs)."""

    def __init__(self, address: tuple[str, int], sandbox: KcpSandbox) -> None:
        self.sandbox = sandbox
        self.connections_accepted = 0
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()  # with TCP_NODELAY
        with self._open_lock:
            self.connections_accepted += 1
            self._open.add(sock)
        return sock, address

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def cut_all(self) -> None:
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so a client can reuse its connection
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    @property
    def ledger(self) -> KcpLedger:
        return self.server.sandbox.ledger

    # --- plumbing -------------------------------------------------------------------------------

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Any, content_type: str = "application/json") -> None:
        body = json.dumps(data, ensure_ascii=False).encode("utf-8")
        self._send(status, body, f"{content_type}; charset=utf-8")

    def _problem(self, status: int, code: str, detail: str) -> None:
        self._json(status, {"code": code, "detail": detail}, "application/problem+json")

    def _reset(self) -> None:
        """Close with a TCP RST and no answer."""
        self.close_connection = True
        sock = self.connection
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        # rfile (a makefile) holds a reference to the socket: close it so close() really closes.
        # wfile writes straight to the socket and is flushed by the stdlib afterwards: leave it.
        self.rfile.close()
        sock.close()

    def _hold_then_close(self, seconds: float) -> None:
        """Never answer: wait (until stop) and close, so the client sees a read timeout."""
        self.close_connection = True
        self.server.sandbox.stopping.wait(seconds)
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # --- routing --------------------------------------------------------------------------------

    def do_POST(self) -> None:
        raw = self._body()
        path = urlsplit(self.path).path
        if path in KCP_PATHS:
            self._kcp(KCP_PATHS[path], raw)
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._problem(400, "BAD_JSON", "body must be a JSON object")
            return
        self._admin("POST", path, body)

    def do_GET(self) -> None:
        self._admin("GET", self.path, {})

    def do_DELETE(self) -> None:
        self._body()
        self._admin("DELETE", self.path, {})

    def _admin(self, verb: str, target: str, body: dict[str, Any]) -> None:
        url = urlsplit(target)
        path, query = url.path.rstrip("/"), parse_qs(url.query)
        ledger = self.ledger
        try:
            if verb == "POST" and path == "/_sandbox/merchants":
                self._json(201, ledger.register_merchant(body.get("site_cd", "T0000")))
            elif verb == "POST" and path == "/_sandbox/payments":
                self._json(201, ledger.create_payment(body))
            elif verb == "GET" and path.startswith("/_sandbox/payments/"):
                state = ledger.payment_state(path.rsplit("/", 1)[1])
                if state is None:
                    self._problem(404, "UNKNOWN_TNO", "no payment with this tno")
                else:
                    self._json(200, state)
            elif verb == "POST" and re.fullmatch(r"/_sandbox/merchants/[^/]+/common-url", path):
                site_cd = path.split("/")[3]
                self._json(200, ledger.set_common_url(site_cd, str(body.get("url") or "")))
            elif verb == "POST" and re.fullmatch(r"/_sandbox/payments/\d+/admin-cancel", path):
                self._json(202, ledger.admin_cancel(path.split("/")[3], body))
            elif verb == "POST" and re.fullmatch(r"/_sandbox/payments/\d+/deposit", path):
                self._json(202, ledger.deposit(path.split("/")[3], body))
            elif verb == "GET" and path == "/_sandbox/notifications":
                self._json(200, ledger.notification_list())
            elif verb == "GET" and path.startswith("/_sandbox/notifications/"):
                notice = ledger.notification(path.rsplit("/", 1)[1])
                if notice is None:
                    self._problem(404, "UNKNOWN_NOTIFICATION", "no notification with this id")
                else:
                    self._json(200, notice)
            elif verb == "POST" and re.fullmatch(r"/_sandbox/notifications/[^/]+/send", path):
                self._json(202, ledger.deliver(path.split("/")[3]))
            elif verb == "POST" and path == "/_sandbox/batch-keys":
                self._json(201, ledger.issue_batch_key(body))
            elif verb == "GET" and path == "/_sandbox/charges":
                self._json(200, ledger.charge_list())
            elif verb == "POST" and path == "/_sandbox/faults":
                self._json(201, ledger.add_fault(body))
            elif verb == "GET" and path == "/_sandbox/faults":
                with ledger.lock:
                    self._json(200, [f.view() for f in ledger.faults])
            elif verb == "DELETE" and path == "/_sandbox/faults":
                with ledger.lock:
                    ledger.faults.clear()
                self._send(204, b"", "text/plain")
            elif verb == "GET" and path == "/_sandbox/calls":
                self._json(200, ledger.call_list(query.get("path", [None])[0]))
            elif verb == "DELETE" and path == "/_sandbox/calls":
                with ledger.lock:
                    ledger.calls.clear()
                self._send(204, b"", "text/plain")
            else:
                self._problem(404, "NOT_FOUND", f"no route {verb} {path}")
        except BadInput as exc:
            self._problem(400, exc.code, exc.detail)

    def _kcp(self, kind: str, raw: bytes) -> None:
        try:
            request = json.loads(raw)
            if not isinstance(request, dict):
                request = None
        except ValueError:
            request = None
        call = self.ledger.record_call(kind, request)
        fault = self.ledger.take_fault(kind, str((request or {}).get("tno", "")))
        mode = fault.mode if fault else ""
        # Faults that strike before anything is applied.
        if fault and mode == "latency_ms":
            self.server.sandbox.stopping.wait(fault.value / 1000)
        elif mode == "reset":
            call["answer"] = "reset (not applied)"
            self._reset()
            return
        elif mode == "http_500":
            call["answer"] = "HTTP 500 (not applied)"
            self._send(500, b"Internal Server Error", "text/plain")
            return
        elif fault and mode == "res_cd":
            call["answer"] = f"{fault.value} (fault, not applied)"
            self._json(200, {"res_cd": fault.value, "res_msg": "sandbox fault (res_cd)"})
            return
        if request is None:
            answer = _answer("BAD_REQUEST")
        else:
            answer = self.ledger.handle(kind, request)
        call["answer"] = str(answer.get("res_cd", ""))
        if fault and mode == "latency_ms":
            call["answer"] += f" (after {fault.value} ms)"
        # Faults that strike after the call was applied: the money moved, the answer is lost.
        if fault and mode == "malformed":
            call["answer"] += " (applied; answered with a malformed body)"
            self._send(200, b"<html><body>502 Bad Gateway</body></html>", "text/html")
        elif fault and mode == "commit_then_timeout":
            call["answer"] += " (applied; never answered)"
            self._hold_then_close(fault.hold_seconds)
        else:
            self._json(200, answer)


class KcpSandbox:
    """A KCP imitation on 127.0.0.1 (ephemeral port by default), served from a daemon thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.ledger = KcpLedger()
        self.stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections_before = 0  # connections counted by earlier start()/stop() rounds

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted since construction (to measure connection reuse)."""
        live = self._server.connections_accepted if self._server else 0
        return self._connections_before + live

    def start(self) -> str:
        """Start serving; returns the base URL."""
        if self._server is not None:
            return self.url
        self.stopping = threading.Event()
        stopping = self.stopping
        self.ledger.wait = lambda seconds: stopping.wait(seconds)
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"kcp-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and cut every open connection (held ones included). State is kept."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self.stopping.set()  # releases held connections and pending latency
        server.shutdown()
        server.cut_all()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._connections_before += server.connections_accepted
        self._server = self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def register_merchant(self, site_cd: str) -> dict[str, str]:
        """Credentials for site_cd (generated once): site_cd, cert_pem, private_key_pem,
        key_password, batch_group_id."""
        return self.ledger.register_merchant(site_cd)

    def set_common_url(self, site_cd: str, url: str) -> dict[str, str]:
        """Register the merchant's common notification URL (KCP's merchant admin does)."""
        return self.ledger.set_common_url(site_cd, url)


class SandboxProcess:
    """The sandbox in a process of its own (`python -m local.kcp_sandbox`), driven over HTTP:
    for benches, where the time KCP receives a call must not wait on the stack's other threads."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or _free_port(host)
        self._process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        self._process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", "local.kcp_sandbox", "--port", str(self.port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout
        self._process.stdout.readline()  # "KCP sandbox at ...": it is listening
        return self.url

    def stop(self) -> None:
        if self._process:
            self._process.terminate()
            self._process.wait(timeout=10)

    def register_merchant(self, site_cd: str) -> dict[str, str]:
        return self.admin("POST", "/_sandbox/merchants", {"site_cd": site_cd})  # type: ignore[no-any-return]

    def set_common_url(self, site_cd: str, url: str) -> dict[str, str]:
        path = f"/_sandbox/merchants/{site_cd}/common-url"
        return self.admin("POST", path, {"url": url})  # type: ignore[no-any-return]

    def admin(self, verb: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(  # noqa: S310 (loopback, http)
            self.url + path,
            data=json.dumps(body).encode() if body is not None else None,
            method=verb,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 (loopback)
            return json.loads(answer.read())


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local KCP sandbox")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default loopback)")
    parser.add_argument("--port", type=int, default=0, help="0 = ephemeral")
    parser.add_argument("--site-cd", default="T0000")
    parser.add_argument("--credentials-out", help="write the merchant's credentials JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    sandbox = KcpSandbox(args.host, args.port)
    credentials = sandbox.register_merchant(args.site_cd)
    if args.credentials_out:
        with open(args.credentials_out, "w", encoding="utf-8") as out:
            json.dump(credentials, out, ensure_ascii=False, indent=2)
    url = sandbox.start()
    print(f"KCP sandbox at {url} (merchant {args.site_cd})", flush=True)
    print(f'credentials: POST {url}/_sandbox/merchants {{"site_cd": "{args.site_cd}"}}', flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    sandbox.stop()


if __name__ == "__main__":
    main()
