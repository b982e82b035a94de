"""`make shop NAME=…`: onboard a shop on the `make run` stack as an operator would, and print
its API key (shown once).

The KCP side a real shop brings is played by the sandbox: a new merchant (site_cd) whose
credentials go into the stack's Secrets Manager under KcpSecretPrefix + shop id. The shop and
its key are made through the operator API, signed with the operator's keys (SigV4)."""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys
import urllib.error
import urllib.request
from typing import Any

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from local.bill import stack_env
from local.template import REGION


def signed(
    env: dict[str, str],
    method: str,
    path: str,
    body: Any = None,
    credentials: Credentials | None = None,
) -> tuple[int, Any]:
    """Call the operator API as an operator: SigV4, service execute-api, the stack's region;
    with the stack's operator keys (.local/stack.env) unless given an AWS session's own."""
    url = env["OPERATOR_API_URL"] + path
    data = json.dumps(body).encode() if body is not None else None
    request = AWSRequest(method, url, data=data, headers={"Content-Type": "application/json"})
    credentials = credentials or Credentials(
        env["OPERATOR_AWS_ACCESS_KEY_ID"], env["OPERATOR_AWS_SECRET_ACCESS_KEY"]
    )
    SigV4Auth(credentials, "execute-api", env.get("AWS_REGION", REGION)).add_auth(request)
    headers = dict(request.headers)
    sent = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(sent, timeout=30) as answer:  # noqa: S310 (the local stack)
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def slug(name: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:30] or "shop"
    return f"{base}-{secrets.token_hex(2)}" if len(base) < 2 else base


def onboard(env: dict[str, str], name: str, shop_id: str = "", email: str = "") -> dict[str, Any]:
    """A working shop: its sandbox merchant and KCP secret, the shop, one API key."""
    shop_id = shop_id or slug(name)
    email = email or f"owner@{shop_id}.example"
    site_cd = "S" + "".join(secrets.choice("0123456789") for _ in range(5))
    merchant = urllib.request.Request(  # noqa: S310 (the local sandbox)
        f"{env['SANDBOX_URL']}/_sandbox/merchants",
        data=json.dumps({"site_cd": site_cd}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(merchant, timeout=60) as answer:  # noqa: S310 (the local sandbox)
        credentials = json.loads(answer.read())
    created_status, shop = signed(
        env, "POST", "/v1/shops", {"shop_id": shop_id, "name": name, "email": email}
    )
    if created_status != 201:
        raise RuntimeError(f"POST /v1/shops answered {created_status}: {shop}")
    smgr = boto3.client("secretsmanager", region_name=REGION, endpoint_url=env["AWS_ENDPOINT_URL"])
    smgr.create_secret(Name=shop["kcp_secret_id"], SecretString=json.dumps(credentials))
    key_status, key = signed(env, "POST", f"/v1/shops/{shop_id}/api-keys")
    if key_status != 201:
        raise RuntimeError(f"POST /v1/shops/{shop_id}/keys answered {key_status}: {key}")
    return {"shop": shop, "site_cd": site_cd, "key": key}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--id", default="")
    parser.add_argument("--email", default="")
    args = parser.parse_args()
    env = stack_env()
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(variable, env.get(variable, "local"))
    try:
        made = onboard(env, args.name, args.id, args.email)
    except RuntimeError as error:
        sys.exit(str(error))
    shop, key = made["shop"], made["key"]
    print(f"shop {shop['shop_id']} ({shop['name']}), KCP sandbox merchant {made['site_cd']}")
    print(f"  key_id  {key['key_id']}")
    print(f"  API key {key['api_key']}   (shown once: keep it now)")
    print(f'\n  curl -s "$API_URL/v1/payments" -H "Authorization: Bearer {key["api_key"]}"')


if __name__ == "__main__":
    main()
