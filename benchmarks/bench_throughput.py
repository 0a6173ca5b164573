"""Section 1 of the suite: throughput per worker process on the same produced events, same run:
the plain aiokafka consume-and-decode loop (the ceiling), our worker, and the Quix Streams peer
(`benchmarks.peer_quix.measure_peer`, owned by its own module). Ratios are to the plain loop."""

from __future__ import annotations

import asyncio
import inspect
import time
import traceback
from dataclasses import dataclass
from typing import Any

from benchmarks.harness import say, unique_name
from benchmarks.stream_throughput import make_events, plain_loop, produce, service_run
from benchmarks.tables import Table, num, ratio
from kpi_testkit import Deployment


@dataclass
class ThroughputParams:
    events: int = 300_000
    reps: int = 200
    partitions: int = 4
    peer_timeout_s: float = 1200.0


@dataclass
class Figure:
    name: str
    events_per_s: float | None
    seconds: float | None
    processed: int | None
    note: str = ""


@dataclass
class ThroughputResult:
    params: ThroughputParams
    total: int
    prefix: str
    figures: list[Figure]


def _peer(bootstrap: str, prefix: str, total: int, workdir: Any, timeout: float) -> Figure:
    try:
        from benchmarks.peer_quix import measure_peer  # written separately; needs the bench extra
    except ImportError as exc:
        return Figure("peer: Quix Streams app", None, None, None, f"not measured: {exc}")
    kwargs: dict[str, Any] = {"timeout_s": timeout}
    if "dump_months" in inspect.signature(measure_peer).parameters:
        kwargs["dump_months"] = False  # reading its state back is not part of the figure
    try:
        result = measure_peer(bootstrap, prefix, total, workdir / "peer", **kwargs)
    except Exception as exc:
        traceback.print_exc()
        return Figure(
            "peer: Quix Streams app", None, None, None, f"failed: {type(exc).__name__}: {exc}"[:300]
        )
    return Figure(
        "peer: Quix Streams app",
        float(result.events_per_s),
        float(result.seconds),
        int(result.processed),
        "consumer group " + str(getattr(result, "consumer_group", "")),
    )


def run(ctx: Any, params: ThroughputParams) -> ThroughputResult:
    deployment = Deployment(
        ctx.bootstrap,
        ctx.redis_url,
        ctx.workdir,
        partitions=params.partitions,
        name=unique_name("tput", ctx.token),
    )
    try:
        say(f"throughput: generating {params.events:,} events ({params.reps} reps)")
        events = make_events(params.events, params.reps)
        total = len(events)
        say(f"throughput: producing them to {deployment.prefix}*")
        asyncio.run(produce(ctx.bootstrap, deployment.prefix, events, params.partitions))
        del events

        say("throughput: (a) plain aiokafka loop")
        started = time.perf_counter()
        plain = asyncio.run(plain_loop(ctx.bootstrap, deployment.prefix, total))
        figures = [
            Figure("plain aiokafka loop (getmany + json.loads + count per rep)", plain, total / plain, total)
        ]
        say(f"throughput: plain {plain:,.0f} events/s ({time.perf_counter() - started:.1f} s with start-up)")

        say("throughput: (b) kpi-monitor worker")
        service, worker = service_run(deployment, total)
        worker.stop()
        figures.append(
            Figure("kpi-monitor worker (ingest, every KPI, Redis store)", service, total / service, total)
        )
        say(f"throughput: worker {service:,.0f} events/s")

        say("throughput: (c) Quix Streams peer")
        peer = _peer(ctx.bootstrap, deployment.prefix, total, ctx.workdir, params.peer_timeout_s)
        figures.append(peer)
        say(f"throughput: peer {num(peer.events_per_s)} events/s {peer.note}")
        return ThroughputResult(params, total, deployment.prefix, figures)
    finally:
        deployment.cleanup(ctx.keep_data)  # the peer's topics too: they are named after the inputs


def render(result: ThroughputResult) -> str:
    plain = result.figures[0].events_per_s
    table = Table(["consumer (one process)", "events/s", "seconds", "events", "ratio to plain loop", "note"])
    table.align = "lrrrrl"
    for fig in result.figures:
        table.add(
            fig.name,
            num(fig.events_per_s),
            num(fig.seconds, 2),
            num(fig.processed),
            ratio(fig.events_per_s, plain),
            fig.note or "",
        )
    p = result.params
    return (
        f"The same {result.total:,} events (the simulator's generator: {p.reps} reps, 90 days of business "
        f"hours, seed 11) produced once to four contract topics of {p.partitions} partitions, then read by "
        "each consumer in turn with its own consumer group, one process each, timed from its first "
        "message to its last:\n\n"
        + table.markdown()
        + "\n\n- (a) the ceiling for one Python process: no validation, no state.\n"
        "- (b) `kpi-monitor worker` (event clock): ingest (validation, routing into rep-partitioned "
        "micro-batches), the Faust agent, every KPI of the contract, the Redis store (a MULTI per "
        "batch with its offset); timed from its first poll until `/status` counts every event.\n"
        "- (c) `benchmarks.peer_quix`: a plain Quix Streams application keeping the per-rep "
        "monthly counts and revenue only (see its docstring for what it leaves out), timed by itself "
        "from its first processed message to the last.\n"
    )
