"""KCP's notifications (공통 통보): the form KCP POSTs to the merchant, and the answer it expects.

Everything about the wire form lives here, so what turns out different at KCP changes in one
place. What public samples (KCP's common_return page) show, and what is not confirmed:

- The form: `site_cd`, `tno`, `order_no`, `tx_cd`, `tx_tm` (yyyyMMddHHmmss, KST) always; TX00
  (virtual-account deposit) adds `ipgm_name`, `remitter`, `ipgm_mnyx` (amount deposited),
  `bank_code`, `account`, `op_cd`, `noti_id`; TX01 (virtual-account refund) `refund_nm`,
  `refund_mny`, `bank_code`. The fields of TX05 (immediate cancel) and TX06 (cancel) are not in
  the samples (unconfirmed): we read the cancel API's own names, `mod_type`, `mod_mny` (amount
  cancelled), `rem_mny` (balance after) and `mod_pcan_seq_no`, and whatever is missing is
  worked out from our balance (cancelflow.notifications.rules).
- The encoding: urlencoded; Korean values may be EUC-KR (KCP's sample pages are) or UTF-8
  (unconfirmed): UTF-8 is tried first, then CP949 (a superset of EUC-KR).
- A resend carries the same fields (unconfirmed), so a notification is identified by them:
  `notice_id` is a digest of the identifying fields, never of the whole form.
- The answer: an HTML page with a hidden field `result`; "0000" means taken, anything else
  makes KCP send it again (exact form unconfirmed; built only by `answer_page`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from urllib.parse import parse_qsl

KST = timezone(timedelta(hours=9), "KST")
TAKEN = "0000"  # the result that stops KCP resending
RETRY = "9999"  # any other value makes KCP resend (we use one, for "not now")


class TxKind(StrEnum):
    """What a tx_cd reports, as far as cancelflow acts on it."""

    DEPOSIT = "DEPOSIT"  # TX00: the customer paid into the virtual account
    CANCEL = "CANCEL"  # TX05 immediate cancel, TX06 cancel: made outside cancelflow
    REFUND = "REFUND"  # TX01: a virtual-account refund made (its result)
    OTHER = "OTHER"  # escrow confirmations, shipping, settlement holds, …: kept and logged


TX_KINDS: dict[str, TxKind] = {
    "TX00": TxKind.DEPOSIT,
    "TX01": TxKind.REFUND,
    "TX05": TxKind.CANCEL,
    "TX06": TxKind.CANCEL,
}
# Fields that say which event a notification reports (a resend repeats them all).
_IDENTITY = (
    "site_cd",
    "tno",
    "tx_cd",
    "tx_tm",
    "noti_id",
    "ipgm_mnyx",
    "refund_mny",
    "mod_type",
    "mod_mny",
    "rem_mny",
    "mod_pcan_seq_no",
)
# Personal or account data: never logged or stored whole.
_MASKED = ("account", "remitter", "ipgm_name", "refund_nm", "refund_account", "mod_account")


class BadForm(ValueError):
    """Not a notification KCP would send (a required field is missing or malformed)."""


@dataclass(frozen=True)
class Notice:
    """One notification from KCP, parsed."""

    site_cd: str
    tno: str
    tx_cd: str
    at: datetime | None  # tx_tm: when KCP completed it
    fields: dict[str, str] = field(default_factory=dict)  # the whole form, as received

    @property
    def kind(self) -> TxKind:
        return TX_KINDS.get(self.tx_cd, TxKind.OTHER)

    @property
    def notice_id(self) -> str:
        """Stable over KCP's resends: the same report always names the same notice."""
        doc = "|".join(f"{k}={self.fields.get(k, '')}" for k in _IDENTITY)
        return "kn_" + hashlib.sha256(doc.encode()).hexdigest()[:24]

    def amount(self) -> int | None:
        """The amount the event moved: deposited (TX00), refunded (TX01) or cancelled."""
        name = {TxKind.DEPOSIT: "ipgm_mnyx", TxKind.REFUND: "refund_mny"}.get(self.kind, "mod_mny")
        return _int(self.fields.get(name))

    def remaining(self) -> int | None:
        """KCP's balance after the event, where the form says it (rem_mny; unconfirmed)."""
        return _int(self.fields.get("rem_mny"))

    @property
    def partial_seq(self) -> str:
        return self.fields.get("mod_pcan_seq_no", "")

    def masked(self) -> dict[str, str]:
        """The form with personal and account data masked: what may be logged and kept."""
        return {k: (_mask(v) if k in _MASKED else v) for k, v in self.fields.items()}


def parse(body: bytes | str) -> Notice:
    """KCP's urlencoded form as a Notice; BadForm if it lacks what every notification has."""
    # A str (API Gateway's body) is percent-escaped ASCII; anything raw in it was UTF-8.
    raw = body.encode("utf-8") if isinstance(body, str) else body
    fields: dict[str, str] = {}
    # latin-1 keeps every %XX byte as it came, so each value is decoded once, below.
    text = raw.decode("latin-1")
    for key, value in parse_qsl(text, keep_blank_values=True, encoding="latin-1"):
        fields[_text(key)] = _text(value)
    site_cd, tno, tx_cd = (fields.get(k, "").strip() for k in ("site_cd", "tno", "tx_cd"))
    if not site_cd or not tx_cd or not tno.isdigit():
        raise BadForm("site_cd, tno (digits) and tx_cd are required")
    return Notice(site_cd, tno, tx_cd, _kst(fields.get("tx_tm", "")), fields)


def answer_page(result: str) -> str:
    """What KCP reads back: `result` 0000 takes the notification, anything else asks again."""
    return (
        '<html><body><form><input type="hidden" name="result" value="'
        + result
        + '"></form></body></html>'
    )


def _text(value: str) -> str:
    data = value.encode("latin-1")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp949", errors="replace")


def _int(value: str | None) -> int | None:
    text = (value or "").strip()
    return int(text) if text.isascii() and text.isdigit() else None


def _kst(value: str) -> datetime | None:
    try:
        return datetime.strptime(value.strip(), "%Y%m%d%H%M%S").replace(tzinfo=KST)
    except ValueError:
        return None


def _mask(value: str) -> str:
    return (value[:1] + "***" + value[-2:]) if len(value) > 3 else "***"
