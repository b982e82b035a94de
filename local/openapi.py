"""Generate the OpenAPI document from the code (Powertools), the one committed as openapi.json.

`make openapi` writes it; tests/unit/test_openapi.py fails when the file and the code differ.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from local.template import ROOT, Template

OUT = ROOT / "openapi.json"
TITLE = "cancelflow shop API"
VERSION = "1.0.0"
DESCRIPTION = (
    "Cancel and refund NHN KCP payments. Authenticate with `Authorization: Bearer <shop key>`. "
    "Errors are application/problem+json with a stable `code`."
)


def _app(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"openapi_{path.parent.name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


def generate() -> dict[str, Any]:
    """One document for every function that serves the template's API routes."""
    sys.path.insert(0, str(ROOT / "layers" / "cancelflow"))
    template = Template()
    serving = sorted({r["function"] for r in template.api_routes() if r["api"] == "ShopApi"})
    functions = template.functions()
    doc: dict[str, Any] = {}
    for logical_id in serving:
        schema = json.loads(
            _app(functions[logical_id].code_dir / "app.py").get_openapi_json_schema(
                title=TITLE, version=VERSION, description=DESCRIPTION
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
    doc.setdefault("components", {})["securitySchemes"] = {
        "shopKey": {"type": "http", "scheme": "bearer", "description": "The shop's secret API key"}
    }
    doc["security"] = [{"shopKey": []}]
    return doc


def render() -> str:
    return json.dumps(generate(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


if __name__ == "__main__":
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
