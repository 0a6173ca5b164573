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

from kpi_core.owners import target_message_key
from kpi_monitor.moments import parse_moment
from kpi_monitor.traffic import (
    BUSINESS_HOURS,
    RAW,
    TrafficGenerator,
    messy,
)
from kpi_rules import Rules
from kpi_rules.vocabulary import TOPIC_OF, Topic
from streams.settings import Settings

_TOPIC_BY_TYPE: dict[str, Topic] = {kind.value: topic for kind, topic in TOPIC_OF.items()}
_FAMILY_TOPIC: dict[str, Topic] = {kind.split(".")[0]: topic for kind, topic in TOPIC_OF.items()}


def topic_for(settings: Settings, event: dict[str, Any]) -> str:
    kind = str(event["type"])
    # An unknown type of a known family ("deal.exploded") goes to that family's topic, where the
    # worker dead-letters it as `unknown_type`.
    return settings.topic(_TOPIC_BY_TYPE.get(kind) or _FAMILY_TOPIC[kind.split(".")[0]])


def key_for(event: dict[str, Any]) -> bytes | None:
    """Targets go to a compacted topic, which needs keys: one per target (scope, owner, metric,
    period and start); other events need none."""
    key = target_message_key(event)
    return None if key is None else key.encode()


def history(gen: TrafficGenerator, days: int, now: datetime, origin: datetime) -> Iterator[dict[str, Any]]:
    """`days` of business-hours history up to `now`; a scenario's change starts at `origin`.
    The generator runs a deal cycle's worth of weeks before that unseen, so that the history
    starts with a pipeline already filled (else its first weeks would sell too little)."""
    if days <= 0:
        return
    start = now - timedelta(days=days)
    cycle = max(gen.funnel.repeat_cycle_hours, gen.funnel.new_cycle_hours)
    warm_up = timedelta(hours=cycle * 7 / (5 * BUSINESS_HOURS))  # business -> calendar
    for event in gen.events(start - warm_up, origin=origin):
        at = datetime.fromisoformat(event["occurred_at"])
        if at > now:
            return
        if at >= start or event["type"] == "target.set":  # the targets of the first month too
            yield event


def planned_events(
    rules: Rules, args: argparse.Namespace, now: datetime
) -> tuple[Iterator[dict[str, Any]], Iterator[dict[str, Any]]]:
    """(history sent as fast as possible, then live traffic at the requested rate)."""
    gen = TrafficGenerator(
        rules, reps=args.reps, seed=args.seed, scenario=args.scenario, per_hour=args.history_per_hour
    )
    # A declining team wins less from the start of the current week or month, whichever is
    # earlier, and visits less from the start of the current week, so the alerts compare it with
    # a previous period it did not decline in (given --days of history). A churning team's
    # customers start leaving early enough to churn in the previous and the current month.
    origin = gen.place(now)
    churn_from = gen.churn_from or origin
    if "churn" in gen.effects and now - timedelta(days=args.days) > churn_from:
        print(
            f"simulate: the churn begins {churn_from:%Y-%m-%d}, before the history; use "
            f"--days {(now - churn_from).days + 1} or more to see it rise",
            file=sys.stderr,
        )
    past, live = history(gen, args.days, now, origin), _live(gen, origin)
    if "messy" in gen.effects:
        return messy(past, args.seed), messy(live, args.seed + 1)
    return past, live


def encode(event: dict[str, Any]) -> bytes:
    raw = event.get(RAW)
    return raw if isinstance(raw, bytes) else orjson.dumps(event)


def topic_for_any(settings: Settings, event: dict[str, Any]) -> str:
    """Malformed messages go where their type says, or to the visits topic when it cannot tell."""
    kind = event.get("type")
    if isinstance(kind, str) and kind.split(".")[0] in _FAMILY_TOPIC:
        return topic_for(settings, event)
    return settings.topic("visits")


def _live(gen: TrafficGenerator, origin: datetime) -> Iterator[dict[str, Any]]:
    """Events stamped with the wall clock as they are produced (business hours are ignored live,
    and the leads and surveys an event brings follow at once)."""
    yield from gen.targets(datetime.now(UTC))
    while True:
        now = datetime.now(UTC)
        yield from gen.drain(now)
        event = gen.next_activity(now, origin)
        if event is not None:
            yield event


def run_simulation(settings: Settings, rules: Rules, args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    if args.until is not None:
        now = parse_moment(args.until, rules.zone, "--until", now)
    past, live = planned_events(rules, args, now)
    if args.output is not None:
        # A file: the history, then (if --count asks for more) live-stamped events; without
        # --count, the history alone.
        count = args.count
        written = 0
        with open(args.output, "wb") as handle:
            for event in itertools.chain(past, live) if count else past:
                if count and written >= count:
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
