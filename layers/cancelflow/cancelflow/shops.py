"""A shop's own settings: its cancel policy, read and replaced through the API."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cancelflow.clock import Clock
from cancelflow.errors import Problem
from cancelflow.policy import PolicyError, ShopPolicy, validate_policy
from cancelflow.store.port import Conflict, Store


def usage_key(shop_id: str) -> str:
    """The shop's API Gateway usage key: the authorizer names it, the usage plan throttles it.

    Not a credential: with the API's key source AUTHORIZER a caller can never present it, so it
    is derived from the shop id and needs no storage (README, Deploy: provisioning a shop).
    """
    return f"cancelflow-usage-key-{shop_id}"


def get_policy(store: Store, shop_id: str) -> ShopPolicy:
    return store.get_policy(shop_id)


def replace_policy(store: Store, clock: Clock, shop_id: str, doc: dict[str, Any]) -> ShopPolicy:
    """Validate and store a whole new policy as the next version; decisions record it."""
    try:
        wanted = validate_policy(doc)
    except PolicyError as error:
        details = [{"field": e.field, "message": e.message} for e in error.errors]
        detail = "; ".join(f"{d['field']}: {d['message']}" for d in details)
        raise Problem("VALIDATION_FAILED", detail, errors=details) from error
    for _ in range(3):  # another change may land first: build on top of it
        current = store.get_policy(shop_id)
        policy = replace(wanted, version=current.version + 1)
        try:
            store.put_policy(shop_id, policy, current.version, clock.now())
            return policy
        except Conflict:
            continue
    raise Problem("SERVICE_UNAVAILABLE", "The policy is changing concurrently; retry.")
