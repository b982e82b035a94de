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
        assert state["Parameters"].get("execution_id.$") == "$$.Execution.Id", name


def test_functions_run_a_current_python_on_arm64() -> None:
    function_globals = TEMPLATE.doc["Globals"]["Function"]
    assert function_globals["Architectures"] == ["arm64"]
    major, minor = map(int, function_globals["Runtime"].removeprefix("python").split("."))
    assert (major, minor) >= (3, 12)


LAYER = ROOT / "layers" / "cancelflow" / "cancelflow"
ADAPTERS = {"aws.py", "runtime.py", "store/dynamodb.py", "notify/ses.py"}


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
        if relative in ADAPTERS or relative.endswith("dynamodb.py"):
            continue
        if _imports(path) & {"boto3", "botocore"}:
            offenders.append(relative)
    assert offenders == []


def test_storage_code_queries_and_never_scans() -> None:
    for path in LAYER.rglob("*.py"):
        assert not re.search(r"\.scan\(|\"Scan\"", path.read_text()), path
