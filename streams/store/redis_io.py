"""The store's Redis I/O: the client, a partition's flush as one MULTI/EXEC, its load by HSCAN,
and the app-wide maxima register."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from streams.store.cache import FlushSnapshot
from streams.store.url import RedisURLConfig

__all__ = [
    "REDIS_ERRORS",
    "LoadedPartition",
    "PartitionLoad",
    "close_client",
    "new_client",
    "read_partition",
    "shared_max",
    "write_snapshot",
]

log = logging.getLogger(__name__)

DEFAULT_SOCKET_TIMEOUT = 10.0
DEFAULT_CONNECT_TIMEOUT = 5.0

# What a Redis call raises when the server is unreachable, refuses or times out.
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, asyncio.TimeoutError)


@dataclass(frozen=True)
class PartitionLoad:
    """What loading one partition from Redis took."""

    partition: int
    keys: int
    offsets: int
    seconds: float
    batches: int


@dataclass(frozen=True)
class LoadedPartition:
    """A partition's state and offsets as read from Redis."""

    data: dict[bytes, bytes]
    offsets: dict[str, int]
    stats: PartitionLoad


def new_client(config: RedisURLConfig, extra: Mapping[str, Any]) -> Any:
    """A bytes client (cluster or not) for the store URL; ``extra`` adds username/password."""
    kwargs: dict[str, Any] = {
        "socket_timeout": DEFAULT_SOCKET_TIMEOUT,
        "socket_connect_timeout": DEFAULT_CONNECT_TIMEOUT,
        **extra,
        "decode_responses": False,
    }
    if config.cluster:
        return RedisCluster.from_url(config.redis_url, **kwargs)
    return aioredis.Redis.from_url(config.redis_url, **kwargs)


async def close_client(client: Any) -> None:
    try:
        await client.aclose()
    except Exception:  # pragma: no cover - closing a broken client
        log.debug("RedisStore: error closing client", exc_info=True)


async def write_snapshot(
    client: Any, data_key: str, offsets_key: str, snapshot: FlushSnapshot, chunk: int
) -> None:
    """Write a partition's pending writes and its offsets in ONE ``MULTI``/``EXEC`` (``chunk``
    fields per ``HSET``/``HDEL``), so data and offsets in Redis always agree."""
    values = snapshot.values
    removed = snapshot.removed
    async with client.pipeline(transaction=True) as pipe:
        for i in range(0, len(values), chunk):
            pipe.hset(data_key, mapping=dict(values[i : i + chunk]))
        for i in range(0, len(removed), chunk):
            pipe.hdel(data_key, *removed[i : i + chunk])
        if snapshot.offsets:
            pipe.hset(offsets_key, mapping=snapshot.offsets)
        await pipe.execute()


async def read_partition(
    client: Any, partition: int, data_key: str, offsets_key: str, hscan_count: int
) -> LoadedPartition:
    """A partition's data (``HSCAN``, ``hscan_count`` a batch) and offsets."""
    started = time.perf_counter()
    data: dict[bytes, bytes] = {}
    cursor = 0
    batches = 0
    while True:
        cursor, batch = await client.hscan(data_key, cursor, count=hscan_count)
        data.update(batch)
        batches += 1
        if not cursor:
            break
    raw_offsets = await client.hgetall(offsets_key)
    offsets: dict[str, int] = {}
    for name, value in raw_offsets.items():
        field_name = name.decode() if isinstance(name, bytes) else str(name)
        offsets[field_name] = int(value)
    seconds = time.perf_counter() - started
    return LoadedPartition(data, offsets, PartitionLoad(partition, len(data), len(offsets), seconds, batches))


async def shared_max(client: Any, key: str, name: str, value: int | None) -> int | None:
    """Raise the app-wide maximum ``name`` to ``value`` (if given) and return the maximum over
    every worker of the app (a sorted-set member updated with ZADD GT, so it only grows)."""
    pipe = client.pipeline(transaction=False)
    if value is not None:
        pipe.zadd(key, {name: value}, gt=True)
    pipe.zscore(key, name)
    result = await pipe.execute()
    score = result[-1]
    return None if score is None else int(score)
