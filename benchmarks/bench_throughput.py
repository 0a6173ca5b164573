"""Section 1 of the suite: throughput per worker process on the same produced events, same run:
the plain aiokafka consume-and-decode loop (the ceiling), our worker, and the Quix Streams peer
(`benchmarks.peer_quix.measure_peer`, owned by its own module). Ratios are to the plain loop."""

from __future__ import annotations

import asyncio
import inspect
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from benchmarks.harness import say, unique_name
from benchmarks.stream_throughput import make_events, plain_loop, produce
from benchmarks.tables import Table, num, ratio
from kpi_testkit import Deployment, wait_for


@dataclass
class ThroughputParams:
    events: int = 300_000
    reps: int = 200
    partitions: int = 4
    peer_timeout_s: float = 1200.0
    # KPI_CORE of each worker measured (a worker of its own per core, same input topics).
    cores: list[str] = field(default_factory=lambda: ["auto", "python"])
    # Also time a worker of the first core with KPI_CUSTOMER_SIDE=false: the customer side's price.
    without_customers: bool = False
    timeout_s: float = 1200.0


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

        for core in params.cores:
            say(f"throughput: (b) kpi-monitor worker, KPI_CORE={core}")
            figure = _worker(ctx, deployment, total, core, params.timeout_s)
            figures.append(figure)
            say(f"throughput: worker ({core}) {num(figure.events_per_s)} events/s; {figure.note}")
        if params.without_customers:
            core = params.cores[0]
            say(f"throughput: (b') kpi-monitor worker, KPI_CORE={core}, KPI_CUSTOMER_SIDE=false")
            figure = _worker(ctx, deployment, total, core, params.timeout_s, customer_side=False)
            figures.append(figure)
            say(f"throughput: worker ({core}, no customer side) {num(figure.events_per_s)} events/s")

        say("throughput: (c) Quix Streams peer")
        peer = _peer(ctx.bootstrap, deployment.prefix, total, ctx.workdir, params.peer_timeout_s)
        figures.append(peer)
        say(f"throughput: peer {num(peer.events_per_s)} events/s {peer.note}")
        return ThroughputResult(params, total, deployment.prefix, figures)
    finally:
        deployment.cleanup(ctx.keep_data)  # the peer's topics too: they are named after the inputs


def _worker(
    ctx: Any, inputs: Deployment, total: int, core: str, timeout: float, *, customer_side: bool = True
) -> Figure:
    """A worker of its own app id (KPI_CORE=`core`) on the input topics of `inputs`: events/s from
    its first poll until every event is applied AND the customer side has settled (every fact
    routed to it handled, every summary it sent received by the rep side; at once without it)."""
    deployment = Deployment(
        ctx.bootstrap,
        ctx.redis_url,
        ctx.workdir,
        partitions=inputs.partitions,
        name=unique_name("tpw", ctx.token),
        extra_env={
            "KPI_TOPIC_PREFIX": inputs.prefix,
            "KPI_CORE": core,
            "KPI_CUSTOMER_SIDE": "true" if customer_side else "false",
        },
    )
    worker = deployment.start_worker()
    try:
        worker.wait_first_poll(300)
        started = time.perf_counter()
        worker.wait_processed(total, timeout, 0.1)
        applied_s = time.perf_counter() - started

        wait_for(worker.customers_settled, timeout, 0.05, "the customer side settling")
        seconds = time.perf_counter() - started
        status = worker.status()
        rss = worker.rss_mib()
        note = (
            f"ran the {status.get('core', '?')} core; every event applied after {applied_s:.2f} s "
            f"({total / applied_s:,.0f}/s), customer side settled after {seconds:.2f} s; "
            f"VmRSS {num(rss)} MiB at the end"
        )
        what = (
            "ingest, every KPI, customers, Redis store"
            if customer_side
            else "KPI_CUSTOMER_SIDE=false: ingest, every rep KPI, no customer KPIs, Redis store"
        )
        return Figure(
            f"kpi-monitor worker, KPI_CORE={core} ({what})",
            total / seconds,
            seconds,
            total,
            note,
        )
    finally:
        worker.stop()
        deployment.cleanup(ctx.keep_data)


def render(result: ThroughputResult) -> str:
    plain = result.figures[0].events_per_s
    peer = next((f.events_per_s for f in result.figures if f.name.startswith("peer")), None)
    table = Table(
        [
            "consumer (one process)",
            "events/s",
            "seconds",
            "events",
            "ratio to plain loop",
            "ratio to peer",
            "note",
        ]
    )
    table.align = "lrrrrrl"
    for fig in result.figures:
        table.add(
            fig.name,
            num(fig.events_per_s),
            num(fig.seconds, 2),
            num(fig.processed),
            ratio(fig.events_per_s, plain),
            ratio(fig.events_per_s, peer),
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
        "- (b) `kpi-monitor worker` (event clock), once per KPI core (`KPI_CORE=auto`: the mypyc-"
        "compiled core when built, as scripts/bootstrap.sh builds it; `KPI_CORE=python`: the pure-"
        "Python reference), each a worker of its own app id on the same topics: ingest (routing "
        "into rep- and customer-partitioned micro-batches), the Faust agents, every KPI of the "
        "catalogue including the customer side and its summaries, the Redis store (a MULTI per "
        "batch with its offset); timed from its first poll until `/status` counts every event "
        "AND the customer side has settled (its facts handled, its summaries received by the rep "
        "side).\n"
        + (
            "- (b') the same worker with `KPI_CUSTOMER_SIDE=false` (no routing to the customer side, "
            "the customer KPIs stay 0): what the customer side costs, in the same run.\n"
            if p.without_customers
            else ""
        )
        + "- (c) `benchmarks.peer_quix`: a plain Quix Streams application keeping the per-rep "
        "monthly counts and revenue only (see its docstring for what it leaves out), timed by itself "
        "from its first processed message to the last.\n"
    )
