"""`make trace ID=<cancellation id | subscription id | billing run execution name>`: the whole
story of one cancel, subscription or billing run, in order:

1. the record, as the operator API shows it (`GET /v1/cancellations/{id}`, or
   `GET /v1/shops/{shop}/subscriptions/{id}` with its charges; a billing run has no record: its
   execution's summary is shown instead);
2. its executions: every state entered, how long it took, its input and output, the retries,
   and the path taken (a redrive shows where it went on);
3. the KCP calls it made, with KCP's codes: the KCP client's `kcp call` log lines (on the local
   stack also the sandbox's journal: what KCP received);
4. the emails sent about it: the SES adapter's `email sent` log lines (on the local stack also
   the mail folder's copies);
5. every log line carrying its correlation id (the execution ARN; the subscription id too), read
   from CloudWatch Logs.

One code path for both stacks: the local stack ships the functions' lines to its CloudWatch Logs
as Lambda does, and serves the same operator API (SigV4). `make trace ID=… STACK=<name>` reads a
deployed stack with the caller's AWS credentials (the operator API URL and the log groups from
its CloudFormation stack); a subscription there needs `SHOP=<shop id>` (ids are per shop).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Generator, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.credentials import Credentials

from local.bill import stack_env
from local.shop import signed
from local.template import REGION

WIDTH = 400  # a state's input or output beyond this is cut (the full text: get-execution-history)
LOCAL_STACK = "cancelflow"  # the local stack's name: its machines are cancelflow-cancel-refund, …


def _get(url: str) -> tuple[int, Any]:
    request = urllib.request.Request(url)  # noqa: S310 (the local stack's sandbox)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None


def _short(text: str | None, width: int = WIDTH) -> str:
    if text is None:
        return "-"
    return text if len(text) <= width else text[:width] + f"… ({len(text)} chars)"


def _seconds(start: datetime, end: datetime) -> str:
    return f"{(end - start).total_seconds():.3f}s"


def deployed_env(stack: str, region: str | None, shop: str | None) -> dict[str, str]:
    """What the trace needs of a deployed stack, read from its CloudFormation outputs."""
    session = boto3.session.Session(region_name=region)
    cloudformation = session.client("cloudformation")
    (described,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    groups = [
        r["PhysicalResourceId"]
        for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack)
        for r in page["StackResourceSummaries"]
        if r["ResourceType"] == "AWS::Logs::LogGroup" and r.get("PhysicalResourceId")
    ]
    return {
        "STACK_NAME": stack,
        "AWS_REGION": session.region_name or REGION,
        "OPERATOR_API_URL": outputs["OperatorApiUrl"],
        "LOG_GROUPS": ",".join(sorted(groups)),
        "SHOP_IDS": shop or "",
    }


class Trace:
    """Everything a stack knows about one id, gathered from where an operator looks."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.stack = env.get("STACK_NAME", LOCAL_STACK)
        self.shops = [s for s in env.get("SHOP_IDS", "").split(",") if s]
        endpoint = env.get("AWS_ENDPOINT_URL")  # the local stack's; none: AWS itself
        if endpoint:
            session = boto3.session.Session(
                aws_access_key_id=env.get("AWS_ACCESS_KEY_ID", "local"),
                aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY", "local"),
                region_name=env.get("AWS_REGION", REGION),
            )
            self.credentials: Credentials | None = None  # the stack's operator keys
        else:
            session = boto3.session.Session(region_name=env.get("AWS_REGION"))
            found = session.get_credentials()
            if found is None:
                sys.exit("no AWS credentials: configure the AWS CLI (aws configure, or a profile)")
            frozen = found.get_frozen_credentials()
            self.credentials = Credentials(frozen.access_key, frozen.secret_key, frozen.token)
        self.sfn = session.client("stepfunctions", endpoint_url=endpoint)
        self.logs = session.client("logs", endpoint_url=endpoint)
        self._lines: dict[tuple[str, ...], list[dict[str, Any]]] = {}

    # --- what the id names ---------------------------------------------------------------

    def _operator(self, path: str) -> Any:
        status, body = signed(self.env, "GET", path, credentials=self.credentials)
        return body if status == 200 else None

    def _machine(self, suffix: str) -> str:
        name = f"{self.stack}{suffix}"
        paginator = self.sfn.get_paginator("list_state_machines")
        for page in paginator.paginate():
            for machine in page["stateMachines"]:
                if machine["name"] == name:
                    return str(machine["stateMachineArn"])
        raise LookupError(f"no state machine {name}")

    def _executions(self, machine_arn: str) -> Iterator[dict[str, Any]]:
        paginator = self.sfn.get_paginator("list_executions")
        for page in paginator.paginate(stateMachineArn=machine_arn):
            yield from page["executions"]

    def _history(self, execution_arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        paginator = self.sfn.get_paginator("get_execution_history")
        for page in paginator.paginate(executionArn=execution_arn):
            events += page["events"]
        return events

    def lines(self, ident: str) -> Iterator[str]:
        """The trace of `ident`, line by line."""
        if ident.startswith("cnl_"):
            cancellation = self._operator(f"/v1/cancellations/{ident}")
            if cancellation is not None:
                yield from self._cancellation(ident, cancellation)
                return
        if ident.startswith("sub_"):
            for shop in self.shops:
                subscription = self._operator(f"/v1/shops/{shop}/subscriptions/{ident}")
                if subscription is not None:
                    yield from self._subscription(ident, subscription)
                    return
            if not self.shops:
                yield f"{ident} is a subscription id: name its shop (SHOP=<shop id>)"
                return
        if ident.startswith("cbt_"):
            for shop in self.shops:
                batch = self._operator(f"/v1/shops/{shop}/cancellation-batches/{ident}")
                if batch is not None:
                    yield from self._batch(ident, batch)
                    return
            if not self.shops:
                yield f"{ident} is a cancellation batch id: name its shop (SHOP=<shop id>)"
                return
        billing = self._machine("-subscription-billing")
        run = next(
            (e for e in self._executions(billing) if ident in (e["name"], e["executionArn"])),
            None,
        )
        if run is not None:
            yield from self._billing_run(run["executionArn"])
            return
        yield (
            f"nothing here is named {ident}: "
            "not a cancellation, subscription, cancellation batch or billing run"
        )

    # --- the three kinds -----------------------------------------------------------------

    def _cancellation(self, ident: str, record: dict[str, Any]) -> Iterator[str]:
        yield from _section(f"cancellation {ident} (operator API: GET /v1/cancellations/{ident})")
        yield from json.dumps(record, ensure_ascii=False, indent=2).splitlines()
        arn = record.get("execution_id") or ""
        window = (yield from self._execution(arn)) if arn else None
        needles = [arn, ident] if arn else [ident]
        calls = [c for c in self._kcp_calls() if c["tno"] == record.get("tno")]
        if window:  # the payment's other cancels called KCP for the same tno at other times
            start, stop = window
            calls = [c for c in calls if start <= datetime.fromisoformat(c["time"]) <= stop]
        yield from self._calls(needles, calls, f"tno {record.get('tno')}, during the execution")
        yield from self._mails(needles, [ident])
        yield from self._log_lines(needles)

    def _subscription(self, ident: str, record: dict[str, Any]) -> Iterator[str]:
        path = f"/v1/shops/{record['shop_id']}/subscriptions/{ident}"
        yield from _section(f"subscription {ident} (operator API: GET {path})")
        charges = record.pop("charges", [])
        yield from json.dumps(record, ensure_ascii=False, indent=2).splitlines()
        yield from _section(f"charges ({len(charges)}, oldest period first)")
        yield from json.dumps(charges, ensure_ascii=False, indent=2).splitlines()
        runs = []
        for run in self._executions(self._machine("-subscription-billing")):
            if ident in json.dumps(self._history(run["executionArn"]), default=str):
                runs.append(run["executionArn"])
        for arn in sorted(runs):
            yield from self._execution(arn)
        if not runs:
            yield from _section("executions")
            yield "  no billing run has charged it yet"
        calls = [c for c in self._kcp_calls() if c["ordr_idxx"].startswith(f"{ident}-")]
        needles = [ident, *runs]
        yield from self._calls(needles, calls, f"ordr_idxx {ident}-…")
        yield from self._mails(needles, [ident])
        yield from self._log_lines(needles)

    def _batch(self, ident: str, record: dict[str, Any]) -> Iterator[str]:
        path = f"/v1/shops/{record['shop_id']}/cancellation-batches/{ident}"
        yield from _section(f"cancellation batch {ident} (operator API: GET {path})")
        yield from json.dumps(record, ensure_ascii=False, indent=2).splitlines()
        arn = record.get("execution_id") or ""
        if not arn:
            yield from _section("executions")
            yield "  not begun yet (QUEUED behind another batch of the shop, or just accepted)"
            return
        start, stop = yield from self._execution(arn)
        calls = [
            c
            for c in self._kcp_calls()
            if c.get("path") == "cancel" and start <= datetime.fromisoformat(c["time"]) <= stop
        ]
        yield from self._calls([arn, ident], calls, "cancels, during the batch's execution")
        yield from self._log_lines([arn, ident])

    def _billing_run(self, arn: str) -> Iterator[str]:
        described = self.sfn.describe_execution(executionArn=arn)
        yield from _section(f"billing run {described['name']} (its summary: the execution output)")
        yield described.get("output") or f"  no summary: the run is {described['status']}"
        events = self._history(arn)
        yield from self._execution(arn, events)
        orders = sorted(_orders(events))
        calls = [c for c in self._kcp_calls() if c["ordr_idxx"] in orders]
        yield from self._calls([arn], calls, "the run's ordr_idxx")
        subscriptions = sorted({o.rsplit("-", 3)[0] for o in orders})
        which = f"subscriptions {', '.join(subscriptions) or '-'}"
        yield from self._mails([arn], subscriptions, which)
        yield from self._log_lines([arn])

    # --- the parts -----------------------------------------------------------------------

    def _execution(
        self, arn: str, events: list[dict[str, Any]] | None = None
    ) -> Generator[str, None, tuple[datetime, datetime]]:
        """The execution's story; returns when it started and stopped (the KCP calls' window)."""
        described = self.sfn.describe_execution(executionArn=arn)
        events = self._history(arn) if events is None else events
        yield from _section(f"execution {arn}")
        stop = described.get("stopDate")
        yield (
            f"  status {described['status']}, started {described['startDate'].isoformat()}"
            + (f", stopped {stop.isoformat()}" if stop else "")
            + f", redriven {described.get('redriveCount', 0)} time(s)"
        )
        if described.get("error"):
            yield f"  error {_cause(described)}"
        yield from _steps(events)
        yield "  path taken: " + " → ".join(_path(events))
        yield from self._map_runs(arn)
        return described["startDate"], stop or datetime.now(UTC)

    def _map_runs(self, arn: str) -> Iterator[str]:
        """A Distributed Map's iterations are child executions: their counts, per map run."""
        for run in self.sfn.list_map_runs(executionArn=arn).get("mapRuns", []):
            described = self.sfn.describe_map_run(mapRunArn=run["mapRunArn"])
            counts = described.get("executionCounts", {})
            kinds = ("succeeded", "failed", "timedOut", "aborted", "running")
            shown = ", ".join(f"{k} {counts.get(k, 0)}" for k in kinds)
            name = run["mapRunArn"].rsplit(":", 1)[-1]
            total = counts.get("total", 0)
            yield f"  map run {name}: {described['status']}, {total} iteration(s): {shown}"

    def _kcp_calls(self) -> list[dict[str, Any]]:
        """What KCP received: the local sandbox's journal (a deployed stack has none)."""
        if not self.env.get("SANDBOX_URL"):
            return []
        status, calls = _get(f"{self.env['SANDBOX_URL']}/_sandbox/calls")
        return list(calls or []) if status == 200 else []

    def _calls(
        self, needles: list[str], received: list[dict[str, Any]], which: str
    ) -> Iterator[str]:
        yield from _section("KCP calls (the KCP client's `kcp call` log lines, with KCP's codes)")
        made = [line for line in self._found(needles) if line["message"] == "kcp call"]
        for line in made:
            code = line.get("res_cd") or "-"
            yield (
                f"  {line['timestamp']}  {line.get('kcp_path', '?'):<28} "
                f"{line.get('kcp_ref') or '-':<24} {line.get('outcome', '?'):<10} res_cd {code}"
                f" ({line.get('elapsed_ms', '?')} ms)"
                + (f" {line['detail']}" if line.get("detail") else "")
            )
        if not made:
            yield "  none logged"
        if not self.env.get("SANDBOX_URL"):
            return
        yield f"  what KCP received ({which}; the sandbox's journal):"
        if not received:
            yield "    none"
        for c in received:
            subject = c["tno"] or c["ordr_idxx"]
            kind = f"{c['path']} {c.get('mod_type') or ''}".strip()
            yield f"    {c['time']}  {kind:<13} {subject:<24} answer {c.get('answer') or '-'}"

    def _mails(
        self, needles: list[str], about: Iterable[str], which: str | None = None
    ) -> Iterator[str]:
        about = [n for n in about if n]
        yield from _section(f"emails ({which or ', '.join(about)}; the `email sent` log lines)")
        sent = [line for line in self._found(needles) if line["message"] == "email sent"]
        for line in sent:
            yield (
                f"  {line['timestamp']}  to {line.get('to', '?')}: {line.get('subject', '')}"
                f" (SES {line.get('message_id') or '-'})"
            )
        if not sent:
            yield "  none logged"
        folder = Path(self.env.get("MAIL_DIR") or ".local/mail")
        if not self.env.get("AWS_ENDPOINT_URL") or not folder.exists():
            return
        yield f"  their copies ({folder}):"
        found = 0
        for path in sorted(folder.glob("*.txt")):
            text = path.read_text(encoding="utf-8")
            if any(n in text for n in about):
                found += 1
                yield f"  --- {path.name}"
                yield from ("  " + line for line in text.splitlines())
        if not found:
            yield "  none"

    def _groups(self) -> list[str]:
        """The stack's log groups: a deployed stack's from CloudFormation, else every
        function's (the local stack ships them under /aws/lambda/ as Lambda does)."""
        if self.env.get("LOG_GROUPS"):
            return self.env["LOG_GROUPS"].split(",")
        paginator = self.logs.get_paginator("describe_log_groups")
        return [
            g["logGroupName"]
            for page in paginator.paginate(logGroupNamePrefix="/aws/lambda/")
            for g in page["logGroups"]
        ]

    def _found(self, needles: list[str]) -> list[dict[str, Any]]:
        """Every log line carrying one of `needles`, oldest first, read once per trace: JSON
        lines parsed (Powertools'), with their group and time."""
        key = tuple(needles)
        if key in self._lines:
            return self._lines[key]
        found: dict[tuple[int, str, str], None] = {}
        for group in self._groups():
            for needle in needles:
                pages = self.logs.get_paginator("filter_log_events").paginate(
                    logGroupName=group, filterPattern=f'"{needle}"'
                )
                for page in pages:
                    for event in page["events"]:
                        if needle in event["message"]:
                            found[(event["timestamp"], group, event["message"])] = None
        lines = []
        for at, group, text in sorted(found):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            line = parsed if isinstance(parsed, dict) else {}
            line = line | {
                "group": group,
                "raw": text,
                "message": str(line.get("message", "")),
                "timestamp": datetime.fromtimestamp(at / 1000, UTC).isoformat(
                    timespec="milliseconds"
                ),
            }
            lines.append(line)
        self._lines[key] = lines
        return lines

    def _log_lines(self, needles: list[str]) -> Iterator[str]:
        carrying = " or ".join(needles)
        yield from _section(f"log lines (CloudWatch Logs, carrying {carrying})")
        found = self._found(needles)
        for line in found:
            yield f"  {line['group'].removeprefix('/aws/lambda/')}: {line['raw']}"
        if not found:
            yield "  none (tests and benches log warnings only; `make run` logs every step)"


def _section(title: str) -> Iterator[str]:
    yield ""
    yield f"== {title}"


def _detail(event: dict[str, Any]) -> dict[str, Any]:
    return next((v for k, v in event.items() if k.endswith("EventDetails")), {})


def _steps(events: list[dict[str, Any]]) -> Iterator[str]:
    """One block per state entered: when, how long, input, output, attempts and failures."""
    if not events:
        return
    start = events[0]["timestamp"]
    open_states: dict[str, dict[str, Any]] = {}
    for event in events:
        kind, detail = event["type"], _detail(event)
        at = f"  +{_seconds(start, event['timestamp']):>9}"
        if kind.endswith("StateEntered"):
            open_states[detail["name"]] = {
                "at": event["timestamp"],
                "attempts": 0,
                "input": detail.get("input"),
            }
            yield f"{at}  → {detail['name']} ({kind.removesuffix('StateEntered')})"
            yield f"               input:  {_short(detail.get('input'))}"
        elif kind.endswith("StateExited"):
            entered = open_states.pop(detail["name"], None)
            took = _seconds(entered["at"], event["timestamp"]) if entered else "?"
            attempts = entered["attempts"] if entered else 0
            retried = (
                f", {attempts - 1} retr{'y' if attempts == 2 else 'ies'}" if attempts > 1 else ""
            )
            yield f"               output: {_output(entered, detail.get('output'))}"
            yield f"               took {took}{retried}"
        elif kind in ("LambdaFunctionScheduled", "TaskScheduled"):
            for state in open_states.values():
                state["attempts"] += 1  # the innermost open state is the one calling
        elif kind.endswith(("Failed", "TimedOut")) and not kind.startswith("Execution"):
            yield f"{at}  ✗ {kind}: {_cause(detail)}"
        elif kind.startswith("Execution"):
            extra = ""
            if kind == "ExecutionFailed":
                extra = f": {_cause(detail)}"
            elif kind == "ExecutionRedriven":
                extra = f" (redrive {detail.get('redriveCount')}): goes on where it failed"
            yield f"{at}  {kind}{extra}"


def _output(entered: dict[str, Any] | None, output: str | None) -> str:
    """A state's output; where it is its input with a few fields changed, just those."""
    try:
        before = json.loads((entered or {}).get("input") or "null")
        after = json.loads(output or "null")
    except ValueError:
        return _short(output)
    if not isinstance(before, dict) or not isinstance(after, dict) or before == after:
        return "its input, unchanged" if before == after else _short(output)
    changed = {k: v for k, v in after.items() if before.get(k) != v}
    dropped = [k for k in before if k not in after]
    if len(changed) + len(dropped) >= len(after):
        return _short(output)
    text = "its input with " + json.dumps(changed, ensure_ascii=False, separators=(",", ":"))
    return _short(text + (f", without {', '.join(dropped)}" if dropped else ""))


def _cause(detail: dict[str, Any]) -> str:
    """An error as a person reads it: a Lambda's message without its stack trace."""
    cause = detail.get("cause") or ""
    try:
        document = json.loads(cause)
    except ValueError:
        document = None
    if isinstance(document, dict) and "errorMessage" in document:
        cause = f"{document['errorMessage']} (stack trace: get-execution-history)"
    return f"{detail.get('error', '')}: {_short(cause, 200)}"


def _path(events: list[dict[str, Any]]) -> list[str]:
    path = []
    for event in events:
        if event["type"] == "ExecutionRedriven":
            path.append("⟲ redrive")
        elif event["type"].endswith("StateEntered"):
            path.append(_detail(event)["name"])
    return path


def _orders(events: list[dict[str, Any]]) -> set[str]:
    """The ordr_idxx of every charge a billing run made: its Map's lines (`ordr_idxx result …`)."""
    orders = set()
    for event in events:
        if event["type"] != "MapStateExited":
            continue
        output = json.loads(_detail(event).get("output") or "{}")
        for lane in output.get("results", []):
            for line in lane.get("charges", []):
                orders.add(str(line).split(" ", 1)[0])
    return orders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("id", help="a cancellation id, subscription id or billing run name")
    parser.add_argument("--stack", help="a deployed stack's name (default: the local stack)")
    parser.add_argument("--region", help="the deployed stack's region (default: the CLI's)")
    parser.add_argument("--shop", help="the shop of a subscription on a deployed stack")
    args = parser.parse_args()
    if not args.id:
        sys.exit("usage: make trace ID=<cancellation id | subscription id | billing run name>")
    if args.stack:
        env = deployed_env(args.stack, args.region, args.shop)
    else:
        env = stack_env() | {k: v for k, v in os.environ.items() if k == "MAIL_DIR"}
        if args.shop:
            env["SHOP_IDS"] = args.shop
    for line in Trace(env).lines(args.id):
        print(line)


if __name__ == "__main__":
    main()
