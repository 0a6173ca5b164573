"""The committed schemas/*.schema.json are current, and every example event satisfies its schema.

`jsonschema` is not a dependency, so the keywords the generated schemas use are checked by the
small validator below (type, const, enum, anyOf, required, properties, string length and pattern,
minimum/maximum, date and date-time formats); it fails on any other keyword so it cannot go
silently blind when the models change.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kpi_core.events import EVENT_TYPES, example_events
from kpi_core.schemas import (
    REPORT_SCHEMA,
    event_json_schemas,
    render_schema,
    report_json_schema,
    schema_file_name,
    write_schemas,
)

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
EXAMPLES = {e["type"]: e for e in example_events(datetime(2026, 3, 10, 9, 30, tzinfo=UTC))}
STALE = "schemas/ is stale: run `python -m kpi_core.schemas` and commit the result"

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ANNOTATIONS = {"title", "description", "default", "$schema", "$id", "additionalProperties"}
TYPES: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def problems(value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """Why `value` does not satisfy `schema` (empty when it does)."""
    found: list[str] = []
    for key, rule in schema.items():
        if key in ANNOTATIONS:
            continue
        if key == "type":
            if not TYPES[rule](value):
                found.append(f"{where}: not of type {rule}")
        elif key == "const":
            if value != rule:
                found.append(f"{where}: not {rule!r}")
        elif key == "enum":
            if value not in rule:
                found.append(f"{where}: not one of {rule}")
        elif key == "anyOf":
            if all(problems(value, option, where) for option in rule):
                found.append(f"{where}: matches no option of anyOf")
        elif key == "required":
            found += [f"{where}.{name}: missing" for name in rule if name not in value]
        elif key == "properties":
            for name, sub in rule.items():
                if isinstance(value, dict) and name in value:
                    found += problems(value[name], sub, f"{where}.{name}")
        elif key in {"minLength", "maxLength", "pattern", "format"}:
            if not isinstance(value, str):
                continue
            if key == "minLength" and len(value) < rule:
                found.append(f"{where}: shorter than {rule}")
            if key == "maxLength" and len(value) > rule:
                found.append(f"{where}: longer than {rule}")
            if key == "pattern" and not re.search(rule, value):
                found.append(f"{where}: does not match {rule}")
            if key == "format":
                regex = {"date-time": RFC3339, "date": DATE}[rule]
                if not regex.match(value):
                    found.append(f"{where}: not a {rule}")
        elif key in {"minimum", "maximum"}:
            if isinstance(value, int | float) and not isinstance(value, bool):
                if (value < rule) if key == "minimum" else (value > rule):
                    found.append(f"{where}: outside {key} {rule}")
        else:
            raise AssertionError(f"the test validator does not know the keyword {key!r}")
    return found


def test_committed_schemas_are_current() -> None:
    fresh = event_json_schemas()
    assert sorted(fresh) == sorted(EVENT_TYPES)
    for kind, schema in fresh.items():
        path = SCHEMA_DIR / schema_file_name(kind)
        assert path.exists(), f"{path} is missing; {STALE}"
        assert path.read_text(encoding="utf-8") == render_schema(schema), f"{path}: {STALE}"
    report = SCHEMA_DIR / REPORT_SCHEMA
    assert report.read_text(encoding="utf-8") == render_schema(report_json_schema()), f"{report}: {STALE}"
    extra = {p.name for p in SCHEMA_DIR.glob("*.schema.json")} - {
        schema_file_name(k) for k in fresh
    } - {REPORT_SCHEMA}
    assert not extra, f"schemas/ has files for no event type: {sorted(extra)}"


def test_write_schemas_writes_one_file_per_type(tmp_path: Path) -> None:
    written = write_schemas(tmp_path / "out")
    assert sorted(p.name for p in written) == sorted(
        [f"{k}.schema.json" for k in EVENT_TYPES] + [REPORT_SCHEMA]
    )
    assert (
        json.loads((tmp_path / "out" / "deal.won.schema.json").read_text())["title"] == "deal.won"
    )


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_schema_is_titled_and_every_field_is_described(kind: str) -> None:
    schema = event_json_schemas()[kind]
    assert schema["title"] == kind and schema["description"]
    assert schema["additionalProperties"] is True
    assert schema["properties"]["type"]["const"] == kind
    for name, prop in schema["properties"].items():
        assert len(prop.get("description", "")) > 10, f"{kind}.{name} has no description"


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_example_event_satisfies_its_schema(kind: str) -> None:
    schema = event_json_schemas()[kind]
    example = json.loads(json.dumps(EXAMPLES[kind]))
    assert problems(example, schema) == []
    assert problems({**example, "crm_extra": {"anything": [1]}}, schema) == []


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_the_schema_check_is_not_vacuous(kind: str) -> None:
    schema = event_json_schemas()[kind]
    example = EXAMPLES[kind]
    for name in schema["required"]:
        assert problems({k: v for k, v in example.items() if k != name}, schema)
    assert problems({**example, "occurred_at": "2026-03-01T10:00:00"}, schema)
    assert problems({**example, "rep_id": ""}, schema)
    if "amount" in schema["properties"]:
        assert problems({**example, "amount": -1}, schema)
        assert problems({**example, "amount": "12,50"}, schema)
