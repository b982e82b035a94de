"""The committed openapi.json is what the code serves: regenerate with `make openapi`."""

from __future__ import annotations

from local.openapi import OUT, render


def test_the_committed_openapi_document_matches_the_code() -> None:
    assert OUT.read_text(encoding="utf-8") == render(), "openapi.json is stale: run make openapi"


def test_every_route_the_shop_api_serves_is_documented() -> None:
    import json

    from local.template import Template

    documented = json.loads(OUT.read_text(encoding="utf-8"))["paths"]
    for route in Template().api_routes():
        if route["api"] != "ShopApi":  # KCP's notification API is KCP's contract, not the shops'
            continue
        path = route["path"]
        assert route["method"].lower() in documented.get(path, {}), (route["method"], path)
