"""Batch keys at rest: AES-256-GCM under a per-shop data key kept in Secrets Manager.

A batch key charges a customer's card, so the table holds only its sealed form
("v1:{kid}:{base64(nonce | ciphertext)}") bound to its shop and subscription (GCM associated data),
and the last 4 characters for people. One secret per shop, not per subscription: Secrets Manager
bills per secret, and a shop has many subscriptions. The secret is created on the shop's first
subscription; a new kid can be added for rotation (old kids keep opening old keys).
"""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_TTL = 300.0  # seconds a warm container trusts its cached data keys


class SecretsVault:
    def __init__(self, client: Any, prefix: str) -> None:
        self._sm = client
        self._prefix = prefix
        self._keys: dict[str, tuple[float, dict[str, Any]]] = {}

    def __repr__(self) -> str:  # never the keys
        return f"SecretsVault(prefix={self._prefix!r})"

    def seal(self, shop_id: str, subscription_id: str, batch_key: str) -> str:
        doc = self._doc(shop_id, create=True)
        kid = doc["current"]
        nonce = os.urandom(12)
        sealed = AESGCM(base64.b64decode(doc["keys"][kid])).encrypt(
            nonce, batch_key.encode(), _aad(shop_id, subscription_id)
        )
        return f"v1:{kid}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, shop_id: str, subscription_id: str, sealed: str) -> str:
        version, kid, body = sealed.split(":", 2)
        if version != "v1":
            raise ValueError("unknown sealed batch key format")
        doc = self._doc(shop_id, create=False)
        if kid not in doc["keys"]:
            doc = self._doc(shop_id, create=False, fresh=True)  # rotated since we cached it
        raw = base64.b64decode(body)
        key = AESGCM(base64.b64decode(doc["keys"][kid]))
        return key.decrypt(raw[:12], raw[12:], _aad(shop_id, subscription_id)).decode()

    def _doc(self, shop_id: str, create: bool, fresh: bool = False) -> dict[str, Any]:
        cached = self._keys.get(shop_id)
        if cached and not fresh and time.monotonic() - cached[0] < _TTL:
            return cached[1]
        name = f"{self._prefix}{shop_id}"
        try:
            doc: dict[str, Any] = json.loads(
                self._sm.get_secret_value(SecretId=name)["SecretString"]
            )
        except self._sm.exceptions.ResourceNotFoundException:  # the client's class: no botocore
            if not create:
                raise
            doc = self._create(name)
        self._keys[shop_id] = (time.monotonic(), doc)
        return doc

    def _create(self, name: str) -> dict[str, Any]:
        doc = {"current": "k1", "keys": {"k1": base64.b64encode(os.urandom(32)).decode()}}
        try:
            self._sm.create_secret(
                Name=name,
                SecretString=json.dumps(doc),
                Description="cancelflow: data key sealing this shop's KCP batch keys",
            )
            return doc
        except self._sm.exceptions.ResourceExistsException:
            pass  # another request created it first: use theirs
        theirs: dict[str, Any] = json.loads(
            self._sm.get_secret_value(SecretId=name)["SecretString"]
        )
        return theirs


def _aad(shop_id: str, subscription_id: str) -> bytes:
    return f"{shop_id}\n{subscription_id}".encode()
