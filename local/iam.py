"""The template's function policies, enforced on the local stack as IAM would enforce them.

moto does not check IAM, so a policy that lacks an action a handler needs would only fail once
deployed. Here every AWS call a handler makes in-process (botocore's `before-parameter-build`
event, the same public hook system the Invoke hook uses) is turned into the IAM request AWS
would evaluate — action, resource ARN, condition keys (dynamodb:LeadingKeys, ses:FromAddress) —
and checked against that function's `Policies` statements in template.yaml. A call no statement
allows fails with AccessDeniedException, as it would in AWS.

Only what the handlers call is modelled; an unmodelled call is refused with a message saying so,
so a new call cannot slip past the check. Worker processes (the benches' isolate=True) are not
checked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from local.template import ACCOUNT, REGION, Template

# AWS appends "-" and six random characters to a secret's name in its ARN.
SECRET_ARN_SUFFIX = "-Lc4l00"  # noqa: S105 (a name suffix, not a password)


@dataclass(frozen=True)
class Request:
    """One IAM authorization request: what AWS evaluates for (part of) an API call."""

    action: str
    resource: str
    context: dict[str, list[str]] = field(default_factory=dict)

    def __str__(self) -> str:
        keys = "".join(f" {k}={v}" for k, v in sorted(self.context.items()))
        return f"{self.action} on {self.resource}{keys}"


class NotModelled(Exception):
    """An API call the local IAM check does not know how to authorize."""


def _glob(pattern: str, value: str, ignore_case: bool = False) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in str(pattern))
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _condition_holds(operator: str, key: str, expected: Any, context: dict[str, list[str]]) -> bool:
    if operator == "Null":  # "false": the key must be in the request
        return (key not in context) == (str(expected).lower() == "true")
    qualifier, _, test = operator.rpartition(":")
    if test not in ("StringEquals", "StringLike"):
        raise NotModelled(f"condition operator {operator}")

    def matches(value: str) -> bool:
        if test == "StringEquals":
            return any(value == e for e in _listed(expected))
        return any(_glob(e, value) for e in _listed(expected))

    values = context.get(key, [])
    if qualifier == "ForAllValues":
        return all(matches(v) for v in values)  # true for no values, as in IAM
    if qualifier == "ForAnyValue":
        return any(matches(v) for v in values)
    if qualifier:
        raise NotModelled(f"condition operator {operator}")
    return len(values) == 1 and matches(values[0])


def _statement_matches(statement: dict[str, Any], request: Request) -> bool:
    if "NotAction" in statement or "NotResource" in statement:
        raise NotModelled("NotAction / NotResource")
    actions = _listed(statement.get("Action", []))
    resources = _listed(statement.get("Resource", []))
    if not any(_glob(a, request.action, ignore_case=True) for a in actions):
        return False
    if not any(_glob(r, request.resource) for r in resources):
        return False
    return all(
        _condition_holds(operator, key, expected, request.context)
        for operator, tests in statement.get("Condition", {}).items()
        for key, expected in tests.items()
    )


def allowed(statements: Iterable[dict[str, Any]], request: Request) -> bool:
    """IAM's rule for one identity policy: an explicit Deny wins, then any Allow, else deny."""
    statements = list(statements)
    if any(s["Effect"] == "Deny" and _statement_matches(s, request) for s in statements):
        return False
    return any(s["Effect"] == "Allow" and _statement_matches(s, request) for s in statements)


class LocalIam:
    """Each function's policy statements from the template, and the requests a call makes."""

    def __init__(self, template: Template) -> None:
        self.template = template
        self.statements: dict[str, list[dict[str, Any]]] = {}
        for logical_id in template.of_type("AWS::Serverless::Function"):
            self.statements[template.physical_name(logical_id)] = function_statements(
                template, logical_id
            )
        self._hash_keys = self._partition_keys()

    def _partition_keys(self) -> dict[str, str]:
        """Partition key attribute of each table and index ARN."""
        found = {}
        for logical_id, spec in self.template.of_type("AWS::DynamoDB::Table").items():
            props = spec["Properties"]
            arn = self.template.arn(logical_id)
            found[arn] = _hash_key(props["KeySchema"])
            for index in props.get("GlobalSecondaryIndexes", []):
                found[f"{arn}/index/{index['IndexName']}"] = _hash_key(index["KeySchema"])
        return found

    def check(self, function_name: str, service: str, operation: str, params: dict) -> None:
        """Raise AccessDeniedException unless the function's policy allows the call."""
        statements = self.statements[function_name]
        try:
            requests = self.requests(service, operation, params)
        except NotModelled as gap:
            raise _denied(operation, f"the local IAM check does not model {gap}") from None
        for request in requests:
            if not allowed(statements, request):
                raise _denied(
                    operation,
                    f"{function_name} is not authorized to perform {request} "
                    "(local check of the function's Policies in template.yaml)",
                )

    # --- API call -> IAM requests ---------------------------------------------------------

    def requests(self, service: str, operation: str, params: dict[str, Any]) -> list[Request]:
        if service == "dynamodb":
            return self._dynamodb(operation, params)
        if service == "secretsmanager" and operation in ("GetSecretValue", "CreateSecret"):
            name = params.get("SecretId") or params["Name"]
            arn = name if name.startswith("arn:") else _secret_arn(name)
            return [Request(f"secretsmanager:{operation}", arn)]
        if service == "s3":
            key = f"arn:aws:s3:::{params['Bucket']}/{params['Key']}"
            if operation in ("CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):
                return [Request("s3:PutObject", key)]
            if operation in ("PutObject", "GetObject", "AbortMultipartUpload"):
                return [Request(f"s3:{operation}", key)]
        if service == "sesv2" and operation == "SendEmail":
            sender = params["FromEmailAddress"]
            identity = f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/{sender}"
            return [Request("ses:SendEmail", identity, {"ses:FromAddress": [sender]})]
        if service == "stepfunctions":
            if operation == "StartExecution":
                return [Request("states:StartExecution", params["stateMachineArn"])]
            if operation in ("DescribeExecution", "StopExecution", "RedriveExecution"):
                return [Request(f"states:{operation}", params["executionArn"])]
            if operation in ("SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat"):
                return [Request(f"states:{operation}", "*")]  # no resource-level permission
        if service == "sqs" and operation in ("SendMessage", "ChangeMessageVisibility"):
            name = params["QueueUrl"].rstrip("/").rsplit("/", 1)[-1]
            return [Request(f"sqs:{operation}", f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")]
        raise NotModelled(f"{service}:{operation}")

    def _dynamodb(self, operation: str, params: dict[str, Any]) -> list[Request]:
        if operation in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"):
            return [self._item_request(operation, params)]
        if operation == "TransactWriteItems":
            kinds = {
                "Put": "PutItem",
                "Update": "UpdateItem",
                "Delete": "DeleteItem",
                "ConditionCheck": "ConditionCheckItem",
            }
            # Transactions have no IAM action of their own: each item is authorized as its
            # single-item action.
            return [
                self._item_request(kinds[kind], part)
                for item in params["TransactItems"]
                for kind, part in item.items()
            ]
        if operation == "TransactGetItems":
            return [self._item_request("GetItem", i["Get"]) for i in params["TransactItems"]]
        raise NotModelled(f"dynamodb:{operation}")

    def _item_request(self, action: str, params: dict[str, Any]) -> Request:
        table = params["TableName"]
        arn = (
            table
            if table.startswith("arn:")
            else f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}"
        )
        if params.get("IndexName"):
            arn += f"/index/{params['IndexName']}"
        hash_key = self._hash_keys.get(arn)
        if hash_key is None:
            raise NotModelled(f"a table or index the template does not define ({arn})")
        leading = _leading_key(action, params, hash_key)
        context = {"dynamodb:LeadingKeys": [leading]} if leading is not None else {}
        return Request(f"dynamodb:{action}", arn, context)


def function_statements(template: Template, logical_id: str) -> list[dict[str, Any]]:
    """A function's policy statements; only inline documents (every action written out)."""
    statements = []
    for policy in template.resolve(
        template.resources[logical_id]["Properties"].get("Policies", [])
    ):
        if not isinstance(policy, dict) or set(policy) != {"Statement"}:
            raise NotModelled(
                f"{logical_id}: a policy that is not an inline Statement list ({policy!r})"
            )
        statements += policy["Statement"]
    return statements


def _hash_key(schema: list[dict[str, str]]) -> str:
    return next(k["AttributeName"] for k in schema if k["KeyType"] == "HASH")


def _leading_key(action: str, params: dict[str, Any], hash_key: str) -> str | None:
    if action == "Query":
        names = params.get("ExpressionAttributeNames", {})
        values = params.get("ExpressionAttributeValues", {})
        for name, placeholder in re.findall(
            r"([#\w]+)\s*=\s*(:\w+)", params.get("KeyConditionExpression", "")
        ):
            if names.get(name, name) == hash_key:
                return str(next(iter(values[placeholder].values())))
        raise NotModelled("a Query without an equality on the partition key")
    item = params.get("Key") or params.get("Item") or {}
    value = item.get(hash_key)
    return str(next(iter(value.values()))) if value else None


def _secret_arn(name: str) -> str:
    return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}{SECRET_ARN_SUFFIX}"


def _denied(operation: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": "AccessDeniedException", "Message": message}}, operation)
