"""Step Functions as the executions waiting on reviews (cancellations.ports.ReviewWaits)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

# The answers that mean "no execution waits on this token any more" (timed out, ended, unknown).
_GONE = ("TaskTimedOut", "TaskDoesNotExist", "InvalidToken", "ExecutionDoesNotExist")


class StepFunctionsWaits:
    def __init__(self, client: Any) -> None:
        self._sfn = client

    def succeed(self, token: str, output: Mapping[str, Any]) -> bool:
        return self._gone_is_false(
            lambda: self._sfn.send_task_success(taskToken=token, output=json.dumps(output))
        )

    def heartbeat(self, token: str) -> bool:
        return self._gone_is_false(lambda: self._sfn.send_task_heartbeat(taskToken=token))

    def redrive(self, execution_id: str) -> bool:
        try:
            self._sfn.redrive_execution(executionArn=execution_id)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in (
                "ExecutionNotRedrivable",
                "ExecutionDoesNotExist",
                "ExecutionLimitExceeded",
            ):
                return False
            raise
        return True

    @staticmethod
    def _gone_is_false(call: Any) -> bool:
        try:
            call()
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code", "")) in _GONE:
                return False
            raise
        return True
