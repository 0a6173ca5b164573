"""`kpi-monitor publish` without Kafka: --dry-run, refusals, the summary and the progress line."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from kpi_monitor.cli import main
from kpi_monitor.csv_mapping import load_mapping
from kpi_monitor.csv_rows import CsvRows
from kpi_monitor.progress import Progress, count_lines
from kpi_monitor.publish import Outgoing, Refusal, Tally, _settle, csv_items, jsonl_items, summary
from kpi_monitor.simulate import key_for
from kpi_rules import load_rules, packaged_rules_path
from kpi_rules.vocabulary import EventType

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
OPPORTUNITIES = EXAMPLES / "salesforce-opportunities.mapping.yaml"
RULES_PATH = packaged_rules_path()
RULES = load_rules(RULES_PATH)
HEADER = (EXAMPLES / "salesforce-opportunities.csv").read_text().splitlines()[0].split(",")


def opportunity(
    n: int, stage: str = "Closed Won", amount: str = "1,000.00", hours_ago: float = 2
) -> list[str]:
    """A row of the example export, changed `hours_ago` (so that a worker would accept it now).
    A local time the autumn clock change repeats is moved 2 hours further from now: the mapping
    refuses it as ambiguous (tested on its own in tests/unit/test_csv_mapping.py)."""
    zone = ZoneInfo("Europe/London")
    local = (datetime.now(UTC) - timedelta(hours=hours_ago)).astimezone(zone)
    naive = local.replace(tzinfo=None)
    if naive.replace(tzinfo=zone, fold=0).utcoffset() != naive.replace(tzinfo=zone, fold=1).utcoffset():
        local = (local - timedelta(hours=2 if hours_ago >= 0 else -2)).astimezone(zone)
    values = {
        "Opportunity ID": f"006-{n}",
        "Opportunity Name": f"Deal {n}",
        "Account ID": f"001-{n}",
        "Opportunity Owner": "rep-1",
        "Sales Team": "north",
        "Region": "emea",
        "Stage": stage,
        "Amount": amount,
        "Opportunity Currency": "GBP",
        "Lead Source": "Web",
        "Created Date": local.strftime("%d/%m/%Y"),
        "Stage Change Date": local.strftime("%d/%m/%Y %H:%M"),
        "Probability (%)": "100",
    }
    return [values[name] for name in HEADER]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([HEADER, *rows])
    return path


def publish(*args: str) -> int:
    return main(["publish", *args, "--rules", str(RULES_PATH)])


# --------------------------------------------------------------------------- --dry-run


def test_dry_run_of_the_example_maps_every_row(capsys: pytest.CaptureFixture[str]) -> None:
    # The example's dates are fixed (2026): its exit status depends on today's date (too_late
    # some years on), so only the mapping's part of the summary is checked here.
    publish(str(EXAMPLES / "quotas.csv"), "--mapping", str(EXAMPLES / "quotas.mapping.yaml"), "--dry-run")
    err = capsys.readouterr().err
    assert "publish --dry-run: would send 3 (target.set 3)" in err
    assert "refused 0; nothing was sent to Kafka" in err


def test_dry_run_reports_refused_rows_and_what_the_worker_would_reject(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(
        tmp_path / "export.csv",
        [
            opportunity(1),
            opportunity(2, amount="1.000,00"),  # line 3: not this export's number format
            opportunity(3, stage="On Hold"),  # line 4: a stage the mapping does not know
            opportunity(4, hours_ago=-3),  # line 5: three hours in the future
            opportunity(5, hours_ago=24 * 365 * 5),  # line 6: older than the retained history
            opportunity(6, stage="Prospecting"),
        ],
    )
    assert publish(str(path), "--mapping", str(OPPORTUNITIES), "--dry-run") == 1
    err = capsys.readouterr().err
    assert "publish: line 3 refused (bad_amount): column 'Amount': '1.000,00' is not an amount" in err
    assert "publish: line 4 refused (unmapped_value): column 'Stage': 'On Hold' is not in" in err
    assert "publish: line 5 would be rejected by the worker (future): occurred_at:" in err
    assert "publish: line 6 would be rejected by the worker (too_late): occurred_at:" in err
    assert (
        "publish --dry-run: would send 4 (deal.created 1, deal.won 3), of which the worker would "
        "reject 2 (future 1, too_late 1); refused 2 (bad_amount 1, unmapped_value 1); "
        "nothing was sent to Kafka"
    ) in err


def test_dry_run_of_jsonl_decodes_as_the_worker_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    good = {
        "event_id": "v-1",
        "type": "visit.completed",
        "occurred_at": (now - timedelta(hours=1)).isoformat(),
        "rep_id": "r",
        "visit_id": "v",
        "customer_id": "c",
    }
    lines = [
        orjson.dumps(good),
        b"",
        b"not json",
        orjson.dumps(good | {"event_id": "v-2", "occurred_at": "2026-01-01T10:00:00"}),
        orjson.dumps(good | {"event_id": "v-3", "type": "visit.cancelled"}),
        orjson.dumps(good),  # the same event again
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines))  # no newline at the end
    assert publish(str(path), "--dry-run") == 1
    err = capsys.readouterr().err
    assert "publish: line 3 refused (no_type): no contract event type" in err
    assert "publish: line 4 would be rejected by the worker (naive_timestamp)" in err
    assert "publish: line 5 would be rejected by the worker (unknown_type)" in err
    assert "publish: line 6: event_id 'v-1' was seen before in this file; the worker counts it once" in err
    assert "would send 4 (visit.cancelled 1, visit.completed 3)" in err
    assert "reject 2 (naive_timestamp 1, unknown_type 1); refused 1 (no_type 1); 1 repeated event_id" in err


def test_only_the_first_refusals_are_shown_then_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_csv(tmp_path / "export.csv", [opportunity(n, stage="Nope") for n in range(7)])
    assert publish(str(path), "--mapping", str(OPPORTUNITIES), "--dry-run", "--show-refused", "2") == 1
    err = capsys.readouterr().err
    assert err.count("refused (unmapped_value)") == 2
    assert "publish: 5 more refused or rejected lines not shown (--show-refused N)" in err
    assert "refused 7 (unmapped_value 7)" in err


def test_unusable_input_exits_2_before_anything_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = write_csv(tmp_path / "export.csv", [opportunity(1)])
    assert publish(str(export)) == 2
    assert "is a CSV export: give --mapping MAPPING.yaml" in capsys.readouterr().err
    assert publish(str(tmp_path / "missing.jsonl")) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(OPPORTUNITIES.read_text().replace("timezone: Europe/London", "timezone: Europe/Londn"))
    assert publish(str(export), "--mapping", str(bad), "--dry-run") == 2
    err = capsys.readouterr().err
    assert f"kpi-monitor publish: invalid mapping file {bad}:" in err
    assert "timestamps.timezone: unknown IANA time zone 'Europe/Londn'" in err
    other = tmp_path / "other.csv"
    other.write_text("Id,Name\n1,x\n")
    assert publish(str(other), "--mapping", str(OPPORTUNITIES), "--dry-run") == 2
    assert (
        f"{other}: the mapping names columns the file does not have: 'Opportunity ID'"
        in capsys.readouterr().err
    )


def test_a_csv_event_over_the_size_limit_is_refused() -> None:
    rules = RULES.model_copy(update={"max_event_bytes": 256})
    text = io.StringIO()
    csv.writer(text).writerows([HEADER, opportunity(1)])
    text.seek(0)
    [item] = list(csv_items(CsvRows(text, load_mapping(OPPORTUNITIES, rules), rules), rules))
    assert isinstance(item, Refusal) and item.reason == "too_large" and item.line == 2


def test_targets_get_the_compaction_key() -> None:
    mapping = load_mapping(EXAMPLES / "quotas.mapping.yaml", RULES)
    with open(EXAMPLES / "quotas.csv", encoding=mapping.csv.encoding, newline="") as handle:
        items = list(csv_items(CsvRows(handle, mapping, RULES), RULES))
    assert all(isinstance(item, Outgoing) for item in items)
    assert [item.key for item in items if isinstance(item, Outgoing)] == [
        b"rep:jsmith|revenue|month|2026-11-01",
        b"rep:apatel|revenue|month|2026-11-01",
        b"rep:mchen|revenue|month|2026-11-01",
    ]


def test_the_simulators_history_is_sent_whole_with_a_key_per_target(tmp_path: Path) -> None:
    from kpi_monitor.simulate import history
    from kpi_monitor.traffic import TrafficGenerator

    now = datetime(2026, 11, 20, 17, tzinfo=UTC)
    events = list(history(TrafficGenerator(RULES, reps=8, seed=3), 20, now, now))
    path = tmp_path / "sim.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in events))
    with open(path, "rb") as handle:
        items = list(jsonl_items(handle))
    assert all(isinstance(item, Outgoing) for item in items)  # every type of the contract
    assert {item.kind for item in items if isinstance(item, Outgoing)} == {e.value for e in EventType}
    keys = [item.key for item in items if isinstance(item, Outgoing) and item.kind == "target.set"]
    assert keys and None not in keys and len(set(keys)) == len(keys)  # one key per target


def test_a_target_key_names_its_scope_owner_metric_period_and_start() -> None:
    base = {"type": "target.set", "period": "quarter", "period_start": "2026-10-01", "team": "north"}
    rep = base | {"rep_id": "r-li", "region": "emea"}
    assert key_for(rep) == b"rep:r-li|revenue|quarter|2026-10-01"  # scope and metric by default
    assert key_for(rep | {"metric": "visits"}) == b"rep:r-li|visits|quarter|2026-10-01"
    assert key_for(base | {"scope": "team"}) == b"team:north|revenue|quarter|2026-10-01"
    region = base | {"scope": "region", "region": "emea", "metric": "gross_margin"}
    assert key_for(region) == b"region:emea|gross_margin|quarter|2026-10-01"
    assert key_for(base | {"scope": "company"}) == b"company:|revenue|quarter|2026-10-01"
    # Distinct targets never share a key (compaction keeps each one's latest revision).
    keys = {
        key_for(rep | {"metric": m, "period": p}) for m in ("revenue", "visits") for p in ("month", "year")
    }
    assert len(keys) == 4
    # A malformed target still gets a key (the broker refuses keyless messages on the compacted
    # topic; the worker dead-letters the event); other events get none.
    assert key_for({"type": "target.set"}) == b"rep:|revenue||"
    assert key_for({"type": "deal.won", "rep_id": "r-li"}) is None


# --------------------------------------------------------------------------- the summary


def test_summary_counts_acknowledged_failed_and_refused() -> None:
    tally = Tally(
        sent=Counter({"deal.won": 2, "visit.completed": 1}),
        failed=Counter({"deal.won": 1}),
        refused=Counter({"bad_amount": 2}),
    )
    assert summary(tally, dry_run=False, hidden=0) == (
        "publish: sent 3 acknowledged by Kafka (deal.won 2, visit.completed 1); "
        "failed 1 (deal.won 1); refused 2 (bad_amount 2)"
    )
    assert summary(Tally(stopped_at=7), dry_run=False, hidden=0).endswith("refused 0; stopped at line 7")


async def test_only_acknowledged_sends_count_as_sent() -> None:
    loop = asyncio.get_running_loop()
    futures: list[asyncio.Future[Any]] = [loop.create_future() for _ in range(3)]
    futures[0].set_result("metadata")
    futures[1].set_exception(RuntimeError("broker went away"))
    futures[2].set_result("metadata")
    tally, out = Tally(), io.StringIO()
    pending = list(zip(futures, ["deal.won", "deal.won", "target.set"], strict=True))
    await _settle(pending, tally, Progress("sent", None, stream=out, tty=False))
    assert (tally.sent, tally.failed, pending) == (
        Counter({"deal.won": 1, "target.set": 1}),
        Counter({"deal.won": 1}),
        [],
    )
    assert "1 events were not acknowledged by Kafka (RuntimeError: broker went away)" in out.getvalue()


# --------------------------------------------------------------------------- progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _screen(out: io.StringIO) -> list[str]:
    """What a terminal was sent, as the successive draws and lines (styles and cursor moves removed)."""
    return re.split(r"[\r\n]", ANSI.sub("", out.getvalue()))


def test_terminal_progress_is_a_throttled_bar_with_rate_and_eta() -> None:
    clock, out = FakeClock(), io.StringIO()
    progress = Progress("sent", 1000, stream=out, tty=True, interval=0.25, clock=clock)
    progress.update(1, 1)  # starts the clock (Kafka's connection time is not in the rate)
    assert out.getvalue() == ""
    clock.now += 0.3
    for line in range(2, 101):  # 99 lines in the same instant: drawn once
        progress.update(line, line)
    assert sum("ETA" in draw for draw in _screen(out)) == 1
    clock.now += 0.7
    progress.update(500, 490)
    drawn = _screen(out)[-1]
    assert drawn.startswith("publish ") and "━" in drawn  # the bar
    for part in (" 50% ", " 500/1,000 lines ", " 490 sent ", " 490/s ", " ETA 0:00:0"):
        assert part in drawn, (part, drawn)
    note = "publish: line 501 not sent (bad_amount): column 'Amount': '[1.0]' ..."
    progress.note(note)
    screen = _screen(out)
    assert note in screen  # on a line of its own, not torn by the bar, brackets kept
    assert "ETA" in screen[screen.index(note) + 1]  # the bar comes back below the note
    clock.now += 1.0
    progress.update(501, 491)
    progress.finish()
    assert ANSI.sub("", out.getvalue()).endswith("\n")
    last = [draw for draw in _screen(out) if draw][-1]
    assert " 501/1,000 lines " in last and " 491 sent " in last  # the final figures stay on screen


def test_progress_elsewhere_is_a_line_every_10000_events() -> None:
    clock, out = FakeClock(), io.StringIO()
    progress = Progress("sent", None, stream=out, tty=False, clock=clock)
    progress.update(1, 1)
    clock.now += 2.0
    for done in (9_999, 10_000, 10_001, 25_000, 29_999, 30_000):
        progress.update(done, done)
    progress.finish()
    assert out.getvalue().splitlines() == [
        "publish: 10000 sent (5,000/s)",
        "publish: 25000 sent (12,500/s)",
        "publish: 30000 sent (15,000/s)",
    ]


def test_progress_without_a_known_size_has_no_bar() -> None:
    clock, out = FakeClock(), io.StringIO()
    progress = Progress("checked", None, stream=out, tty=True, clock=clock)
    progress.update(1, 1)
    clock.now += 1.0
    progress.update(12, 10)
    assert [draw for draw in _screen(out) if draw] == ["publish 12 lines 10 checked 10/s"]


def test_count_lines(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"a\nb\nc")
    assert count_lines(path) == 3
    path.write_bytes(b"a\nb\n")
    assert count_lines(path) == 2
    path.write_bytes(b"")
    assert count_lines(path) == 0
    assert count_lines(tmp_path) is None  # not a regular file: size unknown


# --------------------------------------------------------------------------- history


def _history_file(tmp_path: Path, days_ago: int, step_days: int = 60) -> Path:
    """12 visits, the newest `days_ago` days back, then every `step_days` before it. The
    packaged rules keep 3 calendar years (keep.year): from 1 January two years back."""
    newest = datetime.now(UTC) - timedelta(days=days_ago)
    lines = [
        orjson.dumps(
            {
                "event_id": f"v-{n}",
                "type": "visit.completed",
                "occurred_at": (newest - timedelta(days=step_days * n)).isoformat(),
                "rep_id": "r",
                "visit_id": f"v{n}",
                "customer_id": "c",
            }
        )
        for n in range(12)
    ]
    path = tmp_path / "history.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_a_dry_run_on_the_event_clock_judges_history_by_its_newest_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _history_file(tmp_path, days_ago=1300)  # the whole file is older than 3 years
    assert publish(str(path), "--dry-run") == 1
    assert "the worker would reject 12 (too_late 12)" in capsys.readouterr().err
    # A worker with KPI_CLOCK=event is "now" at the newest event, 660 days after the oldest.
    assert publish(str(path), "--dry-run", "--clock", "event") == 0
    assert "the worker would reject 0;" in capsys.readouterr().err


def test_publishing_history_a_wall_clock_worker_rejects_warns_before_sending(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import kpi_monitor.publish as publish_module

    sent: list[int] = []

    async def no_kafka(settings: Any, items: Any, tally: Tally, *rest: Any) -> None:
        sent.append(sum(1 for _ in items))  # what would be sent: all of it, after the warning

    monkeypatch.setattr(publish_module, "send_items", no_kafka)
    path = _history_file(tmp_path, days_ago=30, step_days=100)  # back to 1130 days ago
    monkeypatch.setenv("KPI_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    assert publish(str(path)) == 0
    err = capsys.readouterr().err
    assert "publish: warning: " in err and " events are older than a worker with KPI_CLOCK=wall keeps" in err
    assert "KPI_CLOCK=event" in err and sent == [12]
    fresh = _history_file(tmp_path, days_ago=0).rename(tmp_path / "recent.jsonl")
    fresh.write_bytes(b"\n".join(fresh.read_bytes().splitlines()[:3]) + b"\n")
    assert publish(str(fresh)) == 0
    assert "warning" not in capsys.readouterr().err


def test_every_target_gets_a_compaction_key_of_its_owner_period_and_metric() -> None:
    """The targets topic is compacted: the broker refuses keyless messages there, and two targets
    sharing a key keep only the later one. The key names scope, owner, metric, period and start
    (contract section 1: `rep:r-li|revenue|month|2026-09-01`)."""
    from kpi_monitor.simulate import key_for

    base = {"type": "target.set", "period": "month", "period_start": "2026-11-01", "amount": "1"}
    rep = key_for(base | {"rep_id": "rep-1"})
    margin = key_for(base | {"rep_id": "rep-1", "metric": "gross_margin"})
    team = key_for(base | {"scope": "team", "team": "north"})
    region = key_for(base | {"scope": "region", "region": "north"})
    company = key_for(base | {"scope": "company"})
    assert rep == b"rep:rep-1|revenue|month|2026-11-01"
    assert margin == b"rep:rep-1|gross_margin|month|2026-11-01"
    assert team == b"team:north|revenue|month|2026-11-01"
    assert region == b"region:north|revenue|month|2026-11-01"
    assert company == b"company:|revenue|month|2026-11-01"
    assert len({rep, margin, team, region, company}) == 5 and None not in {team, region, company}
    assert key_for(base | {"rep_id": 7}) is not None  # invalid (dead-lettered by the worker), still keyed
    assert key_for({"type": "deal.won", "rep_id": "rep-1"}) is None


def test_every_contract_family_is_sent_and_others_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Surveys, leads and spend are contract events too (they were refused `no_type`)."""
    now = datetime.now(UTC) - timedelta(hours=1)
    base = {"occurred_at": now.isoformat(), "rep_id": "r", "team": "north"}
    lines = [
        base | {"event_id": "s", "type": "survey.completed", "survey_id": "s", "customer_id": "c"}
        | {"kind": "csat", "score": 4},
        base | {"event_id": "l", "type": "lead.created", "lead_id": "l", "channel": "web"},
        base | {"event_id": "p", "type": "spend.recorded", "spend_id": "p", "amount": "5"}
        | {"currency": "GBP", "category": "sales"},
        base | {"event_id": "x", "type": "invoice.paid"},
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in lines))
    assert main(["publish", str(path), "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert "would send 3 (lead.created 1, spend.recorded 1, survey.completed 1)" in err
    assert "line 4 refused (no_type)" in err and "refused 1 (no_type 1)" in err
