"""Typed access to Faust internals its type stubs do not declare."""

from __future__ import annotations

from typing import Any

import faust


def recovery_completed(app: faust.App) -> bool:
    """Faust's table recovery has finished (the TableManager type does not declare `recovery`)."""
    tables: Any = app.tables
    return bool(tables.recovery.completed.is_set())


def committed_offsets(consumer: Any) -> dict[Any, int | None]:
    """The group's committed offsets a Faust consumer has just sought its partitions to
    (`Consumer.perform_seek` fills `_committed_offset`, which the consumer type does not declare)."""
    return dict(consumer._committed_offset)
