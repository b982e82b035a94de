"""The cost bench (bench/cost.py) measures what it says: on the test stack, two happy-path cancels
on each machine, counted against what their execution histories and the mail folder show."""

from __future__ import annotations

from typing import Any

from bench.cost import API_FUNCTIONS, cost_per_1000, measure
from local.stack import LocalStack


def _history(stack: LocalStack, arn: str) -> list[dict[str, Any]]:
    return stack.client("stepfunctions").get_execution_history(executionArn=arn)["events"]


def test_cost_bench_counts_transitions_lambdas_units_and_mail_of_both_machines(
    stack: LocalStack,
) -> None:
    runs = measure(stack, 2)

    assert [r.label for r in runs] == ["reference (v1)", "current"]
    assert runs[0].arn != runs[1].arn
    for run in runs:
        assert len(run.executions) == 2
        assert all(arn.startswith(run.arn.replace(":stateMachine:", ":execution:"))
                   for arn in run.executions)  # fmt: skip
        for arn, counted in zip(run.executions, run.transitions, strict=True):
            events = _history(stack, arn)
            assert events[-1]["type"] == "ExecutionSucceeded"
            assert counted == sum(1 for e in events if e["type"].endswith("StateEntered"))
        usage = run.usage
        workflow = {f: c for f, c in usage.lambda_requests.items() if f not in API_FUNCTIONS}
        assert sum(workflow.values()) == run.scheduled  # every task the histories scheduled
        assert usage.lambda_requests["ApiFunction"] == 2  # one POST per cancel
        assert usage.unmetered == 0
        assert usage.total("read_units") > 0
        assert usage.total("write_units") > usage.total("index_write_units") > 0
        cancellations = [arn.rsplit(":", 1)[1] for arn in run.executions]
        mails = [m for m in stack.mail.messages() if any(c in m for c in cancellations)]
        assert usage.ses_messages == len(mails) > 0
        assert sum(cost_per_1000(run.figures()).values()) > 0
