"""The layer's log lines, printed by the running handler's Powertools Logger.

The layer's modules log with stdlib loggers (`logging.getLogger(__name__)`, under `cancelflow`).
Left alone, Lambda's root logger drops their INFO lines, and the lines it keeps have neither the
Powertools JSON nor the correlation id. A handler wrapped in `inject_lambda_context(logger, ...)`
(Powertools' decorator of that name, plus this) has every `cancelflow.*` line of its invocation
printed by its own Logger, with that invocation's correlation id, as if the layer's loggers were
children of that Logger.

The invocation is found through a context variable, not a process global: the local stack runs
every function in one process, concurrent invocations in threads of their own, and each line
carries the id of the invocation that logged it. (A Logger's formatter is shared by every
execution environment of its function there, so the invocation's own keys are put on the line.)
Outside any invocation (scripts, tests) a line goes to the root logger's handlers as before.
"""

from __future__ import annotations

import copy
import functools
import logging
import threading
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities import jmespath_utils

LAYER = "cancelflow"

Handler = TypeVar("Handler", bound=Callable[..., Any])


@dataclass(frozen=True)
class _Invocation:
    logger: Logger
    keys: dict[str, object]  # the invocation's correlation and request ids


_running: ContextVar[_Invocation | None] = ContextVar("cancelflow_invocation", default=None)
_routing = threading.Lock()


def inject_lambda_context(
    logger: Logger, correlation_id_path: str | None = None
) -> Callable[[Handler], Handler]:
    """Powertools' `logger.inject_lambda_context`, and while the handler runs, the layer's log
    lines printed by `logger` with the invocation's correlation id."""
    _route_layer_lines()

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def invoke(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
            keys: dict[str, object] = {}
            request_id = getattr(context, "aws_request_id", None)
            if request_id is not None:
                keys["function_request_id"] = request_id
            if correlation_id_path:  # as Powertools reads it (it raises first if it cannot)
                keys["correlation_id"] = jmespath_utils.query(event, correlation_id_path)
            token = _running.set(_Invocation(logger, keys))
            try:
                return handler(event, context, *args, **kwargs)
            finally:
                _running.reset(token)

        injected = logger.inject_lambda_context(invoke, correlation_id_path=correlation_id_path)
        return cast(Handler, injected)

    return decorate


def _route_layer_lines() -> None:
    """Once per process: the `cancelflow` logger hands its records to _ThroughInvocation."""
    with _routing:
        layer = logging.getLogger(LAYER)
        if any(isinstance(h, _ThroughInvocation) for h in layer.handlers):
            return
        layer.addHandler(_ThroughInvocation(layer.level, layer.propagate))
        layer.setLevel(logging.DEBUG)  # the invocation's Logger decides, as for its children
        layer.propagate = False  # _ThroughInvocation passes on what no invocation takes


class _ThroughInvocation(logging.Handler):
    def __init__(self, level_before: int, propagated_before: bool) -> None:
        super().__init__()
        self.level_before = level_before
        self.propagated_before = propagated_before

    def handle(self, record: logging.LogRecord) -> bool:
        # No lock of its own: the handlers it passes the record to lock themselves.
        try:
            invocation = _running.get()
            if invocation is None:
                self._as_before(record)
            else:
                _through(invocation, record)
        except Exception:  # a log line must never fail the function
            self.handleError(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)

    def _as_before(self, record: logging.LogRecord) -> None:
        """What the record met before this handler: the logger's levels, the root's handlers."""
        root = logging.getLogger()
        level = _own_level(record.name) or self.level_before or root.level
        if record.levelno < level or not self.propagated_before:
            return
        if not root.handlers:  # as logging does when no logger has a handler
            if logging.lastResort and record.levelno >= logging.lastResort.level:
                logging.lastResort.handle(record)
            return
        for handler in root.handlers:
            if record.levelno >= handler.level:
                handler.handle(record)


def _through(invocation: _Invocation, record: logging.LogRecord) -> None:
    """Print the record with the invocation's Logger, as one of its own lines."""
    logger = logging.getLogger(invocation.logger.name)  # the stdlib logger Powertools prints with
    if record.levelno < (_own_level(record.name) or logger.getEffectiveLevel()):
        return
    line = copy.copy(record)
    line.__dict__.update(invocation.keys)  # keys on the record win over the formatter's
    line.name = logger.name  # its handlers, filters and parents treat it as the Logger's own
    logger.handle(line)


def _own_level(name: str) -> int:
    """A level set on the record's logger or a parent of it inside the layer (0: none)."""
    logger: logging.Logger | None = logging.getLogger(name)
    while logger is not None and logger.name != LAYER:
        if logger.level:
            return logger.level
        logger = logger.parent
    return 0
