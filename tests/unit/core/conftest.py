"""Shared fixtures of the KPI core tests; the event builders live in `factories.py` next to this."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

# The test modules import `factories` as a plain module (there is no package __init__ here);
# make that work whatever pytest import mode is in use.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import factories  # noqa: E402

from kpi_core.engine import KpiEngine  # noqa: E402
from kpi_rules import Rules  # noqa: E402


@pytest.fixture()
def fixed_now() -> datetime:
    """The tests' wall clock: Monday 2026-11-23 10:00 UTC (10:00 in Europe/London)."""
    return factories.FIXED


@pytest.fixture()
def packaged_rules() -> Rules:
    return factories.rules()


@pytest.fixture()
def make_engine() -> Callable[..., KpiEngine]:
    """`make_engine(rules=None, now=FIXED, mode="wall")`: an engine on a fixed wall clock."""

    def make(rules: Rules | None = None, now: datetime = factories.FIXED, mode: str = "wall") -> KpiEngine:
        return factories.engine(rules, now, mode)

    return make


@pytest.fixture()
def run_report() -> Callable[..., dict[str, Any]]:
    """`run_report(events, rules=None, now=FIXED, mode="wall")`: the report document."""
    return factories.report
