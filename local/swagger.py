"""Swagger UI over the committed openapi.json, on the local stack only (in AWS the API has none).

Swagger UI 5 (it renders OpenAPI 3.1; 4.x shows only "Unable to render this definition") comes
from the swagger-ui-py package, and every asset is served from here: the page loads nothing from
the internet, and the spec is not sent to swagger.io's online validator.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from local.template import ROOT

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cancelflow API (local)</title>
<link rel="icon" type="image/png" href="/swagger/favicon-32x32.png">
<link rel="stylesheet" href="/swagger/swagger-ui.css"></head>
<body><div id="ui"></div><script src="/swagger/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({
  url: "/openapi.json", dom_id: "#ui", persistAuthorization: true, validatorUrl: null,
  deepLinking: true,
});
</script>
</body></html>"""
# What the page loads, and nothing else of the package's folder (it also ships Swagger Editor).
ASSETS = {
    "swagger-ui-bundle.js": "application/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}

Answer = tuple[int, dict[str, str], bytes]


def serves(path: str) -> bool:
    return path == "/openapi.json" or path == "/swagger" or path.startswith("/swagger/")


def answer(path: str) -> Answer:
    """The page, its assets and the document, for a GET of a path `serves` claims."""
    if path == "/openapi.json":
        return 200, {"Content-Type": "application/json"}, (ROOT / "openapi.json").read_bytes()
    if path in ("/swagger", "/swagger/"):
        return 200, {"Content-Type": "text/html; charset=utf-8"}, PAGE.encode()
    name = path.removeprefix("/swagger/")
    if name not in ASSETS:
        return 404, {"Content-Type": "text/plain"}, b"not found"
    return 200, {"Content-Type": ASSETS[name]}, (static_dir() / name).read_bytes()


def static_dir() -> Path:
    # Found without importing the package: its __init__ loads web-framework adapters we never use.
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed: make setup")
    return Path(next(iter(spec.submodule_search_locations))) / "static"
