"""`simulate --until` and `digest --at`: a moment read in the rules file's zone, never in the future,
and a simulated history that ends there, the same on any day it is generated."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from kpi_monitor.moments import parse_moment

NOW = datetime(2026, 12, 1, 0, 9, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def test_a_moment_without_offset_is_a_wall_time_of_the_rules_zone() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    local = parse_moment("2026-11-18T16:30", shanghai, "--at", NOW)
    assert local == datetime(2026, 11, 18, 8, 30, tzinfo=UTC)
    assert parse_moment("2026-11-18", shanghai, "--at", NOW) == datetime(2026, 11, 17, 16, 0, tzinfo=UTC)
    assert parse_moment("2026-11-18T16:30:00+00:00", shanghai, "--at", NOW) == datetime(
        2026, 11, 18, 16, 30, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("18/11/2026", "--until '18/11/2026' is not an ISO 8601 time; give e.g. 2026-11-18T16:30"),
        ("2026-12-01T00:10:00+00:00", "--until '2026-12-01T00:10:00+00:00' is in the future (now is "),
    ],
)  # fmt: skip
def test_a_bad_moment_is_refused_with_what_to_give(text: str, says: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_moment(text, UTC, "--until", NOW)
    assert str(caught.value).startswith(says)


def _simulate(out: Path, *extra: str) -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "kpi_monitor.cli", "simulate", "--output", str(out), "--days", "3",
         "--reps", "3", "--seed", "5", "--scenario", "decline", *extra],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [orjson.loads(line) for line in out.read_bytes().splitlines()]


def test_a_history_until_a_moment_is_the_same_file_each_time_and_ends_there(tmp_path: Path) -> None:
    until = "2026-11-18T16:30:00+00:00"
    first = _simulate(tmp_path / "a.jsonl", "--until", until)
    again = _simulate(tmp_path / "b.jsonl", "--until", until)
    assert len(first) > 50 and first == again
    times = [datetime.fromisoformat(str(e["occurred_at"])) for e in first]
    assert max(times) <= datetime.fromisoformat(until)
    activity = [t for t, e in zip(times, first, strict=True) if e["type"] != "target.set"]
    assert min(activity) >= datetime(2026, 11, 15, 16, 30, tzinfo=UTC)  # --days 3 before it
    assert max(activity).date().isoformat() == "2026-11-18"


def test_simulate_refuses_a_future_until_and_says_why(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kpi_monitor.cli", "simulate", "--output", str(tmp_path / "x.jsonl"),
         "--until", "2999-01-01"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert "--until '2999-01-01' is in the future" in done.stderr
    assert not (tmp_path / "x.jsonl").exists()
