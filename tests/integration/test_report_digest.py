"""`kpi-monitor digest`: a real worker fed by the simulator's `decline` scenario, a dedicated
Prometheus with the generated recording rules, and the digest's figures compared with `report`
on the same event file (the same rows, the same numbers); then the digest as HTML and PDF.

The dev stack's Kafka and Redis are shared (the deployment has its own topics and app id); its
Prometheus is left alone: this test runs its own on a free port, as test_alerting does."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from kpi_monitor.rulesgen import render_all
from kpi_rules import load_rules
from kpi_testkit import WorkerProcess, eventually, free_port
from tests.integration.alerting_stack import Service
from tests.integration.alerting_stack import binary as _binary
from tests.integration.workers import HISTORY_END, REPO, read_lines

# Figures that differ by construction, with the reason:
# - projected attainment divides by the elapsed fraction of the period at the moment each side
#   computes it (the worker's scrape, the report's run): a few seconds apart;
# - customer lifetime value sums the trailing completed months, which the rules do not record.
APPROX = {"projected_attainment_pct", "projected_by_metric_pct"}
FILE_ONLY = {"clv"}


def _prometheus(tmp: Path, worker_port: int) -> tuple[Service, str]:
    rules_dir = tmp / "prom" / "rules"
    rules_dir.mkdir(parents=True)
    for rel, content in render_all(load_rules(REPO / "kpi_rules" / "rules.yaml")).items():
        if rel.startswith("prometheus/rules/"):
            (rules_dir / Path(rel).name).write_text(content, encoding="utf-8")
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules_dir / "*.yml")],
        "scrape_configs": [
            {"job_name": "kpi-worker", "static_configs": [{"targets": [f"127.0.0.1:{worker_port}"]}]}
        ],
    }
    (tmp / "prom" / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    service = Service(
        "prometheus",
        [
            _binary("prometheus"),
            f"--config.file={tmp / 'prom' / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'prom' / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        tmp / "prometheus.log",
        f"http://127.0.0.1:{port}/-/ready",
    )
    return service, f"http://127.0.0.1:{port}"


def _json(worker: WorkerProcess, *args: str) -> dict[str, Any]:
    done = worker.deployment.cli(*args)
    return dict(json.loads(done.stdout))


def _keyed(document: dict[str, Any]) -> dict[tuple[str, ...], dict[str, Any]]:
    out: dict[tuple[str, ...], dict[str, Any]] = {}
    for row in document["periods"]:
        out[("rep", row["rep_id"], row["period"], row["start"])] = row
    for row in document["scopes"]:
        out[(row["scope"], row["name"], row["period"], row["start"])] = row
    return out


def _differences(report: dict[str, Any], digest: dict[str, Any]) -> list[str]:
    mine, theirs = _keyed(report), _keyed(digest)
    out = (
        [f"rows only in the report: {sorted(mine.keys() - theirs.keys())}"]
        if mine.keys() - theirs.keys()
        else []
    )
    if theirs.keys() - mine.keys():
        out.append(f"rows only in the digest: {sorted(theirs.keys() - mine.keys())}")
    for key in sorted(mine.keys() & theirs.keys()):
        a, b = mine[key], theirs[key]
        for name in a:
            if name == "derived":
                continue
            if a[name] != b[name]:
                out.append(f"{key} {name}: report {a[name]!r}, digest {b[name]!r}")
        for name, value in a["derived"].items():
            other = b["derived"][name]
            if name in FILE_ONLY or value == other:
                continue
            if name == "growth_pct" and other is None and key[3] != max(k[3] for k in mine if k[2] == key[2]):
                continue  # a completed period's growth needs the one before it: Prometheus history
            if name in APPROX and isinstance(value, float) and isinstance(other, float):
                if abs(value - other) <= 0.01 * max(1.0, abs(value)):
                    continue
            if name in APPROX and isinstance(value, dict) and isinstance(other, dict):
                if value.keys() == other.keys() and all(
                    (value[k] is None) == (other[k] is None)
                    and (value[k] is None or abs(value[k] - other[k]) <= 0.01 * max(1.0, abs(value[k])))
                    for k in value
                ):
                    continue
            out.append(f"{key} derived.{name}: report {value!r}, digest {other!r}")
    return out


# The history ends mid-month (a Wednesday), and the worker, the report and the digest all take
# "now" from it (KPI_CLOCK=event, --clock event, --at): the figures are those of this moment on
# whichever day the test runs. (On a wall clock, a run in the first hours of a month saw an empty
# current month, and north's like-for-like growth was undefined.)
NOW = HISTORY_END


def test_digest_gives_the_figures_of_report_on_the_same_events(
    event_worker: WorkerProcess, tmp_path: Path
) -> None:
    worker = event_worker
    deployment = worker.deployment
    events = tmp_path / "decline.jsonl"
    deployment.cli(
        "simulate", "--scenario", "decline", "--output", str(events), "--days", "62", "--reps", "8",
        "--history-per-hour", "20", "--seed", "7", "--until", NOW,
    )  # fmt: skip
    total = len(read_lines(events))
    assert total > 1000
    prometheus, prom = _prometheus(tmp_path, worker.port)
    prometheus.start()
    try:
        deployment.cli("publish", str(events))
        worker.wait_processed(total, timeout=300)
        reports: dict[str, dict[str, Any]] = {}
        for period in ("month", "week"):
            selection = ("--period", period, "--last", "2")
            report = _json(worker, "report", str(events), "--format", "json", "--clock", "event", *selection)
            reports[period] = report
            assert report["scopes"] and report["periods"]
            problems: list[str] = []

            def same(
                period: str = period, report: dict[str, Any] = report, problems: list[str] = problems
            ) -> bool:
                done = deployment.cli(
                    "digest", "--prometheus", prom, "--format", "json", "--period", period, "--last", "2",
                    "--at", NOW, check=False,
                )  # fmt: skip
                problems[:] = (
                    [done.stderr] if done.returncode else _differences(report, json.loads(done.stdout))
                )
                return not problems

            try:
                eventually(same, timeout=120, interval=2)
            except AssertionError:
                pytest.fail(f"{period}: digest and report differ:\n" + "\n".join(problems[:40]))
        # what was compared: every scope and rep row of both months, and the comparison can fail
        month = reports["month"]
        rows = _keyed(month)
        assert {k[0] for k in rows} == {"company", "region", "team", "rep"} and len(rows) >= 2 * (1 + 8)
        assert {k[3] for k in rows} == {"2026-10-01", "2026-11-01"}  # the months of NOW, not of today
        north = next(
            r for r in month["scopes"] if r["scope"] == "team" and r["name"] == "north" and r["start"] ==
            max(x["start"] for x in month["scopes"])
        )  # fmt: skip
        assert north["derived"]["growth_pct"] < 0  # the decline scenario's team, like for like
        changed = json.loads(json.dumps(month))
        changed["scopes"][0]["revenue"] = "1.00"
        assert _differences(month, changed) and not _differences(month, month)
        print(f"digest = report on {len(rows)} month rows and {len(_keyed(reports['week']))} week rows")

        # the same renderer: HTML and PDF from Prometheus
        started = time.monotonic()
        html = tmp_path / "digest.html"
        deployment.cli(
            "digest", "--prometheus", prom, "--period", "month", "--format", "html", "--output", str(html),
            "--at", NOW,
        )  # fmt: skip
        pdf = tmp_path / "digest.pdf"
        deployment.cli(
            "digest", "--prometheus", prom, "--period", "month", "--format", "pdf", "--output", str(pdf),
            "--at", NOW,
        )  # fmt: skip
        print(f"digest html+pdf in {time.monotonic() - started:.1f}s")
        page = html.read_text(encoding="utf-8")
        assert 'data-chart="revenue_target"' in page and 'data-chart="attainment"' in page
        assert "Prometheus: " + prom in page
        assert pdf.read_bytes().startswith(b"%PDF")
    except BaseException:
        print("prometheus log:\n" + prometheus.tail())
        print("worker log:\n" + worker.log_tail())
        raise
    finally:
        prometheus.stop()
