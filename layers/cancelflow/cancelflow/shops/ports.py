"""What shops need from storage."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # named in annotations only: the store that returns them imports them
    from cancelflow.shops.model import Shop
    from cancelflow.shops.policy import ShopPolicy


class ShopStore(Protocol):
    def shop_for_key(self, key_hash: str) -> str | None: ...

    def get_shop(self, shop_id: str) -> Shop | None: ...

    def get_policy(self, shop_id: str) -> ShopPolicy:
        """The shop's current policy, or the default (the law's minimum)."""
        ...

    def put_policy(self, shop_id: str, policy: ShopPolicy, replaces: int, at: datetime) -> None:
        """Conflict if the current version is no longer `replaces`."""
        ...
