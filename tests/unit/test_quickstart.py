"""The quick start is honest: its rules are the packaged ones but for shorter waits, and the CI
test of its alert path runs the simulator exactly as scripts/quickstart.sh does."""

from __future__ import annotations

import dataclasses
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from kpi_monitor.devstack_config import DevConfig, generated_files, prometheus_config
from kpi_monitor.traffic import CHURN_LEAD_DAYS
from kpi_rules import load_rules

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "scripts" / "quickstart.sh"
#: What kpi_rules/quickstart.yaml may change, and only to shorten a wait.
SHORTER_WAITS = {
    ("alerts", "revenue_decline", "for"),
    ("alerts", "visits_drop", "for"),
    ("alerts", "churn_rising", "for"),
    ("alerts", "notify", "group_wait"),
    ("alerts", "notify", "group_interval"),
}


def _flat(doc: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    if isinstance(doc, dict):
        out: dict[tuple[str, ...], Any] = {}
        for key, value in doc.items():
            out |= _flat(value, (*prefix, str(key)))
        return out
    return {prefix: doc}


def _seconds(duration: str) -> int:
    return int(duration[:-1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[duration[-1]]


def test_quickstart_rules_differ_from_the_packaged_ones_only_by_shorter_waits() -> None:
    packaged = load_rules(REPO / "kpi_rules" / "rules.yaml").model_dump(by_alias=True)
    quick = load_rules(REPO / "kpi_rules" / "quickstart.yaml").model_dump(by_alias=True)
    a, b = _flat(packaged), _flat(quick)
    differ = {key for key in a.keys() | b.keys() if a.get(key) != b.get(key)}
    assert differ == SHORTER_WAITS
    for key in differ:
        assert _seconds(b[key]) < _seconds(a[key]), key


def simulate_args() -> list[str]:
    """The `kpi-monitor simulate` arguments of scripts/quickstart.sh (shell variables filled
    with their defaults)."""
    line = next(
        line for line in QUICKSTART.read_text().splitlines() if "kpi-monitor simulate" in line
    )
    line = re.sub(r'"\$\{\w+:-([^}]*)\}"', r"\1", line)
    line = line.replace('"$rules"', "kpi_rules/quickstart.yaml")
    words = shlex.split(line)
    return words[words.index("simulate") + 1 :]


def test_the_quickstart_simulates_the_decline_with_a_previous_month_to_compare_with() -> None:
    args = simulate_args()
    value = {args[i]: args[i + 1] for i in range(0, len(args) - 1) if args[i].startswith("--")}
    assert value["--rules"] == "kpi_rules/quickstart.yaml"
    teams = dict(part.partition(":")[::2] for part in value["--scenario"].split("+"))
    # North declines; another team loses customers (a churning team sells less, which would blur
    # the declining team's comparison with its previous month).
    assert teams.keys() == {"decline", "churn"} and teams["decline"] in ("", "north")
    assert teams["churn"] not in ("", "north")
    # The whole previous month up to today's day: at most 31 + 30 days back.
    assert int(value["--days"]) >= 62
    # And the churn from its beginning (churn_origin: before the current month, which has up to
    # 31 days), with the packaged churn definition: the quick start shortens no churn.
    churn_after = load_rules(REPO / "kpi_rules" / "quickstart.yaml").customers.churn_after_days
    assert churn_after == load_rules(REPO / "kpi_rules" / "rules.yaml").customers.churn_after_days
    assert int(value["--days"]) >= 31 + churn_after + CHURN_LEAD_DAYS


def test_a_stack_given_a_rules_file_runs_what_it_generates(tmp_path: Path) -> None:
    cfg = DevConfig.from_env(str(tmp_path), env={"KPI_ALERTS_PORT": "5077"})
    plain = yaml.safe_load(prometheus_config(cfg))
    assert plain["rule_files"] == [str(REPO / "prometheus" / "rules" / "*.yml")]
    quick = dataclasses.replace(cfg, rules_file=REPO / "kpi_rules" / "quickstart.yaml")
    generated = str(tmp_path / "prometheus" / "rules" / "*.yml")
    assert yaml.safe_load(prometheus_config(quick))["rule_files"] == [generated]
    files = generated_files(quick)
    alerts = yaml.safe_load(files["kpi-alerts.yml"])
    durations = {r["alert"]: r.get("for") for g in alerts["groups"] for r in g["rules"]}
    assert durations["SalesRevenueDecline"] == "1m" and durations["SalesVisitsDrop"] == "1m"
    routing = yaml.safe_load(files["alertmanager.yml"])
    assert routing["route"]["group_wait"] == "10s"
    urls = {c["url"] for r in routing["receivers"] for c in r["webhook_configs"]}
    assert urls == {"http://127.0.0.1:5077/hook"}
