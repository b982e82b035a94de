"""A person opens Swagger UI on the local stack in a real browser and sees the whole API.

Debian's chromium (`make setup` installs it), driven by Playwright; the screenshot lands in
.local/screenshots/swagger.png for a person to look at.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from local.stack import LocalStack

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / ".local" / "screenshots"
# Without the background-networking flags chromium keeps dialling Google, which this
# machine's closed network refuses.
CANCEL = ("post", "/v1/payments/{tno}/cancellations")


@pytest.fixture
def swagger(stack: LocalStack, browser: Browser) -> Iterator[tuple[Page, list[str], list[str]]]:
    """The Swagger UI page once it has rendered the document, with every URL it asked for."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requested: list[str] = []
    failed: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.status} {r.url}"))
    page.goto(f"{stack.env['API_URL']}/swagger")
    unrendered = page.get_by_text("Unable to render this definition")
    expect(page.locator(".opblock").or_(unrendered).first).to_be_visible(timeout=20_000)
    expect(unrendered).to_have_count(0)  # what Swagger UI 4 shows for an OpenAPI 3.1 document
    yield page, requested, failed
    page.close()


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    paths = json.loads((ROOT / "openapi.json").read_text(encoding="utf-8"))["paths"]
    return [(method, path, op) for path, ops in paths.items() for method, op in ops.items()]


def _block(page: Page, method: str, path: str) -> Any:
    summary = page.locator(f'.opblock-summary-path[data-path="{path}"]')
    return page.locator(f".opblock.opblock-{method}").filter(has=summary)


def test_swagger_ui_lists_every_operation_of_the_committed_document(
    stack: LocalStack, swagger: tuple[Page, list[str], list[str]]
) -> None:
    page, requested, failed = swagger
    operations = _operations()
    assert CANCEL in [(m, p) for m, p, _ in operations]
    for method, path, _ in operations:
        expect(_block(page, method, path)).to_be_visible()
    assert page.locator(".opblock").count() == len(operations)
    expect(page.locator(".errors-wrapper")).to_have_count(0)  # Swagger UI's parser errors
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "swagger.png", full_page=True)
    # Everything came from the stack: no CDN, no online validator, nothing missing.
    assert requested and all(url.startswith(stack.env["API_URL"]) for url in requested), requested
    assert failed == []


def test_a_person_opens_the_cancel_operation_and_sees_its_parameters_and_body(
    swagger: tuple[Page, list[str], list[str]],
) -> None:
    page, _, _ = swagger
    method, path = CANCEL
    operation = next(op for m, p, op in _operations() if (m, p) == CANCEL)
    block = _block(page, method, path)
    block.locator(".opblock-summary").first.click()
    for parameter in operation.get("parameters", []):
        cell = block.locator(f'tr[data-param-name="{parameter["name"]}"]')
        expect(cell).to_be_visible()
    expect(block.locator(".opblock-section-request-body")).to_be_visible()
    expect(block.locator(".responses-wrapper")).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    block.screenshot(path=SCREENSHOTS / "swagger-cancel.png")
