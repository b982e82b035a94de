"""A model of KCP for the cancel path: it may apply a cancel at once, later, or never.

It keeps each payment's paid amount and remaining balance and every cancel request it was sent.
The test chooses each request's fate before the call (`next_fates`), and when a held request is
applied (`apply`). KCP never refunds more than the remaining balance: a request that no longer
fits when it is applied is refused, and refunds nothing. Whether KCP refuses a partial cancel
whose `rem_mny` no longer matches is unconfirmed (kcp-reference.md), so the model plays both
(`checks_rem_mny`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from cancelflow.kcp.port import (
    CancelAnswer,
    CancelOrder,
    ChargeAnswer,
    ChargeOrder,
    InquiryAnswer,
    Outcome,
    PayMethod,
)


class Fate(StrEnum):
    """What happens to one cancel call."""

    APPLY = "APPLY"  # applied now, KCP's answer arrives (or its refusal, if it does not fit)
    APPLY_LOSE_ANSWER = "APPLY_LOSE_ANSWER"  # applied now, the answer is lost: UNKNOWN
    LOSE = "LOSE"  # not applied, never will be; the caller sees UNKNOWN (an HTTP 500)
    HOLD = "HOLD"  # not applied yet: the test applies it later (`apply`); UNKNOWN
    DECLINE = "DECLINE"  # a well-formed refusal: definitive, nothing moved
    UNREACHABLE = "UNREACHABLE"  # nothing left the caller (connect refused): NOT_SENT
    CRASH = "CRASH"  # the client raised after sending; held, like HOLD


class RequestState(StrEnum):
    HELD = "HELD"
    APPLIED = "APPLIED"
    REFUSED = "REFUSED"  # did not fit the balance when applied, or rem_mny did not match
    DECLINED = "DECLINED"
    LOST = "LOST"


@dataclass
class KcpRequest:
    seq: int
    tno: str
    amount: int | None  # None: a full cancel (STSC)
    rem_mny: int | None
    tag: str  # who sent it (the test names the cancellation it is sending)
    state: RequestState = RequestState.HELD
    refunded: int = 0


@dataclass
class KcpPayment:
    paid: int
    balance: int


@dataclass
class KcpModel:
    """Implements the Gateway port's cancel and inquire."""

    checks_rem_mny: bool = False
    payments: dict[str, KcpPayment] = field(default_factory=dict)
    requests: list[KcpRequest] = field(default_factory=list)
    next_fates: list[Fate] = field(default_factory=list)  # consumed one per cancel call
    failing_inquiries: int = 0  # the next n inquiries fail (alternately raising and UNKNOWN)
    sending_for: str = ""  # the tag the next requests get
    inquiries: int = 0

    def approve(self, tno: str, amount: int) -> None:
        self.payments[tno] = KcpPayment(paid=amount, balance=amount)

    # --- the port --------------------------------------------------------------------------

    def cancel(self, order: CancelOrder) -> CancelAnswer:
        fate = self.next_fates.pop(0) if self.next_fates else Fate.APPLY
        if fate is Fate.UNREACHABLE:
            return CancelAnswer(Outcome.NOT_SENT, detail="not sent: ConnectTimeoutError")
        if order.tno not in self.payments:
            return CancelAnswer(Outcome.DECLINED, res_cd="8100", res_msg="거래번호 없음")
        request = KcpRequest(
            seq=len(self.requests) + 1,
            tno=order.tno,
            amount=order.amount,
            rem_mny=order.balance_before if order.amount is not None else None,
            tag=self.sending_for,
        )
        self.requests.append(request)
        if fate is Fate.DECLINE:
            request.state = RequestState.DECLINED
            return CancelAnswer(Outcome.DECLINED, res_cd="8133", res_msg="취소 불가")
        if fate is Fate.LOSE:
            request.state = RequestState.LOST
            return CancelAnswer(Outcome.UNKNOWN, detail="HTTP 500")
        if fate is Fate.HOLD:
            return CancelAnswer(Outcome.UNKNOWN, detail="read timeout after sending")
        if fate is Fate.CRASH:
            raise ConnectionResetError("reset after sending")
        self.apply(request)
        if fate is Fate.APPLY_LOSE_ANSWER:
            return CancelAnswer(Outcome.UNKNOWN, detail="read timeout after sending")
        if request.state is RequestState.REFUSED:
            return CancelAnswer(Outcome.DECLINED, res_cd="8734", res_msg="취소 가능 금액 초과")
        balance = self.payments[order.tno].balance
        return CancelAnswer(
            Outcome.SUCCEEDED,
            res_cd="0000",
            res_msg="정상처리",
            cancelled_at=datetime(2026, 11, 23, tzinfo=UTC),
            cancelled_amount=request.refunded,
            remaining_balance=balance,
            partial_seq=str(request.seq) if order.amount is not None else "",
        )

    def inquire(self, tno: str, method: PayMethod) -> InquiryAnswer:
        self.inquiries += 1
        if self.failing_inquiries > 0:
            self.failing_inquiries -= 1
            if self.failing_inquiries % 2:
                raise TimeoutError("inquiry timed out")
            return InquiryAnswer(Outcome.UNKNOWN, detail="HTTP 503")
        payment = self.payments.get(tno)
        if payment is None:
            return InquiryAnswer(Outcome.DECLINED, res_cd="8100", res_msg="거래번호 없음")
        status = "CANCELLED" if payment.balance == 0 else "PAID"
        return InquiryAnswer(
            Outcome.SUCCEEDED,
            amount=payment.paid,
            remaining_balance=payment.balance,
            status=status,
            res_cd="0000",
        )

    def charge(self, order: ChargeOrder) -> ChargeAnswer:
        raise NotImplementedError("the cancel model does not charge")

    # --- the test's hand -------------------------------------------------------------------

    def held(self) -> list[KcpRequest]:
        return [r for r in self.requests if r.state is RequestState.HELD]

    def apply(self, request: KcpRequest) -> None:
        """KCP applies a request now, as far as the balance it holds now allows."""
        if request.state is not RequestState.HELD:
            raise AssertionError(f"KCP request {request.seq} applied twice")
        payment = self.payments[request.tno]
        amount = payment.balance if request.amount is None else request.amount
        fits = 0 < amount <= payment.balance
        if request.amount is None:  # STSC: only a payment nothing was cancelled from
            fits = fits and payment.balance == payment.paid
        elif self.checks_rem_mny:
            fits = fits and request.rem_mny == payment.balance
        if not fits:
            request.state = RequestState.REFUSED
            return
        payment.balance -= amount
        request.state = RequestState.APPLIED
        request.refunded = amount

    def refunded(self, tno: str) -> int:
        payment = self.payments[tno]
        return payment.paid - payment.balance

    def applied_for(self, tag: str) -> list[KcpRequest]:
        return [r for r in self.requests if r.tag == tag and r.state is RequestState.APPLIED]
