"""`kpi-monitor simulate`: synthetic CRM traffic to Kafka or a JSONL file, optionally backfilled."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from kpi_monitor.traffic import RAW, TrafficGenerator, messy
from kpi_rules import Rules
from streams.settings import Settings

TOPIC_OF_TYPE = {"deal": "deals", "visit": "visits", "quote": "quotes", "target": "targets"}


def topic_for(settings: Settings, event: dict[str, Any]) -> str:
    return settings.topic(TOPIC_OF_TYPE[str(event["type"]).split(".")[0]])


def key_for(event: dict[str, Any]) -> bytes | None:
    """Targets go to a compacted topic, which needs keys: latest target per rep and period."""
    if event.get("type") == "target.set" and "period" in event and "rep_id" in event:
        return f"{event['rep_id']}|{event['period']}|{event['period_start']}".encode()
    return None


def history(
    gen: TrafficGenerator, days: int, per_hour: float, now: datetime
) -> Iterator[dict[str, Any]]:
    """`days` of business-hours history up to `now`; a scenario's change starts halfway."""
    if days <= 0:
        return
    start = now - timedelta(days=days)
    origin = now - timedelta(days=days / 2)
    for event in gen.events(start, per_hour, origin):
        if datetime.fromisoformat(event["occurred_at"]) > now:
            return
        yield event


def planned_events(
    rules: Rules, args: argparse.Namespace, now: datetime
) -> tuple[Iterator[dict[str, Any]], Iterator[dict[str, Any]]]:
    """(history sent as fast as possible, then live traffic at the requested rate)."""
    gen = TrafficGenerator(rules, reps=args.reps, seed=args.seed, scenario=args.scenario)
    past, live = history(gen, args.days, args.history_per_hour, now), _live(gen, now)
    if args.scenario == "messy":
        return messy(past, args.seed), messy(live, args.seed + 1)
    return past, live


def encode(event: dict[str, Any]) -> bytes:
    raw = event.get(RAW)
    return raw if isinstance(raw, bytes) else orjson.dumps(event)


def topic_for_any(settings: Settings, event: dict[str, Any]) -> str:
    """Malformed messages go where their type says, or to the visits topic when it cannot tell."""
    kind = event.get("type")
    if isinstance(kind, str) and kind.split(".")[0] in TOPIC_OF_TYPE:
        return topic_for(settings, event)
    return settings.topic("visits")


def _live(gen: TrafficGenerator, origin: datetime) -> Iterator[dict[str, Any]]:
    """Events stamped with the wall clock as they are produced (business hours are ignored live)."""
    yield from gen.targets(datetime.now(UTC))
    while True:
        event = gen.next_activity(datetime.now(UTC), origin)
        if event is not None:
            yield event


def run_simulation(settings: Settings, rules: Rules, args: argparse.Namespace) -> int:
    past, live = planned_events(rules, args, datetime.now(UTC))
    if args.output is not None:
        # A file: the history, then (if --count asks for more) live-stamped events.
        count = args.count or 10_000
        written = 0
        with open(args.output, "wb") as handle:
            for event in itertools.chain(past, live):
                if written >= count:
                    break
                handle.write(encode(event) + b"\n")
                written += 1
        print(f"wrote {written} events to {args.output}", file=sys.stderr)
        return 0
    return asyncio.run(_publish(settings, past, live, args.rate, args.count))


async def _publish(
    settings: Settings,
    past: Iterator[dict[str, Any]],
    live: Iterator[dict[str, Any]],
    rate: float,
    count: int,
) -> int:
    from aiokafka import AIOKafkaProducer

    from streams.connections import aiokafka_kwargs, check_kafka
    from streams.topics import ensure_topics

    await check_kafka(settings)
    await ensure_topics(settings)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, linger_ms=10, acks="all", **aiokafka_kwargs(settings)
    )
    await producer.start()
    sent = 0
    try:
        for event in past:
            await producer.send(topic_for_any(settings, event), encode(event), key=key_for(event))
            sent += 1
            if count and sent >= count:
                break
        await producer.flush()
        print(f"simulate: {sent} history events sent; live traffic at {rate}/s", file=sys.stderr)
        live_sent = 0
        started = time.monotonic()
        while not count or sent < count:
            event = next(live)
            await producer.send(topic_for_any(settings, event), encode(event), key=key_for(event))
            sent += 1
            live_sent += 1
            if rate > 0:
                ahead = live_sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            if sent % 1000 == 0:
                print(f"simulate: {sent} events sent", file=sys.stderr)
        await producer.flush()
    finally:
        await producer.stop()
    print(f"simulate: {sent} events sent to {settings.kafka_bootstrap}", file=sys.stderr)
    return 0
