"""The layer's log lines are printed by the running handler's Powertools Logger, with that
invocation's correlation id, also when invocations run at once in one process (the local stack).
"""

from __future__ import annotations

import io
import json
import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

from cancelflow.adapters import logs
from local.lambda_runtime import LambdaContext

kcp_logger = logging.getLogger("cancelflow.adapters.kcp")  # as the layer's modules log


def function(
    level: str = "INFO", action: Callable[[], None] = lambda: None
) -> tuple[Callable[[dict[str, Any]], None], io.StringIO]:
    """A handler of a function of its own (a Logger of a new service) and what it prints."""
    out = io.StringIO()
    service = f"unit-{uuid.uuid4().hex[:8]}"
    logger = Logger(service=service, level=level, logger_handler=logging.StreamHandler(out))

    @logs.inject_lambda_context(logger, correlation_id_path="execution_id")
    def handler(event: dict[str, Any], context: LambdaContext) -> None:
        action()
        kcp_logger.info("kcp call", extra={"kcp_ref": event["tno"]})
        kcp_logger.debug("kcp detail")

    context = LambdaContext(logger.service, f"arn:aws:lambda:::function:{logger.service}")
    return lambda event: handler(event, context), out


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_layer_line_is_the_handlers_json_with_its_correlation_id_and_service() -> None:
    invoke, out = function()
    invoke({"execution_id": "arn:execution:one", "tno": "T1"})

    (line,) = lines(out)
    assert line["message"] == "kcp call" and line["kcp_ref"] == "T1"
    assert line["correlation_id"] == "arn:execution:one"
    assert line["service"].startswith("unit-")
    assert line["level"] == "INFO"


def test_invocations_at_once_each_print_their_own_correlation_id() -> None:
    # Two functions, and two invocations of one of them (its Logger's formatter is shared,
    # as between a function's execution environments on the local stack), all in flight.
    both_in = threading.Barrier(3)
    first, first_out = function(action=both_in.wait)
    second, second_out = function(action=both_in.wait)
    threads = [
        threading.Thread(target=first, args=({"execution_id": "exec-a", "tno": "A"},)),
        threading.Thread(target=first, args=({"execution_id": "exec-b", "tno": "B"},)),
        threading.Thread(target=second, args=({"execution_id": "exec-c", "tno": "C"},)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert sorted((x["kcp_ref"], x["correlation_id"]) for x in lines(first_out)) == [
        ("A", "exec-a"),
        ("B", "exec-b"),
    ]
    assert [(x["kcp_ref"], x["correlation_id"]) for x in lines(second_out)] == [("C", "exec-c")]


def test_the_handlers_level_decides_which_layer_lines_are_printed() -> None:
    quiet, quiet_out = function(level="WARNING")
    chatty, chatty_out = function(level="DEBUG")
    quiet({"execution_id": "q", "tno": "Q"})
    chatty({"execution_id": "c", "tno": "C"})

    assert lines(quiet_out) == []
    assert [x["message"] for x in lines(chatty_out)] == ["kcp call", "kcp detail"]


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_outside_an_invocation_layer_lines_reach_the_root_loggers_handlers_as_before() -> None:
    invoke, out = function()  # the layer's lines are routed from here on
    root, kept = logging.getLogger(), Kept()
    level = root.level
    root.setLevel(logging.WARNING)
    root.addHandler(kept)
    try:
        invoke({"execution_id": "x", "tno": "X"})
        kcp_logger.warning("kcp unreachable")
        kcp_logger.info("kcp call")  # below the root logger's level, as before
    finally:
        root.removeHandler(kept)
        root.setLevel(level)

    layer_records = [r for r in kept.records if r.name.startswith("cancelflow")]
    assert [r.getMessage() for r in layer_records] == ["kcp unreachable"]
    assert [x["message"] for x in lines(out)] == ["kcp call"]  # the invocation's line only
