"""Streaming throughput per worker against the plain aiokafka consume-and-decode loop, same broker,
same run; then recovery of the worker's state from Redis after a restart.

    python benchmarks/stream_throughput.py --events 200000

Needs the local stack (`kpi-monitor dev up`). Prints a Markdown table of the figures."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kpi_monitor.simulate import history, key_for  # noqa: E402
from kpi_monitor.traffic import TrafficGenerator  # noqa: E402
from kpi_rules import load_rules  # noqa: E402

TOPICS = {"deal": "deals", "visit": "visits", "quote": "quotes", "target": "targets"}


def make_events(count: int, reps: int) -> list[bytes]:
    rules = load_rules()
    gen = TrafficGenerator(rules, reps=reps, seed=11)
    now = datetime(2026, 11, 20, 17, 0, tzinfo=UTC)
    out = []
    for event in history(gen, 90, max(count / 600, 50), now):
        out.append(orjson.dumps(event))
        if len(out) == count:
            break
    return out


async def produce(bootstrap: str, prefix: str, events: list[bytes], partitions: int) -> None:
    from kpi_monitor.settings import Settings
    from streams.topics import ensure_topics

    await ensure_topics(
        Settings(kafka_bootstrap=bootstrap, topic_prefix=prefix, partitions=partitions)
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        for raw in events:
            event = orjson.loads(raw)
            topic = prefix + TOPICS[event["type"].split(".")[0]]
            await producer.send(topic, raw, key=key_for(event))
        await producer.flush()
    finally:
        await producer.stop()


async def plain_loop(bootstrap: str, prefix: str, total: int) -> float:
    """The ceiling: aiokafka getmany + json.loads + a dict count per rep."""
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
                    counts[json.loads(message.value)["rep_id"]] += 1
                seen += len(messages)
    finally:
        await consumer.stop()
    assert started is not None
    return total / (time.perf_counter() - started)


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def start_worker(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "kpi_monitor.cli", "worker"],
        env=env | {"KPI_WEB_PORT": str(port)},
        cwd=REPO,
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait(predicate, timeout: float, interval: float = 0.1):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except OSError:
            pass
        time.sleep(interval)
    raise TimeoutError("benchmark step timed out")


def service_run(
    env: dict[str, str], port: int, total: int, log: Path
) -> tuple[float, subprocess.Popen[bytes]]:
    proc = start_worker(env, port, log)
    base = f"http://127.0.0.1:{port}"
    wait(lambda: get_json(base + "/status")["ready"], 120, 0.5)
    wait(lambda: get_json(base + "/status")["ingest"]["polled"] > 0, 60, 0.02)
    started = time.perf_counter()

    def done() -> bool:
        status = get_json(base + "/status")
        return status["applied"] + status["duplicates"] + status["ingest"]["rejected"] >= total

    wait(done, 1200, 0.1)
    return total / (time.perf_counter() - started), proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--batch", type=int, default=5000, help="KPI_BATCH_MAX_EVENTS of the worker")
    args = parser.parse_args()

    name = f"bench{uuid.uuid4().hex[:8]}"
    prefix = f"{name}.crm."
    events = make_events(args.events, args.reps)
    total = len(events)
    print(
        f"{total} events, {args.reps} reps, {args.partitions} partitions, prefix {prefix}",
        file=sys.stderr,
    )
    asyncio.run(produce(args.bootstrap, prefix, events, args.partitions))

    plain = asyncio.run(plain_loop(args.bootstrap, prefix, total))
    print(f"plain aiokafka loop: {plain:,.0f} events/s", file=sys.stderr)

    env = {k: v for k, v in os.environ.items() if not k.startswith("KPI_")} | {
        "KPI_APP_ID": name,
        "KPI_TOPIC_PREFIX": prefix,
        "KPI_KAFKA_BOOTSTRAP": args.bootstrap,
        "KPI_REDIS_URL": args.redis,
        "KPI_PARTITIONS": str(args.partitions),
        "KPI_CLOCK": "event",
        "KPI_LOG_LEVEL": "warning",
        "KPI_DATA_DIR": f"/tmp/{name}",
        "KPI_BATCH_MAX_EVENTS": str(args.batch),
    }
    log = Path(f"/tmp/{name}-worker.log")
    service, proc = service_run(env, 6190, total, log)
    print(f"service: {service:,.0f} events/s", file=sys.stderr)
    stop(proc)

    # Recovery: a new process for the same app loads the state from Redis.
    started = time.perf_counter()
    proc = start_worker(env, 6191, log)
    status = wait(lambda: (s := get_json("http://127.0.0.1:6191/status"))["ready"] and s, 300, 0.1)
    ready_after = time.perf_counter() - started
    recovery = status["recovery"] or {}
    stop(proc)

    machine = f"{os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"| machine | {machine}, {datetime.now(UTC):%Y-%m-%d} |")
    print("| figure | value |\n|---|---|")
    print(f"| plain aiokafka getmany + json.loads + count (events/s) | {plain:,.0f} |")
    print(f"| kpi-monitor worker, contract topics to KPIs in Redis (events/s) | {service:,.0f} |")
    print(f"| ratio service / plain | {service / plain:.2f} |")
    print(f"| restart: keys loaded from Redis | {recovery.get('keys')} |")
    print(f"| restart: store load seconds | {recovery.get('seconds', 0):.2f} |")
    print(f"| restart: process start to ready (s) | {ready_after:.1f} |")


if __name__ == "__main__":
    main()
