"""The breaking-change check: per rule, a change that breaks a shop fails, a compatible one passes.

Small hand-written documents: one operation, `POST /v1/things/{id}`, unless a test says otherwise.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from local.api_diff import (
    Acknowledgement,
    breaking_changes,
    check,
    load_acknowledgements,
    main,
)

OP = "POST /v1/things/{id}"
STR: dict[str, Any] = {"type": "string"}
NULLABLE_STR: dict[str, Any] = {"anyOf": [{"type": "string"}, {"type": "null"}]}


def doc(
    *,
    body: dict[str, Any] | None = None,
    answer: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
    statuses: tuple[str, ...] = ("200",),
    path: str = "/v1/things/{id}",
    schemas: dict[str, Any] | None = None,
    body_required: bool = True,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": STR}]
        + (params or []),
        "responses": {
            status: {
                "description": "ok",
                "content": {"application/json": {"schema": answer or {"type": "object"}}},
            }
            for status in statuses
        },
    }
    if body is not None:
        operation["requestBody"] = {
            "required": body_required,
            "content": {"application/json": {"schema": body}},
        }
    return {
        "openapi": "3.1.0",
        "paths": {path: {"post": operation}},
        "components": {"schemas": schemas or {}},
    }


def obj(required: tuple[str, ...] = (), closed: bool = False, **props: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props, "required": list(required)}
    if closed:
        schema["additionalProperties"] = False
    return schema


def ids(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [change.id for change in breaking_changes(old, new)]


def query(name: str, required: bool = False, schema: Any = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema or STR}


# --- operations and statuses -----------------------------------------------------------------


def test_a_removed_operation_breaks_and_a_new_one_does_not() -> None:
    old = doc()
    new = doc(path="/v1/others")
    assert ids(old, new) == [f"{OP}: operation removed"]
    both = copy.deepcopy(old)
    both["paths"].update(new["paths"])
    assert ids(old, both) == []


def test_renaming_a_path_parameter_is_not_a_change_for_clients() -> None:
    renamed = doc(path="/v1/things/{thing_id}")
    renamed["paths"]["/v1/things/{thing_id}"]["post"]["parameters"][0]["name"] = "thing_id"
    assert ids(doc(), renamed) == []


def test_a_changed_success_status_breaks_and_says_what_it_is_now() -> None:
    [change] = breaking_changes(doc(statuses=("200",)), doc(statuses=("202",)))
    assert (change.id, change.detail) == (f"{OP}: success status 200 removed", "now 202")


def test_documenting_more_statuses_or_dropping_an_error_status_is_compatible() -> None:
    assert ids(doc(statuses=("200", "422")), doc(statuses=("200", "404"))) == []


def test_a_success_media_type_removed_breaks() -> None:
    new = doc()
    answer = new["paths"]["/v1/things/{id}"]["post"]["responses"]["200"]
    answer["content"] = {"text/csv": {"schema": STR}}
    assert ids(doc(), new) == [f"{OP} response 200 application/json: media type removed"]


def test_a_response_header_removed_breaks_and_one_added_does_not() -> None:
    old, new = doc(), doc()
    old["paths"]["/v1/things/{id}"]["post"]["responses"]["200"]["headers"] = {
        "Location": {"schema": STR}
    }
    assert ids(old, new) == [f"{OP} response 200 header Location: removed"]
    assert ids(new, old) == []


# --- what the client reads -------------------------------------------------------------------


def test_a_response_property_removed_breaks_and_one_added_does_not() -> None:
    old = doc(answer=obj(("id",), id=STR, amount={"type": "integer"}))
    new = doc(answer=obj(("id",), id=STR))
    assert ids(old, new) == [f"{OP} response 200 body.amount: removed"]
    assert ids(new, old) == []


def test_a_response_property_no_longer_required_breaks_and_newly_required_does_not() -> None:
    old = doc(answer=obj(("id", "amount"), id=STR, amount={"type": "integer"}))
    new = doc(answer=obj(("id",), id=STR, amount={"type": "integer"}))
    assert ids(old, new) == [f"{OP} response 200 body.amount: no longer required"]
    assert ids(new, old) == []


def test_a_response_enum_value_added_breaks_closed_sdk_enums_and_one_removed_does_not() -> None:
    old = doc(answer=obj(status={"type": "string", "enum": ["PAID", "CANCELLED"]}))
    new = doc(answer=obj(status={"type": "string", "enum": ["PAID", "CANCELLED", "REFUNDED"]}))
    [change] = breaking_changes(old, new)
    assert change.id == f"{OP} response 200 body.status: enum value REFUNDED added"
    assert ids(new, old) == []


def test_a_response_type_widened_breaks_and_narrowed_does_not() -> None:
    old = doc(answer=obj(("note",), note=STR))
    new = doc(answer=obj(("note",), note=NULLABLE_STR))
    [change] = breaking_changes(old, new)
    assert (change.id, change.detail) == (
        f"{OP} response 200 body.note: type widened",
        "string -> null|string",
    )
    assert ids(new, old) == []


def test_an_untyped_response_becoming_typed_is_compatible() -> None:
    assert ids(doc(answer={}), doc(answer=obj(("id",), id=STR))) == []


def test_changes_deep_inside_a_listed_item_are_found() -> None:
    item = obj(("tno",), tno=STR, status={"enum": ["PAID"]})
    grown = obj(("tno",), tno=STR, status={"enum": ["PAID", "VOID"]})
    old = doc(answer=obj(items={"type": "array", "items": item}))
    new = doc(answer=obj(items={"type": "array", "items": grown}))
    assert ids(old, new) == [f"{OP} response 200 body.items[].status: enum value VOID added"]


# --- what the client sends -------------------------------------------------------------------


def test_a_request_property_newly_required_breaks_and_a_new_optional_one_does_not() -> None:
    old = doc(body=obj(("reason_code",), reason_code=STR))
    new = doc(body=obj(("reason_code", "reason"), reason_code=STR, reason=STR))
    assert ids(old, new) == [f"{OP} request body.reason: newly required"]
    optional = doc(body=obj(("reason_code",), reason_code=STR, reason=STR))
    assert ids(old, optional) == []
    assert ids(new, old) == []  # no longer required: fine


def test_a_request_body_newly_required_breaks() -> None:
    old = doc(body=obj(), body_required=False)
    assert ids(old, doc(body=obj())) == [f"{OP} request body: newly required"]
    assert ids(doc(body=obj()), old) == []


def test_a_parameter_newly_required_breaks_and_a_new_optional_one_does_not() -> None:
    header = {"name": "Idempotency-Key", "in": "header", "required": False, "schema": STR}
    old = doc(params=[header])
    new = doc(params=[header | {"required": True, "name": "idempotency-key"}])
    assert ids(old, new) == [f"{OP} parameter header idempotency-key: newly required"]
    assert ids(doc(), doc(params=[query("limit")])) == []
    assert ids(doc(), doc(params=[query("limit", required=True)])) == [
        f"{OP} parameter query limit: newly required"
    ]
    assert ids(new, old) == []


def test_a_query_parameter_removed_breaks_because_the_api_refuses_unknown_ones() -> None:
    [change] = breaking_changes(doc(params=[query("product")]), doc())
    assert change.id == f"{OP} parameter query product: removed"


def test_a_request_enum_value_removed_breaks_and_one_added_does_not() -> None:
    schemas_old = {"ReasonCode": {"type": "string", "enum": ["CHANGE_OF_MIND", "DEFECTIVE"]}}
    schemas_new = {"ReasonCode": {"type": "string", "enum": ["CHANGE_OF_MIND"]}}
    body = obj(("reason_code",), reason_code={"$ref": "#/components/schemas/ReasonCode"})
    old, new = doc(body=body, schemas=schemas_old), doc(body=body, schemas=schemas_new)
    assert ids(old, new) == [f"{OP} request body.reason_code: enum value DEFECTIVE removed"]
    assert ids(new, old) == []


def test_a_request_type_narrowed_breaks_and_widened_does_not() -> None:
    old = doc(body=obj(amount={"type": "number"}, note=NULLABLE_STR))
    new = doc(body=obj(amount={"type": "integer"}, note=STR))
    [amount, note] = breaking_changes(old, new)
    assert (amount.id, amount.detail) == (
        f"{OP} request body.amount: type narrowed",
        "number -> integer",
    )
    assert (note.id, note.detail) == (
        f"{OP} request body.note: type narrowed",
        "null|string -> string",
    )
    assert ids(new, old) == []


def test_a_parameter_losing_its_null_is_not_narrowed_no_client_sends_null_in_a_header() -> None:
    old = doc(params=[{"name": "Accept-Language", "in": "header", "schema": NULLABLE_STR}])
    new = doc(params=[{"name": "Accept-Language", "in": "header", "schema": STR}])
    assert ids(old, new) == []


def test_a_request_constraint_tightened_breaks_and_loosened_does_not() -> None:
    old = doc(body=obj(reason={"type": "string", "maxLength": 200}, n={"type": "integer"}))
    new = doc(
        body=obj(reason={"type": "string", "maxLength": 100}, n={"type": "integer", "minimum": 1})
    )
    assert ids(old, new) == [
        f"{OP} request body.n: minimum tightened",
        f"{OP} request body.reason: maxLength tightened",
    ]
    assert ids(new, old) == []


def test_a_closed_request_body_refuses_a_property_that_was_removed() -> None:
    old = doc(body=obj(closed=True, reason=STR, memo=STR))
    new = doc(body=obj(closed=True, reason=STR))
    assert ids(old, new) == [f"{OP} request body.memo: removed"]
    open_old = doc(body=obj(reason=STR, memo=STR))
    assert ids(open_old, doc(body=obj(reason=STR))) == []


def test_a_recursive_schema_is_compared_without_looping() -> None:
    node = {"type": "object", "properties": {"child": {"$ref": "#/components/schemas/Node"}}}
    answer = {"$ref": "#/components/schemas/Node"}
    assert (
        ids(doc(answer=answer, schemas={"Node": node}), doc(answer=answer, schemas={"Node": node}))
        == []
    )


# --- acknowledgements ------------------------------------------------------------------------


RELEASED = doc(statuses=("200",), answer=obj(status={"enum": ["A"]}))
CURRENT = doc(statuses=("202",), answer=obj(status={"enum": ["A"]}))


def test_an_acknowledged_change_passes_and_is_reported_with_its_reason() -> None:
    ack = Acknowledgement(f"{OP}: success status 200 removed", "v1 answered 202 all along")
    report = check(RELEASED, CURRENT, [ack])
    assert report.ok and report.breaking == []
    assert [(c.id, a.reason) for c, a in report.acknowledged] == [
        (f"{OP}: success status 200 removed", "v1 answered 202 all along")
    ]


def test_one_entry_with_a_star_acknowledges_the_same_change_on_every_operation() -> None:
    report = check(RELEASED, CURRENT, [Acknowledgement("* success status 200 removed", "why")])
    assert report.ok and len(report.acknowledged) == 1
    other = check(RELEASED, CURRENT, [Acknowledgement("* success status 201 removed", "why")])
    assert not other.ok


def test_an_acknowledgement_that_matches_nothing_fails_the_check() -> None:
    report = check(RELEASED, RELEASED, [Acknowledgement("GET /gone: operation removed", "x")])
    assert not report.ok and [a.change for a in report.stale] == ["GET /gone: operation removed"]


def test_an_acknowledgement_without_a_reason_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "openapi.breaking.yaml"
    path.write_text('acknowledged:\n  - change: "x"\n    reason: ""\n', encoding="utf-8")
    with pytest.raises(ValueError, match="give a reason"):
        load_acknowledgements(path)


def _files(tmp_path: Path, released: dict, current: dict, acks: str) -> list[str]:
    for name, content in (("released.json", released), ("current.json", current)):
        (tmp_path / name).write_text(json.dumps(content), encoding="utf-8")
    (tmp_path / "breaking.yaml").write_text(acks, encoding="utf-8")
    return [
        f"--released={tmp_path / 'released.json'}",
        f"--current={tmp_path / 'current.json'}",
        f"--acknowledged={tmp_path / 'breaking.yaml'}",
    ]


def test_the_check_fails_and_prints_the_entry_to_paste_then_passes_once_it_is_pasted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _files(tmp_path, RELEASED, CURRENT, "acknowledged: []\n")
    assert main(args) == 1
    out = capsys.readouterr().out
    assert f"{OP}: success status 200 removed (now 202)" in out
    entry = out.split("(under `acknowledged:`):\n", 1)[1]
    pasted = "acknowledged:\n" + entry.replace('reason: ""', "reason: not released yet")
    (tmp_path / "breaking.yaml").write_text(pasted, encoding="utf-8")
    assert main(args) == 0
    assert "reason: not released yet" in capsys.readouterr().out


def test_a_release_makes_the_current_document_the_baseline_and_empties_the_list(
    tmp_path: Path,
) -> None:
    args = _files(tmp_path, RELEASED, CURRENT, 'acknowledged:\n  - {change: "*", reason: "x"}\n')
    assert main([*args, "--release"]) == 0
    assert json.loads((tmp_path / "released.json").read_text()) == CURRENT
    assert load_acknowledgements(tmp_path / "breaking.yaml") == []
    assert main(args) == 0
