"""The operations dashboard and the alarms show what the README's metric catalogue says, and
the KCP-answers panel reads the logs of every function that calls KCP (read from the files)."""

from __future__ import annotations

import json
import re

from local.template import ROOT, Template

TEMPLATE = Template()
RESOURCES = TEMPLATE.resources
README = (ROOT / "README.md").read_text(encoding="utf-8")
CATALOGUE = README.split("## Metrics", 1)[1].split("\n## ", 1)[0]


def _dashboard() -> dict:
    body = RESOURCES["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    return json.loads(body if isinstance(body, str) else body[0])


def _catalogued() -> set[str]:
    """The metric names of the catalogue's table; `CancellationsSucceeded` / `Rejected` is
    shorthand for CancellationsSucceeded and CancellationsRejected."""
    names: set[str] = set()
    for row in (line for line in CATALOGUE.splitlines() if line.startswith("| `")):
        first, *rest = re.findall(r"`([A-Za-z]+)`", row.split("|")[1])
        prefix = re.match(r"[A-Z][a-z]+", first).group(0)  # type: ignore[union-attr]
        names |= {first, *(n if n.startswith(prefix) else prefix + n for n in rest)}
    return names


def test_every_cancelflow_metric_on_the_dashboard_or_an_alarm_is_in_the_readme() -> None:
    shown = {
        line[1]
        for widget in _dashboard()["widgets"]
        if widget["type"] == "metric"
        for line in widget["properties"]["metrics"]
        if line[0] == "cancelflow"
    }
    alarmed = {
        r["Properties"]["MetricName"]
        for r in RESOURCES.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and r["Properties"].get("Namespace") == "cancelflow"
    }
    assert sorted((shown | alarmed) - _catalogued()) == []
    assert "CancellationsInternalError" in alarmed and "CancellationsInternalError" in shown


def test_the_kcp_answers_panel_reads_every_function_that_calls_kcp() -> None:
    (panel,) = [w for w in _dashboard()["widgets"] if w["type"] == "log"]
    query = panel["properties"]["query"]
    sources = set(re.findall(r"SOURCE '\$\{(\w+)\}'", query))
    calling = {
        logical_id
        for logical_id, function in TEMPLATE.functions().items()
        if re.search(
            r"gateway_for|charge_deps|lane_deps", (function.code_dir / "app.py").read_text()
        )
    }
    assert calling and sources == {f"{f}Logs" for f in calling}
    assert all(RESOURCES[s]["Type"] == "AWS::Logs::LogGroup" for s in sources)
    assert "filter message = 'kcp call'" in query and "by kcp_path, outcome, res_cd" in query


def test_every_alarmed_metric_is_emitted_by_the_function_its_dimension_names() -> None:
    sources = {
        f.environment.get("POWERTOOLS_SERVICE_NAME", ""): (f.code_dir / "app.py").read_text()
        for f in TEMPLATE.functions().values()
    }
    for resource in RESOURCES.values():
        props = resource.get("Properties", {})
        if resource["Type"] != "AWS::CloudWatch::Alarm" or props.get("Namespace") != "cancelflow":
            continue
        (service,) = [d["Value"] for d in props["Dimensions"] if d["Name"] == "service"]
        name = props["MetricName"]
        emitted = sources.get(service, "")
        # Settle and the billing tally name their metrics from a status: f"Cancellations{…}".
        prefix = re.match(r"[A-Z][a-z]+", name).group(0)  # type: ignore[union-attr]
        assert name in emitted or f'name=f"{prefix}{{' in emitted, name
