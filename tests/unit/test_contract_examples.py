"""The API documents' examples are answers the APIs could send: each renders through its model,
and every problem code a response lists is one the catalogue answers with that status. The shop
API's openapi.json and the operator API's operator-openapi.json are held to the same rules."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from cancelflow.http import batch_requests as batch_schemas
from cancelflow.http import operator_requests, operator_responses, responses
from cancelflow.http import requests as schemas
from cancelflow.http import subscription_requests as billing_schemas
from cancelflow.http.api import eligibility_refusals
from cancelflow.kernel.errors import CATALOGUE
from cancelflow.kernel.reasons import REASONS
from local import operator_openapi
from local.openapi import OUT
from local.template import Template

DOC = json.loads(OUT.read_text(encoding="utf-8"))
OPERATOR_DOC = json.loads(operator_openapi.OUT.read_text(encoding="utf-8"))
DOCS = {"shop": DOC, "operator": OPERATOR_DOC}
MODELS = {
    "shop": (responses, schemas, billing_schemas, batch_schemas),
    "operator": (operator_responses, operator_requests, responses),
}
OPERATIONS = [
    (f"{api}: {method.upper()} {path}", operation, doc["components"]["schemas"])
    for api, doc in DOCS.items()
    for path, methods in doc["paths"].items()
    for method, operation in methods.items()
]
EXAMPLES = [
    pytest.param(api, name, example, id=f"{api}:{name}[{i}]")
    for api, doc in DOCS.items()
    for name, schema in doc["components"]["schemas"].items()
    for i, example in enumerate(schema.get("examples", []))
]
# Codes no operation answers: NOT_FOUND is API Gateway's answer for a route it does not have;
# the others belong to operator commands (make charge-tno) or are not raised yet.
UNANSWERED = {"NOT_FOUND", "METHOD_NOT_ALLOWED", "CHARGE_NOT_FOUND", "SUBSCRIPTION_REFUND_MANUAL"}


def _ref(schema: dict[str, Any]) -> str:
    return schema["$ref"].rsplit("/", 1)[-1]


def _problem_answers() -> list[tuple[str, int, dict[str, Any]]]:
    return [
        (name, int(status), answer["content"]["application/problem+json"])
        for name, operation, _ in OPERATIONS
        for status, answer in operation["responses"].items()
        if "application/problem+json" in answer.get("content", {})
    ]


@pytest.mark.parametrize(("api", "name", "example"), EXAMPLES)
def test_every_example_renders_through_its_model_unchanged(
    api: str, name: str, example: Any
) -> None:
    model = next(getattr(m, name) for m in MODELS[api] if hasattr(m, name))
    rendered = model.model_validate(example).model_dump(mode="json", exclude_unset=True)
    assert rendered == example


def test_every_success_answer_names_a_model_with_an_example() -> None:
    for name, operation, schemas_ in OPERATIONS:
        successes = {s: a for s, a in operation["responses"].items() if s.startswith(("2", "3"))}
        assert successes, name
        for status, answer in successes.items():
            if status == "204":  # No Content
                assert "content" not in answer, name
                continue
            schema = answer["content"]["application/json"]["schema"]
            assert schemas_[_ref(schema)].get("examples"), (name, status)
            assert answer["headers"]["Request-Id"]["required"] is True, (name, status)


def test_every_problem_answer_lists_codes_of_its_status_with_an_example_of_one() -> None:
    for name, status, content in _problem_answers():
        codes = content["schema"]["properties"]["code"]["enum"]
        for code in codes:
            assert responses.status_of(code) == status, (name, code)
        example = responses.Problem.model_validate(content["example"])
        assert (example.status, example.code in codes) == (status, True), name


def test_every_code_the_catalogue_has_is_documented_on_some_operation() -> None:
    documented = {
        code
        for _, _, content in _problem_answers()
        for code in content["schema"]["properties"]["code"]["enum"]
    }
    # The catalogue also holds every reason a cancellation can end with (its `reasons`): only
    # the eligibility refusals among them are answers of the API.
    assert (set(CATALOGUE) - set(REASONS)) - documented == UNANSWERED
    assert set(eligibility_refusals()) <= documented
    assert set(responses.GATEWAY_PROBLEMS) <= documented


def test_the_cancel_request_documents_every_refusal_eligibility_can_give() -> None:
    operation = DOC["paths"]["/v1/payments/{tno}/cancellations"]["post"]
    codes = operation["responses"]["422"]["content"]["application/problem+json"]["schema"]
    for code in ("RETURN_REQUIRED", "WITHDRAWAL_PERIOD_EXPIRED", "ITEM_ALREADY_REMOVED"):
        assert code in codes["properties"]["code"]["enum"]


def test_the_gateway_problems_are_the_templates_gateway_responses() -> None:
    responses_ = Template().api("ShopApi")["GatewayResponses"]
    answered = {}
    for spec in responses_.values():
        text = spec.get("ResponseTemplates", {}).get("application/json", "")
        found = re.search(r'"code": "([A-Z_]+)"', text)
        if found and "StatusCode" in spec:
            answered.setdefault(found.group(1), set()).add(int(spec["StatusCode"]))
    for code, (status, _) in responses.GATEWAY_PROBLEMS.items():
        assert answered.get(code) == {status}, code


@pytest.mark.parametrize("api", DOCS)
def test_the_document_is_valid_openapi(api: str) -> None:
    from openapi_spec_validator import validate

    validate(DOCS[api])


@pytest.mark.parametrize("api", DOCS)
def test_no_operation_documents_powertools_validation_errors(api: str) -> None:
    text = json.dumps(DOCS[api])
    assert "HTTPValidationError" not in text and "ResponseValidationError" not in text


def test_the_operator_api_answers_forbidden_never_the_shop_apis_unauthorized() -> None:
    operator_codes = {
        code
        for name, _, content in _problem_answers()
        if name.startswith("operator:")
        for code in content["schema"]["properties"]["code"]["enum"]
    }
    assert "FORBIDDEN" in operator_codes
    assert not operator_codes & {"UNAUTHORIZED", "SHOP_NOT_PROVISIONED", "RATE_LIMITED"}


def test_an_operation_that_requires_an_idempotency_key_says_so() -> None:
    for path in ("/v1/payments/{tno}/cancellations", "/v1/subscriptions"):
        (header,) = [
            p for p in DOC["paths"][path]["post"]["parameters"] if p["name"] == "Idempotency-Key"
        ]
        assert header["required"] is True, path
