"""Two workers of one deployment split the partitions: their /metrics add up to the true figures,
and when one stops the other takes over everything, with no rep exported twice or left stale."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from kpi_testkit import Deployment, Metrics, WorkerProcess, eventually, sample
from tests.integration.workers import (
    api_mismatches,
    current_start,
    report,
    report_reps,
    simulate_file,
    wait_all_handled,
    write_lines,
)

EVENTS = 5000
# Additive gauges compared with the report, by the report row's field name.
KPIS: tuple[str, ...] = (
    "visits",
    "deals_created",
    "deals_won",
    "deals_lost",
    "quotes_sent",
    "revenue",
    "target",
)
# Windows whose figures do not depend on the exact "now" (each worker's event clock is the
# newest event it has applied itself, so it may differ by minutes between two workers).
COMPARED: tuple[tuple[str, str], ...] = (
    ("month", "current"),
    ("month", "previous"),
    ("quarter", "current"),
    ("year", "current"),
)


Key = tuple[str, str, str, str]  # kpi, rep, period, window


def _expected(document: dict[str, Any]) -> dict[Key, float | None]:
    """(kpi, rep, period, window) -> value from the report, for the compared windows."""
    rows = document["periods"]
    current = {kind: current_start(document, kind) for kind, _ in COMPARED}
    by_key = {(r["rep_id"], r["period"], r["start"]): r for r in rows}
    out: dict[Key, float | None] = {}
    for rep in report_reps(document):
        for kind, window in COMPARED:
            start = current[kind]
            if window == "previous":
                start = _previous_start(kind, start)
            row = by_key.get((rep, kind, start))
            for kpi in KPIS:
                value = row.get(kpi) if row else None
                if value is None:
                    value = None if kpi == "target" else 0
                out[(kpi, rep, kind, window)] = None if value is None else float(value)
    return out


def _previous_start(kind: str, start: str) -> str:
    assert kind == "month", kind
    year, month, _ = (int(x) for x in start.split("-"))
    year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return f"{year:04d}-{month:02d}-01"


def _exported(
    metric_sets: list[Metrics],
) -> tuple[dict[Key, float], list[str]]:
    """Sum over workers of every compared `sales_*` sample; and series exported more than once."""
    totals: dict[Key, float] = {}
    seen: Counter[tuple[str, ...]] = Counter()
    for metrics in metric_sets:
        for (name, items), value in metrics.items():
            if not name.startswith("sales_") or name in ("sales_period_elapsed_ratio",):
                continue
            labels = dict(items)
            seen[(name, *(v for _, v in items))] += 1
            kpi = name.removeprefix("sales_")
            if kpi not in KPIS or (labels["period"], labels["window"]) not in COMPARED:
                continue
            if not labels["rep"]:
                continue  # a team's, region's or the company's own state (spend, targets): no rep row
            key = (kpi, labels["rep"], labels["period"], labels["window"])
            totals[key] = totals.get(key, 0.0) + value
    twice = [" ".join(k) for k, n in seen.items() if n > 1]
    return totals, twice


def _differences(expected: dict[Key, float | None], got: dict[Key, float]) -> list[str]:
    problems = []
    for key, value in expected.items():
        have = got.get(key)
        if value is None:
            if have is not None:
                problems.append(f"{key}: exported {have}, report has no target")
        elif have is None or abs(have - value) > 1e-6 * max(1.0, abs(value)):
            problems.append(f"{key}: exported {have}, report {value}")
    extra = sorted(set(got) - set(expected))
    problems.extend(f"{key}: exported {got[key]} for a rep/window the report lacks" for key in extra)
    return problems


def _owned(worker: WorkerProcess) -> float:
    return sample(worker.metrics(), "kpi_owned_partitions")


def _reps_exposed(metrics: Metrics) -> set[str]:
    """Reps with series (not the empty rep label of a team's, region's or the company's state)."""
    return {
        dict(items)["rep"]
        for (name, items), _ in metrics.items()
        if name == "sales_visits"
        and dict(items).get("period") == "month"
        and dict(items).get("window") == "current"
        and dict(items)["rep"]
    }


def test_two_workers_sum_to_one_worker_and_failover(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    deployment = Deployment(kafka_bootstrap, redis_url, tmp_path)
    path = tmp_path / "events.jsonl"
    lines = simulate_file(deployment, path, EVENTS, days=20, reps=30, per_hour=40, seed=7)
    # Held back for later: every 10th event of the oldest 80%, so applying them never moves the
    # event clock (the newest event is in the first batch); only events of reps (a team's spend
    # or target belongs to the team's state, which no rep label shows).
    of_rep = [b'"rep_id"' in line for line in lines]
    held = {i for i in range(0, len(lines) * 8 // 10, 10) if of_rep[i]}
    early = [line for i, line in enumerate(lines) if i not in held]
    later = [line for i, line in enumerate(lines) if i in held]
    # One event from the future: its dead letter makes the agent's producer send to another
    # topic before the cross-worker /kpis requests below (which once broke their routing).
    future = orjson.loads(next(line for line in reversed(lines) if b'"rep_id"' in line)) | {
        "event_id": "from-the-future",
        "occurred_at": (datetime.now(UTC) + timedelta(days=2)).isoformat(),
    }
    later.append(orjson.dumps(future))
    document = report(deployment, write_lines(path, early + later))
    assert document["rejected"] == {"future": 1}
    expected = _expected(document)
    reps = report_reps(document)
    assert len(reps) == 30

    a = deployment.worker().start()
    b = deployment.worker()
    c = deployment.worker()
    try:
        # 1. a alone applies the early events (and its /metrics caches every rep's series).
        a.wait_ready()
        deployment.cli("publish", str(write_lines(tmp_path / "early.jsonl", early)))
        wait_all_handled([a], len(early), timeout=90)
        assert _owned(a) == 4

        # 2. b joins and takes some partitions; the held-back events arrive and b applies those
        # of its reps. a is not scraped meanwhile. Then b stops: a takes its partitions back
        # and must show what b changed there (not what it had cached before they moved).
        started = time.monotonic()
        b.start().wait_ready()
        eventually(lambda: 0 < _owned(b) < 4, timeout=90)
        print(f"\nb joined in {time.monotonic() - started:.1f}s, owns {_owned(b):.0f} partitions")
        deployment.cli("publish", str(write_lines(tmp_path / "later.jsonl", later)))
        reps_b = _reps_exposed(b.metrics())
        share = sum(orjson.loads(line)["rep_id"] in reps_b for line in later)
        assert 0 < share < len(later)
        wait_all_handled([b], share, timeout=60, settle=[a, b])
        stopped = time.monotonic()
        b.stop()
        eventually(lambda: _owned(a) == 4, timeout=90)
        a.wait_ready()
        eventually(lambda: _survivor_is_complete(a, expected, reps), timeout=60)
        print(f"a took b's partitions back, complete in {time.monotonic() - stopped:.1f}s")

        # 3. c joins: a hands partitions over and must stop exporting their reps; together
        # they export every rep exactly once and add up to the report.
        c.start().wait_ready()
        eventually(lambda: _owned(a) > 0 and _owned(c) > 0 and _owned(a) + _owned(c) == 4, 90)

        def split_is_exact() -> bool:
            ma, mc = a.metrics(), c.metrics()
            got, twice = _exported([ma, mc])
            assert not twice, f"series exported by both workers: {twice[:5]}"
            problems = _differences(expected, got)
            assert not problems, f"{len(problems)} differences, e.g. {problems[:5]}"
            only_a, only_c = _reps_exposed(ma), _reps_exposed(mc)
            assert only_a and only_c, "one worker exports no rep"
            assert not only_a & only_c and only_a | only_c == set(reps)
            return True

        eventually(split_is_exact, timeout=30)
        reps_a, reps_c = sorted(_reps_exposed(a.metrics())), sorted(_reps_exposed(c.metrics()))
        print(f"split: a exports {len(reps_a)} reps, c {len(reps_c)}")

        # Either worker answers for any rep (forwarded to the owner), exactly as the report: the
        # event clock is shared through Redis, so every worker's "now" is the newest event of all.
        for asked, other in ((a, reps_c), (c, reps_a)):
            for rep in other[:3]:
                status, body = asked.kpis(rep, "month")
                assert status == 200, (rep, status, body)
                assert body["rep_id"] == rep
            exact = eventually(
                lambda asked=asked, other=other: (
                    not api_mismatches(asked, document, ("month",), other[:3], now_exact=True)
                ),
                timeout=15,
            )
            assert exact

        # 4. Failover: c stops; a alone exposes complete figures, each rep exactly once, and
        # (owning every rep, so the newest event too) answers exactly as the report.
        stopped = time.monotonic()
        c.stop()
        eventually(lambda: _owned(a) == 4, timeout=90)
        a.wait_ready()
        eventually(lambda: _survivor_is_complete(a, expected, reps), timeout=60)
        print(f"failover to one worker complete in {time.monotonic() - stopped:.1f}s")
        problems = api_mismatches(a, document, ("day", "week", "month", "quarter", "year"), reps)
        assert not problems, f"{len(problems)} differences, e.g.:\n" + "\n".join(problems[:10])
    finally:
        for worker in (a, b, c):
            worker.stop()


def _survivor_is_complete(worker: WorkerProcess, expected: dict[Key, float | None], reps: list[str]) -> bool:
    metrics = worker.metrics()
    got, twice = _exported([metrics])
    assert not twice, twice[:5]
    problems = _differences(expected, got)
    assert not problems, f"{len(problems)} differences, e.g. {problems[:5]}"
    assert _reps_exposed(metrics) == set(reps)
    return True
