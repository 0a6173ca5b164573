"""Streaming throughput per worker against the plain aiokafka consume-and-decode loop, same broker,
same run; then recovery of the worker's state from Redis after a restart.

    python -m benchmarks.stream_throughput --events 200000

Needs the local stack (`kpi-monitor dev up`). Prints a Markdown table of the figures.

The pieces are importable (the suite's sections and `benchmarks.peer_quix` use them):
`make_events`, `produce`, `plain_loop`, `service_run`, `restart`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from benchmarks.harness import DEFAULT_BOOTSTRAP, DEFAULT_REDIS, TOPICS, produce
from kpi_testkit import Deployment, WorkerProcess, install_cleanup

__all__ = ["TOPICS", "make_events", "plain_loop", "produce", "restart", "service_run"]

HISTORY_NOW = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)


def make_events(count: int, reps: int, now: datetime = HISTORY_NOW, days: int = 90) -> list[bytes]:
    """`count` encoded events of the simulator's generator: `reps` reps, `days` of business-hours
    history up to `now` (seed 11: the same events every time)."""
    from kpi_monitor.simulate import history
    from kpi_monitor.traffic import TrafficGenerator
    from kpi_rules import load_rules

    gen = TrafficGenerator(load_rules(), reps=reps, seed=11, per_hour=max(count / 600, 50))
    out = []
    for event in history(gen, days, now, now):
        out.append(orjson.dumps(event))
        if len(out) == count:
            break
    return out


async def plain_loop(bootstrap: str, prefix: str, total: int) -> float:
    """The ceiling: aiokafka getmany + json.loads + a dict count per rep (events/s)."""
    consumer = AIOKafkaConsumer(
        *(prefix + t for t in TOPICS.values()),
        bootstrap_servers=bootstrap,
        group_id=f"plain-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    counts: Counter[str] = Counter()
    seen = 0
    started = None
    try:
        while seen < total:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            for messages in batch.values():
                if started is None:
                    started = time.perf_counter()
                for message in messages:
                    counts[json.loads(message.value).get("rep_id", "")] += 1  # "": a team's
                seen += len(messages)
    finally:
        await consumer.stop()
    assert started is not None
    return total / (time.perf_counter() - started)


def service_run(deployment: Deployment, total: int, timeout: float = 1200) -> tuple[float, WorkerProcess]:
    """Start a worker of `deployment` on topics already holding `total` events; events/s from its
    first poll until `/status` shows every event done. The worker is left running (stop it).

    `/status` is polled every 20 ms from the process start: the first poll can come before
    `/readyz` turns 200 (the ingest starts before the agent's partitions are assigned)."""
    worker = deployment.start_worker()
    try:
        worker.wait_first_poll(300)
        started = time.perf_counter()
        worker.wait_processed(total, timeout, 0.1)
        elapsed = time.perf_counter() - started
        worker.wait_ready(60, 0.1)
        return total / elapsed, worker
    except BaseException:
        worker.stop()
        raise


@dataclass
class Restart:
    ready_s: float  # process start to /readyz 200
    keys: int | None  # state keys loaded from Redis (/status "recovery")
    load_s: float | None  # the store's own load time


def restart(deployment: Deployment) -> Restart:
    """A new worker process for the same app: what it loads from Redis and when it is ready."""
    worker = deployment.start_worker()
    try:
        ready = worker.seconds_to_ready(300, 0.1)
        recovery: dict[str, Any] = worker.status().get("recovery") or {}
    finally:
        worker.stop()
    return Restart(ready, recovery.get("keys"), recovery.get("seconds"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--bootstrap", default=DEFAULT_BOOTSTRAP)
    parser.add_argument("--redis", default=DEFAULT_REDIS)
    parser.add_argument("--batch", type=int, default=5000, help="KPI_BATCH_MAX_EVENTS of the worker")
    parser.add_argument("--keep", action="store_true", help="keep the run's topics and Redis keys")
    args = parser.parse_args()
    install_cleanup()

    name = f"bench{uuid.uuid4().hex[:8]}"
    deployment = Deployment(
        args.bootstrap,
        args.redis,
        Path(f"/tmp/{name}"),
        partitions=args.partitions,
        extra_env={"KPI_BATCH_MAX_EVENTS": str(args.batch)},
        name=name,
    )
    try:
        events = make_events(args.events, args.reps)
        total = len(events)
        print(
            f"{total} events, {args.reps} reps, {args.partitions} partitions, prefix {deployment.prefix}",
            file=sys.stderr,
        )
        asyncio.run(produce(args.bootstrap, deployment.prefix, events, args.partitions))

        plain = asyncio.run(plain_loop(args.bootstrap, deployment.prefix, total))
        print(f"plain aiokafka loop: {plain:,.0f} events/s", file=sys.stderr)

        service, worker = service_run(deployment, total)
        print(f"service: {service:,.0f} events/s", file=sys.stderr)
        worker.stop()

        # Recovery: a new process for the same app loads the state from Redis.
        again = restart(deployment)
    finally:
        deployment.cleanup(keep=args.keep)  # its topics and Redis keys

    machine = f"{os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"| machine | {machine}, {datetime.now(UTC):%Y-%m-%d} |")
    print("| figure | value |\n|---|---|")
    print(f"| plain aiokafka getmany + json.loads + count (events/s) | {plain:,.0f} |")
    print(f"| kpi-monitor worker, contract topics to KPIs in Redis (events/s) | {service:,.0f} |")
    print(f"| ratio service / plain | {service / plain:.2f} |")
    print(f"| restart: keys loaded from Redis | {again.keys} |")
    print(f"| restart: store load seconds | {again.load_s or 0:.2f} |")
    print(f"| restart: process start to ready (s) | {again.ready_s:.1f} |")


if __name__ == "__main__":
    main()
