"""What a Lambda execution environment gives a handler, for the local stack: the context object,
the handler loaded from its folder, the error document of an unhandled exception.

Run as a program (`python -m local.lambda_runtime SPEC FD`), it is one warm execution
environment in a process of its own, for LocalLambdas(isolate=True): it reads events as JSON
lines on stdin, answers each on file descriptor FD with the result and the process's peak
memory (VmHWM, what Lambda reports as "Max Memory Used"), and imports nothing the function
would not: the handler's own imports are its memory.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import traceback
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any


class LambdaContext:
    def __init__(self, function_name: str, function_arn: str, timeout_s: int = 30) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function_arn
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_module(code_dir: Path, handler: str, name: str) -> ModuleType:
    """Import the handler's module (handler is "app.handler") from the function's folder."""
    module_file, _ = handler.rsplit(".", 1)
    spec = importlib.util.spec_from_file_location(name, code_dir / f"{module_file}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def failure(error: Exception) -> dict[str, Any]:
    """What Lambda reports for an unhandled exception."""
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "stackTrace": traceback.format_tb(error.__traceback__),
    }


def peak_memory_kib() -> int:
    """This process's peak resident memory since it started (exec resets it, fork does not)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    spec = json.loads(sys.argv[1])
    answers = os.fdopen(int(sys.argv[2]), "w", encoding="utf-8")
    sys.path.insert(0, spec["layer"])
    if spec["mail_dir"]:
        import botocore.handlers

        from local.mail import MailDrop

        botocore.handlers.BUILTIN_HANDLERS.extend(MailDrop(Path(spec["mail_dir"])).hooks())
    module = load_module(Path(spec["code_dir"]), spec["handler"], "handler_module")
    handler = getattr(module, spec["handler"].rsplit(".", 1)[1])
    for line in sys.stdin:
        context = LambdaContext(spec["name"], spec["arn"], spec["timeout"])
        try:
            answer = {"ok": handler(json.loads(line), context)}
        except Exception as error:
            answer = {"error": failure(error)}
        answer["peak_memory_kib"] = peak_memory_kib()
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
