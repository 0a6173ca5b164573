"""Section 4 of the suite: memory over a soak at a steady rate (wall clock).

One worker with `benchmarks/soak-rules.yaml` (every retention at the loader's minimum) takes
`kpi-monitor simulate --rate R --reps N` (live events stamped with the wall clock) for
`--soak-minutes`. Every `interval` seconds: the worker's VmRSS (/proc/<pid>/status), Redis
`used_memory` (instance-wide), the app's state hashes (MEMORY USAGE) and key count, events produced
and processed; the series goes to `soak-memory.csv` next to RESULTS.md.

Then the traffic stops, and a fresh worker process of the same app loads the same state from Redis:
its RSS (after one `/metrics` scrape, which decodes every rep) is what that state costs without any
history, so `RSS at the end of the soak - RSS of the fresh worker` is memory the long run holds
beyond its state."""

from __future__ import annotations

import asyncio
import csv
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.harness import TOPICS, RedisProbe, end_offsets_total, say, unique_name
from benchmarks.tables import Table, num, ratio, slope
from kpi_testkit import Deployment, WorkerProcess, http_get, stop_group

SOAK_RULES = Path(__file__).resolve().parent / "soak-rules.yaml"
FLAT_MIB_PER_H = 10.0  # "flat": RSS slope over the last 3/4 of the run within +-10 MiB/hour
EXCESS_OK = 0.10  # growth "is state" when the soak worker holds <= 10% (and <= 32 MiB)...
EXCESS_OK_MIB = 32.0  # ...more than a fresh worker loaded with the same state
TYPICAL_EVENTS_PER_DAY = 50  # a busy rep: events per business day, for the per-rep bound


@dataclass
class SoakParams:
    minutes: float = 20.0
    rate: float = 200.0  # a rate the worker keeps up with on live traffic (see the latency section)
    reps: int = 200
    interval_s: float = 10.0
    partitions: int = 4


@dataclass
class Sample:
    t: float  # seconds since the traffic started
    rss_mib: float
    redis_used_mib: float
    state_mib: float
    keys: int
    produced: int
    processed: int


@dataclass
class SoakResult:
    params: SoakParams
    samples: list[Sample]
    idle_rss_mib: float
    fresh_rss_mib: float | None
    fresh_keys: int | None
    parts: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    applied: int = 0
    csv_path: Path | None = None

    # -- derived figures ------------------------------------------------------------------
    @property
    def duration(self) -> float:
        return self.samples[-1].t if self.samples else 0.0

    def tail(self) -> list[Sample]:
        """The last 3/4 of the run (the first quarter is the warm-up)."""
        return [s for s in self.samples if s.t >= self.duration / 4]

    def per_hour(self, value: str) -> float:
        return slope((s.t, float(getattr(s, value))) for s in self.tail()) * 3600

    @property
    def after_warmup(self) -> Sample:
        return self.tail()[0]

    @property
    def flat(self) -> bool:
        return abs(self.per_hour("rss_mib")) <= FLAT_MIB_PER_H

    @property
    def excess_mib(self) -> float | None:
        if self.fresh_rss_mib is None or not self.samples:
            return None
        return self.samples[-1].rss_mib - self.fresh_rss_mib

    @property
    def explained(self) -> bool | None:
        excess = self.excess_mib
        if excess is None or self.fresh_rss_mib is None:
            return None
        return excess <= max(EXCESS_OK * self.fresh_rss_mib, EXCESS_OK_MIB)


def _sample(worker: WorkerProcess, redis: RedisProbe, deployment: Deployment, t0: float) -> Sample:
    app, partitions = deployment.name, deployment.partitions
    topics = [deployment.prefix + t for t in TOPICS.values()]
    produced = asyncio.run(end_offsets_total(deployment.kafka_bootstrap, topics, partitions))
    return Sample(
        t=time.monotonic() - t0,
        rss_mib=worker.rss_mib() or 0.0,
        redis_used_mib=redis.used_memory() / 2**20,
        state_mib=redis.state_bytes(app, partitions) / 2**20,
        keys=redis.state_keys(app, partitions),
        produced=produced,
        processed=worker.processed(),
    )


def _quiet(worker: WorkerProcess, seconds: float = 3.0, timeout: float = 300.0) -> None:
    """Wait until the worker's processed count has not moved for `seconds`."""
    deadline = time.monotonic() + timeout
    last, since = worker.processed(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = worker.processed()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return


def run(ctx: Any, params: SoakParams, csv_path: Path) -> SoakResult:
    deployment = Deployment(
        ctx.bootstrap,
        ctx.redis_url,
        ctx.workdir,
        partitions=params.partitions,
        clock="wall",
        rules=SOAK_RULES,
        name=unique_name("soak", ctx.token),
    )
    redis = RedisProbe(ctx.redis_url)
    worker = deployment.start_worker()
    samples: list[Sample] = []
    fresh_rss: float | None = None
    fresh_keys: int | None = None
    try:
        worker.wait_ready()
        time.sleep(2.0)
        idle = worker.rss_mib() or 0.0
        say(
            f"soak: worker idle RSS {idle:.0f} MiB; traffic {params.rate:,.0f} events/s over "
            f"{params.reps} reps for {params.minutes:g} min"
        )
        sim = deployment.spawn_cli(
            "simulate",
            "--rate",
            str(params.rate),
            "--reps",
            str(params.reps),
            "--days",
            "0",
            "--seed",
            "5",
            "--rules",
            str(SOAK_RULES),
            log_name="simulate",
        )
        sim_log = deployment.log_path("simulate")
        t0 = time.monotonic()
        end = t0 + params.minutes * 60
        try:
            while True:
                samples.append(_sample(worker, redis, deployment, t0))
                if sim.poll() is not None:
                    raise RuntimeError(f"simulate exited with {sim.returncode}: see {sim_log}")
                last = samples[-1]
                if len(samples) % 6 == 1:
                    say(
                        f"soak: t={last.t:,.0f} s RSS {last.rss_mib:.0f} MiB, state {last.keys:,} keys "
                        f"{last.state_mib:.1f} MiB, produced {last.produced:,} processed {last.processed:,}"
                    )
                if time.monotonic() >= end:
                    break
                time.sleep(max(0.0, min(params.interval_s, end - time.monotonic())))
        finally:
            stop_group(sim, grace=10)
        _quiet(worker)
        samples.append(_sample(worker, redis, deployment, t0))
        applied = int(worker.status()["applied"])
        parts = redis.part_sizes(deployment.name, params.partitions)
        worker.stop()
        say("soak: a fresh worker loads the same state")
        fresh = deployment.start_worker()
        try:
            fresh.wait_ready()
            # A first Prometheus scrape decodes every rep (/kpis would not: it answers 404 until
            # the worker has applied a batch or rendered /metrics once).
            http_get(f"{fresh.base}/metrics", timeout=600)
            time.sleep(2.0)
            fresh_rss = fresh.rss_mib()
            fresh_keys = int((fresh.status().get("recovery") or {}).get("keys", 0))
        finally:
            fresh.stop()
    finally:
        worker.stop()
        deployment.cleanup(ctx.keep_data)
    result = SoakResult(params, samples, idle, fresh_rss, fresh_keys, parts, applied, csv_path)
    write_csv(result, csv_path)
    return result


def write_csv(result: SoakResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(
            [
                "t_s",
                "worker_rss_mib",
                "redis_used_memory_mib",
                "app_state_redis_mib",
                "state_keys",
                "events_produced",
                "events_processed",
            ]
        )
        for s in result.samples:
            out.writerow(
                [
                    f"{s.t:.1f}",
                    f"{s.rss_mib:.1f}",
                    f"{s.redis_used_mib:.1f}",
                    f"{s.state_mib:.2f}",
                    s.keys,
                    s.produced,
                    s.processed,
                ]
            )


def _bound(result: SoakResult) -> list[str]:
    """The per-rep state bound under the production rules, from the soak's measured part sizes."""
    from kpi_rules import load_rules

    rules = load_rules()
    keep = rules.keep
    parts, applied = result.parts, max(result.applied, 1)
    _, seen_bytes, seen_ids = parts.get("s", (0, 0, 0))
    deal_count, deal_bytes, _ = parts.get("d", (0, 0, 0))
    bucket_items = [v for k, v in parts.items() if k.startswith("b|")]
    bucket_count = sum(c for c, _, _ in bucket_items)
    bucket_bytes = sum(b for _, b, _ in bucket_items)
    if not seen_ids or not deal_count or not bucket_count:
        return ["- (not enough state to size the parts)"]
    per_id = seen_bytes / seen_ids
    per_deal = deal_bytes / deal_count
    deal_share = deal_count / applied  # no deal is pruned within the soak (closed ones stay > 1 year)
    per_bucket = bucket_bytes / bucket_count
    buckets_max = 4 * keep.hour + keep.day + keep.week + keep.month + keep.quarter + keep.year
    seen_hours = rules.dedupe_horizon_hours + 1
    deal_hours = keep.year * 8766  # closed deals stay until the start of the oldest retained year
    state_mib = result.samples[-1].state_mib if result.samples else 0.0
    factor = None
    if result.fresh_rss_mib is not None and state_mib > 0:
        factor = (result.fresh_rss_mib - result.idle_rss_mib) / state_mib

    def per_rep(events_per_hour: float) -> str:
        parts = (
            ("buckets", buckets_max * per_bucket),
            ("event ids", events_per_hour * seen_hours * per_id),
            ("deals", events_per_hour * deal_share * deal_hours * per_deal),
        )
        stored = sum(size for _, size in parts)
        detail = ", ".join(f"{name} {size / 2**10:,.0f} KiB" for name, size in parts)
        memory = f"; about {stored * factor / 2**20:,.1f} MiB of worker RSS" if factor else ""
        return f"{stored / 2**20:,.2f} MiB stored in Redis ({detail}){memory}"

    busy = TYPICAL_EVENTS_PER_DAY * 5 / 168  # events per hour, averaged over the week
    return [
        f"- Measured in this soak: {per_id:.0f} stored bytes per remembered event id, {per_deal:.0f} per "
        f"deal ({deal_share:.0%} of events bring a new deal), {per_bucket:.0f} per bucket"
        + (
            f"; a fresh worker holds about {factor:.1f} bytes of RSS per stored byte of state"
            if factor
            else ""
        )
        + ".",
        f"- Bound per rep with the production rules (`keep` {keep.hour} h / {keep.day} d / {keep.week} w / "
        f"{keep.month} m / {keep.quarter} q / {keep.year} y, dedupe {rules.dedupe_horizon_hours} h): at most "
        f"{buckets_max} buckets, plus the ids of the last {seen_hours} h of its events, plus its closed "
        f"deals until the start of the oldest retained year (up to {keep.year} years), plus its open deals.",
        f"- For a rep with {TYPICAL_EVENTS_PER_DAY} events per business day and this traffic's mix: "
        f"{per_rep(busy)}. Memory grows towards that bound (ids: a week; slots: 3 days; deals: years) "
        "and then flattens; the deals dominate it.",
    ]


def render(result: SoakResult) -> str:
    p = result.params
    if not result.samples:
        return "No samples.\n"
    first, warm, last = result.samples[0], result.after_warmup, result.samples[-1]
    table = Table(
        ["figure", "start", "after warm-up", "end", "slope, last 3/4 (per hour)", "ratio end / after warm-up"]
    )
    table.add(
        "worker RSS (MiB)",
        f"{first.rss_mib:,.1f}",
        f"{warm.rss_mib:,.1f}",
        f"{last.rss_mib:,.1f}",
        f"{result.per_hour('rss_mib'):+,.1f} MiB",
        ratio(last.rss_mib, warm.rss_mib),
    )
    table.add(
        "app state in Redis (MiB, MEMORY USAGE)",
        f"{first.state_mib:,.2f}",
        f"{warm.state_mib:,.2f}",
        f"{last.state_mib:,.2f}",
        f"{result.per_hour('state_mib'):+,.2f} MiB",
        ratio(last.state_mib, warm.state_mib),
    )
    table.add(
        "state keys",
        num(first.keys),
        num(warm.keys),
        num(last.keys),
        f"{result.per_hour('keys'):+,.0f}",
        ratio(last.keys, warm.keys),
    )
    table.add(
        "Redis used_memory, whole instance (MiB)",
        f"{first.redis_used_mib:,.1f}",
        f"{warm.redis_used_mib:,.1f}",
        f"{last.redis_used_mib:,.1f}",
        f"{result.per_hour('redis_used_mib'):+,.1f} MiB",
        ratio(last.redis_used_mib, warm.redis_used_mib),
    )
    verdict = "**flat**" if result.flat else "**growing**"
    excess = result.excess_mib
    if excess is None or result.fresh_rss_mib is None:
        explained = "The fresh-worker comparison was not made."
    else:
        bound = max(EXCESS_OK * result.fresh_rss_mib, EXCESS_OK_MIB)
        explained = (
            f"A fresh worker loading the same state ({num(result.fresh_keys)} keys) has an RSS of "
            f"{result.fresh_rss_mib:,.1f} MiB; the soaked worker held {excess:+,.1f} MiB more at the end "
            f"(ratio {ratio(last.rss_mib, result.fresh_rss_mib)}): "
            + (
                f"**the growth is the retained state** (criterion: at most {bound:,.0f} MiB more, i.e. "
                f"{EXCESS_OK:.0%} of the fresh RSS or {EXCESS_OK_MIB:.0f} MiB, whichever is larger)."
                if result.explained
                else f"**more than the state explains** (criterion: at most {bound:,.0f} MiB): a leak "
                "or fragmentation to investigate."
            )
        )
    max_lag = max((s.produced - s.processed for s in result.samples), default=0)
    csv_name = result.csv_path.name if result.csv_path else "soak-memory.csv"
    lines = [
        f"`kpi-monitor simulate --rate {p.rate:g} --reps {p.reps} --days 0` (live events stamped with the "
        f"wall clock) into one worker (`KPI_CLOCK=wall`, rules `benchmarks/soak-rules.yaml`) for "
        f"{result.duration / 60:.1f} min; samples every {p.interval_s:g} s in `{csv_name}` "
        f"({len(result.samples)} rows); the worker's RSS was {result.idle_rss_mib:,.1f} MiB idle before the "
        "traffic. The worker kept up: the largest backlog sampled was "
        f"{max(max_lag, 0):,} "
        "events (end offsets of the input topics - events processed).\n",
        table.markdown(),
        "",
        f"Verdict: {verdict}. Criterion: the least-squares slope of the worker's RSS over the last 3/4 "
        f"of the run (the first quarter is the warm-up) is flat when within ±{FLAT_MIB_PER_H:.0f} MiB per "
        f"hour, growing above. {explained}",
        "",
        "**Why a special rules file, and why the line is not flat in 20 minutes.** State legitimately "
        "grows until its retention is reached, so the soak runs with `benchmarks/soak-rules.yaml`: the "
        "production rules with every retention at the smallest value `kpi_rules` accepts "
        "(`dedupe_horizon_hours: 1`, `keep.hour: 25`, two periods of each other kind). Even those "
        "minimums are longer than a 20-minute soak: seen event ids are kept per wall-clock hour for "
        "1-2 h (a first plateau, as a sawtooth, after about 2 h), 15-minute slot buckets for 25 h, and "
        "closed deals (with the ids of their events) until the start of the oldest retained year, so "
        "every new deal stays for more than a year. So within any soak of realistic traffic the state, "
        "and the RSS with it, grows; the test of a leak is therefore the comparison with a fresh "
        "worker holding the same state (above). With the production retention "
        "(`kpi_rules/rules.yaml`) memory grows until each horizon is reached (ids: 168 h; slots: 72 h; "
        "days: 400; deals: years) and then flattens at the bound below.",
        "",
        *_bound(result),
    ]
    return "\n".join(lines) + "\n"
