"""The committed OpenAPI documents are what the code serves: regenerate with `make openapi`.

openapi.json is the shop API's, operator-openapi.json the operator API's (IAM-authorised)."""

from __future__ import annotations

import json

import pytest

from local import openapi, operator_openapi
from local.template import Template

DOCUMENTS = {"ShopApi": openapi, "OperatorApi": operator_openapi}


@pytest.mark.parametrize("api", sorted(DOCUMENTS))
def test_the_committed_openapi_document_matches_the_code(api: str) -> None:
    module = DOCUMENTS[api]
    assert module.OUT.read_text(encoding="utf-8") == module.render(), (
        f"{module.OUT.name} is stale: run make openapi"
    )


def test_every_route_the_template_serves_is_documented_in_its_apis_document() -> None:
    documented = {
        api: json.loads(module.OUT.read_text(encoding="utf-8"))["paths"]
        for api, module in DOCUMENTS.items()
    }
    for route in Template().api_routes():
        if route["api"] not in documented:  # KCP's notification API is KCP's contract
            continue
        paths = documented[route["api"]]
        path = route["path"]
        assert route["method"].lower() in paths.get(path, {}), (route["api"], route["method"], path)


def test_no_route_is_documented_in_the_other_apis_document() -> None:
    shop = json.loads(openapi.OUT.read_text(encoding="utf-8"))["paths"]
    assert "/v1/reviews" not in shop
