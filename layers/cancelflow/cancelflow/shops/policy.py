"""A shop's cancel policy: its own windows and fees, never below the law's minimum.

Plain dataclass (no pydantic): the workflow Lambdas import it, and cold starts matter.
The default policy is the law's minimum (전자상거래법 §17, §18); a shop may be more generous.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, NamedTuple

__all__ = [
    "FieldError",
    "PolicyError",
    "ShopPolicy",
    "default_policy",
    "policy_from_doc",
    "policy_to_doc",
    "validate_policy",
]

LANGUAGES = ("ko", "en")
CATEGORY = re.compile(r"[A-Z_]{1,40}")
MAX_CATEGORIES = 50

# field: (lowest, highest) allowed, inclusive
_BOUNDS: dict[str, tuple[int, int]] = {
    "version": (1, 1_000_000_000),
    # §17①: the consumer may withdraw within 7 days of receipt; a shop may lengthen it only.
    "withdrawal_days": (7, 3650),
    # §17③: goods unlike their description may be returned within 3 months of receipt; the
    # longest 3 calendar months are 92 days, so 92 is never shorter than the law.
    "warranty_days": (92, 3650),
    "return_shipping_fee": (0, 1_000_000),
}
_WHY_LOWEST = {
    "withdrawal_days": "the law's 7-day withdrawal period (전자상거래법 §17①) cannot be shortened",
    "warranty_days": "the law's 3 months for defects (전자상거래법 §17③) cannot be shortened",
}


@dataclass(frozen=True)
class ShopPolicy:
    """What a shop allows beyond the law. Invalid values raise PolicyError on construction."""

    version: int = 1  # set by the store on every replace; each decision records it
    withdrawal_days: int = 7  # KST calendar days after the delivery day (§17①)
    warranty_days: int = 92  # DEFECTIVE / WRONG_ITEM, counted like withdrawal_days (§17③)
    # Deducted from a customer's withdrawal of goods that left the shop (§18⑨). 0 by default:
    # the cost is the shop's own carrier price, and money is only deducted when the shop says so.
    return_shipping_fee: int = 0
    non_refundable_categories: tuple[str, ...] = ()  # item categories a customer cannot withdraw
    allow_cancel_after_shipped: bool = False
    subscription_pro_rata: bool = True
    email_language: str = "ko"

    def __post_init__(self) -> None:
        errors = _errors(asdict(self))
        if errors:
            raise PolicyError(errors)


class FieldError(NamedTuple):
    field: str
    message: str


class PolicyError(ValueError):
    """A policy document with invalid fields; `errors` lists every one of them."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = tuple(errors)

    def details(self) -> list[dict[str, str]]:
        return [error._asdict() for error in self.errors]


def default_policy() -> ShopPolicy:
    """The law's minimum: what a shop gets until it sets its own policy."""
    return ShopPolicy()


def validate_policy(doc: Mapping[str, Any]) -> ShopPolicy:
    """A policy from a shop's JSON document; absent fields take the default. Raises PolicyError."""
    if not isinstance(doc, Mapping):
        raise PolicyError([FieldError("", "must be an object")])
    names = {f.name for f in fields(ShopPolicy)}
    unknown = [FieldError(str(key), "unknown field") for key in doc if key not in names]
    values = asdict(default_policy()) | {k: v for k, v in doc.items() if k in names}
    errors = unknown + _errors(values)
    if errors:
        raise PolicyError(errors)
    return replace(default_policy(), **_normal(values))


def policy_to_doc(policy: ShopPolicy) -> dict[str, Any]:
    """Plain JSON types for storage and the API (categories as a list)."""
    doc = asdict(policy)
    doc["non_refundable_categories"] = list(policy.non_refundable_categories)
    return doc


def policy_from_doc(doc: Mapping[str, Any]) -> ShopPolicy:
    """The stored policy back; keys that are not policy fields (table keys) are ignored."""
    names = {f.name for f in fields(ShopPolicy)}
    return validate_policy({k: v for k, v in doc.items() if k in names})


def _normal(values: dict[str, Any]) -> dict[str, Any]:
    return values | {"non_refundable_categories": tuple(values["non_refundable_categories"])}


def _errors(values: dict[str, Any]) -> list[FieldError]:
    """Every problem with the values, field by field: one place for the rules."""
    errors: list[FieldError] = []
    for name, (lowest, highest) in _BOUNDS.items():
        value = values[name]
        if not _is_int(value):
            errors.append(FieldError(name, "must be an integer"))
        elif value < lowest:
            why = _WHY_LOWEST.get(name, "")
            errors.append(
                FieldError(name, f"must be at least {lowest}" + (f": {why}" if why else ""))
            )
        elif value > highest:
            errors.append(FieldError(name, f"must be at most {highest}"))
    for name in ("allow_cancel_after_shipped", "subscription_pro_rata"):
        if not isinstance(values[name], bool):
            errors.append(FieldError(name, "must be true or false"))
    if values["email_language"] not in LANGUAGES:
        errors.append(FieldError("email_language", "must be ko or en"))
    errors += _category_errors(values["non_refundable_categories"])
    return errors


def _category_errors(categories: Any) -> list[FieldError]:
    name = "non_refundable_categories"
    if not isinstance(categories, list | tuple):
        return [FieldError(name, "must be a list of category codes")]
    if len(categories) > MAX_CATEGORIES:
        return [FieldError(name, f"at most {MAX_CATEGORIES} categories")]
    errors = [
        FieldError(f"{name}[{i}]", "must be 1 to 40 capital letters or underscores")
        for i, category in enumerate(categories)
        if not (isinstance(category, str) and CATEGORY.fullmatch(category))
    ]
    if not errors and len(set(categories)) != len(categories):
        errors.append(FieldError(name, "lists a category twice"))
    return errors


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not a number
