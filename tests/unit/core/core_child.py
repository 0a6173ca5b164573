"""Child process of test_compiled_core.py: one KPI core (KPI_CORE) over event files, as JSON.

    KPI_CORE=compiled python -P tests/unit/core/core_child.py INPUT.json

INPUT: {"now": ISO, "runs": [{"mode": "wall"|"event", "lines": [str, ...]}, ...]}. For each run it
prints what the core made of the lines: every rep's (and scope's) state as the codec's encoded
parts (hex), the report document, and every rep's at-risk list. Run as a file, with the core
chosen before anything imports kpi_core, exactly as the `kpi-monitor` command does."""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from kpi_monitor import compiled_core


def main(path: Path) -> None:
    selection = compiled_core.select(os.environ)
    from kpi_core.clock import KpiClock
    from kpi_core.codec import encode_all
    from kpi_core.engine import KpiEngine, replay
    from kpi_core.report import read_events, report_document
    from kpi_rules import load_rules

    task = json.loads(path.read_text())
    now = datetime.fromisoformat(task["now"])
    rules = load_rules()
    out: list[dict[str, Any]] = []
    for run in task["runs"]:
        engine = KpiEngine(rules, KpiClock(mode=run["mode"], wall=lambda: now))
        lines = [line.encode("utf-8", "surrogatepass") for line in run["lines"]]
        rejected: Counter[str] = Counter()
        states, late = replay(engine, read_events(lines, engine, rejected))
        rejected.update(late)
        parts = {
            rep: {name: value.hex() for name, value in sorted(encode_all(state).items())}
            for rep, state in sorted(states.items())
        }
        at_risk = {rep: engine.at_risk(state) for rep, state in sorted(states.items())}
        document = report_document(states, engine, rejected)
        out.append({"parts": parts, "report": document, "at_risk": at_risk})
    print(
        json.dumps(
            {"selected": selection.core, "running": compiled_core.running(), "runs": out},
            default=str,
            sort_keys=True,
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]))
