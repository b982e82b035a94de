"""`make faults`: thousands of cancels under randomly drawn faults, then every payment compared
with the KCP sandbox's ledger (the sandbox is the truth: what KCP refunded). Issue 10's proof.

What runs: the embedded stack (real ASL, handlers in-process, KCP sandbox in-process) with short
timings. Payments are approved at the sandbox and registered through the API; each gets 1..6
cancels, full and partial, sent together through the API (so they race for the balance and the
send lock), a few replayed with their Idempotency-Key. Every cancellation draws, from one seeded
generator (the seed is printed; --seed repeats a run):

- a fault on its cancel call at KCP: latency drawn across and beyond the read timeout and the
  reconcile window (answered late; the sandbox applies the cancel after the delay), HTTP 500,
  connection reset, malformed answer (applied), a chosen res_cd, commit_then_timeout (applied,
  never answered), or none;
- faults on its inquiries: the next k inquiries of its payment while it is in flight answer
  500, reset, malformed, a refusal code, or too late;

and the local stack's AWS calls, made by the handlers, draw (local/faults.py): DynamoDB
throttling (absorbed by the SDK's retries, or surfaced), conditional-write races (a concurrent
twin of the write lands first) and SES being down.

The faults are aimed at cancellations, not only payments: the sandbox's own fault modes run, but
which call gets which fault is chosen here (the sandbox is wrapped in-process; its mod_desc
carries the cancellation's token, an inquiry goes to the cancellation whose cancel was last sent
for that payment), and every cancel KCP applies is recorded with its token.

After the cancels: wait until every cancellation is terminal and KCP is quiet (no late answer
or late apply pending), run the sweep if the project has one (local.sweep), compare, print:

- doubles: a payment KCP refunded more than cancelflow reports SUCCEEDED, a payment refunded
  beyond its amount, or one cancellation applied twice at KCP;
- lost: KCP applied a cancellation that cancelflow settled as not SUCCEEDED (FAILED, REJECTED),
  or cancelflow says SUCCEEDED and KCP holds no such refund; NEEDS_REVIEW is "open" (the hold is
  kept, nothing was told as done), but NEEDS_REVIEW of a cancel KCP applied after a sweep ran is
  "lost until corrected";
- mismatches: cancelflow's payment balance differs from the sandbox's, for payments with
  nothing in flight; holds that do not add up (available != balance - open holds);
- non-terminal cancellations, and how each fault class ended (final status and reason).

Run: make faults [N=10000] [SEED=...]   or   python bench/faults.py --n 500 --seed 7
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import json
import random
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "layers" / "cancelflow"))

from local.faults import AwsFaultRates, AwsFaults
from local.kcp_sandbox import Fault
from local.stack import LocalStack

TERMINAL = {"SUCCEEDED", "REJECTED", "FAILED", "NEEDS_REVIEW"}
RES_CODES = ("8012", "8094", "SB02", "SB09", "9999")  # refusals KCP may answer (catalogue)
INQUIRY_MODES = ("http_500", "reset", "malformed", "res_cd", "latency_ms")


@dataclass(frozen=True)
class Settings:
    n: int = 10_000
    seed: int = 0
    in_flight: int = 150  # cancellations in progress at most (sleeping ones cost no CPU)
    clients: int = 12  # concurrent API clients
    max_per_payment: int = 6
    read_timeout: float = 2.0  # KcpReadTimeoutSeconds
    reconcile_wait: int = 1
    reconcile_tries: int = 4
    kcp_fault: float = 0.7  # share of cancellations with a fault on their cancel call
    inquiry_fault: float = 0.25
    throttle: float = 0.02
    race: float = 0.05
    ses_down: float = 0.2
    replay: float = 0.05
    # Faults that may leave a cancel unresolved (its payment's send lock held: the payment's
    # other cancels wait minutes for it, then fail PAYMENT_BUSY) only on single-cancel payments:
    # the same checks, in a fraction of the time (the test's profile).
    stall_free: bool = False
    stuck_after: float = 420.0  # seconds after which a cancellation is given up waiting for
    quiet: bool = False  # no progress line

    @property
    def parameters(self) -> dict[str, str]:
        return {
            "KcpReadTimeoutSeconds": f"{self.read_timeout:g}",
            "ReconcileWaitSeconds": str(self.reconcile_wait),
            "ReconcileMaxTries": str(self.reconcile_tries),
        }

    @property
    def first_inquiry(self) -> float:
        """Seconds after sending when the first inquiry is made (about)."""
        return self.read_timeout + self.reconcile_wait

    @property
    def last_inquiry(self) -> float:
        return self.read_timeout + self.reconcile_wait * self.reconcile_tries

    @property
    def horizon(self) -> float:
        """Latencies are drawn up to here: well beyond the last inquiry."""
        return self.last_inquiry * 1.6 + 2


# --- the plan ---------------------------------------------------------------------------------


@dataclass
class KcpFault:
    label: str  # the fault class, as the report shows it
    mode: str
    value: Any = None
    hold_seconds: float = 0.0
    times: int = 1


@dataclass
class Cancel:
    index: int
    payment: int
    amount: int | None  # None: a full cancel (everything left)
    replay: bool
    cancel_fault: KcpFault | None
    inquiry_fault: KcpFault | None
    key: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def token(self) -> str:
        return f"fault-bench #{self.index}"


@dataclass
class PaymentPlan:
    index: int
    amount: int
    method: str
    cancels: list[Cancel]
    tno: str = ""


def latency_label(seconds: float, s: Settings) -> str:
    if seconds < s.read_timeout:
        return "latency < read timeout"
    if seconds < s.first_inquiry:
        return "latency: timeout .. 1st inquiry"
    if seconds < s.last_inquiry:
        return "latency: during reconcile"
    return "latency: beyond last inquiry"


def draw_cancel_fault(rng: random.Random, s: Settings) -> KcpFault | None:
    if rng.random() >= s.kcp_fault:
        return None
    mode = rng.choices(
        ("latency_ms", "http_500", "reset", "malformed", "res_cd", "commit_then_timeout"),
        weights=(40, 10, 10, 10, 10, 20),
    )[0]
    if mode == "latency_ms":
        seconds = rng.uniform(0, s.horizon)
        return KcpFault(latency_label(seconds, s), mode, int(seconds * 1000))
    if mode == "res_cd":
        code = rng.choice(RES_CODES)
        return KcpFault(f"res_cd {code}", mode, code)
    if mode == "commit_then_timeout":
        return KcpFault(mode, mode, hold_seconds=s.read_timeout + 0.5)
    return KcpFault(mode, mode)


def draw_inquiry_fault(rng: random.Random, s: Settings) -> KcpFault | None:
    if rng.random() >= s.inquiry_fault:
        return None
    mode = rng.choice(INQUIRY_MODES)
    times = rng.randint(1, s.reconcile_tries + 1)  # sometimes every inquiry
    label = f"inquiry {mode} x{min(times, s.reconcile_tries)}"
    if mode == "res_cd":
        return KcpFault(label, mode, rng.choice(RES_CODES), times=times)
    if mode == "latency_ms":
        return KcpFault(label, mode, int((s.read_timeout + 0.5) * 1000), times=times)
    return KcpFault(label, mode, times=times)


SAFE_MODES = ("latency_ms", "res_cd")  # answered in time, or refused: nothing left open


def risky(fault: KcpFault | None, s: Settings) -> bool:
    if fault is None:
        return False
    return fault.mode not in SAFE_MODES or (
        fault.mode == "latency_ms" and fault.value >= s.read_timeout * 1000
    )


def make_plan(s: Settings) -> list[PaymentPlan]:
    rng = random.Random(s.seed)
    payments: list[PaymentPlan] = []
    index = 0
    while index < s.n:
        method = rng.choices(("CARD", "VIRTUAL_ACCOUNT", "MOBILE"), weights=(80, 10, 10))[0]
        amount = rng.randrange(10_000, 200_000, 100)
        count = min(s.n - index, rng.randint(1, s.max_per_payment))
        if s.stall_free and count > 1 and rng.random() < 0.5:
            count = 1  # half the payments take the faults that may leave a cancel open
        cancels = []
        for _ in range(count):
            full = rng.random() < 0.15
            part = rng.randrange(100, max(200, int(amount * 0.35)), 100)
            cancel_fault = draw_cancel_fault(rng, s)
            inquiry_fault = draw_inquiry_fault(rng, s)
            if s.stall_free and count > 1:
                cancel_fault = cancel_fault if not risky(cancel_fault, s) else None
                inquiry_fault = None
            cancels.append(
                Cancel(
                    index=index,
                    payment=len(payments),
                    amount=None if full else part,
                    replay=rng.random() < s.replay,
                    cancel_fault=cancel_fault,
                    inquiry_fault=inquiry_fault,
                )
            )
            index += 1
        payments.append(PaymentPlan(len(payments), amount, method, cancels))
    return payments


# --- KCP: faults aimed at cancellations, and what KCP applied ---------------------------------


class KcpAim:
    """Wraps the in-process sandbox's ledger: picks each call's fault from the plan and records
    every cancel KCP applied, by the cancellation's token (its mod_desc)."""

    def __init__(self, ledger: Any, cancels: dict[str, Cancel]) -> None:
        self.ledger = ledger
        self.cancels = cancels
        self.lock = threading.Lock()
        self.local = threading.local()
        self.current: dict[str, str] = {}  # tno -> token of the cancel last sent
        self.sent: Counter[str] = Counter()  # token -> cancel calls received
        self.applied: dict[str, list[int]] = defaultdict(list)  # token -> amounts applied
        self.struck: dict[str, list[str]] = defaultdict(list)  # token -> fault labels struck
        self.inquiries_left: dict[str, int] = {}
        self.quiet_at = 0.0  # monotonic time when no late answer or late apply is pending
        self.enabled = True
        self._record: Callable[[str, dict[str, Any] | None], dict[str, Any]] = ledger.record_call
        self._cancel = ledger._cancel
        ledger.record_call = self.record_call
        ledger.take_fault = self.take_fault
        ledger._cancel = self.apply_cancel

    def restore(self) -> None:
        for name in ("record_call", "take_fault", "_cancel"):
            vars(self.ledger).pop(name, None)  # the class's own methods again

    def record_call(self, kind: str, request: dict[str, Any] | None) -> dict[str, Any]:
        self.local.request = request or {}
        return self._record(kind, request)  # the journal entry the sandbox fills in

    def take_fault(self, kind: str, tno: str = "") -> Fault | None:
        request = getattr(self.local, "request", {})
        with self.lock:
            if kind == "cancel":
                token = str(request.get("mod_desc", ""))
                self.current[tno] = token
                self.sent[token] += 1
                cancel = self.cancels.get(token)
                if cancel and cancel.inquiry_fault:
                    self.inquiries_left.setdefault(token, cancel.inquiry_fault.times)
                if not self.enabled or cancel is None or self.sent[token] > 1:
                    return None
                return self._strike(token, tno, "cancel", cancel.cancel_fault)
            if kind == "inquiry":
                token = self.current.get(tno, "")
                cancel = self.cancels.get(token)
                if not self.enabled or cancel is None or not self.inquiries_left.get(token):
                    return None
                self.inquiries_left[token] -= 1
                return self._strike(token, tno, "inquiry", cancel.inquiry_fault)
        return None

    def _strike(self, token: str, tno: str, path: str, fault: KcpFault | None) -> Fault | None:
        if fault is None:
            return None
        if path == "cancel" or not self.struck[token] or self.struck[token][-1] != fault.label:
            self.struck[token].append(fault.label)
        pending = fault.hold_seconds if fault.mode == "commit_then_timeout" else 0.0
        if fault.mode == "latency_ms":
            pending = fault.value / 1000
        self.quiet_at = max(self.quiet_at, time.monotonic() + pending + 1.0)
        return Fault(path, fault.mode, fault.value, 1, fault.hold_seconds or 30.0, tno)

    def apply_cancel(self, request: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = self._cancel(request)  # under the ledger's lock
        if answer.get("res_cd") == "0000":
            self.applied[str(request.get("mod_desc", ""))].append(int(answer["mod_mny"]))
        return answer

    def wait_quiet(self) -> None:
        while time.monotonic() < self.quiet_at:
            time.sleep(0.2)


# --- driving the stack ------------------------------------------------------------------------


class Api:
    """A shop's back office over HTTP; retries what is safe to retry (same Idempotency-Key)."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.auth = {"Authorization": f"Bearer {key}"}
        self.retried: Counter[str] = Counter()  # why requests were retried

    def call(
        self, method: str, path: str, body: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        data = json.dumps(body).encode()
        for attempt in range(12):
            request = urllib.request.Request(
                self.url + path,
                data=data,
                method=method,
                headers={"Content-Type": "application/json"} | self.auth | (headers or {}),
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as answer:
                    return answer.status, json.loads(answer.read() or b"null")
            except urllib.error.HTTPError as error:
                text = error.read()
                try:
                    doc = json.loads(text)
                except ValueError:
                    doc = {"raw": text.decode(errors="replace")}
                if error.code < 500 and error.code != 429:
                    return error.code, doc
                self.retried[f"HTTP {error.code} {doc.get('code', '')}".strip()] += 1
            except (OSError, urllib.error.URLError) as error:
                self.retried[type(getattr(error, "reason", error)).__name__] += 1
            time.sleep(min(2.0, 0.1 * 2**attempt))
        return 599, {"code": "GAVE_UP"}


class Run:
    def __init__(self, s: Settings, stack: LocalStack | None = None) -> None:
        self.s = s
        self.plan = make_plan(s)
        self.cancels = {c.token: c for p in self.plan for c in p.cancels}
        self.by_key = {c.key: c for c in self.cancels.values()}
        self.by_index = {c.index: c for c in self.cancels.values()}
        self.tag = threading.local()
        self.aws = AwsFaults(
            AwsFaultRates(throttle=s.throttle, race=s.race, ses_down=s.ses_down),
            seed=s.seed + 1,
            tag=lambda: getattr(self.tag, "value", None),
            allow=self._may_strike,
        )
        self.own_stack = stack is None  # else: a running stack (the test session's), borrowed
        self.stack = stack or LocalStack(
            state_dir=Path(tempfile.mkdtemp(prefix="cancelflow-faults-")),
            parameters=s.parameters,
            quiet=True,
        )
        self.lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(s.in_flight)
        self.waiting: dict[int, float] = {}  # cancel index -> when it was sent (unsettled)
        self.ids: dict[int, str] = {}  # cancel index -> cancellation id
        self.api_answers: dict[int, tuple[int, str]] = {}  # index -> (status, code) if not 202
        self.replays: Counter[str] = Counter()
        self.stuck: set[int] = set()
        self.done = 0
        self.sweep_ran: str | None = None
        self.cancel_of_id: dict[str, int] = {}
        self.settled_early: set[str] = set()
        self.failed_executions: dict[str, str] = {}  # cancellation id -> execution status
        self.redriven: Counter[str] = Counter()  # redriven executions by how they then ended
        self.shown = 0.0

    def _may_strike(self, tag: str | None) -> bool:
        """AWS faults for any work, or (stall-free) only for single-cancel payments' cancels."""
        if not self.s.stall_free:
            return True
        cancel = self.by_key.get(tag or "")
        if cancel is None:
            index = self.cancel_of_id.get(tag or "")
            cancel = self.by_index.get(index) if index is not None else None
        return cancel is not None and len(self.plan[cancel.payment].cancels) == 1

    # tag each handler's AWS calls with the cancellation it works on
    def _watch_invocations(self) -> None:
        lambdas = self.stack.lambdas
        assert lambdas
        invoke = lambdas.invoke

        def watched(name_or_arn: str, event: Any) -> Any:
            function = lambdas.find(name_or_arn)
            tag = None
            if isinstance(event, dict):
                headers = event.get("headers") or {}
                key = next((v for k, v in headers.items() if k.lower() == "idempotency-key"), "")
                tag = event.get("cancellation_id") or key or None
            previous = getattr(self.tag, "value", None)
            self.tag.value = tag or previous
            try:
                result = invoke(name_or_arn, event)
            finally:
                self.tag.value = previous
            if (
                function.logical_id.startswith("Settle")
                and isinstance(result, dict)
                and result.get("status") in TERMINAL
            ):
                self._settled_id(str(result.get("cancellation_id")))
            return result

        lambdas.invoke = watched  # type: ignore[method-assign]

    def _settled_id(self, cid: str) -> None:
        with self.lock:
            index = self.cancel_of_id.get(cid)
            if index is None:  # settled before its 202 reached the client
                self.settled_early.add(cid)
                return
        self._settled(index)

    def _settled(self, index: int) -> None:
        with self.lock:
            if self.waiting.pop(index, None) is None:
                return
            self.done += 1
        self.slots.release()

    def start(self) -> None:
        if self.own_stack:
            self.stack.start()
        assert self.stack.sandbox and self.stack.lambdas
        self.kcp = KcpAim(self.stack.sandbox.ledger, self.cancels)
        server = getattr(self.stack.sandbox, "_server", None)
        if server is not None:  # a late answer to a client that timed out: a broken pipe, as meant
            server.handle_error = lambda request, address: None
        self._watch_invocations()
        self.aws.install()
        self.api = Api(self.stack.env["API_URL"], self.stack.env["SHOP_API_KEY"])

    def stop(self) -> None:
        self.aws.uninstall()
        self.kcp.restore()
        assert self.stack.lambdas and self.stack.sandbox
        vars(self.stack.lambdas).pop("invoke", None)
        server = getattr(self.stack.sandbox, "_server", None)
        if server is not None:
            vars(server).pop("handle_error", None)
        if self.own_stack:
            self.stack.stop()

    def _register(self, payment: PaymentPlan) -> None:
        ledger = self.stack.sandbox.ledger
        approved = ledger.create_payment(
            {
                "amount": payment.amount,
                "method": payment.method,
                "product_name": f"fault bench {payment.index}",
                "buyer_email": "bench@example.com",
            }
        )
        payment.tno = approved["tno"]
        fields: tuple[str, ...] = ("tno", "order_id", "amount", "method", "product_name")
        fields += ("buyer_email", "approved_at")
        for _ in range(3):
            status, body = self.api.call("POST", "/v1/payments", {k: approved[k] for k in fields})
            if status != 400:
                break
            # Seen under load: a 400 VALIDATION_FAILED naming every field of a valid body.
            self.api.retried[f"registration 400 {body.get('code', '')}: {body.get('detail')}"] += 1
        if status not in (200, 201):  # 200: a retried registration that had gone through
            raise RuntimeError(f"registering {payment.tno}: {status} {body}")

    def _body(self, cancel: Cancel, payment: PaymentPlan) -> dict[str, Any]:
        body: dict[str, Any] = {"reason_code": "CHANGE_OF_MIND", "reason": cancel.token}
        if cancel.amount is not None:
            body["amount"] = cancel.amount
        if payment.method == "VIRTUAL_ACCOUNT":
            body["refund_account"] = {
                "bank_code": "BK04",
                "number": "110-123-456789",
                "holder": "김하늘",
            }
        return body

    def _cancel(self, cancel: Cancel, payment: PaymentPlan) -> None:
        path = f"/v1/payments/{payment.tno}/cancellations"
        body = self._body(cancel, payment)
        headers = {"Idempotency-Key": cancel.key}
        with self.lock:
            self.waiting[cancel.index] = time.monotonic()
        status, answer = self.api.call("POST", path, body, headers)
        if status == 202 or (status == 200 and isinstance(answer, dict) and "status" in answer):
            cid = answer["cancellation_id"]
            with self.lock:
                self.ids[cancel.index] = cid
                self.cancel_of_id[cid] = cancel.index
                settled_already = answer.get("status") in TERMINAL or cid in self.settled_early
            if settled_already:
                self._settled(cancel.index)
            if cancel.replay:
                again, replayed = self.api.call("POST", path, body, headers)
                same = isinstance(replayed, dict) and replayed.get("cancellation_id") == cid
                self.replays["same cancellation" if same else f"other answer {again}"] += 1
            return
        code = answer.get("code", "") if isinstance(answer, dict) else ""
        with self.lock:
            self.api_answers[cancel.index] = (status, str(code))
        self._settled(cancel.index)

    def _watch_failed(self, stop: threading.Event) -> None:
        """Executions that ended without settling (a step failed after its retries): their
        cancellation is left as it was, for a redrive; stop waiting for them."""
        sfn = self.stack.client("stepfunctions")
        arn = self.stack.env["CANCEL_STATE_MACHINE_ARN"]
        seen: set[str] = set()
        while not stop.wait(3):
            for status in ("FAILED",):  # nothing here times out or is aborted
                kwargs: dict[str, Any] = {"stateMachineArn": arn, "statusFilter": status}
                while True:
                    page = sfn.list_executions(**kwargs)
                    for execution in page["executions"]:
                        name = execution["name"]
                        if name not in seen:
                            seen.add(name)
                            self.failed_executions[name] = status
                            self._settled_id(name)
                    if not page.get("nextToken"):
                        break
                    kwargs["nextToken"] = page["nextToken"]

    def drive(self) -> None:
        started = time.monotonic()
        stop = threading.Event()
        watcher = threading.Thread(target=self._watch_failed, args=(stop,), daemon=True)
        watcher.start()
        try:
            self._drive(started)
        finally:
            stop.set()

    def _drive(self, started: float) -> None:
        with ThreadPoolExecutor(self.s.clients) as clients:
            for payment in self.plan:
                self._register(payment)
                for _ in payment.cancels:
                    while not self.slots.acquire(timeout=1):
                        self._give_up_stuck()
                    self._progress(started)
                for cancel in payment.cancels:
                    clients.submit(self._cancel, cancel, payment)
        # the clients are done: now wait for the workflows
        while True:
            with self.lock:
                left = len(self.waiting)
            if not left:
                break
            self._give_up_stuck()
            self._progress(started)
            time.sleep(0.5)
        self.kcp.wait_quiet()
        self._progress(started, final=True)

    def _give_up_stuck(self) -> None:
        now = time.monotonic()
        with self.lock:
            late = [i for i, t in self.waiting.items() if now - t > self.s.stuck_after]
        for index in late:
            self.stuck.add(index)
            self._settled(index)

    def _progress(self, started: float, final: bool = False) -> None:
        if self.s.quiet or (not final and time.monotonic() - self.shown < 2):
            return
        self.shown = time.monotonic()
        with self.lock:
            done, waiting = self.done, len(self.waiting)
        rate = done / max(0.001, time.monotonic() - started)
        end = "\n" if final else ""
        print(
            f"\r  settled {done}/{self.s.n}  in flight {waiting}  {rate:.1f}/s   ",
            end=end,
            flush=True,
        )

    def redrive(self) -> None:
        """As an operator does once the cause is gone: faults off, every FAILED execution
        redriven from the step that failed (each step is safe to re-run), then waited for."""
        self.kcp.enabled = False
        self.aws.enabled = False
        sfn = self.stack.client("stepfunctions")
        arn = self.stack.env["CANCEL_STATE_MACHINE_ARN"].replace(":stateMachine:", ":execution:")
        for name in list(self.failed_executions):
            sfn.redrive_execution(executionArn=f"{arn}:{name}")
        for name in list(self.failed_executions):
            status = self.stack.wait_for_execution(f"{arn}:{name}", timeout=300)["status"]
            self.redriven[status] += 1
            if status == "SUCCEEDED":
                del self.failed_executions[name]
            else:
                self.failed_executions[name] = status

    def sweep(self) -> None:
        """The project's sweep, where it has one (local.sweep), with KCP faults off."""
        self.kcp.enabled = False
        self.aws.enabled = False
        self.sweep_ran = run_sweep(self.stack)
        self.kcp.wait_quiet()

    # --- reading and comparing ------------------------------------------------------------

    def read(self) -> dict[str, Any]:
        """This shop's payments and cancellations as cancelflow holds them: one Scan (a Query
        per payment on the ByPayment index would read the whole table each time in moto)."""
        from cancelflow.adapters.dynamodb.store import _cancellation_from
        from cancelflow.adapters.dynamodb.table import payment_from as _payment_from
        from cancelflow.adapters.dynamodb.table import unmarshal as _unmarshal

        assert self.stack.template
        ddb = self.stack.client("dynamodb")
        prefix = f"SHOP#{self.stack.shops[0].shop_id}#"
        tnos = {plan.tno for plan in self.plan}
        found: dict[str, Any] = {}
        cancellations = []
        kwargs: dict[str, Any] = {"TableName": self.stack.template.physical_name("Ledger")}
        while True:
            page = ddb.scan(**kwargs)
            for raw in page["Items"]:
                item = _unmarshal(raw)
                if not item["PK"].startswith(prefix) or item.get("tno") not in tnos:
                    continue
                if item.get("type") == "PAYMENT":
                    found[item["tno"]] = _payment_from(item)
                elif item.get("type") == "CANCELLATION":
                    c = _cancellation_from(item, ())
                    cancellations.append(
                        {
                            "tno": c.tno,
                            "id": c.cancellation_id,
                            "token": c.reason,
                            "status": c.status.value,
                            "reasons": list(c.reasons),
                            "amount": c.amount,
                            "confirmed_by": getattr(c, "confirmed_by", ""),
                        }
                    )
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        payments = [(plan, found.get(plan.tno)) for plan in self.plan]
        return {"payments": payments, "cancellations": cancellations}


def run_sweep(stack: LocalStack) -> str | None:
    """Run local.sweep against this stack if the project has it; what ran, or None."""
    if importlib.util.find_spec("local.sweep") is None:
        return None
    module = importlib.import_module("local.sweep")
    function: Callable[..., Any] | None = getattr(module, "run_sweep", None)
    if not callable(function):
        return None
    summary = function(stack.client("stepfunctions"))  # what `make sweep` runs
    return f"local.sweep.run_sweep: {summary.get('found', summary)}"


# --- the report ---------------------------------------------------------------------------------


@dataclass
class Figures:
    n: int = 0
    seed: int = 0
    seconds: float = 0.0
    doubles: int = 0
    doubles_detail: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    lost_detail: Counter[str] = field(default_factory=Counter)
    lost_until_corrected: int = 0
    open_cases: Counter[str] = field(default_factory=Counter)
    mismatches: int = 0
    hold_mismatches: int = 0
    non_terminal: int = 0
    non_terminal_detail: Counter[str] = field(default_factory=Counter)
    stuck: int = 0
    sweep: str | None = None
    redriven: Counter[str] = field(default_factory=Counter)
    table: dict[str, Counter[str]] = field(default_factory=dict)
    bad: dict[str, list[str]] = field(default_factory=dict)  # class -> examples of lost/double
    api: Counter[str] = field(default_factory=Counter)
    retried: Counter[str] = field(default_factory=Counter)
    replays: Counter[str] = field(default_factory=Counter)
    aws: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)


def compare(run: Run, state: dict[str, Any]) -> Figures:
    s, kcp = run.s, run.kcp
    f = Figures(n=s.n, seed=s.seed, sweep=run.sweep_ran, stuck=len(run.stuck))
    f.redriven = run.redriven
    by_token = {c["token"]: c for c in state["cancellations"]}
    swept = run.sweep_ran is not None

    def classes(cancel: Cancel) -> list[str]:
        labels = [f"kcp {label}" for label in kcp.struck.get(cancel.token, [])]
        if not any(not label.startswith("kcp inquiry") for label in labels):
            labels.insert(0, "kcp none" if kcp.sent[cancel.token] else "kcp (never sent)")
        struck = Counter(run.aws.tagged.get(cancel.key, {}))
        struck.update(run.aws.tagged.get(run.ids.get(cancel.index, "-"), {}))
        for kind in sorted(struck):
            labels.append(f"aws {kind}")
        return labels

    def note(cancel: Cancel, what: str, detail: str) -> None:
        for label in classes(cancel):
            f.table.setdefault(label, Counter())[what] += 1
        if sum(e.startswith(what) for e in f.examples) < 6:
            f.examples.append(f"{what}: {detail} [{', '.join(classes(cancel))}]")

    for cancel in run.cancels.values():
        record = by_token.get(cancel.token)
        applied = kcp.applied.get(cancel.token, [])
        if record is None:
            status, code = run.api_answers.get(cancel.index, (0, "no record"))
            outcome = f"API {status} {code}".strip()
            f.api[outcome] += 1
            for label in classes(cancel):
                f.table.setdefault(label, Counter())[outcome] += 1
            if applied:
                f.lost += 1
                f.lost_detail["applied at KCP, no cancellation recorded"] += 1
            continue
        status = record["status"]
        outcome = " ".join([status, *record["reasons"][:1]])
        if record.get("confirmed_by") == "SWEEP":
            outcome = f"{status} (by the sweep)"
        for label in classes(cancel):
            f.table.setdefault(label, Counter())[outcome] += 1
        what = f"#{cancel.index} {record['id']} {record['tno']} {outcome}, KCP applied {applied}"
        if len(applied) > 1:
            f.doubles += 1
            f.doubles_detail["one cancellation applied twice at KCP"] += 1
            note(cancel, "DOUBLE", what)
        if status not in TERMINAL:
            f.non_terminal += 1
            execution = run.failed_executions.get(record["id"])
            f.non_terminal_detail[
                f"{status}, execution {execution} (for a redrive)" if execution else status
            ] += 1
            note(cancel, "NON-TERMINAL", what)
        elif status == "SUCCEEDED" and not applied:
            f.lost += 1
            f.lost_detail["SUCCEEDED, but KCP holds no such refund"] += 1
            note(cancel, "LOST", what)
        elif status in ("FAILED", "REJECTED") and applied:
            f.lost += 1
            f.lost_detail[f"KCP applied it, cancelflow says {outcome}"] += 1
            note(cancel, "LOST", what)
        elif status == "NEEDS_REVIEW":
            if applied and swept:
                f.lost_until_corrected += 1
                note(cancel, "LOST UNTIL CORRECTED", what)
            if applied:
                f.open_cases["KCP applied it"] += 1
            elif kcp.sent[cancel.token]:
                f.open_cases["KCP did not apply it"] += 1
            else:  # journaled as sent, but no call reached KCP: nothing will ever close it
                f.open_cases["KCP never received it"] += 1
                note(cancel, "OPEN, NEVER SENT", what)
        elif status == "SUCCEEDED" and applied and sum(applied) != record["amount"]:
            f.mismatches += 1
            note(cancel, "AMOUNT MISMATCH", what)

    open_statuses = TERMINAL - {"NEEDS_REVIEW"}
    cancellations_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in state["cancellations"]:
        cancellations_of[c["tno"]].append(c)
    ledger = run.stack.sandbox.ledger
    for plan, payment in state["payments"]:
        truth = ledger.payment_state(plan.tno)
        mine = cancellations_of[plan.tno]
        refunded = truth["amount"] - truth["balance"]
        succeeded = sum(c["amount"] or 0 for c in mine if c["status"] == "SUCCEEDED")
        settled = all(c["status"] in open_statuses for c in mine)
        if sum(c["amount"] for c in truth["cancels"]) > truth["amount"]:
            f.doubles += 1
            f.doubles_detail["payment refunded beyond its amount"] += 1
        if settled and refunded > succeeded:
            f.doubles += 1
            f.doubles_detail["KCP refunded more than cancelflow reports SUCCEEDED"] += 1
            if len(f.examples) < 12:
                f.examples.append(
                    f"DOUBLE: {plan.tno} KCP refunded {refunded}, SUCCEEDED {succeeded}"
                )
        if payment is None:
            continue
        if settled and payment.balance != truth["balance"]:
            f.mismatches += 1
            if len(f.examples) < 12:
                f.examples.append(
                    f"MISMATCH: {plan.tno} cancelflow balance {payment.balance}, "
                    f"KCP {truth['balance']}"
                )
        held = sum(c["amount"] or 0 for c in mine if c["status"] not in open_statuses)
        if payment.available != payment.balance - held:
            f.hold_mismatches += 1
    f.retried = run.api.retried
    f.replays = run.replays
    f.aws = run.aws.counts
    return f


def report(f: Figures) -> str:
    lines = [
        f"fault bench: {f.n} cancels, seed {f.seed}, {f.seconds:.0f} s"
        f" ({f.n / max(f.seconds, 1):.1f} cancels/s)",
        f"  redriven:       {dict(f.redriven) or 'none failed'}  (FAILED executions, faults off)",
        f"  sweep:          {f.sweep or 'none (no local.sweep): open cases stay open'}",
        f"  doubles:        {f.doubles}"
        + "".join(f"\n    {v:>6}  {k}" for k, v in f.doubles_detail.items()),
        f"  lost:           {f.lost}"
        + "".join(f"\n    {v:>6}  {k}" for k, v in f.lost_detail.most_common()),
        f"  lost until corrected (NEEDS_REVIEW, KCP applied, after the sweep): "
        f"{f.lost_until_corrected}",
        f"  open (NEEDS_REVIEW, hold kept): {sum(f.open_cases.values())}"
        + "".join(f"\n    {v:>6}  {k}" for k, v in f.open_cases.items()),
        f"  mismatches:     {f.mismatches}  (balance or amount, payments with nothing in flight)",
        f"  hold mismatches: {f.hold_mismatches}  (available != balance - open holds)",
        f"  non-terminal:   {f.non_terminal}  (given up waiting: {f.stuck})"
        + "".join(f"\n    {v:>6}  {k}" for k, v in f.non_terminal_detail.most_common()),
        f"  API refusals:   {dict(f.api.most_common())}",
        f"  API retries:    {dict(f.retried.most_common())}",
        f"  replays:        {dict(f.replays)}",
        f"  AWS faults:     {dict(f.aws.most_common())}",
        "",
        "how each fault class ended (a cancellation counts under every fault that struck it):",
    ]
    width = max((len(k) for k in f.table), default=10)
    for label in sorted(f.table):
        counts = f.table[label]
        total = sum(v for k, v in counts.items() if k.split()[0] in TERMINAL | {"API"})
        outcomes = ", ".join(f"{k} {v}" for k, v in counts.most_common())
        lines.append(f"  {label:<{width}} {total:>6}  {outcomes}")
    if f.examples:
        lines += ["", "examples:"] + [f"  {e}" for e in f.examples]
    return "\n".join(lines)


def run(s: Settings, stack: LocalStack | None = None) -> Figures:
    """The whole bench: on its own stack, or on a running one (its timing parameters)."""
    if stack is not None and stack.template is not None:
        given = stack.template.parameters
        s = replace(
            s,
            read_timeout=float(given["KcpReadTimeoutSeconds"]),
            reconcile_wait=int(given["ReconcileWaitSeconds"]),
            reconcile_tries=int(given["ReconcileMaxTries"]),
        )
    bench = Run(s, stack)
    started = time.monotonic()
    bench.start()
    try:
        bench.drive()
        bench.redrive()
        bench.sweep()
        figures = compare(bench, bench.read())
    finally:
        bench.stop()
    figures.seconds = time.monotonic() - started
    return figures


def plain(value: Any) -> Any:
    """JSON-ready: mapping keys as text."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(v) for v in value]
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="cancels (default 10,000)")
    parser.add_argument("--seed", type=int, help="repeat a run (default: a new seed)")
    parser.add_argument("--in-flight", type=int, default=Settings.in_flight)
    parser.add_argument("--ses-down", type=float, default=Settings.ses_down)
    parser.add_argument("--json", help="also write the figures here, as JSON (for the test)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.add_argument(
        "--stall-free",
        action="store_true",
        help="faults that may leave a cancel open only on single-cancel payments (faster)",
    )
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    settings = Settings(
        n=args.n,
        seed=seed,
        in_flight=args.in_flight,
        stall_free=args.stall_free,
        quiet=args.quiet,
        ses_down=args.ses_down,
    )
    print(f"fault bench: {settings.n} cancels, seed {seed} (--seed {seed} repeats it)")
    figures = run(settings)
    print(report(figures))
    if args.json:
        fields = {f.name: getattr(figures, f.name) for f in dataclasses.fields(figures)}
        Path(args.json).write_text(json.dumps(plain(fields)))  # (asdict mangles Counters)
    bad = figures.doubles + figures.lost + figures.mismatches + figures.non_terminal
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
