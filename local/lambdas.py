"""Run the template's Lambda handlers in this process, as the state machine and API call them.

moto would need Docker to run a function. Instead a botocore `before-send.lambda.Invoke` hook
(the public event system moto itself uses) answers Invoke calls by running the handler here,
with the function's environment from template.yaml, and returns an AWS-shaped response
(`X-Amz-Function-Error` when the handler raised). The interpreter cannot tell the difference.

Environments: each function sees the process environment (endpoint, region, fake credentials)
plus exactly its own template variables, also when several run at once in threads:
os.environ is replaced by a mapping with a per-thread overlay.

Like Lambda, an execution environment (here: one import of the handler's module) runs one
invocation at a time: concurrent invocations get environments of their own, imported as
needed and reused warm. Module globals are never shared by two requests at once. Powertools'
resolvers keep the current request on a class (BaseRouter.current_event), which in Lambda is one
per process and one request at a time; here every environment shares the class, so handlers that
serve HTTP through a resolver take turns (otherwise a shop's request could read another shop's
event mid-flight: `shop_id()` of the wrong shop).

With isolate=True (the benches) each invocation runs instead in a warm worker process of its
function, one invocation at a time per worker, as Lambda runs execution environments: memory is
the function's own (its peak is Lambda's "Max Memory Used") and functions use every core.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager, nullcontext
from io import BytesIO
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote

import boto3
import botocore.handlers
from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
from botocore.awsrequest import AWSResponse

from local.iam import LocalIam
from local.lambda_runtime import LambdaContext, failure, load_module
from local.log_shipping import LogShipper, stream_name
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


def _serves_http(module: ModuleType) -> bool:
    """The handler routes requests with a Powertools resolver (its request is class state)."""
    return any(isinstance(v, BaseRouter) for v in vars(module).values())


class FunctionError(Exception):
    """A handler in a worker process raised: its Lambda-shaped error document."""

    def __init__(self, failure: dict[str, Any]) -> None:
        super().__init__(failure["errorMessage"])
        self.failure = failure


class _Worker:
    """One warm execution environment of a function: a process of its own (lambda_runtime)."""

    def __init__(self, function: Function, env: dict[str, str], mail_dir: str) -> None:
        spec = {
            "name": function.name,
            "arn": function.arn,
            "timeout": function.timeout,
            "code_dir": str(function.code_dir),
            "handler": function.handler,
            "layer": str(ROOT / "layers" / "cancelflow"),
            "mail_dir": mail_dir,
        }
        read_fd, write_fd = os.pipe()
        self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [sys.executable, "-m", "local.lambda_runtime", json.dumps(spec), str(write_fd)],
            stdin=subprocess.PIPE,
            env=env | {"PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            pass_fds=(write_fd,),
            text=True,
        )
        os.close(write_fd)
        self.answers = os.fdopen(read_fd, encoding="utf-8")

    def invoke(self, event: Any) -> dict[str, Any]:
        assert self.process.stdin
        self.process.stdin.write(json.dumps(event) + "\n")
        self.process.stdin.flush()
        line = self.answers.readline()
        if not line:
            raise RuntimeError(f"the function's process ended (exit {self.process.poll()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def stop(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.answers.close()


class _Raw(BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        chunk = self.read()
        while chunk:
            yield chunk
            chunk = self.read()


class LocalLambdas:
    """The template's functions, importable and invokable in this process."""

    def __init__(
        self,
        template: Template,
        extra_env: dict[str, str] | None = None,
        isolate: bool = False,
        mail_dir: Path | None = None,
    ) -> None:
        self.template = template
        self.functions = template.functions()
        self.extra_env = extra_env or {}
        self.isolate = isolate
        self.mail_dir = str(mail_dir or "")
        self._by_name = {f.name: f for f in self.functions.values()}
        self._by_name |= {f.arn: f for f in self.functions.values()}
        self._modules: dict[str, list[ModuleType]] = {}  # idle environments, by function
        self._imports = 0
        self._idle: dict[str, list[_Worker]] = {}
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._router_turn = threading.Lock()  # one resolver request at a time (see the docstring)
        self.invocations: list[str] = []  # function names, in order (for bench and tests)
        self.max_memory_kib: dict[str, int] = {}  # isolated: each function's peak RSS
        self.environ = _scoped_environ()
        self.iam = LocalIam(template)  # each in-process call is checked against its policy
        self.logs = LogShipper(self.environ)  # log lines to the local CloudWatch Logs

    def env_of(self, function: Function) -> dict[str, str]:
        return (
            function.environment
            | self.extra_env
            | {
                "AWS_LAMBDA_FUNCTION_NAME": function.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
            }
        )

    def _environment(self, function: Function) -> ModuleType:
        """An idle execution environment of the function, or a new one (a cold start)."""
        with self._lock:
            idle = self._modules.setdefault(function.logical_id, [])
            if idle:
                return idle.pop()
            self._imports += 1
            name = f"cancelflow_local_fn_{function.logical_id}_{self._imports}"
            with self.environ.scoped(self.env_of(function)):  # import-time globals see it
                module = load_module(function.code_dir, function.handler, name)
            self.logs.attach(module)
            return module

    def find(self, name_or_arn: str) -> Function:
        name = name_or_arn.split(":function:")[-1].split(":")[0]
        return self._by_name.get(name_or_arn) or self._by_name[name]

    def invoke(self, name_or_arn: str, event: Any) -> Any:
        """Run the handler; exceptions propagate (the Invoke hook turns them into errors)."""
        function = self.find(name_or_arn)
        self.invocations.append(function.name)
        if self.isolate:
            return self._invoke_in_worker(function, event)
        module = self._environment(function)
        handler = getattr(module, function.handler.rsplit(".", 1)[1])
        turn = self._router_turn if _serves_http(module) else nullcontext()
        self.logs.begin()
        try:
            with turn, self.environ.scoped(self.env_of(function)):
                return handler(event, LambdaContext(function.name, function.arn, function.timeout))
        finally:
            self.logs.ship(function.name, stream_name(module.__name__.rsplit("_", 1)[-1]))
            with self._lock:
                self._modules[function.logical_id].append(module)

    def _invoke_in_worker(self, function: Function, event: Any) -> Any:
        with self._lock:
            idle = self._idle.setdefault(function.logical_id, [])
            worker = idle.pop() if idle else None
        if worker is None:  # a cold start: a new execution environment
            worker = _Worker(
                function, dict(self.environ.base) | self.env_of(function), self.mail_dir
            )
            with self._lock:
                self._workers.append(worker)
        try:
            answer = worker.invoke(event)
        except Exception:
            with self._lock:  # a worker that broke is not reused
                self._workers.remove(worker)
            raise
        with self._lock:
            idle.append(worker)
            peak = self.max_memory_kib.get(function.name, 0)
            self.max_memory_kib[function.name] = max(peak, answer["peak_memory_kib"])
        if "error" in answer:
            raise FunctionError(answer["error"])
        return answer["ok"]

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
        except Exception as error:
            headers["X-Amz-Function-Error"] = "Unhandled"
            document = error.failure if isinstance(error, FunctionError) else failure(error)
            payload = json.dumps(document).encode()
        return AWSResponse(request.url, 200, headers, _Raw(payload))

    def _on_call(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        """A handler's AWS call must be allowed by its function's policy (local/iam.py)."""
        name = self.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        if name and name in self.iam.statements:
            self.iam.check(name, model.service_model.service_name, model.name, params)

    def _hooks(self) -> list[tuple[str, Any]]:
        return [
            ("before-send.lambda.Invoke", self._on_invoke),
            ("before-parameter-build", self._on_call),
        ]

    def install(self) -> None:
        """Answer every Lambda Invoke made by any boto3 session in this process, and check
        every call a handler makes against its function's policy."""
        for hook in self._hooks():
            if hook not in botocore.handlers.BUILTIN_HANDLERS:
                botocore.handlers.BUILTIN_HANDLERS.append(hook)
            if boto3.DEFAULT_SESSION is not None:
                boto3.DEFAULT_SESSION.events.register(*hook)

    @property
    def environments(self) -> int:
        """Worker processes started and not retired (isolated): Lambda's execution environments."""
        return len(self._workers)

    def warm(self, name_or_arn: str, count: int, event: Any) -> None:
        """Start `count` execution environments of a function and invoke each once with `event`
        (isolated): what provisioned concurrency does, so a bench measures warm functions."""
        function = self.find(name_or_arn)
        env = dict(self.environ.base) | self.env_of(function)
        workers = [_Worker(function, env, self.mail_dir) for _ in range(count)]  # boot together
        for worker in workers:
            worker.invoke(event)
        with self._lock:
            self._workers += workers
            self._idle.setdefault(function.logical_id, []).extend(workers)

    def retire_workers(self) -> None:
        """Stop every worker process (isolated): the next invocations start cold, with fresh
        memory peaks."""
        with self._lock:
            workers, self._workers, self._idle = self._workers, [], {}
            self.max_memory_kib = {}
        for worker in workers:
            worker.stop()

    def uninstall(self) -> None:
        self.retire_workers()
        for hook in self._hooks():
            if hook in botocore.handlers.BUILTIN_HANDLERS:
                botocore.handlers.BUILTIN_HANDLERS.remove(hook)
            if boto3.DEFAULT_SESSION is not None:
                boto3.DEFAULT_SESSION.events.unregister(*hook)
