"""The compiled KPI core (mypyc, kpi_monitor/compiled_core.py) against the pure-Python reference.

Random event sets of the whole catalogue (deal funnels, visits, quotes, customers buying from
several reps with gaps long enough to churn and come back, surveys with repeated survey ids,
leads, spend of reps and teams, costs, money in other currencies, targets of every scope and
metric, malformed lines), each also shuffled with duplicates, go through both cores in separate
processes (`core_child.py`, the core chosen at process start as the `kpi-monitor` command does):
every state must be equal part by part (the codec's encoded bytes), and so must the report
documents and the at-risk lists. The compiled core is built by scripts/bootstrap.sh (CI runs it
first); without a current build this test fails and says how to build it."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import factories as f
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpi_monitor import compiled_core

CHILD = Path(__file__).with_name("core_child.py")
CUSTOMERS = ("cust-1", "cust-2", "cust-3", "cust-4")
# Purchases spread over ~14 months, so customers churn (90 days) and come back; older than the
# retained history some are refused `too_late`, in both cores alike.
_FAR = f.FIXED - timedelta(days=420)
far_times = st.integers(min_value=0, max_value=420 * 24 - 1).map(
    lambda h: (_FAR + timedelta(hours=h)).isoformat()
)
money = st.sampled_from(["0", "1", "12.5", "999.99", "1234.567891", "250000", 7, 1500])


@st.composite
def catalogue_events(draw: st.DrawFn) -> list[dict[str, Any]]:
    """An event set touching every kind of KPI (factories.event_sets plus the rest of the catalogue)."""
    events = draw(f.event_sets())
    reps = f.REPS
    for _ in range(draw(st.integers(1, 8))):  # customers buying (won deals) from several reps
        rep, customer = draw(st.sampled_from(reps)), draw(st.sampled_from(CUSTOMERS))
        events.append(
            f.deal_won(
                draw(far_times),
                f"deal-c{draw(st.integers(0, 99))}",
                rep,
                amount=draw(money),
                currency=draw(st.sampled_from(["GBP", "GBP", "EUR", "USD"])),
                customer=customer,
                cost=draw(st.none() | money),
                channel=draw(st.none() | st.sampled_from(f.CHANNELS)),
            )
        )
    for _ in range(draw(st.integers(0, 6))):  # visits and quotes of those customers
        rep, customer = draw(st.sampled_from(reps)), draw(st.sampled_from(CUSTOMERS))
        if draw(st.booleans()):
            events.append(f.visit(draw(far_times), rep, customer=customer))
        else:
            events.append(f.quote(draw(far_times), "deal-q", rep, amount=draw(money), customer=customer))
    for _ in range(draw(st.integers(0, 8))):  # surveys, some answering the same survey twice
        kind = draw(st.sampled_from(["csat", "nps"]))
        score = draw(st.integers(1, 5) if kind == "csat" else st.integers(0, 10))
        events.append(
            f.survey(
                draw(f.times), kind, score, draw(st.sampled_from(reps)),
                survey_id=f"survey-{draw(st.integers(0, 12))}",
                customer=draw(st.sampled_from(CUSTOMERS)),
            )
        )
    for _ in range(draw(st.integers(0, 3))):
        events.append(
            f.lead(draw(f.times), draw(st.sampled_from(reps)), channel=draw(st.sampled_from(f.CHANNELS)))
        )
    for _ in range(draw(st.integers(0, 3))):  # spend of a rep or of a team (no rep)
        events.append(
            f.spend(
                draw(f.times),
                draw(money),
                draw(st.sampled_from(["marketing", "sales"])),
                draw(st.none() | st.sampled_from(reps)),
                currency=draw(st.sampled_from(["GBP", "EUR"])),
                team=draw(st.sampled_from(f.TEAMS)),
            )
        )
    for _ in range(draw(st.integers(0, 3))):  # targets of every scope and metric
        scope = draw(st.sampled_from(["rep", "team", "region", "company"]))
        metric = draw(st.sampled_from(["revenue", "gross_margin", "visits", "deals_won", "new_customers"]))
        money_metric = metric in ("revenue", "gross_margin")
        events.append(
            f.target(
                draw(f.times),
                draw(st.sampled_from(["month", "quarter", "year"])),
                draw(st.sampled_from(["2026-10-01", "2026-11-01", "2026-01-01"])),
                draw(money) if money_metric else draw(st.integers(0, 50)),
                draw(st.sampled_from(reps)) if scope == "rep" else None,
                currency="GBP" if money_metric else None,
                metric=metric,
                scope=scope,
            )
        )
    for n, event in enumerate(events):  # unique ids within the set (duplicates come below)
        event["event_id"] = f"e{n:04d}"
    return events


def _lines(events: list[dict[str, Any]], rng: random.Random) -> list[str]:
    """The set as JSONL, shuffled, with duplicates and a few malformed lines."""
    lines = [orjson.dumps(e).decode() for e in events]
    lines += [rng.choice(lines) for _ in range(rng.randint(0, len(lines)))]
    lines += [
        '{"type": "deal.won", "rep_id": "rep-a"}',
        "not json",
        json.dumps({**events[0], "occurred_at": "2026-11-01T10:00:00", "event_id": "naive"}),
    ]
    rng.shuffle(lines)
    return lines


def _run(core: str, task: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("KPI_CORE", "PYTHONPATH")}
    result = subprocess.run(
        [sys.executable, "-P", str(CHILD), str(task)],
        env=env | {"KPI_CORE": core},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out: dict[str, Any] = json.loads(result.stdout)
    assert out["running"] == core, f"KPI_CORE={core} ran the {out['running']} core"
    return out


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sets=st.lists(catalogue_events(), min_size=8, max_size=8), seed=st.integers(0, 2**32 - 1))
def test_compiled_core_equals_the_reference(tmp_path_factory: Any, sets: list[Any], seed: int) -> None:
    problem = compiled_core._problem(compiled_core.build_dir())
    assert problem is None, (
        f"the compiled core is {problem}: build it with `python -m kpi_monitor.compiled_core build`"
        " (scripts/bootstrap.sh does)"
    )
    rng = random.Random(seed)
    runs = [
        {"mode": mode, "lines": _lines(events, rng)}
        for events in sets
        for mode in ("wall", "event")
    ]
    task = tmp_path_factory.mktemp("cores") / "task.json"
    task.write_text(json.dumps({"now": f.FIXED.isoformat(), "runs": runs}))
    pure, compiled = _run("python", task), _run("compiled", task)
    assert len(pure["runs"]) == len(compiled["runs"]) == len(runs)
    for index, (a, b) in enumerate(zip(pure["runs"], compiled["runs"], strict=True)):
        assert a["parts"].keys() == b["parts"].keys(), index
        for rep in a["parts"]:
            assert a["parts"][rep] == b["parts"][rep], (index, rep)
        assert a["report"] == b["report"], index
        assert a["at_risk"] == b["at_risk"], index
    # The sets exercised what they are meant to: states with customers, rejections, scopes.
    assert any("c|" in name for run in pure["runs"] for p in run["parts"].values() for name in p)
    assert any(run["report"]["rejected"] for run in pure["runs"])
