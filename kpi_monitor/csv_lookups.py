"""Lookup tables of a CSV mapping (`lookups:`): another CSV export read into a dict by its key."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from kpi_monitor.csv_mapping import LookupRule, MappingError


@dataclass(frozen=True)
class Lookup:
    """One table: `rows[key]` is the file's row (column -> cell) whose key column holds `key`."""

    name: str
    rule: LookupRule
    path: Path
    key: str
    columns: tuple[str, ...]
    rows: dict[str, dict[str, str]]

    def row(self, key: str) -> dict[str, str] | None:
        return self.rows.get(key)


def load_lookup(name: str, rule: LookupRule, base: Path) -> Lookup:
    """Read the table; a missing file or key column, or a key given two different rows, is
    refused here, before any row of the export is mapped."""
    path = (base / rule.file) if not Path(rule.file).is_absolute() else Path(rule.file)
    where = f"lookups.{name}"
    try:
        with open(path, encoding=rule.encoding, newline="") as handle:
            records = [r for r in csv.reader(handle, delimiter=rule.delimiter) if any(c.strip() for c in r)]
    except OSError as exc:
        raise MappingError(f"{where}.file: cannot read {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise MappingError(f"{where}.file: {path} is not readable {rule.encoding} CSV: {exc}") from None
    if not records:
        raise MappingError(f"{where}.file: {path} is empty (no header row)")
    header = tuple(name.strip() for name in records[0])
    key = rule.key if rule.key is not None else header[0]
    if key not in header:
        raise MappingError(
            f"{where}.key: {path} has no column {key!r}; its columns are: {', '.join(map(repr, header))}"
        )
    rows: dict[str, dict[str, str]] = {}
    for number, record in enumerate(records[1:], start=2):
        if len(record) != len(header):
            raise MappingError(
                f"{where}: {path} row {number} has {len(record)} cells, the header {len(header)}"
            )
        row = {column: cell.strip() for column, cell in zip(header, record, strict=True)}
        value = row[key]
        if value in rows and rows[value] != row:
            raise MappingError(f"{where}: {path} has two different rows for {key} {value!r}")
        rows[value] = row
    return Lookup(name, rule, path, key, header, rows)


__all__ = ["Lookup", "load_lookup"]
