"""API Gateway TOKEN authorizer: `Authorization: Bearer <key>` -> the shop id, or 401."""

from typing import NotRequired, TypedDict

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from cancelflow import runtime
from cancelflow.adapters import logs
from cancelflow.adapters.dynamodb.table import key_hash
from cancelflow.shops.service import usage_key

logger = Logger()


class TokenAuthorizerEvent(TypedDict):
    """What API Gateway passes a TOKEN authorizer."""

    type: str
    authorizationToken: NotRequired[str | None]
    methodArn: str


@logs.inject_lambda_context(logger)
def handler(event: TokenAuthorizerEvent, context: LambdaContext) -> dict:
    scheme, _, key = (event.get("authorizationToken") or "").partition(" ")
    shop_id = runtime.store().shop_for_key(key_hash(key)) if scheme == "Bearer" and key else None
    if shop_id is None:
        # API Gateway answers 401 for exactly this message (GatewayResponse UNAUTHORIZED).
        raise Exception("Unauthorized")
    # Allow every route of this API: the policy is cached per key, not per route.
    arn = event["methodArn"].split("/")
    api_wildcard = "/".join(arn[:2]) + "/*"
    return {
        "principalId": shop_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": api_wildcard}
            ],
        },
        "context": {"shop_id": shop_id},
        # The API's key source is AUTHORIZER: this names the shop's usage plan key (its rate).
        "usageIdentifierKey": usage_key(shop_id),
    }
