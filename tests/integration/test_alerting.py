"""End to end alerting: a real worker -> a dedicated Prometheus (generated rules) -> a dedicated
Alertmanager (generated config) -> a webhook in this test; and every dashboard query answers.

The dev stack's Kafka and Redis are shared (the deployment has its own topics and app id); its
Prometheus and Alertmanager are left alone: this test runs its own, on free ports, in tmp dirs.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
import yaml

from kpi_monitor.rulesgen import render_all
from kpi_monitor.rulesgen.dashboards import panel_queries
from kpi_rules import load_rules
from kpi_testkit import WorkerProcess, eventually, sample
from tests.integration.alerting_stack import AlertingStack, Hook, fast_notify_rules, get_json
from tests.integration.workers import REPO, clear_of_midnight

STEADY, DECLINE = "steady", "decline"
# Panel queries the scenario cannot give data to, with the reason. Kept empty on purpose: the
# scenario below produces every figure (targets, open deals, quotes, visits, a rejected event).
NO_DATA_ALLOWED: dict[str, str] = {}
TEMPLATE_VALUES = {"$period": "month", "$team": DECLINE, "$rep": f"{DECLINE}-rep-1"}


# ------------------------------------------------------------------------------------- scenario


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _scenario(zone: ZoneInfo, now: datetime, churn_after_days: int) -> list[dict[str, Any]]:
    """Both teams won 10 x 1000 in the previous month to date; this month `steady` won as much
    again and `decline` 1 x 1000 (-90%). Timestamps sit halfway into the elapsed part of each
    month, so they fall in `current` and in `previous_to_date` whatever the day of the month.

    For the customer, satisfaction, spend and target panels: won deals carry a cost; this month's
    even-numbered deals go to new customers, the others to the rep's customer of last month (active
    at the start, retained, returning); each rep also has a customer whose only purchase churned
    40 days ago (a completed month: clv has a value); surveys, leads, the rep's marketing spend and
    the team's sales spend fall in this month; team `steady` has its own month target (an
    allocation gap against its reps') and a quarter target (a split gap against its month's), rep
    decline-rep-1 a quarter target (a split gap)."""
    local_now = now.astimezone(zone)
    cur_start_day = _month_start(local_now.date())
    prev_start_day = _month_start(cur_start_day - timedelta(days=1))
    quarter_start_day = cur_start_day.replace(month=(cur_start_day.month - 1) // 3 * 3 + 1)
    cur_start = datetime(cur_start_day.year, cur_start_day.month, 1, tzinfo=zone)
    prev_start = datetime(prev_start_day.year, prev_start_day.month, 1, tzinfo=zone)
    half = (now - cur_start) / 2
    t_prev, t_cur = prev_start + half, cur_start + half
    t_lost = now - timedelta(days=churn_after_days + 40)  # churned 40 days ago
    events: list[dict[str, Any]] = []
    serial = iter(range(1_000_000))

    def add(event_type: str, rep: str | None, team: str, at: datetime, **fields: Any) -> None:
        region = "emea" if team == STEADY else "apac"
        event = {
            "event_id": f"{rep or team}-{next(serial)}",
            "type": event_type,
            "occurred_at": at.isoformat(),
            "rep_id": rep,
            "team": team,
            "region": region,
            "customer_id": f"c-{rep}",
            **fields,
        }
        events.append({k: v for k, v in event.items() if v is not None})

    def won_deal(rep: str, team: str, at: datetime, n: int, amount: str = "1000", customer: str = "") -> None:
        deal = f"{rep}-d{n}-{at.month}"
        customer = customer or f"c-{rep}"
        created = at - min(half / 2, timedelta(hours=1))
        add(
            "deal.created",
            rep,
            team,
            created,
            deal_id=deal,
            amount=amount,
            currency="GBP",
            stage="proposal",
            channel=("phone", "web")[n % 2],
            customer_id=customer,
        )
        add(
            "visit.completed",
            rep,
            team,
            at - min(half / 4, timedelta(minutes=30)),
            visit_id=f"v-{deal}",
            deal_id=deal,
            customer_id=customer,
        )
        add(
            "quote.sent",
            rep,
            team,
            at - min(half / 8, timedelta(minutes=10)),
            quote_id=f"q-{deal}",
            deal_id=deal,
            amount=amount,
            currency="GBP",
            customer_id=customer,
        )
        cost = str(int(amount) * 3 // 5)
        add(
            "deal.won",
            rep,
            team,
            at,
            deal_id=deal,
            amount=amount,
            currency="GBP",
            cost=cost,
            customer_id=customer,
        )

    for team, current_wins in ((STEADY, 10), (DECLINE, 1)):
        reps = [f"{team}-rep-1", f"{team}-rep-2"]
        for i in range(10):
            won_deal(reps[i % 2], team, t_prev, i)
        for i in range(current_wins):
            rep = reps[i % 2]
            won_deal(rep, team, t_cur, 100 + i, customer=f"c-{rep}" if i % 2 else f"c-{rep}-new{i}")
        for rep in reps:
            won_deal(rep, team, t_lost, 900, amount="3000", customer=f"c-{rep}-lost")
            for n, (kind, score) in enumerate(
                (("csat", 5), ("csat", 4), ("csat", 2), ("nps", 10), ("nps", 3))
            ):
                add("survey.completed", rep, team, t_cur, survey_id=f"s-{rep}-{n}", kind=kind, score=score)
                add("lead.created", rep, team, t_cur, lead_id=f"l-{rep}-{n}", channel="web")
            add(
                "spend.recorded",
                rep,
                team,
                t_cur,
                spend_id=f"sp-{rep}",
                amount="300",
                currency="GBP",
                category="marketing",
            )
            add(
                "target.set",
                rep,
                team,
                t_cur,
                period="month",
                period_start=cur_start_day.isoformat(),
                amount="100000",
                currency="GBP",
            )
            add(
                "deal.created",
                rep,
                team,
                t_cur,
                deal_id=f"{rep}-open",
                amount="20000",
                currency="GBP",
                stage="negotiation",
                channel="referral",
            )
            add(
                "deal.created",
                rep,
                team,
                t_cur,
                deal_id=f"{rep}-lost",
                amount="500",
                currency="GBP",
                stage="qualification",
                channel="email",
            )
            add("deal.lost", rep, team, t_cur, deal_id=f"{rep}-lost")
        add(
            "spend.recorded",
            None,
            team,
            t_cur,
            spend_id=f"sp-{team}",
            amount="500",
            currency="GBP",
            category="sales",
            customer_id=None,
        )

    def scope_target(team: str | None, rep: str | None, period: str, start: date, amount: str) -> None:
        scope = {"scope": "team"} if rep is None else {}
        add(
            "target.set",
            rep,
            team or STEADY,
            t_cur,
            period=period,
            period_start=start.isoformat(),
            amount=amount,
            currency="GBP",
            customer_id=None,
            **scope,
        )

    scope_target(STEADY, None, "month", cur_start_day, "150000")  # its reps': 200000
    scope_target(STEADY, None, "quarter", quarter_start_day, "500000")  # its month's: 150000
    scope_target(DECLINE, f"{DECLINE}-rep-1", "quarter", quarter_start_day, "300000")
    # one event the worker must reject (no UTC offset): feeds the dead-letter panels
    bad = dict(events[-1], event_id="naive-1", occurred_at=t_cur.replace(tzinfo=None).isoformat())
    events.append(bad)
    return events


# ---------------------------------------------------------------------------------------- test


def _test_rules(tmp: Path, hook_url: str) -> Path:
    """kpi_rules/rules.yaml with short `for:` durations and the test's webhook."""
    data = yaml.safe_load((REPO / "kpi_rules" / "rules.yaml").read_text(encoding="utf-8"))
    alerts = data.setdefault("alerts", {})
    alerts.setdefault("revenue_decline", {})["for"] = "5s"
    return fast_notify_rules(tmp, data, hook_url)


def test_revenue_decline_fires_and_reaches_the_webhook(
    worker: WorkerProcess, hook: Hook, tmp_path: Path
) -> None:
    started = time.monotonic()
    rules_path = _test_rules(tmp_path, hook.url)
    # The worker runs on the wall clock and the scenario is this month's: a run across the
    # month's end (a midnight) would find the new month empty.
    clear_of_midnight(load_rules(rules_path).zone, minutes=6)
    files = render_all(load_rules(rules_path))
    assert hook.url in files["prometheus/alertmanager.yml"]
    stack = AlertingStack(tmp_path, files, worker.port)
    prom = stack.url
    try:
        stack.start()
        test_rules = load_rules(rules_path)
        events = _scenario(
            test_rules.zone, datetime.now(UTC) - timedelta(seconds=5), test_rules.customers.churn_after_days
        )
        event_file = tmp_path / "events.jsonl"
        event_file.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
        worker.deployment.cli("publish", str(event_file))

        def worker_has_it() -> bool:
            m = worker.metrics()
            return (
                sample(m, "sales_revenue", team=DECLINE, period="month", window="current") == 1000
                and sample(m, "sales_revenue", team=STEADY, period="month", window="current") == 10000
                and sample(m, "sales_revenue", team=DECLINE, period="month", window="previous_to_date")
                == 10000
                and sample(m, "kpi_events_rejected_total") >= 1
                # the customer side has reported back: last month's customer active at the start,
                # the lost one churned in a trailing month
                and sample(
                    m,
                    "sales_active_customers_start",
                    rep=f"{DECLINE}-rep-1",
                    period="month",
                    window="current",
                )
                == 1
                and sample(m, "sales_churned_customers", rep=f"{DECLINE}-rep-1", window="trailing") == 1
            )

        eventually(worker_has_it, timeout=90)

        # Prometheus: firing for the declining team only
        fired = eventually(lambda: stack.alerts("SalesRevenueDecline"), timeout=60)
        assert {a["labels"]["team"] for a in fired} == {DECLINE}, fired
        assert float(fired[0]["value"]) == pytest.approx(90.0)
        assert "90.0%" in fired[0]["annotations"]["summary"]
        growth = stack.query('team:sales_revenue:growth_pct{period="month"}')
        assert {r["metric"]["team"]: round(float(r["value"][1])) for r in growth} == {STEADY: 0, DECLINE: -90}

        # targets by scope: steady's own month target (150000) is what it is measured against;
        # decline has none, so its reps' (2 x 100000); the gap is steady's own minus its reps'
        attainment = eventually(
            lambda: stack.query('team:sales_revenue:attainment_pct{period="month",window="current"}'),
            timeout=30,
        )
        assert {r["metric"]["team"]: float(r["value"][1]) for r in attainment} == pytest.approx(
            {STEADY: 10000 / 150000 * 100, DECLINE: 1000 / 200000 * 100}
        )
        gaps = stack.query('sales_target_allocation_gap{period="month"}')
        assert [(r["metric"]["scope"], r["metric"].get("team"), float(r["value"][1])) for r in gaps] == [
            ("team", STEADY, -50000.0)
        ]

        # Alertmanager -> webhook
        def delivered() -> list[dict[str, Any]]:
            return [a for a in hook.alerts() if a["labels"].get("alertname") == "SalesRevenueDecline"]

        got = eventually(delivered, timeout=60)
        assert {a["labels"]["team"] for a in got} == {DECLINE}, got
        assert got[0]["status"] == "firing" and got[0]["labels"]["severity"] == "warning"
        assert "10k GBP" in got[0]["annotations"]["description"]

        # every dashboard query returns data from this Prometheus
        empty = _panels_without_data(prom, files)
        assert empty == [], (
            "panels without data (allow-list them with a reason if unavoidable):\n" + "\n".join(empty)
        )
    except BaseException:
        print(stack.logs())
        print("worker log:\n" + worker.log_tail())
        raise
    finally:
        stack.stop()
    print(f"alerting end to end in {time.monotonic() - started:.1f}s")


def _panels_without_data(prom: str, files: dict[str, str]) -> list[str]:
    queries = []
    for rel, content in files.items():
        if rel.startswith("grafana/dashboards/"):
            board = json.loads(content)
            for title, expr in panel_queries(board):
                for var, value in TEMPLATE_VALUES.items():
                    expr = expr.replace(var, value)
                queries.append((f"{board['title']} / {title}", expr))
    assert queries

    def missing() -> list[str]:
        out = []
        for name, expr in queries:
            if expr in NO_DATA_ALLOWED:
                continue
            body = get_json(f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
            assert body["status"] == "success", (name, expr, body)
            if not body["data"]["result"]:
                out.append(f"{name}: {expr}")
        return out

    # rates need two scrapes of a changed counter; give the rules a few evaluations
    last: list[list[str]] = [[]]

    def settled() -> bool:
        last[0] = missing()
        return not last[0]

    try:
        eventually(settled, timeout=30, interval=2)
    except AssertionError:
        pass
    return last[0]
