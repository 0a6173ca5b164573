"""JSON Schemas: of the CRM events (from the models in `kpi_core.events`) and of the report
document (from the KPI catalogue).

`python -m kpi_core.schemas [DIR]` writes DIR/<type>.schema.json (default: ./schemas), one file
per event type, for CRM integrators, and DIR/report.schema.json, the document of
`kpi-monitor report --format json` (and the rows of `GET /kpis`). Rules that depend on the rules
file (the known stages, the base currency and its fx rates) and the money digit limits are stated
in the descriptions.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from kpi_core.catalogue import Kpi, KpiKind, Unit
from kpi_core.derived import ROW_KPIS
from kpi_core.events import EVENT_MODELS
from kpi_core.windows import ROW_ADDITIVE
from kpi_rules.vocabulary import Channel, PeriodKind, Reason, Scope, TargetMetric, values

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
DEFAULT_DIRECTORY = Path("schemas")


def event_json_schemas() -> dict[str, dict[str, Any]]:
    """Event type -> JSON Schema (draft 2020-12) of that event as a CRM sends it."""
    schemas: dict[str, dict[str, Any]] = {}
    for kind, model in EVENT_MODELS.items():
        body = model.model_json_schema(mode="validation")
        schema: dict[str, Any] = {
            "$schema": SCHEMA_DIALECT,
            "$id": f"{kind}.schema.json",
            "title": kind,
            "description": " ".join((model.__doc__ or "").split())
            + " Extra fields are allowed and ignored. One JSON object per Kafka message, UTF-8.",
        }
        schema.update((key, value) for key, value in body.items() if key not in schema)
        schema["additionalProperties"] = True
        schemas[kind] = schema
    return schemas


REPORT_SCHEMA = "report.schema.json"
_MONEY = {"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{2,}$"}
_LABELS = {"channel": values(Channel), "metric": values(TargetMetric)}


def _value(kind: KpiKind) -> dict[str, Any]:
    if kind is KpiKind.MONEY:
        return dict(_MONEY)
    if kind is KpiKind.DURATION:
        return {"type": "number"}
    return {"type": "integer"}


def _additive(item: Kpi) -> dict[str, Any]:
    if item.label is None:
        return _value(item.kind)
    value = _value(item.kind)
    if item.label == "metric":  # a money target is a decimal string, a count target an integer
        value = {"anyOf": [_MONEY, {"type": "integer"}]}
    return {
        "type": "object",
        "propertyNames": {"enum": list(_LABELS[item.label])},
        "additionalProperties": value,
    }


def _derived(unit: Unit, label: str | None) -> dict[str, Any]:
    value: dict[str, Any] = dict(_MONEY) if unit is Unit.MONEY else {"type": "number"}
    if label is not None:
        value = {
            "type": "object",
            "propertyNames": {"enum": list(_LABELS[label])},
            "additionalProperties": {"anyOf": [value, {"type": "null"}]},
        }
    return {"anyOf": [value, {"type": "null"}]}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(properties),
        "properties": properties,
        "additionalProperties": False,
    }


def report_json_schema() -> dict[str, Any]:
    """The report document (contract section 4): every KPI column from the catalogue."""
    text = {"type": "string"}
    when = {"period": {"enum": values(PeriodKind)}, "start": {"type": "string", "format": "date"}}
    row: dict[str, Any] = {"rep_id": text, "team": text, "region": text, **when}
    scope_row: dict[str, Any] = {"scope": {"enum": values(Scope)[1:]}, "name": text, **when}
    kpis: dict[str, Any] = {}
    for item in ROW_ADDITIVE:
        schema = _additive(item)
        if item.name == "target":  # set or not
            schema = {"anyOf": [schema, {"type": "null"}]}
        kpis[item.name] = {**schema, "description": item.help.en}
    kpis["derived"] = _object(
        {item.name: {**_derived(item.unit, item.label), "description": item.help.en} for item in ROW_KPIS}
    )
    row.update(kpis)
    scope_row.update(kpis)
    amount = {"anyOf": [_MONEY, {"type": "integer"}, {"type": "null"}]}
    gap = {
        "scope": {"enum": values(Scope)},
        "name": text,
        "metric": {"enum": values(TargetMetric)},
        **when,
        "target": amount,
        "allocation_gap": amount,
        "split_gap": amount,
    }
    pipe = {
        "rep_id": text,
        "team": text,
        "region": text,
        "open_deals": {"type": "integer"},
        "open_pipeline": _MONEY,
        "weighted_pipeline": _MONEY,
        "pipeline_coverage": {"anyOf": [{"type": "number"}, {"type": "null"}]},
    }
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": REPORT_SCHEMA,
        "title": "kpi-monitor report",
        "description": "`kpi-monitor report FILE --format json`: KPI rows per rep and period, "
        "the same summed per team, region and the company (scopes; derived KPIs are ratios of "
        "the sums), the open pipeline per rep, every target with its allocation and split gaps, "
        "and the rejected input by reason. Money is a decimal string in the base currency; a "
        "derived KPI is null when its denominator is 0.",
        **_object(
            {
                "periods": {"type": "array", "items": _object(row)},
                "scopes": {"type": "array", "items": _object(scope_row)},
                "pipeline": {"type": "array", "items": _object(pipe)},
                "targets": {"type": "array", "items": _object(gap)},
                "rejected": {
                    "type": "object",
                    "propertyNames": {"enum": values(Reason)},
                    "additionalProperties": {"type": "integer", "minimum": 1},
                },
            }
        ),
    }


def schema_file_name(kind: str) -> str:
    return f"{kind}.schema.json"


def render_schema(schema: dict[str, Any]) -> str:
    """The exact text written to disk (stable, so a stale committed file is detectable)."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schemas(directory: Path) -> list[Path]:
    """Write one <type>.schema.json per event type into `directory`; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, schema in event_json_schemas().items():
        path = directory / schema_file_name(kind)
        path.write_text(render_schema(schema), encoding="utf-8")
        written.append(path)
    path = directory / REPORT_SCHEMA
    path.write_text(render_schema(report_json_schema()), encoding="utf-8")
    written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1 or (args and args[0] in {"-h", "--help"}):
        print("usage: python -m kpi_core.schemas [DIR]  (default: schemas)", file=sys.stderr)
        return 2
    directory = Path(args[0]) if args else DEFAULT_DIRECTORY
    for path in write_schemas(directory):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
