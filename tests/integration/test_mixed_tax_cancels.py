"""A mixed-taxation (복합과세) payment cancelled in parts: KCP receives each partial cancel split
into its taxable part (supply value and VAT) and its tax-free part (TG03), both balances move at
KCP and in cancelflow, neither is ever refunded beyond what is left of it, and the detail and
the export show both. Through the API, on the real ASL."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any
from urllib.parse import quote

import pytest

from .conftest import Sandbox, ShopClient, http

TAX_FIELDS = ("mod_mny", "rem_mny", "tax_flag", "mod_tax_mny", "mod_vat_mny", "mod_free_mny")


@pytest.fixture
def mixed(shop: ShopClient, sandbox: Sandbox) -> dict[str, Any]:
    """30,000 KRW paid at KCP: 20,000 taxable (VAT included) and 10,000 tax-free (e.g. produce),
    registered with a product name no other test uses (so the export finds it alone)."""
    name = f"유기농 채소 꾸러미 {uuid.uuid4().hex[:8]}"
    payment = sandbox.approve(amount=30000, tax_free_amount=10000, product_name=name)
    answer = shop.register(payment)
    assert answer.status == 201, answer.body
    return payment


def _cancel(shop: ShopClient, tno: str, **body: Any) -> dict[str, Any]:
    accepted = shop.cancel(tno, {"reason_code": "DEFECTIVE", "reason": "불량"} | body)
    assert accepted.status == 202, accepted.body
    return shop.outcome(accepted.body["cancellation_id"])


def _sent(sandbox: Sandbox, tno: str) -> list[dict[str, Any]]:
    """What KCP received, per cancel call: the amounts and the mixed-taxation fields."""
    return [{k: c[k] for k in TAX_FIELDS if k in c} for c in sandbox.calls(tno)]


def _parts(detail: dict[str, Any]) -> tuple[int, ...]:
    return (
        detail["balance"],
        detail["taxable_balance"],
        detail["tax_free_balance"],
        detail["taxable_cancelled_amount"],
        detail["tax_free_cancelled_amount"],
    )


def test_partial_cancels_of_a_mixed_payment_move_both_balances_at_kcp_and_in_cancelflow(
    shop: ShopClient, sandbox: Sandbox, mixed: dict
) -> None:
    tno = mixed["tno"]

    # 1. The shop names the tax-free part: 8,000 of which 3,000 tax-free, 5,000 taxable.
    named = _cancel(shop, tno, amount=8000, tax_free_amount=3000)
    assert named["status"] == "SUCCEEDED", named
    assert (named["requested_tax_free_amount"], named["tax_free_amount"]) == (3000, 3000)
    assert (named["refunded_taxable_amount"], named["refunded_tax_free_amount"]) == (5000, 3000)
    # 2. None named: split in proportion to what is left (15,000 taxable : 7,000 tax-free),
    #    the tax-free share rounded down: 11,000 x 7/22 = 3,500.
    split = _cancel(shop, tno, amount=11000)
    assert split["status"] == "SUCCEEDED", split
    assert (split["requested_tax_free_amount"], split["tax_free_amount"]) == (None, 3500)
    assert split["taxable_amount"] == 7500

    # VAT is the tenth inside the taxable part: 5,000 = 4,545 + 455; 7,500 = 6,818 + 682.
    assert _sent(sandbox, tno) == [
        {"mod_mny": "8000", "rem_mny": "30000", "tax_flag": "TG03"}
        | {"mod_tax_mny": "4545", "mod_vat_mny": "455", "mod_free_mny": "3000"},
        {"mod_mny": "11000", "rem_mny": "22000", "tax_flag": "TG03"}
        | {"mod_tax_mny": "6818", "mod_vat_mny": "682", "mod_free_mny": "3500"},
    ]
    at_kcp = sandbox.state(tno)
    assert (at_kcp["balance"], at_kcp["tax_free_balance"]) == (11000, 3500)
    assert [c["tax_free_amount"] for c in at_kcp["cancels"]] == [3000, 3500]
    detail = shop.payment(tno)
    assert _parts(detail) == (11000, 7500, 3500, 12500, 6500)
    assert [c["tax_free_amount"] for c in detail["cancellations"]] == [3000, 3500]

    # 3. The rest: KCP is sent a partial cancel of exactly both remaining parts.
    rest = _cancel(shop, tno)
    assert rest["status"] == "SUCCEEDED", rest
    assert (rest["refunded_taxable_amount"], rest["refunded_tax_free_amount"]) == (7500, 3500)
    assert _sent(sandbox, tno)[-1] == {
        "mod_mny": "11000",
        "rem_mny": "11000",
        "tax_flag": "TG03",
    } | {
        "mod_tax_mny": "6818",
        "mod_vat_mny": "682",
        "mod_free_mny": "3500",
    }
    at_kcp = sandbox.state(tno)
    assert (at_kcp["status"], at_kcp["balance"], at_kcp["tax_free_balance"]) == ("CANCELLED", 0, 0)
    detail = shop.payment(tno)
    assert detail["status"] == "CANCELLED"
    assert _parts(detail) == (0, 0, 0, 20000, 10000)

    # 4. The export shows both parts of what was cancelled and of what is left.
    answer = http(
        "GET",
        f"{shop.url}/v1/payments/export?product={quote(mixed['product_name'])}",
        headers=shop.auth,
    )
    assert answer.status == 200
    header, row = list(csv.reader(io.StringIO(answer.body.lstrip("\ufeff"))))
    line = dict(zip(header, row, strict=True))
    assert (line["결제금액"], line["면세금액"], line["취소금액"], line["잔액"]) == (
        "30000",
        "10000",
        "30000",
        "0",
    )
    assert (line["과세취소금액"], line["과세잔액"], line["면세취소금액"], line["면세잔액"]) == (
        "20000",
        "0",
        "10000",
        "0",
    )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"amount": 12000, "tax_free_amount": 11000}, "TAX_FREE_EXCEEDS_BALANCE"),
        ({"amount": 25000, "tax_free_amount": 1000}, "TAXABLE_EXCEEDS_BALANCE"),
    ],
)
def test_a_split_that_does_not_fit_either_balance_is_refused_and_nothing_is_written(
    shop: ShopClient, sandbox: Sandbox, mixed: dict, body: dict, code: str
) -> None:
    tno = mixed["tno"]
    answer = shop.cancel(tno, {"reason_code": "DEFECTIVE"} | body)

    assert answer.status == 422, answer.body
    assert answer.headers.get("Content-Type", "").startswith("application/problem+json")
    assert answer.body["code"] == code
    assert [r["code"] for r in answer.body["reasons"]] == [code]
    detail = shop.payment(tno)
    assert (detail["available"], detail["cancellations"]) == (30000, [])
    assert _parts(detail) == (30000, 20000, 10000, 0, 0)
    assert sandbox.calls(tno) == []


def test_a_tax_free_part_over_the_amount_is_a_validation_error(
    shop: ShopClient, sandbox: Sandbox, mixed: dict
) -> None:
    answer = shop.cancel(
        mixed["tno"], {"reason_code": "DEFECTIVE", "amount": 1000, "tax_free_amount": 2000}
    )
    assert (answer.status, answer.body["code"]) == (400, "VALIDATION_FAILED")
    assert shop.payment(mixed["tno"])["cancellations"] == []


def test_a_full_cancel_of_a_mixed_payment_is_kcp_s_full_cancel_of_both_parts(
    shop: ShopClient, sandbox: Sandbox, mixed: dict
) -> None:
    tno = mixed["tno"]
    outcome = _cancel(shop, tno)

    assert outcome["status"] == "SUCCEEDED", outcome
    assert (outcome["refunded_taxable_amount"], outcome["refunded_tax_free_amount"]) == (
        20000,
        10000,
    )
    (call,) = sandbox.calls(tno)
    assert call["mod_type"] == "STSC" and "tax_flag" not in call  # STSC names no parts
    assert sandbox.state(tno)["tax_free_balance"] == 0
    assert _parts(shop.payment(tno)) == (0, 0, 0, 20000, 10000)
