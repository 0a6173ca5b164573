"""The store's Redis I/O: the client, a partition's flush as one atomic script checking the
partition's version, its load by HSCAN, and the app-wide maxima register."""

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
    "WriteResult",
    "close_client",
    "new_client",
    "read_partition",
    "read_versions",
    "shared_max",
    "write_script",
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
    """A partition's state, offsets, version and bookkeeping as read from Redis."""

    data: dict[bytes, bytes]
    offsets: dict[str, int]
    version: str
    meta: dict[str, str]
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


# One partition's flush, atomic: unless it rewrites the partition whole, it writes nothing when
# Redis no longer holds the version this worker wrote last (Redis restarted from an older
# snapshot, a failover to a lagging replica, FLUSHALL...), and says which version it found.
# KEYS: data, offsets, meta. ARGV: expected version ("" = none), new version, "1" for a full
# rewrite, fields per HSET, then the counts of values, removed keys, offsets and meta fields,
# then those: values and offsets and meta as field, value pairs.
WRITE_PARTITION = """
local found = redis.call('HGET', KEYS[3], 'version') or ''
local full = ARGV[3] == '1'
if not full and found ~= ARGV[1] then
  return {0, found}
end
if full then
  redis.call('DEL', KEYS[1], KEYS[2])
end
redis.call('DEL', KEYS[3])
local chunk = tonumber(ARGV[4])
local counts = {tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])}
local at = 9
local function put(key, pairs)
  local done = 0
  while done < pairs do
    local n = math.min(pairs - done, chunk)
    redis.call('HSET', key, unpack(ARGV, at, at + 2 * n - 1))
    at = at + 2 * n
    done = done + n
  end
end
put(KEYS[1], counts[1])
local done = 0
while done < counts[2] do
  local n = math.min(counts[2] - done, 2 * chunk)
  redis.call('HDEL', KEYS[1], unpack(ARGV, at, at + n - 1))
  at = at + n
  done = done + n
end
put(KEYS[2], counts[3])
put(KEYS[3], counts[4])
redis.call('HSET', KEYS[3], 'version', ARGV[2])
return {1, found}
"""
# Fields per HSET inside the script: Lua's unpack() takes a few thousand values at most.
MAX_SCRIPT_CHUNK = 2000


@dataclass(frozen=True)
class WriteResult:
    """Whether a partition's write went in, and the version Redis held before it."""

    written: bool
    found: str


def write_script(client: Any) -> Any:
    """The WRITE_PARTITION script bound to ``client`` (sent by its SHA, loaded when missing)."""
    return client.register_script(WRITE_PARTITION)


async def write_snapshot(
    script: Any, keys: tuple[str, str, str], snapshot: FlushSnapshot, chunk: int
) -> WriteResult:
    """Write a partition's pending writes, its offsets, bookkeeping and new version in one
    atomic script (``chunk`` fields per ``HSET``/``HDEL``), so data and offsets in Redis always
    agree; an incremental write only if Redis holds ``snapshot.expected`` (see WRITE_PARTITION)."""
    chunk = max(1, min(chunk, MAX_SCRIPT_CHUNK))
    args: list[Any] = [
        snapshot.expected,
        snapshot.version,
        "1" if snapshot.full else "0",
        chunk,
        len(snapshot.values),
        len(snapshot.removed),
        len(snapshot.offsets),
        len(snapshot.meta),
    ]
    for key, value in snapshot.values:
        args += (key, value)
    args += snapshot.removed
    for name, offset in snapshot.offsets.items():
        args += (name, offset)
    for name, text in snapshot.meta.items():
        args += (name, text)
    written, found = await script(keys=list(keys), args=args)
    return WriteResult(bool(written), _text(found))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def read_partition(
    client: Any, partition: int, keys: tuple[str, str, str], hscan_count: int
) -> LoadedPartition:
    """A partition's data (``HSCAN``, ``hscan_count`` a batch), offsets, version and bookkeeping."""
    data_key, offsets_key, meta_key = keys
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
    offsets = {_text(name): int(value) for name, value in raw_offsets.items()}
    meta = {_text(name): _text(value) for name, value in (await client.hgetall(meta_key)).items()}
    version = meta.pop("version", "")
    seconds = time.perf_counter() - started
    stats = PartitionLoad(partition, len(data), len(offsets), seconds, batches)
    return LoadedPartition(data, offsets, version, meta, stats)


async def read_versions(client: Any, meta_keys: list[str]) -> list[str]:
    """The version each partition's bookkeeping hash holds ("" for none), in one round trip."""
    pipe = client.pipeline(transaction=False)
    for key in meta_keys:
        pipe.hget(key, "version")
    return ["" if value is None else _text(value) for value in await pipe.execute()]


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
