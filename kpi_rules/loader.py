"""Load and validate the rules file, turning pydantic errors into one readable message."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from kpi_rules.models import Rules

DEFAULT_RULES_PATH = Path("kpi_rules/rules.yaml")


_ENUM_REPR = re.compile(r"<\w+\.\w+: ('[^']*')>")


class RulesError(ValueError):
    """The rules file is missing, unreadable or invalid; the message says which key and why."""


def packaged_rules_path() -> Path:
    return Path(__file__).with_name("rules.yaml")


def _resolve(path: Path | str | None) -> Path:
    if path is None:
        path = DEFAULT_RULES_PATH
    path = Path(path)
    # The default is relative to a checkout; an installed package falls back to its own copy.
    if not path.exists() and path == DEFAULT_RULES_PATH:
        return packaged_rules_path()
    return path


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed beside an unknown key at `loc` (walks the nested models)."""
    model: Any = Rules
    for part in loc[:-1]:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = field.annotation
    fields = getattr(model, "model_fields", {})
    return sorted(field.alias or name for name, field in fields.items())


def _format(error: ValidationError, source: Path) -> str:
    lines = [f"invalid rules file {source}:"]
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            allowed = _allowed_keys(tuple(item["loc"]))
            message = "unknown key" + (f"; allowed here: {', '.join(allowed)}" if allowed else "")
        elif item["type"] == "string_pattern_mismatch" and item["loc"] == ("currency",):
            got = item.get("input")
            message = f"must be an ISO 4217 code of three capital letters such as GBP (got {got!r})"
        elif item["type"] in ("literal_error", "enum"):
            # `<Scope.REP: 'rep'>` (an enum member in a Literal) reads as the word it is: 'rep'
            message = _ENUM_REPR.sub(r"\1", message)
            message = f"{message} (got {item.get('input')!r})"
        elif item["type"] == "missing":
            message = "required key is missing"
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def parse_rules(data: Any, source: Path | str = "<rules>") -> Rules:
    if not isinstance(data, dict):
        raise RulesError(f"invalid rules file {source}: the top level must be a mapping of keys")
    try:
        return Rules.model_validate(data)
    except ValidationError as exc:
        raise RulesError(_format(exc, Path(str(source)))) from None


def load_rules(path: Path | str | None = None) -> Rules:
    resolved = _resolve(path)
    try:
        text = resolved.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"cannot read rules file {resolved}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"rules file {resolved} is not valid YAML: {exc}") from None
    return parse_rules(data, resolved)
