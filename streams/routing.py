"""Route validated events by rep: the Kafka-compatible partitioner and the micro-batch wire format."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import NamedTuple

import orjson
from aiokafka.partitioner import murmur2


@lru_cache(maxsize=262_144)
def partition_for(rep_id: str, partitions: int) -> int:
    """The partition of `rep_id`, as Kafka's default partitioner (and so Faust's router) picks it."""
    return (murmur2(rep_id.encode()) & 0x7FFFFFFF) % partitions


class Routed(NamedTuple):
    """One event inside a routed micro-batch: its original bytes and where it came from."""

    raw: bytes
    topic: str
    partition: int
    offset: int


def encode_batch(items: list[Routed]) -> bytes:
    """One Kafka message carrying many events of reps that share a partition."""
    return orjson.dumps(
        [[item.raw.decode("utf-8"), item.topic, item.partition, item.offset] for item in items]
    )


def decode_batch(value: bytes) -> Iterator[Routed]:
    for raw, topic, partition, offset in orjson.loads(value):
        # tuple.__new__ skips the NamedTuple constructor's Python-level cost (hot path).
        yield tuple.__new__(Routed, (raw.encode("utf-8"), topic, partition, offset))
