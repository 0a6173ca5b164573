"""SalesChurnRising end to end: a history in which one team's customers stop buying -> a real
worker (event clock) -> a dedicated Prometheus running the generated rules -> a dedicated
Alertmanager -> a webhook in this test. The alert fires for the churning team only: not for the
team whose customers keep buying, nor for a team that lost all its customers but had too few at
the start of the month (the volume guard).

Churn is evaluated at read time: a customer churns `churn_after_days` after its last purchase,
once the clock has passed that instant. The history puts that instant halfway between the start
of the month and "now" (the newest event), so it is in this month whatever the day of the month.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from kpi_monitor.rulesgen import render_all
from kpi_rules import load_rules
from kpi_testkit import Deployment, WorkerProcess, eventually, sample
from tests.integration.alerting_stack import AlertingStack, Hook, fast_notify_rules
from tests.integration.workers import REPO

CHURN_AFTER_DAYS = 20
CHURNING, LOYAL, TINY = "churning", "loyal", "tiny"
#: team -> (reps, customers per rep, of which still buying this month)
TEAMS = {CHURNING: (2, 4, 1), LOYAL: (2, 4, 4), TINY: (1, 2, 0)}
MIN_ACTIVE = 5  # tiny's 2 customers are below it


def _rules(tmp: Path, hook_url: str) -> Path:
    """kpi_rules/rules.yaml with a short churn window, SalesChurnRising held 5 s, the test's hook."""
    data = yaml.safe_load((REPO / "kpi_rules" / "rules.yaml").read_text(encoding="utf-8"))
    data["customers"] = {"churn_after_days": CHURN_AFTER_DAYS, "at_risk_after_days": 10}
    data["alerts"]["churn_rising"] = {
        "threshold_pct": 20,
        "min_active_customers": MIN_ACTIVE,
        "period": "month",
        "for": "5s",
        "severity": "warning",
        "scope": "team",
    }
    return fast_notify_rules(tmp, data, hook_url)


def _history(now: datetime, month_start: datetime) -> list[dict[str, Any]]:
    """Every customer bought once at `month_start + half - 20 days` (so it is active at the start
    of the month and would churn at `month_start + half`); those still buying bought again before
    that instant and late enough not to churn by `now` (after `now - 20 days`: possible as half a
    month is under 20 days). A visit at `now` moves the event clock past the churn instant."""
    half = (now - month_start) / 2
    window = timedelta(days=CHURN_AFTER_DAYS)
    first = month_start + half - window
    churn, not_before = month_start + half, now - window
    again = not_before + (churn - not_before) / 2
    events: list[dict[str, Any]] = []

    def event(kind: str, rep: str, team: str, at: datetime, customer: str, **fields: Any) -> None:
        events.append(
            {
                "event_id": f"{kind}-{rep}-{customer}-{at.timestamp()}",
                "type": kind,
                "occurred_at": at.isoformat(),
                "rep_id": rep,
                "team": team,
                "region": "emea",
                "customer_id": customer,
                **fields,
            }
        )

    for team, (reps, customers, buying) in TEAMS.items():
        for r in range(reps):
            rep = f"{team}-rep-{r}"
            for c in range(customers):
                customer = f"{rep}-c{c}"
                buys = (first, again) if c < buying else (first,)
                for at in buys:
                    deal = f"{customer}-{at.timestamp()}"
                    event("deal.won", rep, team, at, customer, deal_id=deal, amount="500", currency="GBP")
    event("visit.completed", f"{LOYAL}-rep-0", LOYAL, now, f"{LOYAL}-rep-0-c0", visit_id="now")
    return events


@pytest.fixture
def deployment(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> Iterator[Deployment]:
    deployment = Deployment(kafka_bootstrap, redis_url, tmp_path, clock="event")
    try:
        yield deployment
    finally:
        deployment.cleanup()


def test_churn_rising_fires_for_the_churning_team_only(
    deployment: Deployment, hook: Hook, tmp_path: Path
) -> None:
    started = time.monotonic()
    deployment.rules = _rules(tmp_path, hook.url)
    rules = load_rules(deployment.rules)
    worker: WorkerProcess = deployment.worker().start()
    stack = AlertingStack(tmp_path, render_all(rules), worker.port)
    try:
        worker.wait_ready()
        stack.start()
        now = datetime.now(UTC) - timedelta(seconds=5)
        local = now.astimezone(rules.zone)
        # the month's first instant in the rules' zone; the history is computed in UTC from it
        month_start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
        events = _history(now, month_start)
        path = tmp_path / "events.jsonl"
        path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
        deployment.cli("publish", str(path))

        def churned() -> bool:
            m = worker.metrics()
            current = {"period": "month", "window": "current"}
            return (
                sample(m, "sales_active_customers_start", team=CHURNING, **current) == 8
                and sample(m, "sales_retained_customers", team=CHURNING, **current) == 2
                and sample(m, "sales_retained_customers", team=LOYAL, **current) == 8
                and sample(m, "sales_active_customers_start", team=TINY, **current) == 2
                and sample(m, "sales_retained_customers", team=TINY, **current) == 0
            )

        eventually(churned, timeout=120)

        # the recorded churn: 6 of 8 for churning, none for loyal, 2 of 2 for tiny (too few)
        churn = eventually(
            lambda: stack.query('team:sales_customers:churn_pct{period="month",window="current"}'),
            timeout=30,
        )
        assert {r["metric"]["team"]: float(r["value"][1]) for r in churn} == {
            CHURNING: 75.0,
            LOYAL: 0.0,
            TINY: 100.0,
        }

        fired = eventually(lambda: stack.alerts("SalesChurnRising"), timeout=60)
        assert {a["labels"]["team"] for a in fired} == {CHURNING}, fired
        assert float(fired[0]["value"]) == pytest.approx(75.0)
        assert fired[0]["annotations"]["summary"] == f"Team {CHURNING}: customer churn 75.0% this month"
        assert "of the 8 customers" in fired[0]["annotations"]["description"]
        time.sleep(10)  # two `for:` periods later, still no other team
        teams = {a["labels"]["team"] for a in stack.alerts("SalesChurnRising", "firing")}
        pending = stack.alerts("SalesChurnRising", "pending")
        assert teams == {CHURNING} and not pending, (teams, pending)

        def delivered() -> list[dict[str, Any]]:
            return [a for a in hook.alerts() if a["labels"].get("alertname") == "SalesChurnRising"]

        got = eventually(delivered, timeout=60)
        assert {a["labels"]["team"] for a in got} == {CHURNING}, got
        assert got[0]["status"] == "firing" and got[0]["labels"]["severity"] == "warning"
    except BaseException:
        print(stack.logs())
        print("worker log:\n" + worker.log_tail())
        raise
    finally:
        stack.stop()
        worker.stop()
    print(f"churn alert end to end in {time.monotonic() - started:.1f}s")
