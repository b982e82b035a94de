"""What a run on the local stack would be billed for on AWS: Lambda requests and GB-seconds,
DynamoDB on-demand read and write request units, SES messages (issue 16's cost table).

moto reports no ConsumedCapacity, so units are computed here from item sizes the way DynamoDB
bills on-demand: reads in 4 KB units (eventually consistent half, transactional double), writes
in 1 KB units (transactional double) of the larger of the item before and after the write,
Query/Scan by the summed size of the items read before any filter, and a write to each global
secondary index whose entry it puts, changes or removes. Sizes follow DynamoDB's rules for
names and values ("DynamoDB item sizes and formats" in the developer guide).

Hooked in from outside (Meter.install): it wraps the stack's Lambda invoke and moto's DynamoDB
and SES v2 request handlers, so no other local module changes. Calls are attributed to the
function whose handler made them (a thread-local: in-process handlers make their AWS calls on
their own thread) or, when no handler is running, to the state machine's own integrations.
"""

from __future__ import annotations

import base64
import inspect
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

KB = 1024
READ_UNIT_BYTES = 4 * KB
WRITE_UNIT_BYTES = KB
STATE_MACHINE = "(state machine)"  # the caller of a call no handler made: a direct integration
DEFAULT_MEMORY_MB = 128  # Lambda's default MemorySize

Attrs = dict[str, dict[str, Any]]  # an item as DynamoDB's JSON: {"name": {"S": "..."}}


# --- sizes and units (pure) ------------------------------------------------------------------


def _number_size(text: str) -> int:
    """About 1 byte per two significant digits, plus 1 (leading and trailing zeros trimmed)."""
    digits = text.strip().lstrip("+-").lower().split("e")[0].replace(".", "")
    digits = digits.strip("0")
    return (len(digits) + 1) // 2 + 1


def _binary_size(value: Any) -> int:
    return len(value) if isinstance(value, bytes | bytearray) else len(base64.b64decode(value))


def value_size(value: dict[str, Any]) -> int:
    """Bytes of one attribute value (without its name)."""
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        return _number_size(data)
    if kind == "B":
        return _binary_size(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in data)
    if kind == "NS":
        return sum(_number_size(n) for n in data)
    if kind == "BS":
        return sum(_binary_size(b) for b in data)
    if kind == "L":  # 3 bytes for the list, 1 per element
        return 3 + sum(1 + value_size(v) for v in data)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in data.items())
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: Attrs | None) -> int:
    """Bytes of an item: each attribute's name and value (0 for no item)."""
    return sum(len(name.encode()) + value_size(v) for name, v in (item or {}).items())


def read_units(size: int, consistent: bool = False, transactional: bool = False) -> float:
    """Read request units for reading `size` bytes (one item, or one Query/Scan page)."""
    blocks = max(1, math.ceil(size / READ_UNIT_BYTES))
    return blocks * (2.0 if transactional else 1.0 if consistent else 0.5)


def write_units(size: int, transactional: bool = False) -> int:
    """Write request units for writing one item of `size` bytes (at least one unit)."""
    return max(1, math.ceil(size / WRITE_UNIT_BYTES)) * (2 if transactional else 1)


@dataclass(frozen=True)
class Index:
    """A global secondary index as the table's definition states it."""

    name: str
    key_attrs: tuple[str, ...]  # the index's own key attributes
    table_key_attrs: tuple[str, ...]
    projection: str = "ALL"  # ALL, KEYS_ONLY or INCLUDE
    non_key_attrs: tuple[str, ...] = ()

    def holds(self, item: Attrs | None) -> bool:
        return item is not None and all(k in item for k in self.key_attrs)

    def entry(self, item: Attrs) -> Attrs:
        """The item as the index stores it (its projection)."""
        if self.projection == "ALL":
            return dict(item)
        kept = set(self.key_attrs) | set(self.table_key_attrs)
        if self.projection == "INCLUDE":
            kept |= set(self.non_key_attrs)
        return {k: v for k, v in item.items() if k in kept}

    def writes(self, before: Attrs | None, after: Attrs | None) -> list[int]:
        """Sizes of the index entries a write from `before` to `after` puts or deletes: none if
        the item is in neither or its entry is unchanged, one to add, remove or change it, two
        (delete and put) when its index key changes."""
        was, now = self.holds(before), self.holds(after)
        if not was and not now:
            return []
        if not now:
            return [item_size(self.entry(before or {}))]
        if not was:
            return [item_size(self.entry(after or {}))]
        old, new = self.entry(before or {}), self.entry(after or {})
        if any(old[k] != new[k] for k in self.key_attrs):
            return [item_size(old), item_size(new)]
        if old == new:
            return []
        return [max(item_size(old), item_size(new))]


def state_transitions(events: list[dict[str, Any]]) -> int:
    """Billed Standard-workflow transitions of one execution: every state entered, plus every
    retry of a task (Step Functions charges each retry as a transition)."""
    entered = sum(1 for e in events if e["type"].endswith("StateEntered"))
    retries, scheduled = 0, 0
    for e in events:
        if e["type"] == "TaskStateEntered":
            scheduled = 0
        elif e["type"].endswith("Scheduled"):  # LambdaFunctionScheduled, TaskScheduled
            scheduled += 1
            retries += 1 if scheduled > 1 else 0
    return entered + retries


# --- what a run used ------------------------------------------------------------------------


@dataclass
class Usage:
    """Billable usage, by Lambda function or by the caller of the DynamoDB call."""

    lambda_requests: dict[str, int] = field(default_factory=dict)
    lambda_billed_ms: dict[str, int] = field(default_factory=dict)
    gb_seconds: dict[str, float] = field(default_factory=dict)
    read_units: dict[str, float] = field(default_factory=dict)
    write_units: dict[str, float] = field(default_factory=dict)  # table and indexes
    index_write_units: dict[str, float] = field(default_factory=dict)  # of which indexes
    dynamodb_calls: dict[str, int] = field(default_factory=dict)  # "caller Operation"
    ses_messages: int = 0
    unmetered: int = 0  # DynamoDB calls answered but not sized (the figures miss them)

    def __add__(self, other: Usage) -> Usage:
        out = Usage(
            ses_messages=self.ses_messages + other.ses_messages,
            unmetered=self.unmetered + other.unmetered,
        )
        for name in (
            "lambda_requests",
            "lambda_billed_ms",
            "gb_seconds",
            "read_units",
            "write_units",
            "index_write_units",
            "dynamodb_calls",
        ):
            mine, theirs = getattr(self, name), getattr(other, name)
            setattr(out, name, {k: mine.get(k, 0) + theirs.get(k, 0) for k in mine | theirs})
        return out

    @staticmethod
    def _add(counter: dict[str, Any], key: str, amount: float) -> None:
        counter[key] = counter.get(key, 0) + amount

    def total(self, name: str) -> float:
        return float(sum(getattr(self, name).values()))


# --- the hooks ------------------------------------------------------------------------------

_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
_READS = {"GetItem", "BatchGetItem", "TransactGetItems", "Query", "Scan"}
_CHARGED_FAILURES = ("ConditionalCheckFailed", "TransactionCanceled")


class Meter:
    """Counts what the stack's Lambdas, DynamoDB and SES are asked to do, between take()s."""

    def __init__(self, memory_mb: dict[str, int] | None = None) -> None:
        self.memory_mb = memory_mb or {}  # by function logical id
        self._lock = threading.Lock()
        self._local = threading.local()
        self._usage = Usage()
        self._undo: list[Callable[[], None]] = []

    @classmethod
    def for_template(cls, template: Any) -> Meter:
        """Memory sizes from the template: a function's MemorySize, else the Globals' one."""
        globals_ = template.doc.get("Globals", {}).get("Function", {})
        default = int(template.resolve(globals_.get("MemorySize", DEFAULT_MEMORY_MB)))
        sizes = {
            logical_id: int(template.resolve(spec["Properties"].get("MemorySize", default)))
            for logical_id, spec in template.of_type("AWS::Serverless::Function").items()
        }
        return cls(sizes)

    def take(self) -> Usage:
        """What was used since the last take()."""
        with self._lock:
            usage, self._usage = self._usage, Usage()
        return usage

    def _caller(self) -> str:
        return getattr(self._local, "caller", None) or STATE_MACHINE

    # --- install ---------------------------------------------------------------------------

    def install(self, stack: Any) -> None:
        """Meter the stack's Lambdas and moto's DynamoDB and SES (until uninstall())."""
        self.install_lambdas(stack.lambdas)
        self.install_services()

    def install_lambdas(self, lambdas: Any) -> None:
        invoke = lambdas.invoke
        had_own = "invoke" in vars(lambdas)

        def metered_invoke(name_or_arn: str, event: Any) -> Any:
            function = lambdas.find(name_or_arn)
            outer = getattr(self._local, "caller", None)
            self._local.caller = function.logical_id
            clock = time.perf_counter()
            try:
                return invoke(name_or_arn, event)
            finally:
                self._local.caller = outer
                self.record_invocation(function.logical_id, time.perf_counter() - clock)

        lambdas.invoke = metered_invoke

        def undo() -> None:
            if had_own:
                lambdas.invoke = invoke
            else:
                del lambdas.invoke

        self._undo.append(undo)

    def install_services(self) -> None:
        from moto.dynamodb.models.table import Table
        from moto.dynamodb.responses import DynamoHandler
        from moto.sesv2.responses import SESV2Response

        self._patch(DynamoHandler, "call_action", self._metered_dynamodb)
        self._patch(Table, "query", self._reading("query", ("filter_expression",)))
        self._patch(Table, "scan", self._reading("scan", ("filter_expression",)))
        self._patch(SESV2Response, "send_email", self._metered_send)

    def _patch(self, owner: Any, name: str, make: Callable[[Any], Any]) -> None:
        original = owner.__dict__[name]
        setattr(owner, name, make(original))
        self._undo.append(lambda: setattr(owner, name, original))

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()

    @contextmanager
    def installed(self, stack: Any) -> Iterator[Meter]:
        self.install(stack)
        try:
            yield self
        finally:
            self.uninstall()

    # --- recording -------------------------------------------------------------------------

    def record_invocation(self, function: str, seconds: float) -> None:
        billed_ms = max(1, math.ceil(seconds * 1000))  # Lambda bills duration by the ms
        memory = self.memory_mb.get(function, DEFAULT_MEMORY_MB)
        with self._lock:
            u = self._usage
            Usage._add(u.lambda_requests, function, 1)
            Usage._add(u.lambda_billed_ms, function, billed_ms)
            Usage._add(u.gb_seconds, function, memory / 1024 * billed_ms / 1000)

    def _record_dynamodb(self, op: str, reads: float, writes: float, index: float) -> None:
        caller = self._caller()
        with self._lock:
            u = self._usage
            Usage._add(u.dynamodb_calls, f"{caller} {op}", 1)
            Usage._add(u.read_units, caller, reads)
            Usage._add(u.write_units, caller, writes + index)
            Usage._add(u.index_write_units, caller, index)

    def _metered_send(self, original: Any) -> Any:
        meter = self

        def send_email(handler: Any) -> Any:
            answer = original(handler)
            destination = json.loads(handler.body).get("Destination", {})
            recipients = sum(
                len(destination.get(k, [])) for k in ("ToAddresses", "CcAddresses", "BccAddresses")
            )
            with meter._lock:  # SES bills each recipient as a message
                meter._usage.ses_messages += recipients
            return answer

        return send_email

    def _reading(self, name: str, filters: tuple[str, ...]) -> Callable[[Any], Any]:
        """Wrap Table.query/scan: note the sizes of the items read, before filter and
        projection (DynamoDB bills what it read, not what it returned)."""

        def make(original: Any) -> Any:
            signature = inspect.signature(original)
            meter = self

            def read(table: Any, *args: Any, **kwargs: Any) -> Any:
                answer = original(table, *args, **kwargs)
                sink = getattr(meter._local, "read_sizes", None)
                if sink is not None:
                    bound = signature.bind(table, *args, **kwargs)
                    for param in (*filters, "projection_expressions", "projection_expression"):
                        if param in signature.parameters:
                            bound.arguments[param] = None
                    for param, spec in signature.parameters.items():
                        if spec.kind is inspect.Parameter.VAR_KEYWORD:
                            bound.arguments[param] = {}  # legacy QueryFilter
                    if name == "scan":
                        bound.arguments["filters"] = {}
                    items, _, _ = original(*bound.args, **bound.kwargs)
                    sink.append(sum(item_size(i.to_json()["Attributes"]) for i in items))
                return answer

            return read

        return make

    def _metered_dynamodb(self, original: Any) -> Any:
        meter = self

        def call_action(handler: Any) -> Any:
            op = handler._get_action()
            if op not in _WRITES and op not in _READS:
                return original(handler)
            params = getattr(handler, "params", None) or {}
            backend = handler.dynamodb_backend
            try:
                touched = _touched(backend, op, params)
                before = {k: _get(backend, *k) for k in touched}
            except Exception:  # no such table, a key missing: moto answers it, unbilled
                return original(handler)
            meter._local.read_sizes = []
            try:
                answer = original(handler)
            finally:
                pages, meter._local.read_sizes = meter._local.read_sizes, None
            status, _, body = answer
            failed = int(status) >= 300
            if failed and not any(f in str(body) for f in _CHARGED_FAILURES):
                return answer  # refused before any item was read or written: not billed
            try:
                after = {k: _get(backend, *k) for k in touched}
                units = _units(backend, op, params, touched, before, after, pages)
            except Exception:  # never change an answer; say the figures miss a call
                with meter._lock:
                    meter._usage.unmetered += 1
                return answer
            meter._record_dynamodb(op, *units)
            return answer

        return call_action


# --- DynamoDB requests: which items, and what they cost --------------------------------------

Touched = tuple[str, str]  # (table name, the key as sorted JSON)


def _key_of(backend: Any, table_name: str, item_or_key: Attrs) -> Touched:
    table = backend.get_table(table_name)
    names = [n for n in (table.hash_key_attr, table.range_key_attr) if n]
    return table_name, json.dumps({n: item_or_key[n] for n in names}, sort_keys=True)


def _touched(backend: Any, op: str, params: dict[str, Any]) -> list[Touched]:
    """The items a request reads or writes by key (Query and Scan read by condition)."""
    if op in ("PutItem",):
        return [_key_of(backend, params["TableName"], params["Item"])]
    if op in ("UpdateItem", "DeleteItem", "GetItem"):
        return [_key_of(backend, params["TableName"], params["Key"])]
    if op in ("TransactWriteItems", "TransactGetItems"):
        found = []
        for action in params.get("TransactItems", []):
            ((_, spec),) = action.items()
            found.append(_key_of(backend, spec["TableName"], spec.get("Key") or spec["Item"]))
        return found
    if op == "BatchWriteItem":
        found = []
        for table_name, requests in params.get("RequestItems", {}).items():
            for request in requests:
                ((_, spec),) = request.items()
                found.append(_key_of(backend, table_name, spec.get("Key") or spec["Item"]))
        return found
    if op == "BatchGetItem":
        return [
            _key_of(backend, table_name, key)
            for table_name, spec in params.get("RequestItems", {}).items()
            for key in spec.get("Keys", [])
        ]
    return []


def _get(backend: Any, table_name: str, key: str) -> Attrs | None:
    item = backend.get_item(table_name, json.loads(key))
    return None if item is None else item.to_json()["Attributes"]


def _indexes(backend: Any, table_name: str) -> list[Index]:
    table = backend.get_table(table_name)
    table_keys = tuple(n for n in (table.hash_key_attr, table.range_key_attr) if n)
    return [
        Index(
            name=index.name,
            key_attrs=tuple(index.schema_key_attrs),
            table_key_attrs=table_keys,
            projection=index.projection.get("ProjectionType", "ALL"),
            non_key_attrs=tuple(index.projection.get("NonKeyAttributes", [])),
        )
        for index in table.global_indexes
    ]


def _units(
    backend: Any,
    op: str,
    params: dict[str, Any],
    touched: list[Touched],
    before: dict[Touched, Attrs | None],
    after: dict[Touched, Attrs | None],
    pages: list[int],
) -> tuple[float, float, float]:
    """(read units, table write units, index write units) of one request."""
    if op in ("Query", "Scan"):
        consistent = bool(params.get("ConsistentRead"))
        return sum(read_units(size, consistent) for size in pages), 0.0, 0.0
    if op == "GetItem":
        return read_units(item_size(before[touched[0]]), bool(params.get("ConsistentRead"))), 0, 0
    if op == "BatchGetItem":
        strong = {t: bool(s.get("ConsistentRead")) for t, s in params["RequestItems"].items()}
        return sum(read_units(item_size(before[k]), strong[k[0]]) for k in touched), 0, 0
    if op == "TransactGetItems":
        return sum(read_units(item_size(before[k]), transactional=True) for k in touched), 0, 0
    transactional = op == "TransactWriteItems"
    table_units, index_units = 0.0, 0.0
    for key in touched:
        old, new = before[key], after[key]
        table_units += write_units(max(item_size(old), item_size(new)), transactional)
        for index in _indexes(backend, key[0]):
            # Index entries are kept by DynamoDB's own (standard) writes, also in a transaction.
            index_units += sum(write_units(size) for size in index.writes(old, new))
    return 0.0, table_units, index_units
