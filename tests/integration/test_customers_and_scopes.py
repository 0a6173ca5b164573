"""Customers, scope targets and team spend through real workers (Kafka, Redis): with two workers
and kill -9 of each while events arrive, `/kpis` equals `report` for every rep and period (the
customer counts included), the at-risk lists equal the core's, and the scope states' series
(rep="") add up to the report's team rows."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from kpi_core.clock import KpiClock
from kpi_core.engine import KpiEngine, replay
from kpi_core.events import decode_event
from kpi_rules import load_rules
from kpi_testkit import Deployment, WorkerProcess, eventually, sample
from tests.integration.workers import (
    api_mismatches,
    customers_settled,
    log_tail,
    publisher_log,
    report,
    report_reps,
    write_lines,
)
from tests.integration.workers import publisher as start_publisher

TEAMS = {"north": "emea", "south": "emea", "east": "apac"}
REPS = [(f"rep-{i:02d}", team) for i, team in enumerate(list(TEAMS) * 4)]  # 12 reps
# A fixed end, mid-month (the deployment runs on the event clock): ended at wall-clock now, the
# history's newest sale was some 17 hours before its end, so on a month's first day the event
# clock stayed in the previous month while the newest report row was the new one.
END = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)


def history(seed: int, days: int = 200) -> list[bytes]:
    """A customer-heavy history ending at END: repeat purchases (some customers stop and
    churn, some come back, some move to another rep), visits and quotes on customers, surveys,
    leads, a rep's and a team's spend, and targets for reps, a team, a region and the company."""
    rng = random.Random(seed)
    end = END
    start = end - timedelta(days=days)
    events: list[dict[str, Any]] = []
    n = 0

    def base(kind: str, at: datetime, rep: str | None, team: str) -> dict[str, Any]:
        nonlocal n
        n += 1
        out = {"event_id": f"e-{seed}-{n}", "type": kind, "occurred_at": at.isoformat(), "team": team}
        out["region"] = TEAMS[team]
        if rep is not None:
            out["rep_id"] = rep
        return out

    for c in range(150):
        rep, team = rng.choice(REPS)
        at = start + timedelta(hours=rng.uniform(0, 24 * 60))
        stops = start + timedelta(days=rng.uniform(40, days + 30))  # beyond the end: never stops
        while at < min(end, stops):
            if rng.random() < 0.05:  # the customer moves to another rep
                rep, team = rng.choice(REPS)
            deal = f"d-{seed}-{n}"
            events.append(base("deal.created", at - timedelta(days=3), rep, team) | {
                "deal_id": deal, "customer_id": f"c-{c}", "amount": "800", "currency": "GBP",
                "stage": "proposal", "channel": rng.choice(["phone", "web", "referral"]),
            })  # fmt: skip
            events.append(base("deal.won", at, rep, team) | {
                "deal_id": deal, "customer_id": f"c-{c}", "currency": "GBP",
                "amount": str(rng.randrange(500, 3000)), "cost": str(rng.randrange(100, 400)),
            })  # fmt: skip
            if rng.random() < 0.6:
                visit_at = at + timedelta(days=rng.uniform(1, 20))
                if visit_at < end:
                    events.append(base("visit.completed", visit_at, rep, team) | {
                        "visit_id": f"v-{n}", "customer_id": f"c-{c}",
                    })  # fmt: skip
            if rng.random() < 0.3:
                survey_at = at + timedelta(days=2)
                if survey_at < end:
                    events.append(base("survey.completed", survey_at, rep, team) | {
                        "survey_id": f"s-{n}", "customer_id": f"c-{c}", "kind": "csat",
                        "score": rng.randint(1, 5),
                    })  # fmt: skip
            gap = rng.uniform(10, 60) if rng.random() < 0.9 else rng.uniform(95, 130)  # churns
            at += timedelta(days=gap)
    for month in range(7):
        first = (end - timedelta(days=31 * month)).date().replace(day=1)
        moment = datetime(first.year, first.month, 1, 6, tzinfo=UTC) - timedelta(days=2)
        for rep, team in REPS:
            events.append(base("target.set", moment, rep, team) | {
                "period": "month", "period_start": first.isoformat(), "amount": "9000", "currency": "GBP",
            })  # fmt: skip
            events.append(base("lead.created", moment + timedelta(days=5), rep, team) | {
                "lead_id": f"l-{n}", "channel": "web",
            })  # fmt: skip
            events.append(base("spend.recorded", moment + timedelta(days=4), rep, team) | {
                "spend_id": f"sp-{n}", "amount": "120", "currency": "GBP", "category": "sales",
            })  # fmt: skip
        events.append(base("spend.recorded", moment + timedelta(days=3), None, "north") | {
            "spend_id": f"team-{n}", "amount": "900", "currency": "GBP", "category": "marketing",
        })  # fmt: skip
        events.append(base("target.set", moment, None, "north") | {
            "period": "month", "period_start": first.isoformat(), "amount": "40000",
            "currency": "GBP", "scope": "team",
        })  # fmt: skip
        events.append(base("target.set", moment, None, "south") | {
            "period": "month", "period_start": first.isoformat(), "amount": "12",
            "metric": "new_customers", "scope": "region", "region": "emea",
        })  # fmt: skip
    rng.shuffle(events)  # any arrival order
    return [orjson.dumps(e) for e in events if e["occurred_at"] <= end.isoformat()]


def _at_risk(lines: list[bytes]) -> dict[str, list[str]]:
    """The core's at-risk lists (customer ids) per rep, at the event clock of the whole file."""
    rules = load_rules()
    engine = KpiEngine(rules, KpiClock(mode="event"))
    states, _ = replay(engine, [decode_event(line, rules) for line in lines])
    return {
        rep: [c["customer_id"] for c in engine.at_risk(state)["customers"]]
        for rep, state in states.items()
        if not rep.startswith("\x1f")
    }


def _restart(deployment: Deployment, worker: WorkerProcess) -> WorkerProcess:
    worker.kill9()
    return deployment.worker().start()


def test_two_workers_killed_while_events_arrive_are_exact(
    kafka_bootstrap: str, redis_url: str, tmp_path: Path
) -> None:
    deployment = Deployment(kafka_bootstrap, redis_url, tmp_path)
    lines = history(seed=3)
    path = write_lines(tmp_path / "events.jsonl", lines)
    document = report(deployment, path)
    reps = report_reps(document)
    assert len(reps) == 12 and document["rejected"] == {}
    north = [
        r for r in document["scopes"] if (r["scope"], r["name"], r["period"]) == ("team", "north", "month")
    ]
    assert any(r["churned_customers"] for r in document["periods"]), "the history has churns"
    assert any(r["reactivated_customers"] for r in document["periods"]), "and reactivations"
    a, b = deployment.worker().start(), deployment.worker()
    publisher = None
    try:
        a.wait_ready()
        b.start().wait_ready()
        publisher = start_publisher(deployment, path, rate=120)
        rng = random.Random()
        for turn in range(4):  # a, b, a, b: each killed twice while events arrive
            time.sleep(rng.uniform(1.0, 3.0))
            assert publisher.poll() is None, "the kills should land while events are arriving"
            if turn % 2 == 0:
                a = _restart(deployment, a)
            else:
                b = _restart(deployment, b)
            print(f"kill -9 of {'a' if turn % 2 == 0 else 'b'} at turn {turn}")
        assert publisher.wait(180) == 0, log_tail(publisher_log(deployment))
        a.wait_ready()
        b.wait_ready()
        eventually(lambda: customers_settled([a, b]), timeout=120, interval=2.0)

        def exact() -> bool:
            problems = api_mismatches(a, document, ("day", "week", "month", "quarter", "year"), reps)
            assert not problems, f"{len(problems)} differences, e.g.:\n" + "\n".join(problems[:5])
            return True

        eventually(exact, timeout=120, interval=3.0)
        expected = _at_risk(lines)
        for rep in reps:
            status, body = b.get(f"/customers/reps/{rep}/at-risk")
            assert status == 200, (rep, status, body[:200])
            assert [c["customer_id"] for c in orjson.loads(body)["customers"]] == expected.get(rep, [])
        assert any(expected.values()), "some customers are at risk"

        # The team's own state (its spend and its target) is exported with rep="": summing the
        # team's series over both workers gives the report's team row.
        current = max(r["start"] for r in north)
        row = next(r for r in north if r["start"] == current)
        metrics = [a.metrics(), b.metrics()]
        for name in ("spend_marketing", "spend_sales", "new_customers", "active_customers_start"):
            got = sum(
                sample(m, f"sales_{name}", team="north", period="month", window="current") for m in metrics
            )
            assert got == float(row[name]), (name, got, row[name])
        team_target = sum(
            sample(m, "sales_metric_target", rep="", team="north", period="month", window="current")
            for m in metrics
        )
        assert team_target == 40000.0
    finally:
        if publisher is not None and publisher.poll() is None:
            publisher.kill()
        a.stop()
        b.stop()
