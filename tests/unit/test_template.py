"""The template and the ASL agree, and the house rules hold (read from the files themselves)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from local.template import ROOT, Template

TEMPLATE = Template()
MACHINES = TEMPLATE.of_type("AWS::Serverless::StateMachine")


@pytest.mark.parametrize("logical_id", sorted(MACHINES))
def test_every_substitution_in_the_asl_is_defined_and_points_at_a_template_function(
    logical_id: str,
) -> None:
    props = MACHINES[logical_id]["Properties"]
    text = (ROOT / props["DefinitionUri"]).read_text()
    used = set(re.findall(r"\$\{(\w+)\}", text))
    defined = props.get("DefinitionSubstitutions", {})
    assert used <= set(defined), f"undefined: {used - set(defined)}"
    functions = TEMPLATE.of_type("AWS::Serverless::Function")
    for name in used:
        value = defined[name]
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            assert value["Fn::GetAtt"][0] in functions


@pytest.mark.parametrize("logical_id", sorted(MACHINES))
def test_state_machines_are_standard_jsonpath_with_logging_and_tracing(logical_id: str) -> None:
    props = MACHINES[logical_id]["Properties"]
    definition = json.loads((ROOT / props["DefinitionUri"]).read_text())
    assert definition.get("QueryLanguage", "JSONPath") == "JSONPath"
    assert props["Type"] == "STANDARD"
    assert props["Tracing"]["Enabled"] is True
    assert props["Logging"]["Level"] == "ALL"


def test_every_lambda_gets_the_execution_id_for_its_correlation_id() -> None:
    definition = json.loads((ROOT / "statemachine/cancel_refund.asl.json").read_text())
    tasks = {n: s for n, s in definition["States"].items() if s["Type"] == "Task"}
    assert tasks
    for name, state in tasks.items():
        # A lambda:invoke integration (the review's callback) passes its event as the Payload.
        event = state["Parameters"].get("Payload", state["Parameters"])
        assert event.get("execution_id.$") == "$$.Execution.Id", name


def test_functions_run_a_current_python_on_arm64() -> None:
    function_globals = TEMPLATE.doc["Globals"]["Function"]
    assert function_globals["Architectures"] == ["arm64"]
    major, minor = map(int, function_globals["Runtime"].removeprefix("python").split("."))
    assert (major, minor) >= (3, 12)


LAYER = ROOT / "layers" / "cancelflow" / "cancelflow"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_domain_imports_no_aws_sdk_only_adapters_do() -> None:
    offenders = []
    for path in LAYER.rglob("*.py"):
        relative = path.relative_to(LAYER).as_posix()
        if relative.startswith("adapters/") or relative == "runtime.py":
            continue
        if _imports(path) & {"boto3", "botocore"}:
            offenders.append(relative)
    assert offenders == []


def test_storage_code_queries_and_never_scans() -> None:
    for path in LAYER.rglob("*.py"):
        assert not re.search(r"\.scan\(|\"Scan\"", path.read_text()), path


# --- least privilege (issue 10) ---------------------------------------------------------------

FUNCTIONS = TEMPLATE.of_type("AWS::Serverless::Function")
# Actions that support no resource-level permissions; "*" is what their services document.
STAR_ONLY = re.compile(
    r"^(logs:(Create|Get|Update|Delete|List)LogDeliver(y|ies)|logs:PutResourcePolicy"
    r"|logs:DescribeResourcePolicies|logs:DescribeLogGroups|xray:\w+"
    # A callback task's token cannot be scoped by IAM (the token names the task).
    r"|states:SendTask(Success|Failure|Heartbeat))$"
)


def _statements(spec: dict) -> list[dict]:
    found = []
    for policy in spec["Properties"].get("Policies", []):
        if isinstance(policy, dict):
            found += policy.get("Statement", [])
    return found


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_functions_spell_out_their_permissions_with_no_crud_or_managed_policies(
    logical_id: str,
) -> None:
    # Only inline statements: local/iam.py can enforce them on the local stack.
    for policy in FUNCTIONS[logical_id]["Properties"].get("Policies", []):
        assert isinstance(policy, dict) and set(policy) == {"Statement"}, policy


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS) + sorted(MACHINES))
def test_nothing_is_allowed_on_every_resource_but_what_takes_no_resource(logical_id: str) -> None:
    spec = TEMPLATE.resources[logical_id]
    for statement in _statements(spec):
        resources = (
            statement["Resource"]
            if isinstance(statement["Resource"], list)
            else [statement["Resource"]]
        )
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert all("*" not in a.split(":")[0] and a.split(":")[1] != "*" for a in actions), (
            statement
        )
        if "*" in resources:
            assert all(STAR_ONLY.match(a) for a in actions), statement
    managed = [p for p in spec["Properties"].get("Policies", []) if isinstance(p, str)]
    assert managed == [], managed


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_item_permissions_on_the_ledger_name_the_key_prefix_they_may_touch(logical_id: str) -> None:
    # Index ARNs end in /index/<name>; the table's own items need a LeadingKeys condition.
    for statement in _statements(FUNCTIONS[logical_id]):
        if statement["Resource"] == {"Fn::GetAtt": ["Ledger", "Arn"]}:
            condition = statement.get("Condition", {})
            assert any("dynamodb:LeadingKeys" in tests for tests in condition.values()), statement
            assert condition.get("Null") == {"dynamodb:LeadingKeys": "false"}, statement


def test_every_answer_the_gateway_gives_itself_is_problem_json_with_a_code() -> None:
    from local.api_gateway import DEFAULT_RESPONSES, LocalApi

    api = LocalApi(TEMPLATE, lambdas=None)  # type: ignore[arg-type]  # no function is called
    declared = set(api.api["GatewayResponses"])
    assert {"THROTTLED", "UNAUTHORIZED", "ACCESS_DENIED", "DEFAULT_4XX", "DEFAULT_5XX"} <= declared
    for kind in sorted(declared | set(DEFAULT_RESPONSES) | {"BAD_REQUEST_BODY", "WAF_FILTERED"}):
        status, headers, body = api.gateway_response(kind, request_id="r-1")
        assert headers["Content-Type"] == "application/problem+json", kind
        problem = json.loads(body)
        assert problem["code"] and problem["title"] and problem["type"].startswith("https://"), kind
        assert problem.get("status", status) == status, kind


def test_over_the_limit_says_when_to_retry() -> None:
    throttled = TEMPLATE.api("ShopApi")["GatewayResponses"]["THROTTLED"]
    assert throttled["StatusCode"] == 429
    assert throttled["ResponseParameters"]["Headers"]["Retry-After"] == "'1'"


def test_the_api_is_throttled_per_shop_and_as_a_whole_and_logs_each_request() -> None:
    api = TEMPLATE.api("ShopApi")
    assert api["ApiKeySourceType"] == "AUTHORIZER" and api["Auth"]["ApiKeyRequired"] is True
    assert TEMPLATE.usage_plans("ShopApi"), "no usage plan on the API's stage"
    (default,) = [m for m in api["MethodSettings"] if m["ResourcePath"] == "/*"]
    assert {"ThrottlingRateLimit", "ThrottlingBurstLimit"} <= set(default)
    log_format = api["AccessLogSetting"]["Format"]
    assert "$context.requestId" in log_format and "$context.authorizer.shop_id" in log_format


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS))
def test_every_function_has_a_log_group_kept_for_the_retention_parameter(logical_id: str) -> None:
    groups = TEMPLATE.of_type("AWS::Logs::LogGroup").values()
    names = [g["Properties"].get("LogGroupName") for g in groups]
    assert {"Fn::Sub": f"/aws/lambda/${{{logical_id}}}"} in names
    for group in groups:
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_a_revoked_shop_key_is_refused_within_the_bound_the_readme_states() -> None:
    # API Gateway answers from the authorizer's cache for ReauthorizeEvery seconds: a revoked
    # key may pass that long (README, "An operator API": 60 s).
    authorizer = TEMPLATE.resources["ShopApi"]["Properties"]["Auth"]["Authorizers"]["ShopKey"]
    assert authorizer["Identity"]["ReauthorizeEvery"] <= 60
    assert "within 60 s" in (ROOT / "README.md").read_text()
