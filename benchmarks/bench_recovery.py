"""Section 3 of the suite: recovery after `kill -9`, for about 100,000 and 1,000,000 keys of state.

The state is built by the real worker from real events: the simulator's generator over many reps
and 400 days of business-hours history at about half an event per rep and business day, so most
events open a new day bucket (and often a week bucket) of their rep: a key is one stored part of a
rep's state (`kpi_core.codec.store_key`): a bucket per 15-minute slot (last 72 h), day, week, month,
quarter and year, a deal, a target, a chunk of seen event ids, the rep's meta. With
`KEYS_PER_REP` keys per rep at these settings (calibrated with the KPI core), the number of reps
sets the key count; the actual count is read from Redis and from the new worker's `/status`.

Then: wait until every event is applied (and so written to Redis), read a few reps' `/kpis` for
every period, SIGKILL the worker's process group, start a new worker for the same app id and
measure process start to `/readyz` 200, the store's own load (`/status` "recovery"), and compare
the same `/kpis` answers."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from benchmarks.harness import RedisProbe, produce, say, unique_name
from benchmarks.stream_throughput import service_run
from benchmarks.tables import Table, num, ratio
from kpi_testkit import Deployment, WorkerProcess, http_get

KEYS_PER_REP = 230  # 400 days, 0.5 events per rep and business day (measured: 1.46 keys per event)
PERIODS = ("day", "week", "month", "quarter", "year")


@dataclass
class RecoveryParams:
    targets: list[int] = field(default_factory=lambda: [100_000, 1_000_000])
    days: int = 400
    events_per_rep_day: float = 0.5
    sample_reps: int = 5
    partitions: int = 4


@dataclass
class RecoveryRow:
    target: int
    reps: int
    events: int
    build_rate: float
    build_s: float
    redis_keys: int
    recovery: dict[str, Any]
    ready_s: float
    compared: int
    identical_at_ready: int  # /kpis answers identical right after /readyz 200
    not_found_at_ready: int  # ... and 404 answers then
    scrape_s: float  # the first GET /metrics after the restart
    scrape_mib: float
    identical: int  # /kpis answers identical after that first scrape
    mismatches: list[str]
    rss_before_mib: float | None
    rss_after_mib: float | None


@dataclass
class RecoveryResult:
    params: RecoveryParams
    empty_ready_s: float  # process start to /readyz 200 of a worker with no state (the reference)
    rows: list[RecoveryRow]


def history_events(reps: int, days: int, per_rep_day: float) -> list[bytes]:
    """Business-hours history of `reps` reps over `days` days up to the last full hour (so nothing is
    in the future), about `per_rep_day` events per rep and business day (10 business hours)."""
    from kpi_monitor.simulate import history
    from kpi_monitor.traffic import TrafficGenerator
    from kpi_rules import load_rules

    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    gen = TrafficGenerator(load_rules(), reps=reps, seed=23, per_hour=reps * per_rep_day / 10)
    return [orjson.dumps(e) for e in history(gen, days, now, now)]


def _snapshot(worker: WorkerProcess, reps: list[str]) -> dict[str, tuple[int, Any]]:
    """(HTTP status, JSON document) of `/kpis/reps/<rep>?period=<kind>` for every rep and kind."""
    out = {}
    for rep in reps:
        for kind in PERIODS:
            status, body = http_get(f"{worker.base}/kpis/reps/{rep}?period={kind}", timeout=60)
            out[f"{rep}?period={kind}"] = (status, orjson.loads(body))
    return out


def measure(ctx: Any, params: RecoveryParams, target: int) -> RecoveryRow:
    reps = max(3, round(target / KEYS_PER_REP))
    deployment = Deployment(
        ctx.bootstrap,
        ctx.redis_url,
        ctx.workdir,
        partitions=params.partitions,
        name=unique_name("rec", ctx.token),
    )
    try:
        say(f"recovery ~{target:,} keys: generating {params.days} days of history for {reps:,} reps")
        events = history_events(reps, params.days, params.events_per_rep_day)
        total = len(events)
        say(f"recovery ~{target:,} keys: producing {total:,} events")
        asyncio.run(produce(ctx.bootstrap, deployment.prefix, events, params.partitions))
        del events
        started = time.perf_counter()
        build_rate, worker = service_run(deployment, total, timeout=total / 500 + 600)
        build_s = total / build_rate
        say(
            f"recovery ~{target:,} keys: state built at {build_rate:,.0f} events/s "
            f"({time.perf_counter() - started:.0f} s with the worker's start)"
        )
        step = max(1, reps // params.sample_reps)
        sample = [f"rep-{i:03d}" for i in range(1, reps + 1, step)][: params.sample_reps]
        try:
            before = _snapshot(worker, sample)
            redis_keys = RedisProbe(ctx.redis_url).state_keys(deployment.name, params.partitions)
            rss_before = worker.rss_mib()
        finally:
            worker.kill9()  # SIGKILL to the process group: no flush, no leaving the group
        say(f"recovery ~{target:,} keys: {redis_keys:,} keys in Redis; killed; restarting")
        again = deployment.start_worker()
        try:
            ready = again.seconds_to_ready(900, 0.05)
            recovery = dict(again.status().get("recovery") or {})
            at_ready = _snapshot(again, sample)
            began = time.perf_counter()
            status, metrics = http_get(f"{again.base}/metrics", timeout=1800)  # Prometheus' first scrape
            scrape_s = time.perf_counter() - began
            if status != 200:
                raise RuntimeError(f"GET /metrics after the restart: HTTP {status}")
            after = _snapshot(again, sample)
            rss_after = again.rss_mib()
        finally:
            again.stop()
        bad = [k for k, (status, _) in before.items() if status != 200]
        if bad:
            raise RuntimeError(f"/kpis before the kill did not answer 200 for {', '.join(bad)}")
        mismatches = [key for key in before if before[key] != after.get(key)]
        row = RecoveryRow(
            target=target,
            reps=reps,
            events=total,
            build_rate=build_rate,
            build_s=build_s,
            redis_keys=redis_keys,
            recovery=recovery,
            ready_s=ready,
            compared=len(before),
            identical_at_ready=sum(1 for k in before if at_ready.get(k) == before[k]),
            not_found_at_ready=sum(1 for status, _ in at_ready.values() if status == 404),
            scrape_s=scrape_s,
            scrape_mib=len(metrics) / 2**20,
            identical=len(before) - len(mismatches),
            mismatches=mismatches,
            rss_before_mib=rss_before,
            rss_after_mib=rss_after,
        )
        say(
            f"recovery ~{target:,} keys: ready in {ready:.1f} s, loaded {recovery.get('keys')} keys in "
            f"{recovery.get('seconds', 0):.2f} s; /kpis at ready: {row.identical_at_ready} identical, "
            f"{row.not_found_at_ready} 404; first /metrics {scrape_s:.1f} s; then /kpis identical "
            f"{row.identical}/{row.compared}"
        )
        return row
    finally:
        deployment.cleanup(ctx.keep_data)


def empty_start(ctx: Any, partitions: int) -> float:
    """Process start to /readyz 200 of a worker of a new app with no state and no events."""
    deployment = Deployment(
        ctx.bootstrap, ctx.redis_url, ctx.workdir, partitions, name=unique_name("rec0", ctx.token)
    )
    worker = deployment.start_worker()
    try:
        return worker.seconds_to_ready(180, 0.05)
    finally:
        worker.stop()
        deployment.cleanup(ctx.keep_data)


def run(ctx: Any, params: RecoveryParams) -> RecoveryResult:
    say("recovery: reference start of a worker with no state")
    empty = empty_start(ctx, params.partitions)
    return RecoveryResult(params, empty, [measure(ctx, params, target) for target in params.targets])


def render(result: RecoveryResult) -> str:
    p = result.params
    table = Table(
        [
            "state (target)",
            "keys in Redis",
            "keys loaded (/status)",
            "reps",
            "events",
            "built at (events/s)",
            "start → /readyz 200",
            "ratio to empty start",
            "store load",
            "keys/s loaded",
            "/kpis at ready",
            "first /metrics scrape",
            "/kpis identical after it",
            "RSS before → after kill",
        ],
    )
    for row in result.rows:
        rec = row.recovery
        keys, seconds = rec.get("keys"), rec.get("seconds")
        ident = f"{row.identical}/{row.compared}" + (" yes" if row.identical == row.compared else " **NO**")
        at_ready = f"{row.identical_at_ready}/{row.compared} identical" + (
            f", {row.not_found_at_ready} × 404" if row.not_found_at_ready else ""
        )
        table.add(
            f"~{row.target:,} keys",
            num(row.redis_keys),
            num(keys),
            num(row.reps),
            num(row.events),
            num(row.build_rate),
            f"{row.ready_s:.1f} s",
            ratio(row.ready_s, result.empty_ready_s),
            "-" if seconds is None else f"{seconds:.2f} s",
            num(keys / seconds) if keys and seconds else "-",
            at_ready,
            f"{row.scrape_s:.1f} s ({row.scrape_mib:,.1f} MiB)",
            ident,
            f"{num(row.rss_before_mib)} → {num(row.rss_after_mib)} MiB",
        )
    bad = [m for r in result.rows for m in r.mismatches]
    not_found = any(r.not_found_at_ready for r in result.rows)
    lines = [
        f"State built by the worker (event clock, {p.partitions} partitions) from the simulator's "
        f"history: {p.days} days of business hours, about {p.events_per_rep_day} events per rep and "
        f"business day, many reps (so most events open new day/week buckets; about {KEYS_PER_REP} "
        "keys per rep). After every event was applied (each batch is written to Redis before it is "
        "acknowledged), the worker's process group got SIGKILL and a new worker for the same app id "
        "was started; no event arrives after the restart.\n",
        table.markdown(),
        "",
        "- *start → /readyz 200*: from creating the new process to the first 200 of `/readyz`; "
        "*ratio to empty start*: that time over the start-to-ready of a worker of a new app id with "
        f"no state and no events, in the same run ({result.empty_ready_s:.1f} s). After a SIGKILL the "
        "dead member stays in the consumer groups until the broker's session timeout (the worker "
        "sets 10 s), so the new worker's first rebalance waits for it: most of the gap to an empty "
        "start is that wait, not loading.",
        "- *store load*: the Redis store's own load of the assigned partitions (`/status` "
        '"recovery".seconds; HSCAN of each partition\'s hash into memory, as bytes), *keys loaded* its '
        "key count; it equals *keys in Redis* (HLEN of the app's partition hashes) when the first "
        "assignment gave the new worker every partition. Decoding the bytes into rep states happens "
        "later, at first use: the *first /metrics scrape* (what Prometheus does first) decodes every "
        "rep and renders every series; its time and size are given.",
        f"- */kpis*: `GET /kpis/reps/<rep>?period=<day|week|month|quarter|year>` for {p.sample_reps} "
        "reps spread over the rep ids, before the kill, right after `/readyz` turned 200, and after the "
        'first scrape, compared as JSON documents (the event clock makes "now" the same each time). '
        "*/kpis identical after it* is the correctness of the recovered state."
        + (f" Differences: {', '.join(bad)}." if bad else ""),
        "- *RSS*: the killed worker's VmRSS (after applying every event of the build), then the new "
        "worker's after the scrape and the reads (the same state, decoded).",
    ]
    if not_found:
        lines.append(
            "- **404 right after the restart**: until the new worker has applied a routed batch or "
            'rendered `/metrics` once, `/kpis/reps/<rep>` answers 404 ("no events for rep") for reps '
            "whose state it has loaded: `streams/http.py` reads `worker.states`, which `streams/app.py` "
            "creates lazily. The state is intact (see the column after the scrape); the API does not "
            "serve it until then."
        )
    return "\n".join(lines) + "\n"
