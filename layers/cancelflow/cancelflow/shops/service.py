"""A shop's own settings: its cancel policy, read, replaced and patched through the API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any

from cancelflow.kernel.clock import Clock
from cancelflow.kernel.errors import Conflict, Problem
from cancelflow.shops.policy import (
    FieldError,
    PolicyError,
    ShopPolicy,
    policy_to_doc,
    validate_policy,
)
from cancelflow.shops.ports import ShopStore


def usage_key(shop_id: str) -> str:
    """The shop's API Gateway usage key: the authorizer names it, the usage plan throttles it.

    Not a credential: with the API's key source AUTHORIZER a caller can never present it, so it
    is derived from the shop id and needs no storage (README, Deploy: provisioning a shop).
    """
    return f"cancelflow-usage-key-{shop_id}"


def get_policy(store: ShopStore, shop_id: str) -> ShopPolicy:
    return store.get_policy(shop_id)


# Every field a whole policy names (PUT); the version is the store's to set.
POLICY_FIELDS = tuple(f.name for f in fields(ShopPolicy) if f.name != "version")


def replace_policy(store: ShopStore, clock: Clock, shop_id: str, doc: Any) -> ShopPolicy:
    """ShopStore a whole new policy as the next version: every field named, none taken from the
    current one (a field left out is refused, never silently reset). `version` may be sent
    back as GET gave it; the store sets the new one."""
    if isinstance(doc, dict):
        missing = [FieldError(name, "required") for name in POLICY_FIELDS if name not in doc]
    else:
        missing = []
    wanted = _valid(doc, missing)
    return _store_next(store, clock, shop_id, lambda current: wanted)


def patch_policy(store: ShopStore, clock: Clock, shop_id: str, patch: Any) -> ShopPolicy:
    """Change only the fields a JSON Merge Patch (RFC 7396) names, as the next version.

    A field set to null goes back to its default (the law's minimum, see policy.py); lists are
    replaced whole, as RFC 7396 says. `version` cannot be patched.
    """
    if not isinstance(patch, dict):
        raise Problem(
            "VALIDATION_FAILED",
            "A merge patch is a JSON object naming the fields to change.",
            errors=[{"field": "body", "message": "must be an object"}],
        )
    if "version" in patch:
        raise Problem(
            "VALIDATION_FAILED",
            "version: set by the server on every change",
            errors=[{"field": "version", "message": "set by the server on every change"}],
        )

    def patched(current: ShopPolicy) -> ShopPolicy:
        doc = {k: v for k, v in policy_to_doc(current).items() if k != "version"}
        return _valid(merge_patch(doc, patch), [])

    return _store_next(store, clock, shop_id, patched)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 §2: objects merge member by member, null removes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = merge_patch(merged.get(name), value)
    return merged


def _valid(doc: Any, errors: list[FieldError]) -> ShopPolicy:
    """The policy `doc` describes, or 400 VALIDATION_FAILED listing every field that is not."""
    try:
        policy = validate_policy(doc)
    except PolicyError as error:
        errors = errors + list(error.errors)
    if errors:
        details = [{"field": e.field, "message": e.message} for e in errors]
        detail = "; ".join(f"{d['field']}: {d['message']}" for d in details)
        raise Problem("VALIDATION_FAILED", detail, errors=details)
    return policy


def _store_next(
    store: ShopStore, clock: Clock, shop_id: str, build: Callable[[ShopPolicy], ShopPolicy]
) -> ShopPolicy:
    """ShopStore what `build` makes of the current policy as the next version."""
    for _ in range(3):  # another change may land first: build on top of it
        current = store.get_policy(shop_id)
        policy = replace(build(current), version=current.version + 1)
        try:
            store.put_policy(shop_id, policy, current.version, clock.now())
            return policy
        except Conflict:
            continue
    raise Problem("SERVICE_UNAVAILABLE", "The policy is changing concurrently; retry.")
