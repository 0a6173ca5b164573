"""`kpi-monitor simulate`: synthetic CRM traffic to Kafka (or a JSONL file), optionally backfilled."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from kpi_monitor.settings import Settings
from kpi_monitor.traffic import TrafficGenerator
from kpi_rules import Rules

TOPIC_OF_TYPE = {"deal": "deals", "visit": "visits", "quote": "quotes", "target": "targets"}


def topic_for(settings: Settings, event: dict[str, Any]) -> str:
    return settings.topic(TOPIC_OF_TYPE[str(event["type"]).split(".")[0]])


def key_for(event: dict[str, Any]) -> bytes | None:
    """Targets go to a compacted topic, which needs keys: latest target per rep and period."""
    if event["type"] == "target.set":
        return f"{event['rep_id']}|{event['period']}|{event['period_start']}".encode()
    return None


def planned_events(rules: Rules, args: argparse.Namespace, now: datetime) -> Iterator[dict[str, Any]]:
    gen = TrafficGenerator(rules, reps=args.reps, seed=args.seed, scenario=args.scenario)
    if args.days:
        # Backfill history up to now, then continue live.
        start = now - timedelta(days=args.days)
        origin = now - timedelta(days=min(args.days, 30) / 2)
        per_hour = max(args.rate, 1.0) * 60
        for event in gen.events(start, per_hour, origin):
            if datetime.fromisoformat(event["occurred_at"]) > now:
                break
            yield event
    yield from _live(gen, now)


def _live(gen: TrafficGenerator, origin: datetime) -> Iterator[dict[str, Any]]:
    """Events stamped with the wall clock as they are produced (business hours are ignored live)."""
    yield from gen.targets(datetime.now(UTC))
    while True:
        event = gen.next_activity(datetime.now(UTC), origin)
        if event is not None:
            yield event


def run_simulation(settings: Settings, rules: Rules, args: argparse.Namespace) -> int:
    events = planned_events(rules, args, datetime.now(UTC))
    if args.output is not None:
        count = args.count or 10_000
        with open(args.output, "wb") as handle:
            for index, event in zip(range(count), events, strict=False):
                handle.write(orjson.dumps(event) + b"\n")
        print(f"wrote {index + 1} events to {args.output}", file=sys.stderr)
        return 0
    return asyncio.run(_publish(settings, events, args.rate, args.count))


async def _publish(settings: Settings, events: Iterator[dict[str, Any]], rate: float, count: int) -> int:
    from aiokafka import AIOKafkaProducer

    from streams.topics import ensure_topics

    await ensure_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=10, acks="all")
    await producer.start()
    sent = 0
    started = time.monotonic()
    try:
        for event in events:
            await producer.send(topic_for(settings, event), orjson.dumps(event), key=key_for(event))
            sent += 1
            if count and sent >= count:
                break
            if rate > 0:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            if sent % 1000 == 0:
                print(f"simulate: {sent} events sent", file=sys.stderr)
        await producer.flush()
    finally:
        await producer.stop()
    print(f"simulate: {sent} events sent to {settings.kafka_bootstrap}", file=sys.stderr)
    return 0
