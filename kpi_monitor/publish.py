"""`kpi-monitor publish FILE`: send a CRM export (JSONL) to the contract topics, with progress."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from kpi_monitor.settings import Settings
from kpi_monitor.simulate import key_for, topic_for

TYPE_PREFIXES = ("deal.", "visit.", "quote.", "target.")


async def _settle(pending: list[asyncio.Future[Any]], summary: Counter[str]) -> None:
    """Wait for the broker's answer to every queued send: "sent" means acknowledged."""
    results = await asyncio.gather(*pending, return_exceptions=True)
    failed = sum(1 for r in results if isinstance(r, BaseException))
    if failed:
        summary["failed"] += failed
        print(f"publish: {failed} events were not acknowledged by Kafka", file=sys.stderr)
    pending.clear()


async def publish_file(settings: Settings, path: Path, rate: float = 0.0) -> Counter[str]:
    """Publish every line whose `type` names a contract topic; count what was sent and refused.
    Validating the events is the worker's job (bad ones reach the dead-letter topic)."""
    from aiokafka import AIOKafkaProducer

    from kpi_monitor.kafka_security import aiokafka_kwargs, check_kafka
    from streams.topics import ensure_topics

    await check_kafka(settings)
    await ensure_topics(settings)
    summary: Counter[str] = Counter()
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, linger_ms=10, acks="all", **aiokafka_kwargs(settings)
    )
    await producer.start()
    started = time.monotonic()
    pending: list[asyncio.Future[Any]] = []
    try:
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                raw = line.rstrip(b"\r\n")
                if not raw.strip():
                    continue
                try:
                    event = orjson.loads(raw)
                    kind = event["type"]
                    if not isinstance(kind, str) or not kind.startswith(TYPE_PREFIXES):
                        raise ValueError(kind)
                    topic = topic_for(settings, event)
                    key = key_for(event) if kind == "target.set" else None
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    summary["refused"] += 1
                    print(
                        f"publish: line {number}: no contract event type; not sent", file=sys.stderr
                    )
                    continue
                pending.append(await producer.send(topic, raw, key=key))
                if len(pending) >= 5000:
                    await _settle(pending, summary)
                summary["sent"] += 1
                summary[f"type:{kind}"] += 1
                if rate > 0:
                    ahead = summary["sent"] / rate - (time.monotonic() - started)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
                if summary["sent"] % 10_000 == 0:
                    elapsed = time.monotonic() - started
                    print(
                        f"publish: {summary['sent']} sent ({summary['sent'] / elapsed:,.0f}/s)",
                        file=sys.stderr,
                    )
        await producer.flush()
        await _settle(pending, summary)
    finally:
        await producer.stop()
    return summary


def run_publish(settings: Settings, path: Path, rate: float = 0.0) -> int:
    if not path.is_file():
        print(f"publish: no such file {path}", file=sys.stderr)
        return 2
    summary = asyncio.run(publish_file(settings, path, rate))
    types = ", ".join(f"{k[5:]} {v}" for k, v in sorted(summary.items()) if k.startswith("type:"))
    acknowledged = summary["sent"] - summary["failed"]
    print(
        f"publish: sent {acknowledged} acknowledged by Kafka ({types}); "
        f"failed {summary['failed']}; refused {summary['refused']}",
        file=sys.stderr,
    )
    return 1 if summary["refused"] or summary["failed"] else 0
