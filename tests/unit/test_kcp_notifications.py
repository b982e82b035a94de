"""KCP's notifications: the form as KCP sends it, and what each one does to a payment."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from urllib.parse import urlencode

from cancelflow.cancellations import eligibility
from cancelflow.cancellations import service as cancellations
from cancelflow.cancellations.eligibility import CancelAsk
from cancelflow.cancellations.model import CancellationStatus
from cancelflow.cancellations.service import CancelRequest
from cancelflow.kcp.notifications import answer_page, parse
from cancelflow.kcp.port import (
    CancelAnswer,
    CancelOrder,
    ChargeAnswer,
    ChargeOrder,
    InquiryAnswer,
    Outcome,
    PayMethod,
)
from cancelflow.notifications.model import Verdict, judge
from cancelflow.payments.model import PaymentStatus
from cancelflow.shops.policy import default_policy
from tests.fakes.examples import NOW, SHOP, a_cancellation, a_payment
from tests.fakes.store import MemoryStore
from tests.fakes.workflow import RecordingStarter, SteppingClock

TNO = "20261123000001"


def _notice(tx_cd: str = "TX06", encoding: str = "utf-8", **fields: str):  # type: ignore[no-untyped-def]
    form = {"site_cd": "T0000", "tno": TNO, "tx_cd": tx_cd, "tx_tm": "20261123183000"} | fields
    return parse(urlencode(form, encoding=encoding).encode())


def test_a_form_in_euc_kr_reads_as_korean_and_masks_personal_data() -> None:
    notice = _notice("TX00", encoding="euc-kr", remitter="김하늘", account="T123456789")

    assert notice.fields["remitter"] == "김하늘"
    assert notice.at is not None and notice.at.utcoffset() == timedelta(hours=9)
    assert notice.masked()["account"] == "T***89" and "김하늘" not in str(notice.masked())


def test_a_resend_names_the_same_notice_and_another_report_a_new_one() -> None:
    first = _notice(mod_mny="4000", rem_mny="26000")
    assert _notice(mod_mny="4000", rem_mny="26000").notice_id == first.notice_id
    assert _notice(mod_mny="4000", rem_mny="22000").notice_id != first.notice_id


def test_the_answer_page_carries_kcps_result_field() -> None:
    assert 'name="result" value="0000"' in answer_page("0000")


def test_an_external_partial_cancel_lowers_both_balances_to_what_kcp_holds() -> None:
    payment = a_payment(TNO, 30000)

    change = judge(_notice(mod_mny="4000", rem_mny="26000"), payment, [], NOW)

    assert change.verdict is Verdict.CANCELLED_EXTERNALLY
    assert change.effect is not None and (change.effect.balance, change.effect.available) == (
        -4000,
        -4000,
    )
    assert change.effect.status is PaymentStatus.PARTIALLY_CANCELLED
    assert change.effect.expect_balance == 30000 and change.effect.idle
    assert change.cancellation is not None and change.cancellation.amount == 4000
    assert change.cancellation.status is CancellationStatus.SUCCEEDED
    assert change.event is not None and change.event.type == "payment.cancelled_externally"


def test_a_cancel_notice_without_an_amount_takes_what_is_left() -> None:
    change = judge(_notice("TX05"), a_payment(TNO, 30000), [], NOW)

    assert change.effect is not None and change.effect.balance == -30000
    assert change.effect.status is PaymentStatus.CANCELLED


def test_a_notice_our_balance_already_shows_changes_nothing() -> None:
    payment = replace(a_payment(TNO, 30000), balance=26000, available=26000)

    change = judge(_notice(mod_mny="4000", rem_mny="26000"), payment, [], NOW)

    assert change.verdict is Verdict.ALREADY_REFLECTED and change.effect is None


def test_a_notice_of_one_of_our_own_cancels_changes_nothing() -> None:
    ours = replace(
        a_cancellation(tno=TNO, amount=4000),
        status=CancellationStatus.SUCCEEDED,
        amount=4000,
        partial_seq="0001",
    )
    payment = replace(a_payment(TNO, 30000), balance=26000, available=26000)

    change = judge(_notice(mod_mny="4000", mod_pcan_seq_no="0001"), payment, [ours], NOW)

    assert change.verdict is Verdict.ALREADY_REFLECTED and change.effect is None


def test_a_cancel_notice_while_one_of_ours_is_at_kcp_waits_for_kcps_resend() -> None:
    payment = replace(a_payment(TNO, 30000), in_flight="cnl_1")

    assert judge(_notice(mod_mny="4000"), payment, [], NOW).verdict is Verdict.BUSY


def test_a_cancel_of_more_than_our_balance_is_kept_for_an_operator_not_applied() -> None:
    payment = replace(a_payment(TNO, 30000), balance=3000, available=3000)

    change = judge(_notice(mod_mny="4000", rem_mny="26000"), payment, [], NOW)

    assert change.verdict is Verdict.MISMATCH and change.effect is None


def test_an_external_cancel_of_what_a_cancel_of_ours_holds_waits_for_ours_to_settle() -> None:
    payment = replace(a_payment(TNO, 30000), available=10000)  # 20000 held, not yet sent

    assert judge(_notice(mod_mny="25000"), payment, [], NOW).verdict is Verdict.BUSY
    assert judge(_notice(mod_mny="5000"), payment, [], NOW).verdict is Verdict.CANCELLED_EXTERNALLY


def test_a_deposit_of_the_amount_makes_an_awaiting_payment_paid_and_another_is_kept() -> None:
    waiting = replace(
        a_payment(TNO, 30000), status=PaymentStatus.AWAITING_DEPOSIT, balance=0, available=0
    )

    paid = judge(_notice("TX00", ipgm_mnyx="30000"), waiting, [], NOW)
    short = judge(_notice("TX00", ipgm_mnyx="29000"), waiting, [], NOW)
    again = judge(_notice("TX00", ipgm_mnyx="30000"), a_payment(TNO, 30000), [], NOW)

    assert paid.verdict is Verdict.DEPOSITED and paid.effect is not None
    assert (paid.effect.balance, paid.effect.status) == (30000, PaymentStatus.PAID)
    assert paid.event is not None and paid.event.type == "payment.deposited"
    assert (short.verdict, short.effect) == (Verdict.MISMATCH, None)
    assert (again.verdict, again.effect) == (Verdict.ALREADY_REFLECTED, None)


def test_other_tx_codes_and_unknown_payments_are_kept_without_effect() -> None:
    assert judge(_notice("TX03"), a_payment(TNO), [], NOW).verdict is Verdict.KEPT
    assert judge(_notice(), None, [], NOW).verdict is Verdict.UNKNOWN_PAYMENT


def test_a_cancel_an_external_cancel_made_impossible_says_so() -> None:
    partly = replace(
        a_payment(TNO, 30000),
        balance=10000,
        available=10000,
        status=PaymentStatus.PARTIALLY_CANCELLED,
        externally_cancelled=20000,
    )
    wholly = replace(partly, balance=0, available=0, status=PaymentStatus.CANCELLED)
    ask = CancelAsk("CHANGE_OF_MIND", 15000, "SHOP", False, ())

    assert _reasons(partly, ask) == ("CANCELLED_EXTERNALLY",)
    assert _reasons(wholly, replace(ask, amount=None)) == ("CANCELLED_EXTERNALLY",)
    assert _reasons(replace(partly, externally_cancelled=0), ask) == ("AMOUNT_EXCEEDS_BALANCE",)
    assert _reasons(partly, replace(ask, amount=40000)) == ("AMOUNT_EXCEEDS_BALANCE",)


def test_a_virtual_account_awaiting_its_deposit_cannot_be_cancelled_yet() -> None:
    waiting = replace(
        a_payment(TNO, 30000), status=PaymentStatus.AWAITING_DEPOSIT, balance=0, available=0
    )
    assert _reasons(waiting, CancelAsk("CHANGE_OF_MIND", None, "SHOP", True, ())) == (
        "NOT_DEPOSITED",
    )
    assert waiting.cancelled_amount == 0


def _reasons(payment, ask) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
    return eligibility.decide(payment, ask, default_policy(), NOW).reasons


# --- a cancel of ours that an external cancel overtook ------------------------------------


class _Kcp:
    """A KCP that answers every cancel with one refusal, and counts them."""

    def __init__(self, res_cd: str) -> None:
        self.res_cd = res_cd
        self.cancels = 0

    def cancel(self, order: CancelOrder) -> CancelAnswer:
        self.cancels += 1
        return CancelAnswer(Outcome.DECLINED, self.res_cd, "이미 취소된 거래입니다")

    def inquire(self, tno: str, method: PayMethod) -> InquiryAnswer:
        raise AssertionError("no inquiry expected")

    def charge(self, order: ChargeOrder) -> ChargeAnswer:
        raise AssertionError("no charge expected")


def _held(store: MemoryStore) -> str:
    store.put_payment(a_payment(TNO, 30000))
    cancellation, _ = cancellations.request_cancellation(
        store, RecordingStarter(), SteppingClock(), SHOP, TNO, CancelRequest("DEFECTIVE"), "k1"
    )
    assert (
        cancellations.decide(store, SteppingClock(), SHOP, cancellation.cancellation_id)["next"]
        == "SEND"
    )
    return cancellation.cancellation_id


def test_kcps_already_cancelled_answer_rejects_the_cancel_and_gives_its_hold_back() -> None:
    store, kcp = MemoryStore(), _Kcp("SB02")
    cid = _held(store)

    route = cancellations.send(store, kcp, SteppingClock(), SHOP, cid)
    cancellations.settle(store, SteppingClock(), SHOP, cid, route["verdict"])

    outcome = store.get_cancellation(SHOP, cid)
    assert outcome is not None and outcome.status is CancellationStatus.REJECTED
    assert outcome.reasons == ("CANCELLED_EXTERNALLY",) and kcp.cancels == 1
    payment = store.raw_payment(SHOP, TNO)
    assert (payment.balance, payment.available, payment.in_flight) == (30000, 30000, "")


def test_a_hold_an_external_cancel_overtook_is_rejected_without_calling_kcp() -> None:
    store, kcp = MemoryStore(), _Kcp("0000")
    cid = _held(store)  # holds all 30000
    key = (SHOP, TNO)
    # Should the notification ever land between the hold and the send (the store refuses it
    # while a hold does not fit), what is left cannot cover the hold.
    store.payments[key] = replace(store.payments[key], balance=10000, externally_cancelled=20000)
    object.__setattr__(store.payments[key], "available", -20000)

    route = cancellations.send(store, kcp, SteppingClock(), SHOP, cid)
    cancellations.settle(store, SteppingClock(), SHOP, cid, route["verdict"])

    outcome = store.get_cancellation(SHOP, cid)
    assert outcome is not None and outcome.status is CancellationStatus.REJECTED
    assert outcome.reasons == ("CANCELLED_EXTERNALLY",) and kcp.cancels == 0
    assert store.raw_payment(SHOP, TNO).available == 10000
