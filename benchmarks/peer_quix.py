"""The peer for the streaming benchmarks: the per-rep MONTHLY KPIs of the contract in Quix Streams 3.28.

A plain Quix Streams application, written the way the Quix docs show (no hand tuning), that reads the
same four contract topics as our worker (`<prefix>deals|visits|quotes|targets`) and keeps the same
additive month figures per rep, so "events/s per worker process" can be compared with ours.

Topology (one `Application`, one consumer group, `auto_offset_reset="earliest"`, defaults otherwise),
for each of the four contract topics, as the Quix docs' "Consuming Multiple Topics" page shows:

    app.dataframe(app.topic(prefix + name))   values parsed by Quix's default JSON deserializer
                                              (orjson, as ours)
      .group_by(rep_key, name="rep_id")       re-key by rep: a Quix-managed repartition topic,
                                              produced to and consumed back, as our worker
                                              repartitions by rep through Kafka
      .update(apply_event, stateful=True)     RocksDB state (Quix's default store) with its default
                                              changelog topic; at-least-once, commit every 5 s

So each topic has its own repartition topic and its own state store: a rep's month figures are
split over the stores by event type (visits in one, deals in another, quotes in a third) and
`dump_state` adds them up, which gives the same sums as one store. (Merging the four dataframes
with `.concat()` first would give one store, but `concat` switches Quix to timestamp-aligned
consumption of every partition group, repartition topic included, and the fast input topics then
wait on the repartition topic: quix-streams PR #857 names this stutter; measured here at ~700
events/s on 5,000 events. A Quix user would not keep that.)

What it computes, per rep (the Kafka key after `group_by`), per calendar MONTH in the rules file's
`timezone` (zoneinfo, DST-correct), on event time (`occurred_at`):
- `visits`, `quotes_sent`, `deals_created`, `deals_won`, `deals_lost`: counts of those events;
- `revenue`: exact `Decimal` sum of `deal.won` amounts, converted into the base currency with the
  rules file's fixed `fx` rate as `kpi_core.events` does (`Context(prec=200).multiply(amount, rate)`;
  an amount in a currency without a rate is skipped, where ours rejects it `currency_mismatch`);
- duplicate suppression: a repeated `event_id` of the same rep is counted once (one state key per
  seen id, i.e. a set of seen ids per rep and topic, kept for ever: ours forgets ids after
  `dedupe_horizon_hours`, which makes no difference over a benchmark run; an id repeated on a
  different topic would count twice here, once in ours).
Month figures are one JSON object per rep and month in state, `revenue` as a decimal string (Quix's
state serializer is JSON); every event reads and writes it, and writes one seen-id key.
The derived ratios of the contract that rest only on these sums (`win_rate_pct`,
`quote_to_close_pct`, `lead_conversion_pct`, `avg_deal_size`, `visits_per_win`, month-over-month
`growth_pct`) are computed from the sums when read, so they need no per-event work in either system.

What it leaves out, all of which our worker does per event (so it is the lighter of the two):
- validation of events (pydantic models, stage names, money rules, timestamp offsets) and the
  dead-letter topic with reasons; `too_late` / `future` checks against retained history;
- other periods (15-minute slots, days, ISO weeks, quarters, years: ours writes six buckets per event);
- per-deal state and the KPIs that need it: `revenue_by_channel`, cycle time, first response time,
  open/weighted pipeline, latest stage by event time; targets (`target.set` events are read,
  deduplicated and counted as processed, but not stored) and so attainment and pace;
- team/region labels, the Redis store, Prometheus metrics, the HTTP API, the event clock and windows.

Measurement: `measure_peer()` runs `python -m benchmarks.peer_quix run ...` in a subprocess with a fresh
consumer group and state directory. The app writes a small JSON progress file every 2,048 events;
when the stateful step has seen `total` events it records the time, writes the file and stops
itself (committing its checkpoint). The figure is `total / (done - first)`, where `first` is when
Quix finished processing its first input message. Up to 5 s of state updates (one commit interval)
are then not yet in RocksDB or the changelog, where our worker counts an event only once its batch
is in Redis: `seconds_to_stopped` (to the end of `app.run()`, final checkpoint and consumer close
included) gives the durable bound, and `cpu_seconds` the CPU the process used (librdkafka's own
threads included) while timed. `dump` mode (or `dump_state()`) reads the final per-rep month state
back out of the RocksDB stores as JSON.

    python -m benchmarks.peer_quix bench --events 200000     # produce, plain loop, then the peer
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Context, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from kpi_rules.vocabulary import INPUT_TOPICS, values
from kpi_testkit import CHECKOUT, spawn, stop_group

DEFAULT_RULES = CHECKOUT / "kpi_rules" / "rules.yaml"
TOPIC_SUFFIXES: tuple[str, ...] = values(INPUT_TOPICS)
COUNTS = ("visits", "quotes_sent", "deals_created", "deals_won", "deals_lost")
COUNTED_TYPE = {
    "visit.completed": "visits",
    "quote.sent": "quotes_sent",
    "deal.created": "deals_created",
    "deal.won": "deals_won",
    "deal.lost": "deals_lost",
}
PROGRESS_EVERY = 2048
MONTH_KEY = re.compile(rb'^(?P<rep>.*)\|"m:(?P<month>\d{4}-\d{2}-\d{2})"$', re.DOTALL)

_EXACT = Context(prec=200)  # as kpi_core.events: the fx product is exact


@dataclass(frozen=True)
class MonthRules:
    """The three keys of the rules file the peer needs."""

    zone: ZoneInfo
    currency: str
    fx: dict[str, Decimal]

    @classmethod
    def load(cls, path: Path = DEFAULT_RULES) -> MonthRules:
        raw = yaml.safe_load(path.read_text())
        return cls(
            zone=ZoneInfo(raw["timezone"]),
            currency=raw["currency"],
            fx={code: Decimal(str(rate)) for code, rate in (raw.get("fx") or {}).items()},
        )


@dataclass
class PeerResult:
    """One measured run of the peer (`months`: rep -> month start -> KPIs, when dumped)."""

    events_per_s: float
    seconds: float
    processed: int
    cpu_seconds: float | None = None  # CPU of the whole peer process (all threads) in `seconds`
    seconds_to_stopped: float | None = None  # to after its final checkpoint commit and shutdown
    consumer_group: str = ""
    months: dict[str, dict[str, dict[str, Any]]] | None = field(default=None, repr=False)


# --------------------------------------------------------------------------- the Quix application


class Progress:
    """Processed count and timings, written as JSON to a file now and then (atomically)."""

    def __init__(self, path: Path | None, total: int) -> None:
        self.path = path
        self.total = total
        self.processed = 0
        self.first_at: float | None = None
        self.first_cpu: float | None = None
        self.done_at: float | None = None
        self.done_cpu: float | None = None
        self.stopped_at: float | None = None

    def started(self, topic: str, partition: int, offset: int) -> None:
        """Quix's `on_message_processed` callback: remembers when the first message was done."""
        if self.first_at is None:
            self.first_at = time.monotonic()
            self.first_cpu = time.process_time()  # every thread of the process (librdkafka too)

    def write(self) -> None:
        if self.path is None:
            return
        doc = {
            "processed": self.processed,
            "total": self.total,
            "first_at": self.first_at,
            "done_at": self.done_at,
            "seconds": None if self.done_at is None else self.done_at - (self.first_at or 0.0),
            "cpu_seconds": None if self.done_cpu is None else self.done_cpu - (self.first_cpu or 0.0),
            # to the end of `app.run()`: its final checkpoint (state flushed to RocksDB, changelog
            # and offsets committed) and the consumer's close included
            "seconds_to_stopped": None
            if self.stopped_at is None
            else self.stopped_at - (self.first_at or 0.0),
        }
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.path)


def month_of(occurred_at: str, zone: ZoneInfo) -> str:
    """First day (local date) of the calendar month of an RFC 3339 timestamp in the rules' zone."""
    local = datetime.fromisoformat(occurred_at).astimezone(zone)
    return f"{local.year:04d}-{local.month:02d}-01"


def new_month() -> dict[str, Any]:
    return {
        "visits": 0,
        "quotes_sent": 0,
        "deals_created": 0,
        "deals_won": 0,
        "deals_lost": 0,
        "revenue": "0",
    }


def apply_event(event: dict[str, Any], state: Any, rules: MonthRules) -> None:
    """The stateful step: one event into its rep's month KPIs (state keys are per rep)."""
    kind = event["type"]
    amount: Decimal | None = None
    if kind == "deal.won":
        amount = Decimal(str(event["amount"]))
        currency = event["currency"]
        if currency != rules.currency:
            rate = rules.fx.get(currency)
            if rate is None:
                return  # no rate for this currency: ours rejects it (currency_mismatch)
            amount = _EXACT.multiply(amount, rate)
    seen = "id:" + event["event_id"]
    if state.exists(seen):
        return  # a repeated event_id counts once
    state.set(seen, 1)
    counter = COUNTED_TYPE.get(kind)
    if counter is None:
        return  # target.set and deal.stage_changed: no month count in this peer
    key = "m:" + month_of(event["occurred_at"], rules.zone)
    kpis = state.get(key) or new_month()
    kpis[counter] += 1
    if amount is not None:
        kpis["revenue"] = str(Decimal(kpis["revenue"]) + amount)
    state.set(key, kpis)


def rep_key(event: dict[str, Any]) -> str:
    """The repartition key: the rep, or "" for the events without one (team, region and company
    targets, company spend), which are read and counted but keep no month figures here."""
    rep = event.get("rep_id")
    return rep if isinstance(rep, str) else ""


def build_app(
    bootstrap: str,
    prefix: str,
    group: str,
    state_dir: Path,
    rules: MonthRules,
    progress: Progress,
) -> Any:
    from quixstreams import Application

    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        state_dir=state_dir,
        on_message_processed=progress.started,
        loglevel="INFO",
    )

    def count_and_apply(event: dict[str, Any], state: Any) -> None:
        apply_event(event, state, rules)
        progress.processed += 1
        if progress.processed == progress.total:
            progress.done_at = time.monotonic()
            progress.done_cpu = time.process_time()
            progress.write()
            app.stop()
        elif progress.processed % PROGRESS_EVERY == 0:
            progress.write()

    # One StreamingDataFrame per topic: the Quix docs' way to consume several topics
    # ("Consuming Multiple Topics"); each has its own repartition topic and state store.
    for suffix in TOPIC_SUFFIXES:
        sdf = app.dataframe(app.topic(prefix + suffix))
        sdf = sdf.group_by(rep_key, name="rep_id")
        sdf.update(count_and_apply, stateful=True)
    return app


def run(args: argparse.Namespace) -> int:
    progress = Progress(args.progress, args.total)
    progress.write()
    app = build_app(
        args.bootstrap, args.prefix, args.group, args.state_dir, MonthRules.load(args.rules), progress
    )
    app.run()
    progress.stopped_at = time.monotonic()
    progress.write()
    return 0


# --------------------------------------------------------------------------- reading the state back


def dump_state(state_dir: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """rep -> month start -> KPIs, summed over every RocksDB store partition under `state_dir`
    (one store per input topic; a rep's months live in the partition its key hashes to)."""
    from quixstreams.state.rocksdb import RocksDBStorePartition
    from quixstreams.utils.json import loads

    months: dict[str, dict[str, dict[str, Any]]] = {}
    for current in sorted(state_dir.rglob("CURRENT")):  # one RocksDB database per store partition
        partition = RocksDBStorePartition(str(current.parent))
        try:
            tx = partition.begin()
            for key, _ in partition.iter_items(lower_bound=b""):
                match = MONTH_KEY.match(key)
                if match is None:
                    continue
                rep_bytes, month = match.group("rep"), match.group("month").decode()
                state: Any = tx.as_state(prefix=rep_bytes)  # Quix's State API, as in the app
                kpis = state.get("m:" + month)
                total = months.setdefault(loads(rep_bytes), {}).setdefault(month, new_month())
                for name in COUNTS:  # one store per topic: the sum of the stores is the month
                    total[name] += kpis[name]
                total["revenue"] = str(Decimal(total["revenue"]) + Decimal(kpis["revenue"]))
        finally:
            partition.close()
    return {rep: dict(sorted(by_month.items())) for rep, by_month in sorted(months.items())}


def dump(args: argparse.Namespace) -> int:
    document = dump_state(args.state_dir)
    text = json.dumps(document, indent=1, sort_keys=True)
    if args.out is None:
        sys.stdout.write(text + "\n")
    else:
        args.out.write_text(text + "\n")
    return 0


# --------------------------------------------------------------------------- measurement API


def _read_progress(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return {}


def measure_peer(
    bootstrap: str,
    prefix: str,
    total: int,
    workdir: Path,
    timeout_s: float = 1200,
    *,
    dump_months: bool = True,
    rules: Path = DEFAULT_RULES,
) -> PeerResult:
    """Run the Quix peer in a subprocess over the `prefix` contract topics until it has processed
    `total` events (duplicates included: every message reaches the stateful step); a fresh consumer
    group and state directory under `workdir` each call. With `dump_months` the final per-rep
    month state is read back from RocksDB (a second subprocess, after the run)."""
    workdir.mkdir(parents=True, exist_ok=True)
    group = f"peer-quix-{uuid.uuid4().hex[:10]}"
    state_dir = workdir / f"state-{group}"
    progress_file = workdir / f"progress-{group}.json"
    log = workdir / f"peer-{group}.log"
    command = [
        sys.executable, "-m", "benchmarks.peer_quix", "run",
        "--bootstrap", bootstrap, "--prefix", prefix, "--total", str(total),
        "--group", group, "--state-dir", str(state_dir), "--progress", str(progress_file),
        "--rules", str(rules),
    ]  # fmt: skip
    proc = spawn(command, None, log, cwd=CHECKOUT)  # its own process group, stopped at exit at the latest
    try:
        deadline = time.monotonic() + timeout_s
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = _read_progress(progress_file)
            if status.get("done_at") is not None or proc.poll() is not None:
                break
            time.sleep(0.05)
        else:
            raise TimeoutError(
                f"peer processed {status.get('processed', 0)} of {total} events in {timeout_s} s (log: {log})"
            )
        try:
            proc.wait(120)  # it stops itself once done, committing its checkpoint
        except subprocess.TimeoutExpired:
            pass  # the figure is already written; stop_group ends it
    finally:
        stop_group(proc, grace=60.0)
    status = _read_progress(progress_file)
    if status.get("done_at") is None:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(
            f"peer exited with {proc.returncode} after {status.get('processed', 0)} of {total} "
            f"events; log tail:\n{tail}"
        )
    seconds = float(status["seconds"])
    months = None
    if dump_months:
        out_file = workdir / f"months-{group}.json"
        subprocess.run(
            [sys.executable, "-m", "benchmarks.peer_quix", "dump", "--state-dir", str(state_dir),
             "--out", str(out_file)],
            cwd=CHECKOUT, check=True, timeout=600,
        )  # fmt: skip
        months = json.loads(out_file.read_text())
    return PeerResult(
        events_per_s=total / seconds,
        seconds=seconds,
        processed=int(status["processed"]),
        cpu_seconds=status.get("cpu_seconds"),
        seconds_to_stopped=status.get("seconds_to_stopped"),
        consumer_group=group,
        months=months,
    )


def delete_topics(bootstrap: str, contains: str) -> list[str]:
    """Delete every topic whose name contains `contains` (a run's unique prefix or consumer group:
    Quix names its repartition and changelog topics after the group and the input topics)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = sorted(name for name in admin.list_topics(timeout=30).topics if contains in name)
    if names:
        for future in admin.delete_topics(names, operation_timeout=60).values():
            future.result()
    return names


# --------------------------------------------------------------------------- development benchmark


def bench(args: argparse.Namespace) -> int:
    """Produce `--events` to a fresh prefix, then the plain aiokafka loop and the peer on them."""
    from benchmarks.stream_throughput import make_events, plain_loop, produce

    name = f"peer{uuid.uuid4().hex[:8]}"
    prefix = f"{name}.crm."
    events = make_events(args.events, args.reps)
    total = len(events)
    print(f"{total} events, {args.reps} reps, {args.partitions} partitions, prefix {prefix}")
    asyncio.run(produce(args.bootstrap, prefix, events, args.partitions))
    plain = asyncio.run(plain_loop(args.bootstrap, prefix, total))
    print(f"plain aiokafka loop: {plain:,.0f} events/s")
    workdir = Path(f"/tmp/{name}")
    result = measure_peer(args.bootstrap, prefix, total, workdir, dump_months=False)
    cores = "" if result.cpu_seconds is None else f", {result.cpu_seconds / result.seconds:.2f} cores busy"
    print(
        f"quix peer: {result.events_per_s:,.0f} events/s ({result.processed:,} events in "
        f"{result.seconds:.2f} s{cores}; group {result.consumer_group})"
    )
    if result.seconds_to_stopped is not None:
        print(
            f"quix peer to its final checkpoint and shutdown: {total / result.seconds_to_stopped:,.0f} "
            f"events/s ({result.seconds_to_stopped:.2f} s)"
        )
    print(f"ratio peer / plain: {result.events_per_s / plain:.2f}")
    if not args.keep:
        shutil.rmtree(workdir / f"state-{result.consumer_group}", ignore_errors=True)
        print(f"deleted {len(delete_topics(args.bootstrap, name))} topics of {name} (log in {workdir})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)

    p_run = sub.add_parser("run", help="run the Quix app (stops itself after --total events)")
    p_run.add_argument("--bootstrap", default="127.0.0.1:9092")
    p_run.add_argument("--prefix", required=True, help="contract topic prefix, e.g. 'crm.'")
    p_run.add_argument("--total", type=int, default=0, help="stop after this many events (0: never)")
    p_run.add_argument("--group", default=f"peer-quix-{uuid.uuid4().hex[:10]}")
    p_run.add_argument("--state-dir", type=Path, required=True)
    p_run.add_argument("--progress", type=Path, default=None)
    p_run.add_argument("--rules", type=Path, default=DEFAULT_RULES)

    p_dump = sub.add_parser("dump", help="the per-rep month state of a stopped run, as JSON")
    p_dump.add_argument("--state-dir", type=Path, required=True)
    p_dump.add_argument("--out", type=Path, default=None)

    p_bench = sub.add_parser("bench", help="produce events, then the plain loop and the peer")
    p_bench.add_argument("--events", type=int, default=200_000)
    p_bench.add_argument("--reps", type=int, default=200)
    p_bench.add_argument("--partitions", type=int, default=4)
    p_bench.add_argument("--bootstrap", default="127.0.0.1:9092")
    p_bench.add_argument("--keep", action="store_true", help="keep the topics and the peer's state")

    args = parser.parse_args(argv)
    return {"run": run, "dump": dump, "bench": bench}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
