"""Run the template's Lambda handlers in this process, as the state machine and API call them.

moto would need Docker to run a function. Instead a botocore `before-send.lambda.Invoke` hook
(the public event system moto itself uses) answers Invoke calls by running the handler here,
with the function's environment from template.yaml, and returns an AWS-shaped response
(`X-Amz-Function-Error` when the handler raised). The interpreter cannot tell the difference.

Environments: each function sees the process environment (endpoint, region, fake credentials)
plus exactly its own template variables, also when several run at once in threads:
os.environ is replaced by a mapping with a per-thread overlay.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from io import BytesIO
from types import ModuleType
from typing import Any
from urllib.parse import unquote

import boto3
import botocore.handlers
from botocore.awsrequest import AWSResponse

from local.template import ROOT, Function, Template

sys.path.insert(0, str(ROOT / "layers" / "cancelflow"))  # the layer, as /opt/python


class _ScopedEnviron(MutableMapping[str, str]):
    """os.environ with a per-thread overlay: a function's variables stay its own."""

    def __init__(self, base: MutableMapping[str, str]) -> None:
        self.base = base
        self.local = threading.local()

    def _overlay(self) -> dict[str, str]:
        return getattr(self.local, "overlay", None) or {}

    def __getitem__(self, key: str) -> str:
        overlay = self._overlay()
        return overlay[key] if key in overlay else self.base[key]

    def __setitem__(self, key: str, value: str) -> None:
        overlay = self._overlay()
        if key in overlay:
            overlay[key] = value
        else:
            self.base[key] = value

    def __delitem__(self, key: str) -> None:
        overlay = self._overlay()
        if key in overlay:
            del overlay[key]
        else:
            del self.base[key]

    def __iter__(self) -> Iterator[str]:
        return iter(set(self.base) | set(self._overlay()))

    def __len__(self) -> int:
        return len(set(self.base) | set(self._overlay()))

    def copy(self) -> dict[str, str]:
        return dict(self.items())

    @contextmanager
    def scoped(self, variables: dict[str, str]) -> Iterator[None]:
        previous = getattr(self.local, "overlay", None)
        self.local.overlay = dict(variables)
        try:
            yield
        finally:
            self.local.overlay = previous


def _scoped_environ() -> _ScopedEnviron:
    if not isinstance(os.environ, _ScopedEnviron):
        os.environ = _ScopedEnviron(os.environ)  # type: ignore[assignment]  # noqa: B003 (wraps it)
    return os.environ  # type: ignore[return-value]


class LambdaContext:
    def __init__(self, function: Function, timeout_s: int = 30) -> None:
        self.function_name = function.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function.arn
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function.name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _Raw(BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        chunk = self.read()
        while chunk:
            yield chunk
            chunk = self.read()


class LocalLambdas:
    """The template's functions, importable and invokable in this process."""

    def __init__(self, template: Template, extra_env: dict[str, str] | None = None) -> None:
        self.template = template
        self.functions = template.functions()
        self.extra_env = extra_env or {}
        self._by_name = {f.name: f for f in self.functions.values()}
        self._by_name |= {f.arn: f for f in self.functions.values()}
        self._modules: dict[str, ModuleType] = {}
        self._lock = threading.Lock()
        self.invocations: list[str] = []  # function names, in order (for bench and tests)
        self.environ = _scoped_environ()

    def env_of(self, function: Function) -> dict[str, str]:
        return (
            function.environment
            | self.extra_env
            | {
                "AWS_LAMBDA_FUNCTION_NAME": function.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
            }
        )

    def module(self, function: Function) -> ModuleType:
        with self._lock:
            if function.logical_id not in self._modules:
                module_file, _ = function.handler.rsplit(".", 1)
                path = function.code_dir / f"{module_file}.py"
                name = f"cancelflow_local_fn_{function.logical_id}"
                spec = importlib.util.spec_from_file_location(name, path)
                assert spec and spec.loader
                module = importlib.util.module_from_spec(spec)
                with self.environ.scoped(self.env_of(function)):
                    spec.loader.exec_module(module)  # import-time globals see its env
                self._modules[function.logical_id] = module
            return self._modules[function.logical_id]

    def find(self, name_or_arn: str) -> Function:
        name = name_or_arn.split(":function:")[-1].split(":")[0]
        return self._by_name.get(name_or_arn) or self._by_name[name]

    def invoke(self, name_or_arn: str, event: Any) -> Any:
        """Run the handler; exceptions propagate (the Invoke hook turns them into errors)."""
        function = self.find(name_or_arn)
        module = self.module(function)
        handler = getattr(module, function.handler.rsplit(".", 1)[1])
        self.invocations.append(function.name)
        with self.environ.scoped(self.env_of(function)):
            return handler(event, LambdaContext(function))

    # --- the botocore hook -----------------------------------------------------------------

    def _on_invoke(self, request: Any, **_: Any) -> AWSResponse | None:
        path = request.url.split("/functions/", 1)[-1]
        name = unquote(path.split("/invocations", 1)[0])
        try:
            self.find(name)
        except KeyError:
            return None  # not ours: let moto answer
        body = request.body or b"{}"
        if hasattr(body, "read"):
            body = body.read()
        event = json.loads(body or b"{}")
        headers = {"X-Amz-Executed-Version": "$LATEST", "Content-Type": "application/json"}
        try:
            result = self.invoke(name, event)
            payload = json.dumps(result).encode()
        except Exception as error:  # what Lambda reports for an unhandled exception
            headers["X-Amz-Function-Error"] = "Unhandled"
            payload = json.dumps(
                {
                    "errorMessage": str(error),
                    "errorType": type(error).__name__,
                    "stackTrace": traceback.format_tb(error.__traceback__),
                }
            ).encode()
        return AWSResponse(request.url, 200, headers, _Raw(payload))

    def install(self) -> None:
        """Answer every Lambda Invoke made by any boto3 session in this process."""
        hook = ("before-send.lambda.Invoke", self._on_invoke)
        if hook not in botocore.handlers.BUILTIN_HANDLERS:
            botocore.handlers.BUILTIN_HANDLERS.append(hook)
        if boto3.DEFAULT_SESSION is not None:
            boto3.DEFAULT_SESSION.events.register(*hook)

    def uninstall(self) -> None:
        hook = ("before-send.lambda.Invoke", self._on_invoke)
        if hook in botocore.handlers.BUILTIN_HANDLERS:
            botocore.handlers.BUILTIN_HANDLERS.remove(hook)
        if boto3.DEFAULT_SESSION is not None:
            boto3.DEFAULT_SESSION.events.unregister(*hook)
