"""Where moto's DynamoDB is not DynamoDB, made right for the local stack (and only there).

1. TransactWriteItems: moto deep-copies every table a transaction touches, then rolls back a
   cancelled one by swapping the whole copy back in. That costs time and memory in proportion to
   the table (a billing run over 100,000 subscriptions spent seconds on every claim), and the swap
   silently drops what other requests wrote meanwhile. Here a transaction checks all of its
   conditions first and writes only when they all hold, as DynamoDB does; to undo a write that
   fails half-way it keeps the old versions of just the items it touches.
2. Concurrency: moto's server answers on many threads, but its tables are plain dicts: a write
   during another request's iteration fails that request, and a transaction is not atomic
   against single-item writes. One lock serialises table operations (DynamoDB is serialisable
   per item; moto on a laptop needs no more parallelism than that).
3. Query: moto gathers a Query's candidates by sorting every item of the table, so a Query of
   one partition costs O(table log table), and an index Query compares every item of the table
   (a webhook fan-out's GSI query took 0.55 s at 80,000 items). Here a table Query looks only at
   its partition, and an index Query at the items holding its partition key value, from a map
   kept by every write (moto still applies the key conditions and sorts the matches).

Where moto's server and ASL interpreter cost what AWS does not (throughput, issue 10):

4. Every request looked its backend up under one global lock by listing moto's package folder
   from disk and trying hundreds of URL patterns: answers waited on each other's syscalls. The
   answer depends on the host name only, so it is remembered.
5. The interpreter parsed the whole definition with ANTLR on every execution (~30 ms of CPU
   under the GIL) and rebuilt a JSONPath parser (ply's yacc tables) for every path it
   evaluated. The syntax tree is kept per definition text (each execution still gets fresh
   evaluation components from it) and compiled JSONPaths are kept per path text.
6. It built a new boto3 client (service model, endpoint resolution, signer) for every Task
   state; a client per service and region is kept, with a pool sized for many executions.
7. The server's listen backlog was werkzeug's 128 and Nagle was on: ≥ 200 concurrent
   connections are accepted, and answers are not held back 40 ms by delayed ACKs.
8. werkzeug's server closes every connection after one answer, so each AWS call made in this
   process (the handlers', the interpreter's) paid a TCP connect and a new server thread, and
   a busy stack ran out of ephemeral ports in TIME_WAIT. InProcess hands those calls to moto's
   WSGI application directly (a botocore before-send hook, as for Lambda); other processes
   (the AWS CLI, benches' worker processes) still reach the same state over HTTP.
9. moto 5.2 writes every DynamoDB answer through a generic serializer that walks botocore's
   shape model attribute by attribute: a Query of three small items spent more CPU there than
   in the query. Item operations' answers are already DynamoDB JSON, so they are dumped as is.

Where moto's Step Functions lacks what operators use (issue 13):

10. RedriveExecution answered 500 (moto has no such action). Here, as AWS documents it, a FAILED,
    TIMED_OUT or ABORTED Standard execution continues from the state that did not complete,
    with the input that state was given, under the same ARN: the history keeps its events and
    goes on after an ExecutionRedriven event; describe-execution shows redriveCount,
    redriveDate and redriveStatus, list-executions the counts and its redriveFilter;
    $$.Execution carries RedriveCount and RedriveTime. The state
    to resume is the last one entered at the top level and never exited. An inline Map there
    runs again only the iterations that did not succeed (the others' outputs are kept from the
    attempt that failed). Not as in AWS: a Parallel state or a Distributed Map that failed runs
    again whole (AWS reruns only the failed branches or child executions; neither state machine
    here has one that can fail: the billing lanes catch every error), and the 14-day
    redrivable window is not enforced.

Where moto's Step Functions waits differently from AWS (a review's task token, issue 13):

11. A task token completed by the very Lambda the task invoked (a review already decided, or
    settled by the sweep, when a redrive re-enters AwaitOperatorReview) was seen only after
    HeartbeatSeconds: the heartbeat wait starts after the invocation and sleeps on a fresh
    event. Here a result already handed over ends the wait at once, as in AWS.
12. StopExecution of an execution waiting on a task token marked it stopping but left it
    RUNNING until its heartbeat or timeout ran out (an hour, or 14 days), and then recorded a
    timeout. Here stopping wakes every wait of that execution and it ends ABORTED, as in AWS.
SendTaskSuccess, SendTaskFailure and SendTaskHeartbeat otherwise work as in AWS (an unknown or
finished token answers InvalidToken or TaskTimedOut), in this process and over HTTP.
"""

from __future__ import annotations

import functools
import io
import json
import socket
import sys
import threading
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:  # moto is imported only when the fixes are installed
    from moto.stepfunctions.parser.api import HistoryEvent

_LOCK = threading.RLock()
_LOCKED = ("put_item", "get_item", "update_item", "delete_item", "query", "scan")
_installed = False
LISTEN_BACKLOG = 1024  # the kernel caps it at net.core.somaxconn (4096 on current Linux)


def install() -> None:
    """Patch moto's DynamoDB backend, server and ASL interpreter in this process (idempotent)."""
    global _installed
    from moto.dynamodb.models import DynamoDBBackend

    if _installed:
        return
    for name in _LOCKED:
        setattr(DynamoDBBackend, name, _serialised(getattr(DynamoDBBackend, name)))
    DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
    _partition_queries()
    _remembered_backends()
    _parsed_once()
    _shared_clients()
    _many_connections()
    _plain_json_answers()
    _redrive()
    _stop_wakes_callback_waits()
    _installed = True


# --- 3. Query by partition, and by index key ---------------------------------------------------

_querying = threading.local()


def _partition_queries() -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    query, all_items = Table.query, Table.all_items
    put, delete, update = Table.put_item, Table.delete_item, DynamoDBBackend.update_item

    @functools.wraps(query)
    def partition_query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        _querying.table, _querying.hash_key = self, hash_key
        _querying.index = kwargs.get("index_name") or (args[6] if len(args) > 6 else None)
        _querying.conditions = kwargs.get("hash_key_conditions") or []
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            _querying.table = None

    @functools.wraps(all_items)
    def candidates(self: Any) -> Any:
        if getattr(_querying, "table", None) is not self:
            return all_items(self)
        return _queried(self)

    # Every way an item is written goes through these three (a transaction's writes and undos,
    # a batch write's, UpdateItem changing an item in place), all under _LOCK as queries are.
    @functools.wraps(put)
    def put_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        item = put(self, *args, **kwargs)
        _indexed(self, item)
        return item

    @functools.wraps(delete)
    def delete_item(self: Any, hash_key: Any, range_key: Any) -> Any:
        item = delete(self, hash_key, range_key)
        _unindexed(self, (hash_key, range_key))
        return item

    @functools.wraps(update)
    def update_item(self: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            item = update(self, table_name, *args, **kwargs)
            _indexed(self.get_table(table_name), item)
            return item

    Table.query = partition_query  # type: ignore[method-assign]
    Table.all_items = candidates  # type: ignore[method-assign]
    Table.put_item = put_item  # type: ignore[method-assign]
    Table.delete_item = delete_item  # type: ignore[method-assign]
    DynamoDBBackend.update_item = update_item  # type: ignore[method-assign]


def _queried(table: Any) -> list[Any]:
    """The items a query of the table reads: its partition's, or those its index key names.

    query() still checks every candidate against the key conditions and sorts them, so an
    index entry left over from an item's earlier version only costs a comparison.
    """
    _querying.table = None  # once per query: the rest of moto sees the real thing
    if _querying.index:
        attribute = _index_hash_attributes(table).get(_querying.index)
        wanted = dict(_querying.conditions).get(attribute) if attribute else None
        if wanted is None:  # a key shape this index does not keep: every item, as moto does
            return [i for part in table.items.values() for i in _partition(table, part)]
        return list(_index_of(table)[_querying.index].get(wanted, {}).values())
    part = table.items.get(_querying.hash_key)
    return _partition(table, part) if part is not None else []


def _partition(table: Any, part: Any) -> list[Any]:
    return list(part.values()) if table.range_key_attr else [part]


def _index_hash_attributes(table: Any) -> dict[str, str]:
    """Each index's (first) partition key attribute."""
    return {
        index.name: next(k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH")
        for index in table.all_indexes()
    }


_KEY_TYPES = ("S", "N", "B")


class _Index:
    """Per table: for each index, its partition key's value → the items holding it (by key)."""

    def __init__(self, table: Any) -> None:
        self.items_dict = table.items  # a restored table replaces it: then this index is rebuilt
        self.attributes = _index_hash_attributes(table)
        self.by_value: dict[str, dict[Any, dict[tuple[Any, Any], Any]]] = {
            name: {} for name in self.attributes
        }
        self.placed: dict[tuple[Any, Any], list[tuple[str, Any]]] = {}
        for part in table.items.values():
            for item in _partition(table, part):
                self.put(item)

    def put(self, item: Any) -> None:
        key = (item.hash_key, item.range_key)
        self.drop(key)
        places = []
        for name, attribute in self.attributes.items():
            value = item.attrs.get(attribute)
            if value is not None and value.type in _KEY_TYPES:  # others index nothing
                self.by_value[name].setdefault(value, {})[key] = item
                places.append((name, value))
        if places:
            self.placed[key] = places

    def drop(self, key: tuple[Any, Any]) -> None:
        for name, value in self.placed.pop(key, ()):
            holders = self.by_value[name].get(value)
            if holders is not None:
                holders.pop(key, None)
                if not holders:
                    del self.by_value[name][value]


def _index_of(table: Any) -> dict[str, dict[Any, dict[tuple[Any, Any], Any]]]:
    """The table's index map, built on its first index query and kept by every write since."""
    index = getattr(table, "_cancelflow_index", None)
    if (
        index is None
        or index.items_dict is not table.items
        or len(index.attributes) != len(table.all_indexes())
    ):
        index = table._cancelflow_index = _Index(table)
    return index.by_value


def _indexed(table: Any, item: Any) -> None:
    index = getattr(table, "_cancelflow_index", None)
    if index is not None and item is not None:
        index.put(item)


def _unindexed(table: Any, key: tuple[Any, Any]) -> None:
    index = getattr(table, "_cancelflow_index", None)
    if index is not None:
        index.drop(key)


# --- 4. Backend lookup ---------------------------------------------------------------------


def _remembered_backends() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    lookup = DomainDispatcherApplication.get_backend_for_host
    known: dict[tuple[int, str | None], Any] = {}

    @functools.wraps(lookup)
    def remembered(self: Any, host: str | None) -> Any:
        key = (id(self), host)
        if key not in known:
            known[key] = lookup(self, host)
        return known[key]

    DomainDispatcherApplication.get_backend_for_host = remembered  # type: ignore[method-assign]


# --- 5. Parse once ----------------------------------------------------------------------------


def _parsed_once() -> None:
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor
    from moto.stepfunctions.parser.asl.utils import json_path

    json_path.parse = functools.lru_cache(maxsize=4096)(json_path.parse)  # type: ignore[attr-defined]
    result_path.parse = functools.lru_cache(maxsize=4096)(result_path.parse)  # type: ignore[attr-defined]
    parse = AmazonStateLanguageParser.parse
    trees: dict[str, Any] = {}

    def parse_once(definition: str) -> tuple[Any, Any]:
        tree = trees.get(definition)
        if tree is None:  # the first time: syntax errors raise as before
            program, tree = parse(definition)
            if len(trees) < 256:
                trees[definition] = tree
            return program, tree
        return Preprocessor().visit(tree), tree

    AmazonStateLanguageParser.parse = staticmethod(parse_once)  # type: ignore[method-assign]


# --- 6. Clients -----------------------------------------------------------------------------


def _shared_clients() -> None:
    import boto3
    from botocore.config import Config
    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for
    clients: dict[tuple[Any, ...], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        intercepting = botocore_stubber.enabled
        endpoint = None if intercepting else f"http://localhost:{moto_server_port()}"
        # A new stack in this process makes a new default session (with its own hooks).
        key = (id(boto3._get_default_session()), region, service, endpoint)
        with lock:
            client = clients.get(key)
            if client is None:
                client = clients[key] = boto3.client(
                    aws_access_key_id="ak",
                    region_name=region,
                    service_name=service,
                    aws_secret_access_key="sk",  # noqa: S106 (moto's, as moto has it)
                    endpoint_url=endpoint,
                    config=Config(
                        parameter_validation=False,
                        retries={"max_attempts": 0, "total_max_attempts": 1},
                        connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                        read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                        max_pool_connections=256,
                    ),
                )
        return client

    # Modules that imported the function by name hold their own reference.
    boto_client.boto_client_for = boto_client_for  # type: ignore[assignment]
    for module in list(sys.modules.values()):
        if getattr(module, "boto_client_for", None) is original:
            module.boto_client_for = boto_client_for  # type: ignore[attr-defined]


# --- 9. Answers -----------------------------------------------------------------------------

_ITEM_ACTIONS = frozenset(
    (
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    )
)


def _plain_json_answers() -> None:
    from moto.dynamodb.responses import DynamoHandler, DynamoResult

    serialized = DynamoHandler.serialized

    def plain(self: Any, action_result: Any) -> Any:
        result = action_result.result if type(action_result) is DynamoResult else None
        if isinstance(result, dict) and self._get_action() in _ITEM_ACTIONS:
            try:
                body = json.dumps({k: v for k, v in result.items() if v is not None})
            except TypeError:  # something not plain JSON (bytes): moto's way
                return serialized(self, action_result)
            headers = {"Content-Type": "application/x-amz-json-1.0"} | self.response_headers
            return 200, headers, body
        return serialized(self, action_result)

    DynamoHandler.serialized = plain  # type: ignore[method-assign]


# --- 8. Calls from this process ---------------------------------------------------------------


class _Body(io.BytesIO):
    def stream(self, **_: Any) -> Any:
        chunk = self.read()
        while chunk:
            yield chunk
            chunk = self.read()


class InProcess:
    """Answer this process's AWS calls to the moto server at `port` without a socket."""

    # S3 streams bodies and routes by virtual host; Lambda Invoke has its own hook.
    SKIPPED = ("s3", "lambda")

    def __init__(self, app: Any, port: int) -> None:
        self.app = app
        self.origins = (f"http://127.0.0.1:{port}", f"http://localhost:{port}")
        self.hook = ("before-send", self._send)

    def _send(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse
        from werkzeug.test import EnvironBuilder, run_wsgi_app

        url = request.url
        origin = next((o for o in self.origins if url.startswith(o + "/")), None)
        if origin is None or _service_of(request) in self.SKIPPED:
            return None
        body = request.body or b""
        if hasattr(body, "read"):
            body = body.read()
        if isinstance(body, str):
            body = body.encode()
        path, _, query = url[len(origin) :].partition("?")
        headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        environ = EnvironBuilder(
            path=path,
            base_url=origin,
            query_string=query,
            method=request.method,
            headers=headers,
            data=body,
        ).get_environ()
        chunks, status, answer_headers = run_wsgi_app(self.app, environ, buffered=True)
        try:
            content = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        return AWSResponse(url, int(status.split()[0]), dict(answer_headers), _Body(content))

    def install(self) -> None:
        import boto3
        import botocore.handlers

        if self.hook not in botocore.handlers.BUILTIN_HANDLERS:
            botocore.handlers.BUILTIN_HANDLERS.append(self.hook)
        if boto3.DEFAULT_SESSION is not None:
            boto3.DEFAULT_SESSION.events.register(*self.hook)

    def uninstall(self) -> None:
        import boto3
        import botocore.handlers

        if self.hook in botocore.handlers.BUILTIN_HANDLERS:
            botocore.handlers.BUILTIN_HANDLERS.remove(self.hook)
        if boto3.DEFAULT_SESSION is not None:
            boto3.DEFAULT_SESSION.events.unregister(*self.hook)


def _service_of(request: Any) -> str:
    """The signing name in the SigV4 credential scope (…/region/service/aws4_request)."""
    auth = request.headers.get("Authorization", b"")
    auth = auth.decode() if isinstance(auth, bytes) else auth
    scope = auth.split("Credential=", 1)[-1].split(",", 1)[0].split("/")
    return scope[3] if len(scope) > 3 else ""


# --- 7. Connections -------------------------------------------------------------------------


def _many_connections() -> None:
    from werkzeug.serving import ThreadedWSGIServer

    ThreadedWSGIServer.request_queue_size = LISTEN_BACKLOG
    get_request = ThreadedWSGIServer.get_request

    def get_request_nodelay(self: Any) -> Any:
        sock, address = get_request(self)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, address

    ThreadedWSGIServer.get_request = get_request_nodelay  # type: ignore[method-assign]


def _serialised(method: Any) -> Any:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(*args, **kwargs)

    return locked


def _key_of(table: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return dict(op["Key"])
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    from moto.dynamodb.exceptions import (
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    with _LOCK:
        seen: set[tuple[str, str]] = set()
        plan: list[tuple[str, dict[str, Any], dict[str, Any], Any]] = []
        errors: list[tuple[Any, Any, Any]] = []
        for entry in transact_items:
            if len(entry) > 1:
                raise TransactWriteSingleOpException
            op_type, op = next(iter(entry.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise MockValidationException("Unsupported transaction operation")
            table = self.get_table(op["TableName"])
            key = _key_of(table, op_type, op)
            marker = (op["TableName"], json.dumps(key, sort_keys=True))
            if marker in seen:
                raise MultipleTransactionsException()
            seen.add(marker)
            current = self.get_item(op["TableName"], key)
            errors.append(_check(op, current))
            plan.append((op_type, op, key, current))
        if any(code is not None for code, _, _ in errors):
            raise TransactionCanceledException(errors)
        undo: list[tuple[str, dict[str, Any], Any]] = []
        try:
            for op_type, op, key, current in plan:
                undo.append((op["TableName"], key, current))
                _apply(self, op_type, op, key)
        except Exception:
            for table_name, key, old in reversed(undo):
                _restore(self, table_name, key, old)
            raise


def _check(op: dict[str, Any], current: Any) -> tuple[Any, Any, Any]:
    from moto.dynamodb.comparisons import get_filter_expression as condition_of

    expression = op.get("ConditionExpression")
    if expression is None:
        return (None, None, None)
    condition = condition_of(
        expression, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
    )
    if condition.expr(current):
        return (None, None, None)
    old = None
    if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current is not None:
        old = current.to_json()["Attributes"]
    return ("ConditionalCheckFailed", "The conditional request failed", old)


def _apply(self: Any, op_type: str, op: dict[str, Any], key: dict[str, Any]) -> None:
    names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
    condition = op.get("ConditionExpression")  # holds: checked above, under the same lock
    if op_type == "Put":
        self.put_item(
            op["TableName"],
            op["Item"],
            condition_expression=condition,
            expression_attribute_names=names,
            expression_attribute_values=values,
        )
    elif op_type == "Delete":
        self.delete_item(
            op["TableName"],
            key,
            condition_expression=condition,
            expression_attribute_names=names,
            expression_attribute_values=values,
        )
    elif op_type == "Update":
        self.update_item(
            op["TableName"],
            key,
            update_expression=op["UpdateExpression"],
            condition_expression=condition,
            expression_attribute_names=names,
            expression_attribute_values=values,
        )


def _restore(self: Any, table_name: str, key: dict[str, Any], old: Any) -> None:
    table = self.get_table(table_name)
    if old is not None:
        table.put_item(old.to_json()["Attributes"])
        return
    hash_value, range_value = self.get_keys_value(table, key)
    if table.get_item(hash_value, range_value) is not None:
        table.delete_item(hash_value, range_value)


# --- 10. Redrive ------------------------------------------------------------------------------

_REDRIVABLE = ("FAILED", "TIMED_OUT", "ABORTED")
_NESTING = ("MapState", "ParallelState")  # their inner states' events are not the top level's
_redrive_lock = threading.Lock()


def _redrive() -> None:
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend
    from moto.stepfunctions.responses import StepFunctionResponse

    describe = StepFunctionResponse.describe_execution

    def redrive_execution(self: Any) -> Any:
        from moto.core.responses import ActionResult

        execution = self.stepfunction_backend.redrive_execution(
            self._get_param("executionArn"), self._get_param("clientToken")
        )
        return ActionResult({"redriveDate": execution.cancelflow_redrive_date})

    @functools.wraps(describe)
    def describe_execution(self: Any) -> Any:
        answer = describe(self)
        execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
        _result(answer).update(_redrive_fields(execution))
        return answer

    listing = StepFunctionResponse.list_executions

    @functools.wraps(listing)
    def list_executions(self: Any) -> Any:
        answer = listing(self)
        redriven = {"REDRIVEN": True, "NOT_REDRIVEN": False}.get(self._get_param("redriveFilter"))
        backend = self.stepfunction_backend
        items = []
        for item in _result(answer)["executions"]:
            execution = backend.describe_execution(item["executionArn"])
            count = getattr(execution, "cancelflow_redrive_count", 0)
            if redriven is None or redriven == (count > 0):
                item["redriveCount"] = count
                if count:
                    item["redriveDate"] = execution.cancelflow_redrive_date
                items.append(item)
        _result(answer)["executions"] = items
        return answer

    StepFunctionResponse.list_executions = list_executions  # type: ignore[method-assign]
    StepFunctionResponse.redrive_execution = redrive_execution  # type: ignore[attr-defined]
    StepFunctionResponse.describe_execution = describe_execution  # type: ignore[method-assign]
    StepFunctionsParserBackend.redrive_execution = _redrive_execution  # type: ignore[attr-defined]
    _inline_map_iterations_kept()


def _result(answer: Any) -> dict[str, Any]:
    """The answer being built: a dict (moto types ActionResult.result as object)."""
    return cast(dict[str, Any], answer.result)


@functools.cache
def _not_redrivable_error() -> Any:
    from moto.core.exceptions import AWSError

    class ExecutionNotRedrivable(AWSError):
        TYPE = "ExecutionNotRedrivable"
        STATUS = 400

    return ExecutionNotRedrivable


def _not_redrivable(message: str) -> Exception:
    error: Exception = _not_redrivable_error()(message)
    return error


def _redrive_fields(execution: Any) -> dict[str, Any]:
    count = getattr(execution, "cancelflow_redrive_count", 0)
    fields: dict[str, Any] = {"redriveCount": count}
    if count:
        fields["redriveDate"] = execution.cancelflow_redrive_date
    reason = _why_not_redrivable(execution)
    fields["redriveStatus"] = "NOT_REDRIVABLE" if reason else "REDRIVABLE"
    if reason:
        fields["redriveStatusReason"] = reason
    return fields


def _why_not_redrivable(execution: Any) -> str | None:
    if getattr(execution.sm_type, "value", execution.sm_type) != "STANDARD":
        return "Execution is of type EXPRESS and cannot be redriven."
    if execution.status not in _REDRIVABLE:
        return f"Execution is {execution.status} and cannot be redriven."
    return None


def _redrive_execution(self: Any, execution_arn: str, client_token: str | None = None) -> Any:
    from datetime import UTC, datetime

    from moto.stepfunctions.parser.api import ExecutionStatus

    execution = self.describe_execution(execution_arn)
    with _redrive_lock:
        if client_token and client_token == getattr(execution, "cancelflow_redrive_token", None):
            return execution  # the same request again: the redrive it started
        reason = _why_not_redrivable(execution)
        if reason:
            raise _not_redrivable(reason)
        events = execution.exec_worker.env.event_manager.get_event_history()
        state_name, state_input = _resume_point(events, execution)
        count = getattr(execution, "cancelflow_redrive_count", 0) + 1
        now = datetime.now(UTC)
        worker = _RedriveWorker.of(execution, events, state_name, state_input, count, now)
        execution.cancelflow_redrive_count = count
        execution.cancelflow_redrive_date = now
        execution.cancelflow_redrive_token = client_token
        execution.exec_status = ExecutionStatus.RUNNING
        execution.stop_date = execution.error = execution.cause = execution.output = None
        execution.exec_worker = worker
        worker.start()
    return execution


def _resume_point(events: list[HistoryEvent], execution: Any) -> tuple[str, Any]:
    """The top-level state that was entered and never exited, and the input it was given."""
    depth, entered, exited = 0, None, True
    for event in events:
        kind = event["type"]
        nesting = kind.startswith(_NESTING)
        if kind.endswith("StateEntered") and depth == 0:
            details = event["stateEnteredEventDetails"]
            assert details is not None  # every StateEntered event has its details
            entered, exited = (details["name"], details.get("input")), False
        elif kind.endswith("StateExited") and depth == (1 if nesting else 0):
            exited = True
        if nesting and kind.endswith("StateEntered"):
            depth += 1
        elif nesting and kind.endswith(("StateExited", "StateFailed", "StateAborted")):
            depth = max(0, depth - 1)
    if entered is None:  # it ended before its first state: from the start
        start_at = json.loads(execution.state_machine.definition)["StartAt"]
        return start_at, execution.input_data
    if exited:  # never from the start, which would run again what succeeded
        raise _not_redrivable("No state that did not complete: nothing to resume from.")
    name, text = entered
    return name, json.loads(text) if text else {}


def _redrive_worker_class() -> Any:
    from moto.stepfunctions.parser.api import HistoryEventType
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
    from moto.stepfunctions.parser.asl.component.program.program import Program
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.eval.event.event_manager import (
        EventHistoryContext,
        EventManager,
    )
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
    from moto.stepfunctions.parser.utils import TMP_THREADS

    class RedriveWorker(ExecutionWorker):  # type: ignore[misc]
        """Go on with an ended execution from one state: its history and context continue."""

        @classmethod
        def of(
            cls,
            execution: Any,
            events: list[HistoryEvent],
            state_name: str,
            state_input: Any,
            count: int,
            at: Any,
        ) -> Any:
            previous = execution.exec_worker
            worker = cls(
                evaluation_details=previous._evaluation_details,
                exec_comm=previous._execution_communication,
                cloud_watch_logging_session=previous._cloud_watch_logging_session,
                activity_store=previous._activity_store,
            )
            # Ready before it is visible: describe and history read worker.env at once.
            env = worker._get_evaluation_environment()
            # The history goes on in a manager of its own: what the ended attempt's threads may
            # still add (a Task in flight when it was aborted) stays out, as in AWS.
            logging_session = previous.env.event_manager._cloud_watch_logging_session
            env.event_manager = EventManager(logging_session)
            env.event_manager._history_event_list.extend(events)
            env.event_manager._event_id_gen._next_id = (events[-1]["id"] if events else 0) + 1
            # moto marks it Final for its own flow; a redrive continues the ended attempt's.
            env.event_history_context = EventHistoryContext(  # type: ignore[misc]
                previous_event_id=events[-1]["id"] if events else 0
            )
            # Map runs of every attempt stay listed (list-map-runs), as in AWS.
            env.map_run_record_pool_manager = previous.env.map_run_record_pool_manager
            # AWS's context object has these; moto's ExecutionData type does not know them.
            context = cast(
                dict[str, Any], env.states.context_object.context_object_data["Execution"]
            )
            context["RedriveCount"] = count
            context["RedriveTime"] = at.isoformat()
            env.event_manager.add_event(
                context=env.event_history_context,
                event_type=HistoryEventType.ExecutionRedriven,
                event_details=EventDetails(
                    executionRedrivenEventDetails={"redriveCount": count}  # type: ignore[typeddict-item]
                ),
                update_source_event_id=False,
            )
            env.states.reset(input_value=state_input)
            env.next_state_name = state_name
            _RESUMED[execution.exec_arn] = state_name  # an inline Map there keeps what succeeded
            worker.env = env
            return worker

        def _execution_logic(self) -> None:
            # The parser's entry point is the whole definition, a Program.
            program = cast(Program, self._get_evaluation_entrypoint())
            timeout = program.timeout_seconds.timeout_seconds if program.timeout_seconds else None
            env = self.env
            if env is None:
                raise RuntimeError("a redrive worker is made with its environment (of)")
            # Program.eval without its `next state = StartAt`.
            inner = threading.Thread(target=EvalComponent.eval, args=(program, env), daemon=True)
            TMP_THREADS.append(inner)
            inner.start()
            inner.join(timeout=timeout)
            if inner.is_alive():
                env.set_timed_out()
            with _redrive_lock:  # the state it resumed at was not an inline Map: forget it
                _RESUMED.pop(self._evaluation_details.execution_details.arn, None)
            self._execution_communication.terminated()

    return RedriveWorker


class _RedriveWorker:
    _class: Any = None

    @classmethod
    def of(cls, *args: Any) -> Any:
        if cls._class is None:
            cls._class = _redrive_worker_class()
        return cls._class.of(*args)


# An inline Map: the outputs of its iterations that succeeded, per execution and state (state
# names are unique in a state machine), from its latest entry; a redrive that resumes at that
# Map runs only the others. Task and Map states run in frames of their own, so the state to
# resume is looked up by execution, not marked on the environment.
_ITERATIONS: dict[tuple[str, str], dict[str, Any]] = {}
_RESUMED: dict[str, str] = {}  # execution ARN -> the state its redrive resumes at
_ITERATIONS_KEPT = 1024
_map_entry = threading.local()


def _inline_map_iterations_kept() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.inline_item_processor import (  # noqa: E501
        InlineItemProcessor,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.iterator.inline_iterator import (  # noqa: E501
        InlineIterator,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.job import (
        JobClosed,
        JobPool,
    )

    def entered(body: Any) -> Any:
        @functools.wraps(body)
        def kept(self: Any, env: Any) -> None:
            eval_input = env.stack[-1]
            execution = env.states.context_object.context_object_data["Execution"]["Id"]
            key = (execution, eval_input.state_name)
            items = json.dumps(eval_input.input_items, sort_keys=True, default=str)
            reused: dict[int, Any] = {}
            with _redrive_lock:
                previous = _ITERATIONS.get(key)
                if _RESUMED.get(execution) == eval_input.state_name:
                    del _RESUMED[execution]  # its first entry only
                    if previous and previous["items"] == items:
                        reused = dict(previous["outputs"])
                if len(_ITERATIONS) >= _ITERATIONS_KEPT and key not in _ITERATIONS:
                    _ITERATIONS.pop(next(iter(_ITERATIONS)))
                record = _ITERATIONS[key] = {"items": items, "outputs": dict(reused)}
            _map_entry.pool = (record["outputs"], reused)
            try:
                body(self, env)
            finally:
                _map_entry.pool = None

        return kept

    init, close = JobPool.__init__, JobPool.close_job

    @functools.wraps(init)
    def pool_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        entry, _map_entry.pool = getattr(_map_entry, "pool", None), None
        self.cancelflow_outputs = entry[0] if entry else None
        for index, output in (entry[1] if entry else {}).items():
            self._open_jobs[:] = [job for job in self._open_jobs if job.job_index != index]
            self._closed_jobs.add(JobClosed(job_index=index, job_output=output))
        self._notify_on_termination()

    @functools.wraps(close)
    def close_job(self: Any, job: Any) -> None:
        outputs = getattr(self, "cancelflow_outputs", None)
        if outputs is not None and not isinstance(job.job_output, Exception):
            with self._mutex:
                if not self._is_terminated():  # an iteration still running at a failure reruns
                    outputs[job.job_index] = job.job_output
        close(self, job)

    JobPool.__init__ = pool_init  # type: ignore[method-assign]
    JobPool.close_job = close_job  # type: ignore[method-assign]
    for kind in (InlineItemProcessor, InlineIterator):
        kind._eval_body = entered(kind._eval_body)  # type: ignore[method-assign]


# --- 11, 12. Task-token waits: a result handed over early, a stop ----------------------------


def _stop_wakes_callback_waits() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (  # noqa: E501
        StateTaskServiceCallback,
    )
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
    from moto.stepfunctions.parser.backend.execution import Execution

    waited = StateTaskServiceCallback._wait_for_task_token_heartbeat

    @functools.wraps(waited)
    def heartbeat_wait(self: Any, env: Any, callback_endpoint: Any, heartbeat: Any) -> Any:
        early = callback_endpoint.get_outcome()
        return early if early is not None else waited(self, env, callback_endpoint, heartbeat)

    StateTaskServiceCallback._wait_for_task_token_heartbeat = heartbeat_wait  # type: ignore[method-assign,assignment]

    failed = Environment.set_error

    @functools.wraps(failed)
    def set_error(self: Any, error: Any) -> None:
        if isinstance(getattr(self, "_program_state", None), ProgramStopped):
            return  # stopped stays stopped (ABORTED): the woken wait's failure is no failure
        failed(self, error)

    Environment.set_error = set_error  # type: ignore[method-assign]

    original = Execution.stop

    @functools.wraps(original)
    def stop(self: Any, *args: Any, **kwargs: Any) -> Any:
        answer = original(self, *args, **kwargs)
        worker = getattr(self, "exec_worker", None)
        pool = getattr(getattr(worker, "env", None), "callback_pool_manager", None)
        for endpoint in list(getattr(pool, "_pool", {}).values()):
            endpoint.interrupt_all()  # the wait sees its execution stopped and returns
        return answer

    Execution.stop = stop  # type: ignore[method-assign]
