"""Throughput of the pure KPI core: decoding CRM events, and the whole embedded `report` path.

    python -m benchmarks.core_throughput --events 500000

1. Generates (once; cached by its parameters) a deterministic JSONL file of CRM events in
   `benchmarks/data/` (gitignored): 200 reps over the 90 days before a fixed "now", a mix like a
   real CRM (about half visits, deal funnels with stage changes, quotes, wins and losses, monthly
   and quarterly targets), about 0.5% redelivered duplicates and 0.05% bad lines.
2. Measures, each phase in its own child process so that its peak RSS is its own:
   - decode: `kpi_core.events.decode_event` on every line;
   - report: `kpi_core.report.build_report` over the file (decode, replay, every period row),
     with the event clock (`KpiClock(mode="event")`) and a wall clock fixed after the data, so
     every run computes the same figures;
   - report under tracemalloc: the same, for the peak of traced Python allocations.
   Each prints events/s (lines of the file per second of wall time) and ru_maxrss.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from kpi_rules.vocabulary import Channel, values

DATA_DIR = Path(__file__).resolve().parent / "data"
CHECKOUT = Path(__file__).resolve().parents[1]  # where `python -m benchmarks.core_throughput` runs
# The fixed "now" the data ends at, and the injected wall clock (an hour later).
NOW = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
WALL = NOW + timedelta(hours=1)
DAYS = 90
REPS = 200
TEAMS = ("north", "south", "east", "west", "central")
REGIONS = ("emea", "apac", "amer")
CHANNELS: tuple[str, ...] = values(Channel)
STAGES = ("qualification", "discovery", "proposal", "negotiation", "commit")
CURRENCIES = ("GBP",) * 18 + ("EUR", "USD")  # ~10% converted with the rules' fixed rates


# ----------------------------------------------------------------------------------- generation


def _money(rng: random.Random, low: int, high: int) -> str:
    cents = rng.randint(low * 100, high * 100)
    return f"{cents // 100}.{cents % 100:02d}"


def generate(path: Path, count: int, seed: int) -> None:
    """Write `count` events (plus duplicates and bad lines) in event-time order to `path`."""
    rng = random.Random(seed)
    start = NOW - timedelta(days=DAYS)
    span = DAYS * 86400
    reps = [(f"rep-{i:03d}", TEAMS[i % len(TEAMS)], REGIONS[i % len(REGIONS)]) for i in range(REPS)]
    out: list[tuple[float, bytes]] = []
    serial = 0

    def emit(at: datetime, rep: tuple[str, str, str], kind: str, **fields: Any) -> None:
        nonlocal serial
        serial += 1
        event = {
            "event_id": f"ev-{seed}-{serial:08d}",
            "type": kind,
            "occurred_at": at.isoformat(timespec="seconds"),
            "rep_id": rep[0],
            "team": rep[1],
            "region": rep[2],
            **fields,
        }
        out.append((at.timestamp(), orjson.dumps(event)))

    def at_offset(seconds: float) -> datetime:
        return start + timedelta(seconds=min(max(seconds, 0), span - 1))

    # Targets first: every rep, each month and quarter touching the window.
    for rep in reps:
        for month_start in ("2026-08-01", "2026-09-01", "2026-10-01"):
            set_at = datetime.fromisoformat(month_start + "T00:00:00+00:00") - timedelta(days=3)
            emit(
                max(set_at, start),
                rep,
                "target.set",
                period="month",
                period_start=month_start,
                amount=_money(rng, 20_000, 80_000),
                currency="GBP",
            )
        for quarter_start in ("2026-07-01", "2026-10-01"):
            emit(
                start,
                rep,
                "target.set",
                period="quarter",
                period_start=quarter_start,
                amount=_money(rng, 60_000, 240_000),
                currency="GBP",
            )

    deal_no = 0
    while len(out) < count:
        rep = reps[rng.randrange(REPS)]
        customer = f"cust-{rng.randrange(50_000):05d}"
        t = rng.uniform(0, span)
        roll = rng.random()
        if roll < 0.74:  # a visit not tied to a deal
            emit(
                at_offset(t),
                rep,
                "visit.completed",
                visit_id=f"vis-{serial}",
                customer_id=customer,
                duration_minutes=rng.randint(10, 120),
            )
            continue
        deal_no += 1
        deal = f"deal-{deal_no:07d}"
        amount = _money(rng, 500, 50_000)
        currency = rng.choice(CURRENCIES)
        emit(
            at_offset(t),
            rep,
            "deal.created",
            deal_id=deal,
            customer_id=customer,
            amount=amount,
            currency=currency,
            stage=STAGES[0],
            channel=rng.choice(CHANNELS),
        )
        for _ in range(rng.randint(0, 3)):  # visits on the deal
            t += rng.uniform(600, 3 * 86400)
            emit(
                at_offset(t),
                rep,
                "visit.completed",
                visit_id=f"vis-{serial}",
                customer_id=customer,
                deal_id=deal,
            )
        for stage in STAGES[1 : rng.randint(1, len(STAGES) - 1)]:
            t += rng.uniform(3600, 5 * 86400)
            emit(
                at_offset(t),
                rep,
                "deal.stage_changed",
                deal_id=deal,
                customer_id=customer,
                stage=stage,
                amount=amount,
                currency=currency,
            )
        for _ in range(rng.choice((0, 1, 1, 2))):
            t += rng.uniform(3600, 2 * 86400)
            emit(
                at_offset(t),
                rep,
                "quote.sent",
                quote_id=f"quo-{serial}",
                deal_id=deal,
                customer_id=customer,
                amount=amount,
                currency=currency,
            )
        t += rng.uniform(86400, 10 * 86400)
        ending = rng.random()
        if ending < 0.35:
            emit(
                at_offset(t),
                rep,
                "deal.won",
                deal_id=deal,
                customer_id=customer,
                amount=amount,
                currency=currency,
            )
        elif ending < 0.70:
            emit(at_offset(t), rep, "deal.lost", deal_id=deal, customer_id=customer)
    del out[count:]
    out.sort(key=lambda item: item[0])
    # Redeliveries (the same bytes again, a little later in the file) and a few bad lines.
    lines = [line for _, line in out]
    for _ in range(count // 200):
        i = rng.randrange(len(lines))
        lines.insert(min(i + rng.randint(1, 1000), len(lines)), lines[i])
    bad = (
        b"{not json",
        b'{"type": "deal.teleported"}',
        b'{"event_id": "x", "type": "visit.completed"}',
    )
    for n in range(count // 2000):
        lines.insert(rng.randrange(len(lines)), bad[n % len(bad)])
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as handle:
        for line in lines:
            handle.write(line)
            handle.write(b"\n")
    tmp.replace(path)


def data_file(count: int, seed: int) -> Path:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    return DATA_DIR / f"crm-{count}-seed{seed}.jsonl"


# ----------------------------------------------------------------------------------- phases


def _rss_mib() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def phase_decode(path: Path) -> dict[str, Any]:
    from kpi_core.events import Rejection, decode_event
    from kpi_rules import load_rules

    rules = load_rules()
    lines = path.read_bytes().splitlines()
    ok = bad = 0
    began = time.perf_counter()
    for line in lines:
        try:
            decode_event(line, rules)
            ok += 1
        except Rejection:
            bad += 1
    seconds = time.perf_counter() - began
    return {"lines": len(lines), "decoded": ok, "rejected": bad, "seconds": seconds}


def phase_report(path: Path, traced: bool) -> dict[str, Any]:
    from kpi_core.clock import KpiClock
    from kpi_core.engine import KpiEngine
    from kpi_core.report import build_report
    from kpi_rules import load_rules

    rules = load_rules()
    engine = KpiEngine(rules, KpiClock(mode="event", wall=lambda: WALL))
    if traced:
        tracemalloc.start()
    began = time.perf_counter()
    def reread() -> Iterator[bytes]:
        with open(path, "rb") as again:
            yield from again

    # As `kpi-monitor report --clock event FILE` does: one pass for the clock, one to apply.
    with open(path, "rb") as handle:
        document = build_report(handle, engine, reread)
    seconds = time.perf_counter() - began
    result: dict[str, Any] = {"seconds": seconds}
    if traced:
        result["tracemalloc_peak_mib"] = tracemalloc.get_traced_memory()[1] / (1024 * 1024)
        tracemalloc.stop()
    with open(path, "rb") as handle:
        result["lines"] = sum(1 for line in handle if line.strip())
    result["rows"] = len(document["periods"])
    result["pipeline"] = len(document["pipeline"])
    result["rejected"] = document["rejected"]
    # A fingerprint of the whole document: the same data gives the same figures every run.
    result["sha256"] = hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return result


def _child(phase: str, path: Path, *extra: str) -> dict[str, Any]:
    # Every phase runs in a fresh child of this small parent: on Linux a child's ru_maxrss
    # starts from its parent's resident size at fork, so the parent must stay lean.
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.core_throughput", "--phase", phase, "--file", str(path), *extra],
        cwd=CHECKOUT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(completed.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000, help="events to generate (>= 1)")
    parser.add_argument("--seed", type=int, default=20261101)
    parser.add_argument(
        "--phase",
        choices=("generate", "decode", "report", "report-traced"),
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.phase:  # child process: one measurement, JSON on stdout
        if args.phase == "generate":
            began = time.perf_counter()
            generate(args.file, args.events, args.seed)
            result = {"seconds": time.perf_counter() - began}
        elif args.phase == "decode":
            result = phase_decode(args.file)
        else:
            result = phase_report(args.file, traced=args.phase == "report-traced")
        result["peak_rss_mib"] = _rss_mib()
        print(json.dumps(result))
        return 0

    path = data_file(args.events, args.seed)
    if not path.exists():
        made = _child("generate", path, "--events", str(args.events), "--seed", str(args.seed))
        print(f"generated {path.name} in {made['seconds']:.1f} s", file=sys.stderr)
    size_mib = path.stat().st_size / (1024 * 1024)
    print(
        f"data: {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}"
        f" ({size_mib:.1f} MiB)"
    )
    print(
        f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}"
    )

    decode = _child("decode", path)
    print(
        f"decode only:   {decode['lines'] / decode['seconds']:>10,.0f} events/s  "
        f"({decode['lines']:,} lines in {decode['seconds']:.2f} s; "
        f"{decode['rejected']:,} rejected)  peak RSS {decode['peak_rss_mib']:.0f} MiB"
    )
    report = _child("report", path)
    print(
        f"full report:   {report['lines'] / report['seconds']:>10,.0f} events/s  "
        f"({report['lines']:,} lines in {report['seconds']:.2f} s; {report['rows']:,} rows, "
        f"{report['pipeline']} reps with pipeline)  peak RSS {report['peak_rss_mib']:.0f} MiB"
    )
    print(f"  rejected: {report['rejected']}")
    print(f"  document sha256: {report['sha256']}")
    traced = _child("report-traced", path)
    print(
        f"report under tracemalloc: peak traced {traced['tracemalloc_peak_mib']:.0f} MiB "
        f"(run time {traced['seconds']:.2f} s with tracing; "
        f"peak RSS {traced['peak_rss_mib']:.0f} MiB)"
    )
    if traced["sha256"] != report["sha256"]:
        print("error: the two report runs disagree", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
