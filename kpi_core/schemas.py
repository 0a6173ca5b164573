"""JSON Schemas of the CRM events, generated from the models in `kpi_core.events`.

`python -m kpi_core.schemas [DIR]` writes DIR/<type>.schema.json (default: ./schemas), one file
per event type, for CRM integrators. Rules that depend on the rules file (the known stages, the
base currency and its fx rates) and the money digit limits are stated in the descriptions.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from kpi_core.events import EVENT_MODELS

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
