"""Shared pieces of the benchmarks: progress output, run-unique names, the fast Kafka producer, and
figures of the state store in Redis. Worker processes, deployments and their cleanup are
`kpi_testkit`'s (shared with the integration tests); paced live traffic is `benchmarks.paced`,
machine facts `benchmarks.machine`, statistics and tables `benchmarks.tables`."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson

from kpi_rules.vocabulary import TOPIC_OF

# Event family ("deal" of "deal.won") -> contract topic suffix.
TOPICS: dict[str, str] = {kind.split(".")[0]: topic.value for kind, topic in TOPIC_OF.items()}
TABLE_NAME = "kpi_state"  # streams.app.TABLE_NAME (not imported: that pulls in Faust)
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def say(message: str) -> None:
    """Progress to stderr (RESULTS.md gets the figures)."""
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def unique_name(kind: str, token: str) -> str:
    """An app id / topic prefix unique to this run and section (Kafka and Faust accept it)."""
    return f"bench-{token}-{kind}-{uuid.uuid4().hex[:4]}"


# --------------------------------------------------------------------------- Redis


class RedisProbe:
    """Read-only figures from the state store."""

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url)

    def used_memory(self) -> int:
        return int(self.client.info("memory")["used_memory"])

    def version(self) -> str:
        return str(self.client.info("server")["redis_version"])

    def data_keys(self, app_id: str, partitions: int) -> list[str]:
        from streams.store.keys import data_key

        return [data_key(app_id, TABLE_NAME, p) for p in range(partitions)]

    def state_keys(self, app_id: str, partitions: int) -> int:
        """How many state parts (store keys) the app holds in Redis: HLEN of its partition hashes."""
        pipe = self.client.pipeline(transaction=False)
        for key in self.data_keys(app_id, partitions):
            pipe.hlen(key)
        return int(sum(pipe.execute()))

    def state_bytes(self, app_id: str, partitions: int) -> int:
        """Redis' own accounting of the app's state hashes (MEMORY USAGE ... SAMPLES 0)."""
        total = 0
        for key in self.data_keys(app_id, partitions):
            total += int(self.client.memory_usage(key, samples=0) or 0)
        return total

    def part_sizes(self, app_id: str, partitions: int) -> dict[str, tuple[int, int, int]]:
        """kind of part (b|slot, b|day, ..., d, s, t, m) -> (parts, key + value bytes, items), by
        HSCAN; items are the event ids held for `s` (seen-id chunks), else the parts."""
        from kpi_core.codec import split_store_key

        out: dict[str, list[int]] = {}
        for key in self.data_keys(app_id, partitions):
            for name, value in self.client.hscan_iter(key, count=5000):
                _, part = split_store_key(name)
                tag = part.split("|", 2)
                kind = "|".join(tag[:2]) if tag[0] == "b" else tag[0]
                entry = out.setdefault(kind, [0, 0, 0])
                entry[0] += 1
                entry[1] += len(name) + len(value)
                entry[2] += len(orjson.loads(value)) if kind == "s" else 1
        return {kind: (count, size, items) for kind, (count, size, items) in sorted(out.items())}


# --------------------------------------------------------------------------- Kafka


async def end_offsets_total(bootstrap: str, topics: Iterable[str], partitions: int) -> int:
    """Messages ever written to `topics` (sum of their partitions' end offsets)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(t, p) for t in topics for p in range(partitions)])
        return int(sum(ends.values()))
    finally:
        await consumer.stop()


async def ensure_contract_topics(bootstrap: str, prefix: str, partitions: int) -> None:
    from streams.settings import Settings
    from streams.topics import ensure_topics

    await ensure_topics(Settings(kafka_bootstrap=bootstrap, topic_prefix=prefix, partitions=partitions))


def topic_of(event: dict[str, Any]) -> str:
    return TOPICS[str(event["type"]).split(".")[0]]


async def produce(bootstrap: str, prefix: str, events: list[bytes], partitions: int) -> None:
    """Produce encoded events to the contract topics of `prefix` as fast as possible (targets keyed
    for the compacted topic), creating the topics first; returns once all are acknowledged."""
    from aiokafka import AIOKafkaProducer

    from kpi_monitor.simulate import key_for

    await ensure_contract_topics(bootstrap, prefix, partitions)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    try:
        for raw in events:
            event = orjson.loads(raw)
            await producer.send(prefix + topic_of(event), raw, key=key_for(event))
        await producer.flush()
    finally:
        await producer.stop()
