"""The in-process Lambdas' log lines, shipped to the local CloudWatch Logs as Lambda ships them.

In AWS every line a function prints lands in its log group `/aws/lambda/<function name>`, so an
operator (and `make trace`) finds a cancel's lines with FilterLogEvents on its correlation id.
Locally the handlers run in this process and Powertools writes to stdout; this handler also
keeps each invocation's lines (formatted by the function's own Powertools formatter, so they are
the same JSON) and puts them into moto's CloudWatch Logs when the invocation ends. One code path
then reads them on both. Worker processes (the benches' isolate mode) are not shipped.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, MutableMapping
from types import ModuleType
from typing import Any

import boto3

from local.template import REGION


class LogShipper(logging.Handler):
    """Keep the log lines of the invocation running on this thread; ship them at its end."""

    def __init__(self, environ: MutableMapping[str, str]) -> None:
        super().__init__()
        self.environ = environ  # the per-thread view: which function is running here
        self.local = threading.local()
        self._client: Any = None
        self._made: set[str] = set()  # log groups and streams created
        self._lock = threading.Lock()

    def attach(self, module: ModuleType) -> None:
        """Ship what the module's Powertools loggers print (each stdlib logger once)."""
        from aws_lambda_powertools import Logger

        for value in vars(module).values():
            if isinstance(value, Logger):
                target = value._logger
                if self not in target.handlers:
                    target.addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        lines = getattr(self.local, "lines", None)
        if lines is None or not self.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
            return
        try:
            # The line as the function's Powertools handler prints it (its JSON, its keys).
            printer = next(
                (h for h in logging.getLogger(record.name).handlers if h is not self), None
            )
            text = printer.format(record) if printer else self.format(record)
            lines.append({"timestamp": int(record.created * 1000), "message": text})
        except Exception:  # a log line must never fail the function
            self.handleError(record)

    def begin(self) -> None:
        self.local.lines = []

    def ship(self, function_name: str, stream: str) -> None:
        """Put the lines this thread kept into the function's log group (after the invocation,
        outside its policy: Lambda's own delivery, not the handler's call)."""
        lines, self.local.lines = getattr(self.local, "lines", None), None
        if not lines:
            return
        group = f"/aws/lambda/{function_name}"
        try:
            client = self._logs()
            makers: list[tuple[str, Callable[[], object]]] = [
                (group, lambda: client.create_log_group(logGroupName=group)),
                (
                    f"{group}:{stream}",
                    lambda: client.create_log_stream(logGroupName=group, logStreamName=stream),
                ),
            ]
            with self._lock:
                for name, make in makers:
                    if name not in self._made:
                        try:
                            make()
                        except client.exceptions.ResourceAlreadyExistsException:
                            pass
                        self._made.add(name)
            client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=lines)
        except Exception as error:  # the stack goes on without its logs
            logging.getLogger(__name__).warning("log lines of %s not shipped: %s", group, error)

    def _logs(self) -> Any:
        if self._client is None:
            self._client = boto3.session.Session().client(
                "logs", region_name=REGION, endpoint_url=os.environ["AWS_ENDPOINT_URL"]
            )
        return self._client


def stream_name(environment: str) -> str:
    """A log stream per execution environment, named as Lambda names them."""
    return time.strftime("%Y/%m/%d", time.gmtime()) + f"/[$LATEST]{environment}"
