"""Shops onboarded by operators: a shop, its API keys (shown once, stored as SHA-256), rotation
by overlap (a new key works beside the old until the old is revoked), revocation, last use.

A revoked key stops working at once for a fresh request; API Gateway may still answer from the
shop authorizer's result cache for up to its ReauthorizeEvery (60 s, template.yaml): that is
the bound the README states."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cancelflow.kernel.clock import Clock
from cancelflow.kernel.errors import Conflict, Problem
from cancelflow.shops.model import Shop

KEY_PREFIX = "sk_live_"
SHOP_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    shop_id: str
    created_at: datetime
    hint: str  # the key's first characters, to tell keys apart (never enough to use one)
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class KeyStore(Protocol):
    def get_shop(self, shop_id: str) -> Shop | None: ...

    def create_shop(self, shop: Shop, at: datetime) -> None:
        """Conflict if the shop id is taken."""
        ...

    def add_api_key(self, key: ApiKey, key_hash: str) -> None: ...

    def api_keys(self, shop_id: str) -> list[ApiKey]:
        """The shop's keys, oldest first, with each one's last use."""
        ...

    def revoke_api_key(self, shop_id: str, key_id: str, at: datetime) -> ApiKey | None:
        """Revoke it (None if the shop has no such key); revoking twice keeps the first time."""
        ...


def key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_shop(store: KeyStore, clock: Clock, shop: Shop) -> Shop:
    if not SHOP_ID.match(shop.shop_id):
        raise Problem("VALIDATION_FAILED", "shop_id: 2-40 lower-case letters, digits or dashes.")
    try:
        store.create_shop(shop, clock.now())
    except Conflict as taken:
        raise Problem("SHOP_EXISTS", f"Shop {shop.shop_id} exists already.") from taken
    return shop


def issue_key(store: KeyStore, clock: Clock, shop_id: str) -> tuple[ApiKey, str]:
    """A new key for the shop (the secret is returned here only, never stored in clear).
    Earlier keys keep working: rotate by issuing, switching over, then revoking the old one."""
    if store.get_shop(shop_id) is None:
        raise Problem("SHOP_NOT_FOUND", f"No shop {shop_id}.")
    secret = KEY_PREFIX + secrets.token_urlsafe(24)
    key = ApiKey(
        key_id="key_" + secrets.token_hex(8),
        shop_id=shop_id,
        created_at=clock.now(),
        hint=secret[: len(KEY_PREFIX) + 4],
    )
    store.add_api_key(key, key_hash(secret))
    return key, secret


def list_keys(store: KeyStore, shop_id: str) -> list[ApiKey]:
    if store.get_shop(shop_id) is None:
        raise Problem("SHOP_NOT_FOUND", f"No shop {shop_id}.")
    return store.api_keys(shop_id)


def revoke_key(store: KeyStore, clock: Clock, shop_id: str, key_id: str) -> ApiKey:
    revoked = store.revoke_api_key(shop_id, key_id, clock.now())
    if revoked is None:
        raise Problem("API_KEY_NOT_FOUND", f"Shop {shop_id} has no key {key_id}.")
    return revoked
