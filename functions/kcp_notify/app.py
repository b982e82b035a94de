"""KCP's notifications (공통 통보 URL): a form POST from KCP's servers, answered as KCP expects.

Only KCP's sender addresses reach this function (the API's resource policy); the site code
decides the shop. The answer page's `result` tells KCP whether to send it again.
"""

import base64

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from cancelflow import runtime
from cancelflow.kcp import notifications as kcp
from cancelflow.notifications import service

logger = Logger()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def handler(event: dict, context: object) -> dict:
    body = event.get("body") or ""
    try:
        notice = kcp.parse(base64.b64decode(body) if event.get("isBase64Encoded") else body)
    except kcp.BadForm as error:
        logger.warning("not a KCP notification", extra={"error": str(error)})
        return _page(400, kcp.RETRY)
    answer = service.receive(runtime.notifications(), runtime.clock, notice)
    if answer.taken:
        return _page(200, answer.result)
    # Refused (a site code no shop has) or not now: KCP sends it again either way.
    return _page(403 if answer.outcome == "UNKNOWN_SITE" else 503, answer.result)


def _page(status: int, result: str) -> dict:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "text/html; charset=utf-8"},
        "body": kcp.answer_page(result),
    }
