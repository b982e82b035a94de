"""The function policies in template.yaml, read as IAM reads them (local/iam.py).

The integration tests run every handler under these policies; here, what they must refuse.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from local.iam import LocalIam, Request, allowed
from local.template import Template

TEMPLATE = Template()
IAM = LocalIam(TEMPLATE)
TABLE = TEMPLATE.physical_name("Ledger")


def _fn(logical_id: str) -> str:
    return TEMPLATE.physical_name(logical_id)


def _get(pk: str) -> dict[str, Any]:
    return {"TableName": TABLE, "Key": {"PK": {"S": pk}, "SK": {"S": "X"}}}


def _denied(function: str, service: str, operation: str, params: dict[str, Any]) -> bool:
    try:
        IAM.check(_fn(function), service, operation, params)
    except ClientError as error:
        assert error.response["Error"]["Code"] == "AccessDeniedException"
        return True
    return False


def test_the_authorizer_reads_api_keys_and_nothing_of_any_shop() -> None:
    assert not _denied("AuthorizerFunction", "dynamodb", "GetItem", _get("APIKEY#abc"))
    assert _denied("AuthorizerFunction", "dynamodb", "GetItem", _get("SHOP#demo-shop"))
    assert _denied("AuthorizerFunction", "dynamodb", "PutItem", _get("APIKEY#abc") | {"Item": {}})


@pytest.mark.parametrize(
    "action", ["Scan", "DeleteItem", "BatchWriteItem", "PartiQLSelect", "DeleteTable"]
)
def test_no_function_may_scan_or_delete(action: str) -> None:
    arn = TEMPLATE.arn("Ledger")
    for shop_key in ("SHOP#demo-shop", "SHOP#demo-shop#PAY#1", None):
        context = {"dynamodb:LeadingKeys": [shop_key]} if shop_key else {}
        for resource in (arn, f"{arn}/index/ShopTimeline"):
            request = Request(f"dynamodb:{action}", resource, context)
            for name, statements in IAM.statements.items():
                assert not allowed(statements, request), (name, request)


def test_shop_functions_cannot_touch_api_keys_or_the_billing_lease() -> None:
    for function in ("ApiFunction", "DecideFunction", "SettleFunction", "BillingChargeFunction"):
        assert _denied(function, "dynamodb", "GetItem", _get("APIKEY#abc")), function
        assert _denied(function, "dynamodb", "GetItem", _get("BILLING#RUN")), function


def test_the_billing_run_takes_its_lease_and_writes_no_shop_item() -> None:
    put = {"TableName": TABLE, "Item": {"PK": {"S": "BILLING#RUN"}, "SK": {"S": "LEASE"}}}
    assert not _denied("BillingFindDueFunction", "dynamodb", "PutItem", put)
    shop_put = {"TableName": TABLE, "Item": {"PK": {"S": "SHOP#x#SUB#1"}, "SK": {"S": "S"}}}
    assert _denied("BillingFindDueFunction", "dynamodb", "PutItem", shop_put)


def test_a_transaction_is_authorized_item_by_item() -> None:
    check = {"ConditionCheck": {"TableName": TABLE, "Key": {"PK": {"S": "SHOP#x#SUB#1"}}}}
    put = {"Put": {"TableName": TABLE, "Item": {"PK": {"S": "SHOP#x#SUB#1"}}}}
    params = {"TransactItems": [check, put]}
    assert not _denied("BillingChargeFunction", "dynamodb", "TransactWriteItems", params)
    # The API registers payments and cancellations, but never checks a billing claim.
    assert _denied("ApiFunction", "dynamodb", "TransactWriteItems", params)


def test_queries_reach_only_the_indexes_a_function_reads() -> None:
    query = {
        "TableName": TABLE,
        "IndexName": "SubscriptionsDue",
        "KeyConditionExpression": "GSI3PK = :pk",
        "ExpressionAttributeValues": {":pk": {"S": "DUE#2026-12-01#0"}},
    }
    assert not _denied("BillingFindDueFunction", "dynamodb", "Query", query)
    assert _denied("ApiFunction", "dynamodb", "Query", query)


def test_mail_goes_only_from_the_stacks_identity() -> None:
    sender = TEMPLATE.parameters["MailFrom"]
    assert not _denied("NotifyFunction", "sesv2", "SendEmail", {"FromEmailAddress": sender})
    assert _denied("NotifyFunction", "sesv2", "SendEmail", {"FromEmailAddress": "x@evil.test"})
    assert _denied("ApiFunction", "sesv2", "SendEmail", {"FromEmailAddress": sender})


def test_secrets_are_reachable_only_under_their_prefixes() -> None:
    kcp = TEMPLATE.parameters["KcpSecretPrefix"]
    batch = TEMPLATE.parameters["BatchKeySecretPrefix"]
    get = "GetSecretValue"
    assert not _denied("SendCancelFunction", "secretsmanager", get, {"SecretId": f"{kcp}shop"})
    assert _denied("SendCancelFunction", "secretsmanager", get, {"SecretId": f"{batch}shop"})
    assert not _denied("ApiFunction", "secretsmanager", get, {"SecretId": f"{kcp}shop"})
    assert _denied("ApiFunction", "secretsmanager", get, {"SecretId": f"{batch}shop"})
    assert _denied("NotifyFunction", "secretsmanager", get, {"SecretId": f"{kcp}shop"})
    create = {"Name": f"{batch}shop"}
    assert not _denied("SubscriptionsApiFunction", "secretsmanager", "CreateSecret", create)
    assert _denied("BillingChargeFunction", "secretsmanager", "CreateSecret", create)


def test_an_unmodelled_call_is_refused_rather_than_waved_through() -> None:
    assert _denied("ApiFunction", "sqs", "SendMessage", {"QueueUrl": "q"})


def test_for_all_values_holds_for_no_values_which_is_why_the_policies_add_null() -> None:
    statement = {
        "Effect": "Allow",
        "Action": "dynamodb:GetItem",
        "Resource": "*",
        "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["SHOP#*"]}},
    }
    bare = Request("dynamodb:GetItem", "arn")
    assert allowed([statement], bare)
    statement["Condition"]["Null"] = {"dynamodb:LeadingKeys": "false"}
    assert not allowed([statement], bare)
    assert allowed(
        [statement], Request("dynamodb:GetItem", "arn", {"dynamodb:LeadingKeys": ["SHOP#a"]})
    )
