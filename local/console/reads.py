"""What the console shows, read where an operator looks: Step Functions, the ledger, the KCP
sandbox, CloudWatch Logs and the mail folder of the local stack."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from local.console import graph
from local.console.mask import pretty

KST = timezone(timedelta(hours=9))
TERMINAL = {"SUCCEEDED", "REJECTED", "FAILED", "NEEDS_REVIEW"}
ROWS_READ = 2000  # per state machine: a faults bench starts ten thousand cancels
# A state machine's physical name ends with its ASL file's stem (cancelflow-cancel-refund).
MACHINE_FILES = {
    "cancel-refund": "cancel_refund",
    "subscription-billing": "subscription_billing",
    "sweep": "sweep",
    "cancellation-batch": "cancellation_batch",
}


def kst(moment: datetime | None) -> str:
    return moment.astimezone(KST).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _seconds(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()


def _json(text: str | None) -> Any:
    try:
        return json.loads(text or "null")
    except ValueError:
        return None


def _detail(event: dict[str, Any]) -> dict[str, Any]:
    return next((v for k, v in event.items() if k.endswith("EventDetails")), {})


def explained(codes: list[str]) -> list[dict[str, str]]:
    """Reason codes with their plain words in both languages (the one reasons catalogue)."""
    from cancelflow.kernel.reasons import explain

    return [
        {"code": c, "ko": explain(c, "ko")["message"], "en": explain(c, "en")["message"]}
        for c in map(str, codes)
    ]


def _cause(detail: dict[str, Any]) -> str:
    cause = detail.get("cause") or ""
    document = _json(cause)
    if isinstance(document, dict) and "errorMessage" in document:
        cause = document["errorMessage"]
    return f"{detail.get('error', '')}: {cause}"[:300]


@dataclass
class Row:
    """One execution in the list: its status beside the business outcome."""

    arn: str
    name: str
    machine: str  # the short name: cancel-refund, subscription-billing, sweep
    status: str
    started: datetime
    stopped: datetime | None
    outcome: str = ""
    amount: int | None = None
    shop: str = ""
    tno: str = ""
    summary: str = ""
    search: str = ""  # what the search box matches (name, ids, tno)


@dataclass
class Step:
    name: str
    kind: str
    entered: datetime
    offset: float
    exited: datetime | None = None
    input: str = ""
    output: str = ""
    attempts: int = 0
    failures: list[str] = field(default_factory=list)
    inner: bool = False  # an item state inside a Map
    route: str = ""  # the RouteTo… a step raised to choose the next state

    @property
    def duration(self) -> float | None:
        return _seconds(self.entered, self.exited) if self.exited else None

    @property
    def retries(self) -> int:
        return max(self.attempts - 1, 0)


class Reads:
    def __init__(self, env: dict[str, str], clients: Any, store: Any) -> None:
        self.env = env
        self.sfn = clients("stepfunctions")
        self.logs = clients("logs")
        self.store = store
        self.mail_dir = Path(env.get("MAIL_DIR") or ".local/mail")
        # A finished execution's input, output and charges never change: read each once.
        self._finished: dict[str, tuple[dict[str, Any], list[dict[str, str]]]] = {}

    # --- executions ----------------------------------------------------------------------

    def machines(self) -> dict[str, str]:
        """Short name -> state machine ARN."""
        found = {}
        for m in self.sfn.list_state_machines()["stateMachines"]:
            short = next((s for s in MACHINE_FILES if m["name"].endswith(s)), m["name"])
            found[short] = m["stateMachineArn"]
        return found

    def rows(self) -> list[Row]:
        """Every execution of every machine, newest first (the newest ROWS_READ of each)."""
        rows = []
        for short, arn in self.machines().items():
            listed = [
                e
                for page in self.sfn.get_paginator("list_executions").paginate(stateMachineArn=arn)
                for e in page["executions"]
            ]
            listed.sort(key=lambda e: e["startDate"], reverse=True)
            rows += [self._row(short, e) for e in listed[:ROWS_READ]]
        return sorted(rows, key=lambda r: r.started, reverse=True)

    def _described(self, short: str, arn: str) -> tuple[dict[str, Any], list[dict[str, str]]]:
        if arn in self._finished:
            return self._finished[arn]
        described = self.sfn.describe_execution(executionArn=arn)
        ran = charges(self.history(arn)) if short == "subscription-billing" else []
        if described["status"] != "RUNNING":
            self._finished[arn] = (described, ran)
        return described, ran

    def _row(self, short: str, e: dict[str, Any]) -> Row:
        row = Row(
            e["executionArn"], e["name"], short, e["status"], e["startDate"], e.get("stopDate")
        )
        described, ran = self._described(short, e["executionArn"])
        given = _json(described.get("input")) or {}
        output = _json(described.get("output")) or {}
        if short == "cancellation-batch":
            row.shop = given.get("shop_id", "")
        if short == "cancel-refund":
            row.shop, row.tno = given.get("shop_id", ""), given.get("tno", "")
            row.outcome = output.get("status", "") if isinstance(output, dict) else ""
            if isinstance(output, dict) and output.get("reasons"):
                row.summary = ", ".join(map(str, output["reasons"]))
            cancellation = self.cancellation(row.shop, row.name)
            if cancellation is not None:
                row.outcome = row.outcome or str(cancellation.status)
                row.amount = (
                    cancellation.amount
                    if cancellation.amount is not None
                    else cancellation.requested_amount
                )
                if row.outcome in TERMINAL and str(cancellation.status) != row.outcome:
                    row.summary = f"now {cancellation.status}"  # a sweep or an operator changed it
        if short == "subscription-billing":  # found by the subscriptions it charged
            row.tno = " ".join(c["order"] for c in ran)
        if short != "cancel-refund" and isinstance(output, dict) and output:
            counts = [f"{k} {v}" for k, v in output.items() if isinstance(v, int) and v]
            row.summary = ", ".join(counts) or "nothing to do"
        row.search = " ".join([row.name, row.arn, row.tno, described.get("input") or ""]).lower()
        if short == "subscription-billing":
            row.tno = ""  # a run has no one payment
        return row

    def execution(self, arn: str) -> dict[str, Any]:
        """One execution: described, its steps, the graph with the path, the links."""
        described = self.sfn.describe_execution(executionArn=arn)
        events = self.history(arn)
        short = next((s for s in MACHINE_FILES if f":{s}:" in arn or f"-{s}:" in arn), "")
        machine = graph.machine_for(MACHINE_FILES[short]) if short else None
        steps = self.steps(events, machine)
        entered = [s.name for s in steps]
        open_steps = [s for s in steps if s.exited is None]
        waiting = failed = ""
        if open_steps and described["status"] == "RUNNING":
            waiting = open_steps[-1].name
        elif open_steps and described["status"] in ("FAILED", "TIMED_OUT", "ABORTED"):
            failed = open_steps[-1].name
        svg = ""
        if machine is not None:
            source = graph.dot_source(
                machine, entered, graph.path_edges(entered, machine), waiting, failed
            )
            svg = graph.render_svg(source)
        given = _json(described.get("input")) or {}
        result = _json(described.get("output"))
        return {
            "outcome": result.get("status", "") if isinstance(result, dict) else "",
            "reasons": explained(result.get("reasons", []) if isinstance(result, dict) else []),
            "described": described,
            "machine": short,
            "steps": steps,
            "svg": svg,
            "waiting": waiting,
            "failed": failed,
            "path": entered,
            "input": pretty(described.get("input")),
            "output": pretty(described.get("output")),
            "error": _cause(described) if described.get("error") else "",
            "given": given if isinstance(given, dict) else {},
            "redrives": described.get("redriveCount", 0),
            "map_runs": self.map_runs(arn),
        }

    def history(self, arn: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for page in self.sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
            events += page["events"]
        return events

    def steps(self, events: list[dict[str, Any]], machine: graph.Machine | None) -> list[Step]:
        if not events:
            return []
        start = events[0]["timestamp"]
        steps: list[Step] = []
        open_steps: dict[str, Step] = {}
        for event in events:
            kind, detail = event["type"], _detail(event)
            if kind.endswith("StateEntered"):
                step = Step(
                    detail["name"],
                    kind.removesuffix("StateEntered"),
                    event["timestamp"],
                    _seconds(start, event["timestamp"]),
                    input=pretty(detail.get("input")),
                    inner=bool(machine and detail["name"] in machine.parent),
                )
                open_steps[step.name] = step
                steps.append(step)
            elif kind.endswith("StateExited"):
                done = open_steps.pop(detail["name"], None)
                if done:
                    done.exited, done.output = event["timestamp"], pretty(detail.get("output"))
            elif kind in ("LambdaFunctionScheduled", "TaskScheduled"):
                for step in open_steps.values():
                    step.attempts += 1
            elif kind.endswith(("Failed", "TimedOut")) and not kind.startswith("Execution"):
                for step in list(open_steps.values())[-1:]:
                    if graph.is_route(detail.get("error", "")):
                        step.route = detail["error"]  # the step's chosen way on, not a fault
                    else:
                        step.failures.append(f"{kind}: {_cause(detail)}")
        return steps

    def map_runs(self, arn: str) -> list[dict[str, Any]]:
        runs = []
        for run in self.sfn.list_map_runs(executionArn=arn).get("mapRuns", []):
            described = self.sfn.describe_map_run(mapRunArn=run["mapRunArn"])
            runs.append(
                {
                    "name": run["mapRunArn"].rsplit(":", 1)[-1],
                    "status": described["status"],
                    "counts": described.get("executionCounts", {}),
                }
            )
        return runs

    # --- the ledger and KCP ----------------------------------------------------------------

    def cancellation(self, shop_id: str, cancellation_id: str) -> Any:
        if not shop_id:
            return None
        return self.store.get_cancellation(shop_id, cancellation_id)

    def payment(self, shop_id: str, tno: str) -> Any:
        return self.store.get_payment(shop_id, tno) if shop_id and tno else None

    def payment_cancellations(self, shop_id: str, tno: str) -> list[Any]:
        return list(self.store.payment_cancellations(shop_id, tno))

    def sandbox_payment(self, tno: str) -> dict[str, Any] | None:
        found = self._sandbox(f"/_sandbox/payments/{tno}")
        return found if isinstance(found, dict) else None

    def sandbox_calls(self, tno: str = "") -> list[dict[str, Any]]:
        calls = self._sandbox("/_sandbox/calls") or []
        return [c for c in calls if not tno or c.get("tno") == tno]

    def _sandbox(self, path: str) -> Any:
        url = self.env.get("SANDBOX_URL", "") + path
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 (local stack)
                return json.loads(answer.read() or b"null")
        except (urllib.error.URLError, ValueError):
            return None

    def log_lines(self, needles: list[str]) -> list[dict[str, Any]]:
        """The functions' log lines (CloudWatch Logs /aws/lambda/*) carrying any needle."""
        found: dict[tuple[int, str], dict[str, Any]] = {}
        groups = [
            g["logGroupName"]
            for page in self.logs.get_paginator("describe_log_groups").paginate(
                logGroupNamePrefix="/aws/lambda/"
            )
            for g in page["logGroups"]
        ]
        for group in groups:
            for needle in [n for n in needles if n]:
                pages = self.logs.get_paginator("filter_log_events").paginate(
                    logGroupName=group, filterPattern=f'"{needle}"'
                )
                for page in pages:
                    for event in page["events"]:
                        if needle not in event["message"]:
                            continue
                        line = _json(event["message"])
                        found[(event["timestamp"], event["message"])] = {
                            "time": kst(datetime.fromtimestamp(event["timestamp"] / 1000, UTC)),
                            "function": group.removeprefix("/aws/lambda/"),
                            "level": line.get("level", "") if isinstance(line, dict) else "",
                            "message": line.get("message", "") if isinstance(line, dict) else "",
                            "text": pretty(event["message"]),
                        }
        return [found[k] for k in sorted(found)]

    # --- mail --------------------------------------------------------------------------

    def mails(self) -> list[dict[str, str]]:
        if not self.mail_dir.exists():
            return []
        letters = []
        for path in sorted(self.mail_dir.glob("*.txt"), reverse=True):
            head, _, body = path.read_text(encoding="utf-8").partition("\n\n")
            html = path.with_suffix(".html")
            fields = dict(line.split(": ", 1) for line in head.splitlines() if ": " in line)
            letters.append(
                {
                    "id": path.stem,
                    "from": fields.get("From", ""),
                    "to": fields.get("To", ""),
                    "subject": fields.get("Subject", ""),
                    "date": kst(datetime.fromisoformat(fields["Date"])) if "Date" in fields else "",
                    "body": body,
                    # The part a mail client shows (emails have had one since main's layout).
                    "html": html.read_text(encoding="utf-8") if html.exists() else "",
                }
            )
        return letters


def charges(events: list[dict[str, Any]]) -> list[dict[str, str]]:
    """A billing run's charges: its Map's lines, `ordr_idxx result tno-or-code`."""
    found = []
    for event in events:
        if event["type"] != "MapStateExited":
            continue
        output = _json(event.get("stateExitedEventDetails", {}).get("output")) or {}
        for lane in output.get("results", []):
            for line in lane.get("charges", []) if isinstance(lane, dict) else []:
                order, result, rest = [*str(line).split(" ", 2), "", ""][:3]
                found.append(
                    {
                        "order": order,
                        "result": result,
                        "rest": rest,
                        "subscription": order.rsplit("-", 3)[0] if order.count("-") >= 3 else order,
                    }
                )
    return found
