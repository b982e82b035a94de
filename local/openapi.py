"""Generate the OpenAPI document from the code (Powertools), the one committed as openapi.json.

`make openapi` writes it; tests/unit/test_openapi.py fails when the file and the code differ.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from local.template import ROOT, Template

OUT = ROOT / "openapi.json"
TITLE = "cancelflow shop API"
VERSION = "1.0.0"
DESCRIPTION = (
    "Cancel and refund NHN KCP payments. Authenticate with `Authorization: Bearer <shop key>`. "
    "Errors are application/problem+json (RFC 9457) with a stable `code`; every answer carries "
    "a `Request-Id` header (also in problem bodies as `request_id`): quote it to support."
)
# What Powertools documents that this API never sends: its own validation errors (every
# refusal is problem+json, see cancelflow/api.py).
POWERTOOLS_ONLY = ("HTTPValidationError", "ValidationError", "ResponseValidationError")
# API Gateway's own answers (template.yaml GatewayResponses) quote the id in the body only.
GATEWAY_STATUSES = (401, 403, 429)
GATEWAY_REQUEST_ID = {
    "description": "Not on API Gateway's own refusals: their body's request_id has it",
    "required": False,
    "schema": {"type": "string"},
}
HEADERS = {"idempotency-key": "Idempotency-Key", "accept-language": "Accept-Language"}
REQUEST_ID = {
    "description": "The request's id: on every log line of it, and in problem bodies",
    "required": True,
    "schema": {"type": "string"},
}


def _app(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"openapi_{path.parent.name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


def merged(api: str, title: str, version: str, description: str) -> dict[str, Any]:
    """One document from every function that serves the template's routes of `api`."""
    sys.path.insert(0, str(ROOT / "layers" / "cancelflow"))
    template = Template()
    serving = sorted({r["function"] for r in template.api_routes() if r["api"] == api})
    functions = template.functions()
    doc: dict[str, Any] = {}
    for logical_id in serving:
        schema = json.loads(
            _app(functions[logical_id].code_dir / "app.py").get_openapi_json_schema(
                title=title, version=version, description=description
            )
        )
        if not doc:
            doc = schema
            continue
        doc["paths"].update(schema.get("paths", {}))
        doc.setdefault("components", {}).setdefault("schemas", {}).update(
            schema.get("components", {}).get("schemas", {})
        )
    doc["paths"] = dict(sorted(doc["paths"].items()))
    return doc


def generate() -> dict[str, Any]:
    """The shop API's document (KCP's notification API is not the shops' contract)."""
    doc = merged("ShopApi", TITLE, VERSION, DESCRIPTION)
    doc.setdefault("components", {})["securitySchemes"] = {
        "shopKey": {"type": "http", "scheme": "bearer", "description": "The shop's secret API key"}
    }
    doc["security"] = [{"shopKey": []}]
    from cancelflow.http import responses
    from cancelflow.http.batch_requests import BatchIn

    only_what_is_sent(doc, (responses.PolicyIn, responses.PolicyPatch, BatchIn))
    return doc


def only_what_is_sent(doc: dict[str, Any], named: tuple[type[BaseModel], ...] = ()) -> None:
    """Drop Powertools' validation answers, add the models the routes name by reference
    (problem+json, and `named`: bodies a route reads itself), and the Request-Id header on
    every answer."""
    from cancelflow.http import responses
    from cancelflow.http.api import answers as declared

    internal_error = declared({})[500]  # Powertools puts its own 500 over the declared one
    schemas = doc["components"]["schemas"]
    for operations in doc["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "header":  # HTTP's spelling, not Powertools' lower case
                    parameter["name"] = HEADERS.get(parameter["name"], parameter["name"])
                    # The use cases refuse a request without it (400 IDEMPOTENCY_KEY_REQUIRED).
                    if parameter["name"] == "Idempotency-Key":
                        parameter["required"] = True
                        parameter["schema"] = parameter["schema"]["anyOf"][0]
            answers = operation["responses"]
            for status, answer in list(answers.items()):
                refs = json.dumps(answer.get("content", {}))
                if any(f'/{name}"' in refs for name in POWERTOOLS_ONLY):
                    if str(status) != "500":
                        del answers[status]
                        continue
                    answer = answers[status] = json.loads(json.dumps(internal_error))
                if str(status) == "204":  # No Content: no body to describe
                    answer.pop("content", None)
                answer.setdefault("headers", {})["Request-Id"] = (
                    GATEWAY_REQUEST_ID if int(status) in GATEWAY_STATUSES else REQUEST_ID
                )
            operation["responses"] = dict(sorted(answers.items()))
    for name in POWERTOOLS_ONLY:
        schemas.pop(name, None)
    models: tuple[type[BaseModel], ...] = (responses.Problem, *named)
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    doc["components"]["schemas"] = dict(sorted(schemas.items()))


def render() -> str:
    return json.dumps(generate(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


if __name__ == "__main__":
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
