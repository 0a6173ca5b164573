"""Typed access to Faust internals its type stubs do not declare."""

from __future__ import annotations

from typing import Any

import faust


def recovery_completed(app: faust.App) -> bool:
    """Faust's table recovery has finished (the TableManager type does not declare `recovery`)."""
    tables: Any = app.tables
    return bool(tables.recovery.completed.is_set())
