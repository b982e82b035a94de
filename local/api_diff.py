"""Breaking changes between the released API contract and the current one.

`make api-diff` compares openapi.released.json (what shops last integrated against) with
openapi.json (generated from the code) and fails on a change that breaks a shop's client or a
generated SDK, unless openapi.breaking.yaml acknowledges it with a reason. `make api-release`
makes the current document the released one and empties the acknowledgements.

What breaks, from the client's side: a request it sends must still be accepted (nothing newly
required, no accepted type, value or enum member taken away, no constraint tightened, no query
parameter or body property it may send refused), and an answer it reads must still parse (the
same success statuses, media types and headers, no property removed or made optional, no type
widened, no enum member added: SDKs with closed enums reject an unknown value).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
RELEASED = ROOT / "openapi.released.json"
CURRENT = ROOT / "openapi.json"
ACKNOWLEDGED = ROOT / "openapi.breaking.yaml"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
# A constraint the client's values must meet: a lower maximum or a higher minimum refuses values
# the released contract accepted.
UPPER = ("maxLength", "maxItems", "maxProperties", "maximum", "exclusiveMaximum")
LOWER = ("minLength", "minItems", "minProperties", "minimum", "exclusiveMinimum")
ACK_HEADER = """\
# Breaking changes to the released API contract (openapi.released.json) made on purpose.
# One entry per change: `change` is the line `make api-diff` prints (it prints the entries to
# paste); a `*` in it stands for any text, so one entry with one reason may cover the same change
# on many operations. `reason` says why shops are fine (e.g. "not released yet", "v1 answered
# 202 all along; the document said 200"). An entry that matches no change fails the check.
# `make api-release` empties this list when openapi.json becomes the released contract.
"""


@dataclass(frozen=True, order=True)
class Change:
    """One breaking change; `id` is stable (what an acknowledgement names), `detail` explains."""

    id: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.id} ({self.detail})" if self.detail else self.id


@dataclass(frozen=True)
class Acknowledgement:
    change: str
    reason: str

    def matches(self, change: Change) -> bool:
        pattern = ".*".join(re.escape(part) for part in self.change.split("*"))
        return re.fullmatch(pattern, change.id) is not None


@dataclass
class Report:
    acknowledged: list[tuple[Change, Acknowledgement]] = field(default_factory=list)
    breaking: list[Change] = field(default_factory=list)
    stale: list[Acknowledgement] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaking and not self.stale


# --- the documents ---------------------------------------------------------------------------


class Spec:
    """An OpenAPI document with its local `$ref`s resolved on demand."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    def resolve(self, node: Any) -> Any:
        """Follow `$ref` (keeping 3.1's sibling keywords) and merge `allOf` parts."""
        seen: set[str] = set()
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if ref in seen or not ref.startswith("#/"):
                break
            seen.add(ref)
            target: Any = self.doc
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        if isinstance(node, dict) and "allOf" in node:
            merged: dict[str, Any] = {k: v for k, v in node.items() if k != "allOf"}
            for part in node["allOf"]:
                part = self.resolve(part)
                merged.setdefault("properties", {}).update(part.get("properties", {}))
                merged["required"] = sorted(
                    set(merged.get("required", [])) | set(part.get("required", []))
                )
                for key, value in part.items():
                    if key not in ("properties", "required"):
                        merged.setdefault(key, value)
            node = merged
        return node if isinstance(node, dict) else {}

    def variants(self, schema: Any) -> list[dict[str, Any]]:
        """The alternatives a value may take: `anyOf`/`oneOf` flattened, refs resolved."""
        schema = self.resolve(schema)
        alternatives = schema.get("anyOf") or schema.get("oneOf")
        if not alternatives:
            return [schema]
        return [v for alternative in alternatives for v in self.variants(alternative)]

    def operations(self) -> dict[str, tuple[str, dict[str, Any], list[dict[str, Any]]]]:
        """`METHOD /path` keyed by the path's shape (parameter names ignored)."""
        found = {}
        for path, item in self.doc.get("paths", {}).items():
            item = self.resolve(item)
            shared = item.get("parameters", [])
            for method in METHODS:
                if method in item:
                    shape = re.sub(r"\{[^}]*\}", "{}", path)
                    found[f"{method} {shape}"] = (f"{method.upper()} {path}", item[method], shared)
        return found


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _types(variants: list[dict[str, Any]]) -> set[str] | None:
    """The JSON types the schema admits; None for any value at all."""
    found: set[str] = set()
    for variant in variants:
        if "const" in variant:
            found.add(_json_type(variant["const"]))
        elif "enum" in variant:
            found |= {_json_type(value) for value in variant["enum"]}
        elif "type" in variant:
            kind = variant["type"]
            found |= set(kind) if isinstance(kind, list) else {kind}
        elif "properties" in variant:
            found.add("object")
        elif "items" in variant:
            found.add("array")
        else:
            return None
    return found


def _enum(variants: list[dict[str, Any]]) -> set[str] | None:
    """The closed set of values (as JSON text), or None when the schema is not an enum."""
    values: set[str] = set()
    for variant in variants:
        if "const" in variant:
            values.add(json.dumps(variant["const"]))
        elif "enum" in variant:
            values |= {json.dumps(value) for value in variant["enum"]}
        elif variant.get("type") != "null":
            return None
    return values


def _covered(kind: str, types: set[str]) -> bool:
    return kind in types or (kind == "integer" and "number" in types)


def _value(text: str) -> str:
    """An enum value as a person reads it: a string bare, anything else as JSON."""
    value = json.loads(text)
    return value if isinstance(value, str) else text


def _lost(wider: set[str] | None, narrower: set[str] | None) -> bool:
    """Whether some type `wider` admits is not admitted by `narrower` (None admits any)."""
    if narrower is None:
        return False
    return wider is None or any(not _covered(kind, narrower) for kind in wider)


def _shown(types: set[str] | None) -> str:
    return "any" if types is None else "|".join(sorted(types)) or "nothing"


# --- the rules -------------------------------------------------------------------------------


class Diff:
    def __init__(self, released: dict[str, Any], current: dict[str, Any]) -> None:
        self.old = Spec(released)
        self.new = Spec(current)
        self.changes: list[Change] = []

    def run(self) -> list[Change]:
        old_ops, new_ops = self.old.operations(), self.new.operations()
        for key, (name, old_op, old_shared) in old_ops.items():
            if key not in new_ops:
                self.add(f"{name}: operation removed")
                continue
            _, new_op, new_shared = new_ops[key]
            self.parameters(name, old_op, old_shared, new_op, new_shared)
            self.request_body(name, old_op.get("requestBody"), new_op.get("requestBody"))
            self.responses(name, old_op.get("responses", {}), new_op.get("responses", {}))
        return sorted(set(self.changes))

    def add(self, change: str, detail: str = "") -> None:
        self.changes.append(Change(change, detail))

    # requests

    def parameters(
        self,
        name: str,
        old_op: dict[str, Any],
        old_shared: list[Any],
        new_op: dict[str, Any],
        new_shared: list[Any],
    ) -> None:
        old = self._parameters(self.old, old_shared, old_op)
        new = self._parameters(self.new, new_shared, new_op)
        for key, parameter in new.items():
            was = old.get(key)
            if parameter.get("required") and not (was and was.get("required")):
                label = f"{parameter['in']} {parameter['name']}"
                self.add(f"{name} parameter {label}: newly required")
        for key, parameter in old.items():
            label = f"{name} parameter {parameter['in']} {parameter['name']}"
            if key not in new:
                if parameter["in"] == "query":  # the API refuses a query parameter it does not take
                    self.add(f"{label}: removed", "the API refuses unknown query parameters")
                continue
            old_schema, new_schema = parameter.get("schema", {}), new[key].get("schema", {})
            # A parameter is text on the wire: no client sends a JSON null, so none is taken away.
            self.schema(label, old_schema, new_schema, True, nullable=False)

    def _parameters(
        self, spec: Spec, shared: list[Any], own: dict[str, Any]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        found: dict[tuple[str, str], dict[str, Any]] = {}
        path_index = 0
        for parameter in [spec.resolve(p) for p in shared] + [
            spec.resolve(p) for p in own.get("parameters", [])
        ]:
            where, label = parameter.get("in", ""), parameter.get("name", "")
            if where == "path":  # matched by position: renaming {id} to {cancellation_id} is fine
                key = (where, str(path_index))
                path_index += key not in found
            else:
                key = (where, label.lower() if where == "header" else label)
            found[key] = parameter
        return found

    def request_body(self, name: str, old: Any, new: Any) -> None:
        old = self.old.resolve(old) if old else {}
        new = self.new.resolve(new) if new else {}
        if new.get("required") and not old.get("required"):
            self.add(f"{name} request body: newly required")
        new_content = new.get("content", {})
        for media, old_media in old.get("content", {}).items():
            if media not in new_content:
                self.add(f"{name} request {media}: media type removed")
                continue
            self.schema(
                f"{name} request body",
                old_media.get("schema", {}),
                new_content[media].get("schema", {}),
                True,
            )

    # answers

    def responses(self, name: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        succeeded = sorted(s for s in new if s[:1] in ("2", "3"))
        for status, old_answer in old.items():
            old_answer = self.old.resolve(old_answer)
            if status not in new:
                if status[:1] in ("2", "3"):
                    now = f"now {', '.join(succeeded)}" if succeeded else "no success status left"
                    self.add(f"{name}: success status {status} removed", now)
                continue
            new_answer = self.new.resolve(new[status])
            new_headers = {h.lower() for h in new_answer.get("headers", {})}
            for header in old_answer.get("headers", {}):
                if header.lower() not in new_headers:
                    self.add(f"{name} response {status} header {header}: removed")
            new_content = new_answer.get("content", {})
            for media, old_media in old_answer.get("content", {}).items():
                if media not in new_content:
                    now = ", ".join(sorted(new_content)) or "no body"
                    self.add(f"{name} response {status} {media}: media type removed", f"now {now}")
                    continue
                self.schema(
                    f"{name} response {status} body",
                    old_media.get("schema", {}),
                    new_content[media].get("schema", {}),
                    False,
                )

    # schemas: `sent` is True where the client writes the value (requests), False where it reads

    def schema(
        self, where: str, old: Any, new: Any, sent: bool, depth: int = 0, nullable: bool = True
    ) -> None:
        if depth > 32:  # a recursive schema: what lies this deep was compared above
            return
        old_variants, new_variants = self.old.variants(old), self.new.variants(new)
        if not nullable:
            old_variants = [v for v in old_variants if v.get("type") != "null"] or [{}]
            new_variants = [v for v in new_variants if v.get("type") != "null"] or [{}]
        old_types, new_types = _types(old_variants), _types(new_variants)
        if sent and _lost(old_types, new_types):  # a value the client sends may be refused
            self.add(f"{where}: type narrowed", f"{_shown(old_types)} -> {_shown(new_types)}")
        if not sent and _lost(new_types, old_types):  # an answer may not parse
            self.add(f"{where}: type widened", f"{_shown(old_types)} -> {_shown(new_types)}")
        self.enums(where, _enum(old_variants), _enum(new_variants), sent)
        old_solid = [v for v in old_variants if v.get("type") != "null"]
        new_solid = [v for v in new_variants if v.get("type") != "null"]
        if len(old_solid) != 1 or len(new_solid) != 1:
            return  # a union of shapes: its types and values were compared above
        before, after = old_solid[0], new_solid[0]
        if sent:
            self.constraints(where, before, after)
        if "properties" in before or "properties" in after:
            self.properties(where, before, after, sent, depth)
        if "items" in before and "items" in after:
            self.schema(f"{where}[]", before["items"], after["items"], sent, depth + 1)

    def enums(self, where: str, old: set[str] | None, new: set[str] | None, sent: bool) -> None:
        if sent and new is not None:
            if old is None:
                self.add(f"{where}: now an enum", ", ".join(sorted(new)))
            for value in sorted(old - new if old is not None else set()):
                self.add(f"{where}: enum value {_value(value)} removed")
        if not sent and old is not None:
            if new is None:
                self.add(f"{where}: no longer an enum", "SDKs with closed enums break")
            for value in sorted(new - old if new is not None else set()):
                self.add(
                    f"{where}: enum value {_value(value)} added", "SDKs with closed enums break"
                )

    def constraints(self, where: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        for key in UPPER:
            if key in new and (key not in old or new[key] < old[key]):
                self.add(f"{where}: {key} tightened", f"{old.get(key, 'none')} -> {new[key]}")
        for key in LOWER:
            if key in new and (key not in old or new[key] > old[key]):
                self.add(f"{where}: {key} tightened", f"{old.get(key, 'none')} -> {new[key]}")
        if "pattern" in new and new["pattern"] != old.get("pattern"):
            self.add(f"{where}: pattern tightened", f"{old.get('pattern')} -> {new['pattern']}")

    def properties(
        self, where: str, old: dict[str, Any], new: dict[str, Any], sent: bool, depth: int
    ) -> None:
        old_props, new_props = old.get("properties", {}), new.get("properties", {})
        old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
        if sent:
            for prop in sorted(new_required - old_required):
                self.add(f"{where}.{prop}: newly required")
            closed = new.get("additionalProperties") is False
            if closed and old.get("additionalProperties") is not False:
                self.add(f"{where}: unknown properties now refused")
            for prop in sorted(set(old_props) - set(new_props)):
                if closed:
                    self.add(f"{where}.{prop}: removed", "the API refuses unknown properties")
        else:
            for prop in sorted(set(old_props) - set(new_props)):
                self.add(f"{where}.{prop}: removed")
            for prop in sorted(old_required - new_required):
                if prop in new_props:
                    self.add(f"{where}.{prop}: no longer required")
        for prop in sorted(set(old_props) & set(new_props)):
            self.schema(f"{where}.{prop}", old_props[prop], new_props[prop], sent, depth + 1)


def breaking_changes(released: dict[str, Any], current: dict[str, Any]) -> list[Change]:
    """Every change from `released` to `current` that breaks a client of `released`."""
    return Diff(released, current).run()


# --- acknowledgements and the check ----------------------------------------------------------


def load_acknowledgements(path: Path) -> list[Acknowledgement]:
    """The acknowledged changes; a malformed entry or one without a reason is refused."""
    if not path.exists():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = (data.get("acknowledged") or []) if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{path.name}: expected `acknowledged:` with a list of entries")
    found = []
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or set(entry) != {"change", "reason"}:
            raise ValueError(f"{path.name} entry {number}: needs exactly `change` and `reason`")
        change, reason = entry["change"], entry["reason"]
        if not isinstance(change, str) or not change.strip():
            raise ValueError(f"{path.name} entry {number}: `change` is empty")
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"{path.name} entry {number} ({change}): give a reason")
        found.append(Acknowledgement(change.strip(), reason.strip()))
    return found


def check(
    released: dict[str, Any], current: dict[str, Any], acknowledged: list[Acknowledgement]
) -> Report:
    report = Report()
    used: set[Acknowledgement] = set()
    for change in breaking_changes(released, current):
        ack = next((a for a in acknowledged if a.matches(change)), None)
        if ack is None:
            report.breaking.append(change)
        else:
            report.acknowledged.append((change, ack))
            used.add(ack)
    report.stale = [a for a in acknowledged if a not in used]
    return report


def render(report: Report, released: str, current: str, acknowledgements: str) -> Iterator[str]:
    yield f"api-diff: {released} -> {current}"
    if report.acknowledged:
        yield f"acknowledged in {acknowledgements} ({len(report.acknowledged)}):"
        for change, ack in report.acknowledged:
            yield f"  {change}\n    reason: {ack.reason}"
    for ack in report.stale:
        yield f"STALE: {acknowledgements} acknowledges {ack.change!r}, which no longer happens"
    if report.breaking:
        yield f"BREAKING, not acknowledged ({len(report.breaking)}):"
        yield from (f"  {change}" for change in report.breaking)
        yield f"to ship them on purpose, add to {acknowledgements} (under `acknowledged:`):"
        for change in report.breaking:
            yield f'  - change: {json.dumps(change.id, ensure_ascii=False)}\n    reason: ""'
    if report.ok:
        yield "no unacknowledged breaking change"


def release(current: Path, released: Path, acknowledgements: Path) -> None:
    """openapi.json becomes the released contract; nothing is acknowledged against it yet."""
    shutil.copyfile(current, released)
    acknowledgements.write_text(ACK_HEADER + "acknowledged: []\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--released", type=Path, default=RELEASED)
    parser.add_argument("--current", type=Path, default=CURRENT)
    parser.add_argument("--acknowledged", type=Path, default=ACKNOWLEDGED)
    parser.add_argument("--release", action="store_true", help="make current the released one")
    args = parser.parse_args(argv)
    if args.release:
        release(args.current, args.released, args.acknowledged)
        print(f"{args.current.name} is now {args.released.name}; {args.acknowledged.name} emptied")
        return 0
    try:
        acknowledged = load_acknowledgements(args.acknowledged)
    except ValueError as error:
        print(f"api-diff: {error}", file=sys.stderr)
        return 2
    released, current = (
        json.loads(p.read_text(encoding="utf-8")) for p in (args.released, args.current)
    )
    report = check(released, current, acknowledged)
    names = (args.released.name, args.current.name, args.acknowledged.name)
    print("\n".join(render(report, *names)))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
