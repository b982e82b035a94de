"""What the workflow needs from a payment gateway, independent of KCP's wire format."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class Outcome(StrEnum):
    """How an answer from the gateway is classified — once, in one place (the client)."""

    SUCCEEDED = "SUCCEEDED"  # the gateway confirmed it
    DECLINED = "DECLINED"  # a well-formed refusal: definitive, nothing moved
    UNKNOWN = "UNKNOWN"  # the request may have reached the gateway; its fate is unknown
    NOT_SENT = "NOT_SENT"  # failed before anything left (DNS, connect refused): safe to retry


class PayMethod(StrEnum):
    CARD = "CARD"
    BANK_TRANSFER = "BANK_TRANSFER"
    VIRTUAL_ACCOUNT = "VIRTUAL_ACCOUNT"
    MOBILE = "MOBILE"


@dataclass(frozen=True)
class KcpCredentials:
    """A merchant's KCP credentials, loaded by reference (Secrets Manager), never logged."""

    site_cd: str
    cert_pem: str  # service certificate, PEM
    private_key_pem: str  # PKCS#8, encrypted with key_password
    key_password: str = field(repr=False)
    batch_group_id: str = ""

    def __repr__(self) -> str:  # keep keys out of logs and tracebacks
        return f"KcpCredentials(site_cd={self.site_cd!r})"


@dataclass(frozen=True)
class RefundAccount:
    bank_code: str  # KCP bank code, e.g. BK04
    number: str
    holder: str

    def __repr__(self) -> str:
        return f"RefundAccount(bank_code={self.bank_code!r}, number='***{self.number[-4:]}')"


@dataclass(frozen=True)
class CancelOrder:
    """One cancel to send. amount None means a full cancel."""

    tno: str
    method: PayMethod
    reason: str
    amount: int | None = None  # partial amount (KRW)
    balance_before: int | None = None  # cancellable balance before this cancel (rem_mny)
    tax_free_amount: int = 0  # tax-free part of a partial cancel (mixed taxation)
    # A mixed-taxation payment: its partial cancels name both parts (TG03), even one whose
    # tax-free part is 0; a full cancel (amount None) takes both whole and names neither.
    mixed_tax: bool = False
    refund_account: RefundAccount | None = None  # virtual account / transfer refunds


@dataclass(frozen=True)
class CancelAnswer:
    outcome: Outcome
    res_cd: str = ""
    res_msg: str = ""
    cancelled_at: datetime | None = None  # canc_time, timezone-aware
    cancelled_amount: int | None = None  # mod_mny
    remaining_balance: int | None = None  # rem_mny after the cancel
    partial_seq: str = ""  # mod_pcan_seq_no
    detail: str = ""  # why UNKNOWN / NOT_SENT (timeout, 5xx, reset, bad body)


@dataclass(frozen=True)
class InquiryAnswer:
    outcome: Outcome  # SUCCEEDED when KCP answered the inquiry
    amount: int | None = None
    remaining_balance: int | None = None
    status: str = ""
    res_cd: str = ""
    res_msg: str = ""
    detail: str = ""

    @property
    def awaiting_deposit(self) -> bool:
        """A virtual account issued and not paid into yet. The status KCP's inquiry gives such
        a payment is unconfirmed: the sandbox's word, kept here only."""
        return self.status in AWAITING_DEPOSIT_STATUSES


AWAITING_DEPOSIT_STATUSES = frozenset({"AWAITING_DEPOSIT"})  # (sandbox; KCP's unconfirmed)


@dataclass(frozen=True)
class ChargeOrder:
    batch_key: str = field(repr=False)
    order_id: str  # ordr_idxx — unique per charge, derived from the idempotency key
    amount: int
    product_name: str
    buyer_name: str
    buyer_email: str


@dataclass(frozen=True)
class ChargeAnswer:
    outcome: Outcome
    res_cd: str = ""
    res_msg: str = ""
    tno: str = ""
    approved_at: datetime | None = None
    amount: int | None = None
    detail: str = ""


class Gateway(Protocol):
    """A payment gateway bound to one merchant's credentials."""

    def cancel(self, order: CancelOrder) -> CancelAnswer: ...

    def inquire(self, tno: str, method: PayMethod) -> InquiryAnswer: ...

    def charge(self, order: ChargeOrder) -> ChargeAnswer: ...
