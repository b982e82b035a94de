"""A shop: who it is, where its mail goes, where its KCP credentials are kept."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shop:
    shop_id: str
    name: str
    email: str
    kcp_secret_id: str = ""  # Secrets Manager id of the shop's KCP credentials
