"""What a happy-path cancel costs (issue 16): the bill for 1,000 full cancels at ap-northeast-2
list prices, from what one run on the local stack counted, beside the same figures for the
previous state machine, so the ratio new/old is measured side by side.

The previous machine is kept as a reference definition (bench/reference/cancel_refund_v1.asl.json)
and created on the same stack with the same Lambda ARNs; cancels alternate between the two
(the reference's executions are started by rerouting the API's StartExecution to it). Counted
per cancel, from the 202's POST to the end of its execution:
- state transitions: the execution history's StateEntered events (plus retries, if any);
- Lambda requests and GB-seconds: every invocation (the API's POST and its authorizer too), at
  the template's MemorySize per function and the duration measured here, billed by the ms (the
  authorizer's answer is cached for ReauthorizeEvery, 300 s, as API Gateway does: one shop key
  calls it once, in the warm-up round);
- DynamoDB read and write request units, computed from item sizes (local/metering.py);
- SES messages (one per recipient).

Durations are this machine's, in process (no arm64, no network): the GB-second line is the
least portable figure; counts and units are what AWS would count.

Run: PYTHONPATH=layers/cancelflow:. .venv/bin/python bench/cost.py [--n 50]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from local.metering import Meter, Usage, state_transitions

REFERENCE = Path(__file__).resolve().parent / "reference" / "cancel_refund_v1.asl.json"
MACHINE = "CancelRefundStateMachine"
API_FUNCTIONS = ("ApiFunction", "AuthorizerFunction")

# --- ap-northeast-2 (Seoul) list prices, USD, looked up 2026-12-03 (free tiers left out:
# the figures are the marginal cost of a cancel). Sources:
# - Step Functions Standard: aws.amazon.com/step-functions/pricing, "State transitions pricing
#   table": Asia Pacific (Seoul) $0.0271 per 1,000 state transitions (us-east-1: $0.025).
SFN_PER_TRANSITION = 0.0271 / 1_000
# - Lambda arm64: aws.amazon.com/lambda/pricing, Arm price, first tier (0-7.5 billion GB-s a
#   month) $0.0000133334 per GB-second, requests $0.20 per million; Seoul is not among the
#   regions priced above the base rate (those are af-south-1, ap-east-1, eu-south-1,
#   me-south-1, me-central-1 in the Price List's Lambda offers).
LAMBDA_PER_REQUEST = 0.20 / 1_000_000
LAMBDA_ARM_PER_GB_SECOND = 0.0000133334
# - DynamoDB on-demand, Standard table class: AWS Price List API, AmazonDynamoDB,
#   regionCode ap-northeast-2, usage types APN2-ReadRequestUnits $0.0000001355 and
#   APN2-WriteRequestUnits $0.00000068 per unit (after the November 2024 on-demand price cut).
DYNAMODB_PER_READ_UNIT = 0.1355 / 1_000_000
DYNAMODB_PER_WRITE_UNIT = 0.68 / 1_000_000
# - SES outbound email, no pricing plan (per-feature billing): aws.amazon.com/ses/pricing,
#   $0.10 per 1,000 messages, each recipient a message.
SES_PER_MESSAGE = 0.10 / 1_000


@dataclass(frozen=True)
class Figures:
    """Mean billable quantities of one cancel."""

    transitions: float
    lambda_requests: float
    gb_seconds: float
    read_units: float
    write_units: float
    ses_messages: float


def cost_per_1000(f: Figures) -> dict[str, float]:
    """USD for 1,000 cancels, by line of the bill."""
    return {
        "Step Functions transitions": 1000 * f.transitions * SFN_PER_TRANSITION,
        "Lambda requests": 1000 * f.lambda_requests * LAMBDA_PER_REQUEST,
        "Lambda duration (arm64)": 1000 * f.gb_seconds * LAMBDA_ARM_PER_GB_SECOND,
        "DynamoDB reads": 1000 * f.read_units * DYNAMODB_PER_READ_UNIT,
        "DynamoDB writes": 1000 * f.write_units * DYNAMODB_PER_WRITE_UNIT,
        "SES messages": 1000 * f.ses_messages * SES_PER_MESSAGE,
    }


# --- the run --------------------------------------------------------------------------------


@dataclass
class Run:
    """The cancels one state machine ran, and what they used."""

    label: str
    arn: str
    executions: list[str] = field(default_factory=list)
    transitions: list[int] = field(default_factory=list)  # per execution, billed
    entered: list[list[str]] = field(default_factory=list)  # state names, per execution
    scheduled: int = 0  # Lambda invocations the executions scheduled (their histories say)
    usage: Usage = field(default_factory=Usage)

    def figures(self) -> Figures:
        n = len(self.executions)
        u = self.usage
        return Figures(
            transitions=sum(self.transitions) / n,
            lambda_requests=u.total("lambda_requests") / n,
            gb_seconds=u.total("gb_seconds") / n,
            read_units=u.total("read_units") / n,
            write_units=u.total("write_units") / n,
            ses_messages=u.ses_messages / n,
        )


def _call(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json"} | (headers or {}),
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _paid(env: dict[str, str]) -> str:
    """A card payment approved at the sandbox and registered with the shop's API."""
    paid = _call(
        "POST",
        f"{env['SANDBOX_URL']}/_sandbox/payments",
        {"amount": 15000, "product_name": "bench", "buyer_email": "b@example.com"},
    )
    fields = ("tno", "order_id", "amount", "method", "product_name", "buyer_email", "approved_at")
    auth = {"Authorization": f"Bearer {env['SHOP_API_KEY']}"}
    _call("POST", f"{env['API_URL']}/v1/payments", {k: paid[k] for k in fields}, auth)
    return str(paid["tno"])


def reference_machine(stack: Any) -> str:
    """The previous machine on this stack, with the template's Lambda ARNs (created once)."""
    template = stack.template
    props = template.resources[MACHINE]["Properties"]
    text = REFERENCE.read_text()
    for name, value in template.resolve(props.get("DefinitionSubstitutions", {})).items():
        text = text.replace("${" + name + "}", str(value))
    for logical_id in template.of_type("AWS::Serverless::Function"):  # a name since dropped
        text = text.replace("${" + logical_id + "Arn}", template.arn(logical_id))
    name = template.physical_name(MACHINE) + "-v1-reference"
    sfn = stack.client("stepfunctions")
    try:
        answer = sfn.create_state_machine(
            name=name,
            definition=text,
            roleArn=f"arn:aws:iam::123456789012:role/{name}",
            type=props.get("Type", "STANDARD"),
        )
        return str(answer["stateMachineArn"])
    except sfn.exceptions.StateMachineAlreadyExists:
        return str(template.arn(MACHINE)) + "-v1-reference"


@contextmanager
def _rerouted(route: dict[str, str]) -> Iterator[None]:
    """Executions the API starts on a machine named in `route` start on its value instead."""
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = StepFunctionsParserBackend.start_execution

    def start_execution(backend: Any, state_machine_arn: str, *args: Any, **kw: Any) -> Any:
        return original(backend, route.get(state_machine_arn, state_machine_arn), *args, **kw)

    StepFunctionsParserBackend.start_execution = start_execution  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        StepFunctionsParserBackend.start_execution = original  # type: ignore[method-assign]


def _history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    token = None
    while True:
        page = sfn.get_execution_history(
            executionArn=arn, **({"nextToken": token} if token else {})
        )
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def _schedules_lambda(event: dict[str, Any]) -> bool:
    """A Lambda task's invocation: a Resource ARN, or the lambda:invoke integration."""
    if event["type"] == "LambdaFunctionScheduled":
        return True
    details = event.get("taskScheduledEventDetails", {})
    return bool(event["type"] == "TaskScheduled" and details.get("resourceType") == "lambda")


def measure(stack: Any, n: int) -> list[Run]:
    """n happy-path full cancels on each machine, alternating: [reference, current]."""
    current = stack.template.arn(MACHINE)
    runs = [Run("reference (v1)", reference_machine(stack)), Run("current", current)]
    env = stack.env
    auth = {"Authorization": f"Bearer {env['SHOP_API_KEY']}"}
    sfn = stack.client("stepfunctions")
    tnos = [_paid(env) for _ in range((n + 1) * len(runs))]
    meter = Meter.for_template(stack.template)
    route: dict[str, str] = {}
    with meter.installed(stack), _rerouted(route):
        for i in range(n + 1):  # the first round warms the handlers, and is not counted
            for run in runs:
                meter.take()
                route.clear()
                if run.arn != current:
                    route[current] = run.arn
                accepted = _call(
                    "POST",
                    f"{env['API_URL']}/v1/payments/{tnos.pop()}/cancellations",
                    {"reason_code": "CHANGE_OF_MIND"},
                    auth | {"Idempotency-Key": str(uuid.uuid4())},
                )
                # The API names the execution by the cancellation id (and records the current
                # machine's ARN for it, whichever machine it was started on).
                prefix = run.arn.replace(":stateMachine:", ":execution:")
                arn = f"{prefix}:{accepted['cancellation_id']}"
                ended = stack.wait_for_execution(arn, timeout=60)
                usage = meter.take()
                view = _call(
                    "GET", f"{env['API_URL']}/v1/cancellations/{accepted['cancellation_id']}",
                    headers=auth,
                )  # fmt: skip
                if ended["status"] != "SUCCEEDED" or view["status"] != "SUCCEEDED":
                    raise RuntimeError(f"not a happy path: {ended['status']}, {view['status']}")
                if i == 0:
                    continue
                events = _history(sfn, arn)
                run.executions.append(arn)
                run.transitions.append(state_transitions(events))
                run.entered.append(
                    [
                        e["stateEnteredEventDetails"]["name"]
                        for e in events
                        if e["type"].endswith("StateEntered")
                    ]
                )
                run.scheduled += sum(1 for e in events if _schedules_lambda(e))
                run.usage = run.usage + usage
        meter.take()
    return runs


# --- the table ------------------------------------------------------------------------------


def _ratio(new: float, old: float) -> str:
    return f"{new / old:6.2f}" if old else "     -"


def table(runs: list[Run]) -> str:
    old, new = runs
    fo, fn = old.figures(), new.figures()
    co, cn = cost_per_1000(fo), cost_per_1000(fn)
    n = len(new.executions)
    iw = [r.usage.total("index_write_units") / len(r.executions) for r in runs]
    lines = [
        f"happy-path full cancels of card payments, {n} on each machine, alternating",
        f"  {'per cancel':38s} {old.label:>15s} {new.label:>15s} {'new/old':>8s}",
    ]
    rows = [
        ("state transitions", fo.transitions, fn.transitions, "{:15.2f}"),
        ("Lambda requests (API + workflow)", fo.lambda_requests, fn.lambda_requests, "{:15.2f}"),
        ("Lambda GB-seconds", fo.gb_seconds, fn.gb_seconds, "{:15.5f}"),
        ("DynamoDB read request units", fo.read_units, fn.read_units, "{:15.2f}"),
        ("DynamoDB write request units", fo.write_units, fn.write_units, "{:15.2f}"),
        ("  of which to global secondary indexes", iw[0], iw[1], "{:15.2f}"),
        ("SES messages", fo.ses_messages, fn.ses_messages, "{:15.2f}"),
    ]
    for label, a, b, form in rows:
        lines.append(f"  {label:38s} {form.format(a)} {form.format(b)}   {_ratio(b, a)}")
    lines.append(f"  {'USD per 1,000 cancels, ap-northeast-2':38s}")
    for label in co:
        lines.append(
            f"  {label:38s} {co[label]:15.4f} {cn[label]:15.4f}   {_ratio(cn[label], co[label])}"
        )
    total_old, total_new = sum(co.values()), sum(cn.values())
    lines.append(
        f"  {'total':38s} {total_old:15.4f} {total_new:15.4f}   {_ratio(total_new, total_old)}"
    )
    for run in runs:
        lines.append(f"{run.label}: {' > '.join(run.entered[-1])}")
        if run.usage.unmetered:
            lines.append(f"  ({run.usage.unmetered} DynamoDB calls could not be sized)")
        u, k = run.usage, len(run.executions)
        for fn_name in sorted(u.lambda_requests):
            calls = u.lambda_requests[fn_name]
            lines.append(
                f"  {fn_name:28s} {calls / k:5.2f} requests, "
                f"{u.lambda_billed_ms[fn_name] / calls:7.1f} ms billed each"
            )
        for caller in sorted(u.read_units):
            ops = ", ".join(
                f"{op.rsplit(' ', 1)[1]} {c / k:g}"
                for op, c in sorted(u.dynamodb_calls.items())
                if op.rsplit(" ", 1)[0] == caller
            )
            lines.append(
                f"  {caller:28s} {u.read_units[caller] / k:5.2f} RRU, "
                f"{u.write_units[caller] / k:5.2f} WRU ({ops})"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=50, help="cancels on each machine")
    args = parser.parse_args()

    from local.stack import LocalStack

    stack = LocalStack(state_dir=Path(tempfile.mkdtemp(prefix="cancelflow-bench-")), quiet=True)
    stack.start()
    try:
        print(table(measure(stack, args.n)))
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
