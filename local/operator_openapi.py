"""Generate the operator API's OpenAPI document from its code, as local/openapi.py does for the
shop API; the one committed as operator-openapi.json (`make operator-openapi`;
tests/unit/test_openapi.py fails when the file and the code differ)."""

from __future__ import annotations

import json
from typing import Any

from local.openapi import merged, only_what_is_sent
from local.template import ROOT

OUT = ROOT / "operator-openapi.json"
TITLE = "cancelflow operator API"
VERSION = "1.0.0"
DESCRIPTION = (
    "For cancelflow's operators: the review queue across shops, a case with its evidence, the "
    "decision, any cancellation by id. IAM-authorised: sign every request with AWS SigV4 "
    "(service execute-api, the stack's region) using credentials allowed execute-api:Invoke on "
    "this API; unsigned or wrongly signed requests are 403 problem+json. Errors are "
    "application/problem+json with a stable `code`."
)


def generate() -> dict[str, Any]:
    doc = merged("OperatorApi", TITLE, VERSION, DESCRIPTION)
    doc.setdefault("components", {})["securitySchemes"] = {
        "sigv4": {
            "type": "apiKey",
            "name": "Authorization",
            "in": "header",
            "description": "AWS Signature Version 4 (service execute-api), as the AWS CLI and "
            "SDKs sign requests; API Gateway's x-amazon-apigateway-authtype is awsSigv4",
            "x-amazon-apigateway-authtype": "awsSigv4",
        }
    }
    doc["security"] = [{"sigv4": []}]
    only_what_is_sent(doc)
    return doc


def render() -> str:
    return json.dumps(generate(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


if __name__ == "__main__":
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
