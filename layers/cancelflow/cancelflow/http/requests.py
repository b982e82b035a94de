"""What the API accepts: pydantic input models (only the API function imports pydantic)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from cancelflow.kcp.port import PayMethod
from cancelflow.payments.model import Fulfillment

Krw = Annotated[int, Field(strict=True, gt=0, le=10_000_000_000, description="KRW, integer")]
Tno = Annotated[str, Field(pattern=r"^\d{14}$", description="KCP transaction number")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Item(Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    quantity: Annotated[int, Field(strict=True, gt=0)] = 1
    price: Annotated[int, Field(strict=True, ge=0)] = 0
    category: Annotated[str, Field(max_length=50)] = ""


class PaymentIn(Strict):
    """An approved KCP payment, as the shop's server received it from KCP."""

    model_config = ConfigDict(  # merged with Strict's
        json_schema_extra={
            "examples": [
                {
                    "tno": "20261203123456",
                    "order_id": "ORD-20261203-0001",
                    "amount": 15000,
                    "method": "CARD",
                    "product_name": "오가닉 티셔츠",
                    "buyer_email": "kim@example.com",
                    "buyer_name": "김하늘",
                    "approved_at": "2026-12-03T10:15:00+09:00",
                    "items": [{"name": "오가닉 티셔츠", "quantity": 1, "price": 15000}],
                }
            ]
        },
    )

    tno: Tno
    order_id: Annotated[str, Field(min_length=1, max_length=40)]
    amount: Krw
    tax_free_amount: Annotated[int, Field(strict=True, ge=0)] = 0
    method: PayMethod
    product_name: Annotated[str, Field(min_length=1, max_length=200)]
    buyer_email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]
    buyer_name: Annotated[str, Field(max_length=60)] = ""
    approved_at: AwareDatetime
    escrow: bool = False
    items: list[Item] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _tax_free_within_amount(self) -> PaymentIn:
        if self.tax_free_amount > self.amount:
            raise ValueError("tax_free_amount cannot exceed amount")
        return self


class ReasonCode(StrEnum):
    CHANGE_OF_MIND = "CHANGE_OF_MIND"
    DEFECTIVE = "DEFECTIVE"
    WRONG_ITEM = "WRONG_ITEM"
    LATE_DELIVERY = "LATE_DELIVERY"
    ORDER_CHANGE = "ORDER_CHANGE"
    DUPLICATE_PAYMENT = "DUPLICATE_PAYMENT"
    OTHER = "OTHER"


class RefundAccountIn(Strict):
    bank_code: Annotated[str, Field(pattern=r"^BK\d{2}$", description="KCP bank code, e.g. BK04")]
    number: Annotated[str, Field(pattern=r"^[0-9-]{6,24}$")]
    holder: Annotated[str, Field(min_length=1, max_length=40)]


class Requester(StrEnum):
    CUSTOMER = "CUSTOMER"  # the customer asked (the default): the customer-facing windows apply
    SHOP = "SHOP"  # the shop's own decision (e.g. out of stock): method rules still apply


class CancelIn(Strict):
    """A cancel request: without amount it cancels everything that is left."""

    model_config = ConfigDict(  # merged with Strict's
        json_schema_extra={
            "examples": [
                {"reason_code": "CHANGE_OF_MIND", "reason": "단순 변심"},
                {"reason_code": "DEFECTIVE", "amount": 5000},
                {"reason_code": "ORDER_CHANGE", "removed_items": [1]},
                {"reason_code": "DEFECTIVE", "amount": 8000, "tax_free_amount": 3000},
            ]
        },
    )

    amount: Krw | None = None
    reason_code: ReasonCode
    reason: Annotated[str, Field(max_length=200)] = ""
    requested_by: Requester = Requester.CUSTOMER
    removed_items: list[Annotated[int, Field(strict=True, ge=0)]] = Field(
        default_factory=list,
        max_length=100,
        description="ORDER_CHANGE: positions (from 0) of the payment's items given back",
    )
    refund_account: RefundAccountIn | None = None
    tax_free_amount: Annotated[int, Field(strict=True, ge=0, le=10_000_000_000)] | None = Field(
        default=None,
        description="Mixed taxation: the refund's tax-free part (the rest is taxable, VAT "
        "included). Absent: split in proportion to what is left of each part of the payment",
    )

    @model_validator(mode="after")
    def _tax_free_within_amount(self) -> CancelIn:
        if self.amount is not None and (self.tax_free_amount or 0) > self.amount:
            raise ValueError("tax_free_amount cannot exceed amount")
        return self


class FulfillmentIn(Strict):
    model_config = ConfigDict(  # merged with Strict's
        json_schema_extra={"examples": [{"status": "SHIPPED"}]},
    )

    status: Fulfillment
    at: AwareDatetime | None = Field(default=None, description="when it happened; default now")
