"""`make trace ID=<cancellation id | subscription id | billing run execution name>`: the whole
story of one cancel, subscription or billing run on the `make run` stack, in order:

1. the record, as the shop API shows it (tried with each demo shop's key; a billing run has no
   record in the API: its execution's summary is shown instead);
2. its executions: every state entered, how long it took, its input and output, the retries,
   and the path taken (a redrive shows where it went on);
3. the KCP calls it made (the sandbox's journal, by tno or ordr_idxx) with KCP's answer;
4. the emails sent about it (the mail folder);
5. the log lines carrying its correlation id (the execution ARN; the subscription id too), read
   from CloudWatch Logs, where the local stack ships the functions' lines as Lambda does.
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

from local.bill import stack_env
from local.template import REGION

WIDTH = 400  # a state's input or output beyond this is cut (the full text: get-execution-history)


def _get(url: str, key: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (the local stack)
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


class Trace:
    """Everything the local stack knows about one id, gathered from where an operator looks."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.keys = [env[k] for k in ("SHOP_API_KEY", "SHOP_B_API_KEY") if env.get(k)]
        session = boto3.session.Session(
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID", "local"),
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY", "local"),
            region_name=env.get("AWS_REGION", REGION),
        )
        endpoint = env["AWS_ENDPOINT_URL"]
        self.sfn = session.client("stepfunctions", endpoint_url=endpoint)
        self.logs = session.client("logs", endpoint_url=endpoint)

    # --- what the id names ---------------------------------------------------------------

    def _api(self, path: str) -> Any:
        for key in self.keys:
            status, body = _get(f"{self.env['API_URL']}{path}", key)
            if status == 200:
                return body
        return None

    def _machine(self, suffix: str) -> str:
        machines = self.sfn.list_state_machines()["stateMachines"]
        arn: str = next(m["stateMachineArn"] for m in machines if m["name"].endswith(suffix))
        return arn

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
        cancellation = self._api(f"/v1/cancellations/{ident}")
        if cancellation is not None:
            yield from self._cancellation(ident, cancellation)
            return
        subscription = self._api(f"/v1/subscriptions/{ident}")
        if subscription is not None:
            yield from self._subscription(ident, subscription)
            return
        billing = self._machine("-subscription-billing")
        run = next(
            (e for e in self._executions(billing) if ident in (e["name"], e["executionArn"])),
            None,
        )
        if run is not None:
            yield from self._billing_run(run["executionArn"])
            return
        yield f"nothing here is named {ident}: not a cancellation, subscription or billing run"

    # --- the three kinds -----------------------------------------------------------------

    def _cancellation(self, ident: str, record: dict[str, Any]) -> Iterator[str]:
        yield from _section(f"cancellation {ident} (GET /v1/cancellations/{ident})")
        yield from json.dumps(record, ensure_ascii=False, indent=2).splitlines()
        arn = record.get("execution_id") or ""
        window = (yield from self._execution(arn)) if arn else None
        calls = [c for c in self._kcp_calls() if c["tno"] == record.get("tno")]
        if window:  # the payment's other cancels called KCP for the same tno at other times
            start, stop = window
            calls = [c for c in calls if start <= datetime.fromisoformat(c["time"]) <= stop]
        yield from self._calls(calls, f"tno {record.get('tno')}, during the execution")
        yield from self._mails([ident])
        yield from self._log_lines([arn, ident] if arn else [ident])

    def _subscription(self, ident: str, record: dict[str, Any]) -> Iterator[str]:
        yield from _section(f"subscription {ident} (GET /v1/subscriptions/{ident})")
        yield from json.dumps(record, ensure_ascii=False, indent=2).splitlines()
        charges = self._api(f"/v1/subscriptions/{ident}/charges") or {}
        yield from _section(f"charges (GET /v1/subscriptions/{ident}/charges)")
        yield from json.dumps(charges.get("items", []), ensure_ascii=False, indent=2).splitlines()
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
        yield from self._calls(calls, f"ordr_idxx {ident}-…")
        yield from self._mails([ident])
        yield from self._log_lines([ident, *runs])

    def _billing_run(self, arn: str) -> Iterator[str]:
        described = self.sfn.describe_execution(executionArn=arn)
        yield from _section(f"billing run {described['name']} (its summary: the execution output)")
        yield described.get("output") or f"  no summary: the run is {described['status']}"
        events = self._history(arn)
        yield from self._execution(arn, events)
        orders = sorted(_orders(events))
        calls = [c for c in self._kcp_calls() if c["ordr_idxx"] in orders]
        yield from self._calls(calls, "the run's ordr_idxx")
        subscriptions = sorted({o.rsplit("-", 3)[0] for o in orders})
        yield from self._mails(subscriptions, f"subscriptions {', '.join(subscriptions) or '-'}")
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
        status, calls = _get(f"{self.env['SANDBOX_URL']}/_sandbox/calls")
        return list(calls or []) if status == 200 else []

    def _calls(self, calls: list[dict[str, Any]], which: str) -> Iterator[str]:
        yield from _section(f"KCP calls ({which}; the sandbox's journal)")
        if not calls:
            yield "  none"
        for c in calls:
            subject = c["tno"] or c["ordr_idxx"]
            kind = f"{c['path']} {c.get('mod_type') or ''}".strip()
            yield f"  {c['time']}  {kind:<13} {subject:<24} answer {c.get('answer') or '-'}"

    def _mails(self, needles: Iterable[str], which: str | None = None) -> Iterator[str]:
        needles = [n for n in needles if n]
        folder = Path(self.env.get("MAIL_DIR") or ".local/mail")
        yield from _section(f"emails ({which or ', '.join(needles)}; {folder})")
        found = 0
        for path in sorted(folder.glob("*.txt")) if folder.exists() else []:
            text = path.read_text(encoding="utf-8")
            if any(n in text for n in needles):
                found += 1
                yield f"  --- {path.name}"
                yield from ("  " + line for line in text.splitlines())
        if not found:
            yield "  none"

    def _log_lines(self, needles: list[str]) -> Iterator[str]:
        carrying = " or ".join(needles)
        yield from _section(f"log lines (CloudWatch Logs /aws/lambda/*, carrying {carrying})")
        found: list[tuple[int, str, str]] = []
        paginator = self.logs.get_paginator("describe_log_groups")
        groups = [
            g["logGroupName"]
            for page in paginator.paginate(logGroupNamePrefix="/aws/lambda/")
            for g in page["logGroups"]
        ]
        for group in groups:
            for needle in needles:
                pages = self.logs.get_paginator("filter_log_events").paginate(
                    logGroupName=group, filterPattern=f'"{needle}"'
                )
                for page in pages:
                    for event in page["events"]:
                        if needle in event["message"]:
                            found.append((event["timestamp"], group, event["message"]))
        for _, group, message in sorted(set(found)):
            yield f"  {group.removeprefix('/aws/lambda/')}: {message}"
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
    args = parser.parse_args()
    if not args.id:
        sys.exit("usage: make trace ID=<cancellation id | subscription id | billing run name>")
    env = stack_env() | {k: v for k, v in os.environ.items() if k == "MAIL_DIR"}
    for line in Trace(env).lines(args.id):
        print(line)


if __name__ == "__main__":
    main()
