"""Writing a store's pending partitions to Redis, one atomic script each, and repairing those Redis
lost writes of (restored from an older snapshot, failed over, emptied) by rewriting them whole
from memory, which holds each partition's exact state at its offsets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from streams.store import redis_io
from streams.store.cache import WriteBackCache
from streams.store.errors import RedisStoreError, RedisStoreFlushError
from streams.store.redis_io import REDIS_ERRORS

__all__ = ["PartitionWriter", "StoreHealth"]

log = logging.getLogger(__name__)


@dataclass
class StoreHealth:
    """Whether the last Redis call of the store succeeded, and else why not."""

    healthy: bool = False
    last_error: str | None = None

    def ok(self) -> None:
        self.healthy = True
        self.last_error = None

    def failed(self, exc: BaseException) -> None:
        self.healthy = False
        self.last_error = f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True, slots=True)
class _Written:
    written: bool
    keys: int
    found: str


class PartitionWriter:
    """Flushes the cache's partitions (``flush``), checks idle ones (``verify``), and counts
    every time Redis was found without writes it had acknowledged (``rollbacks``).

    ``keys(partition)`` names the partition's data, offsets and meta hashes; ``name`` and
    ``safe_url`` only appear in messages. Callers hold ``lock`` around ``flush_locked`` (the
    store also holds it while it drops a partition)."""

    def __init__(
        self,
        cache: WriteBackCache,
        keys: Callable[[int], tuple[str, str, str]],
        health: StoreHealth,
        name: str,
        safe_url: str,
        chunk: int,
    ) -> None:
        self.cache = cache
        self.keys = keys
        self.health = health
        self.name = name
        self.safe_url = safe_url
        self.chunk = chunk
        self.lock = asyncio.Lock()
        self.rollbacks = 0
        self.last_rollback: dict[str, Any] | None = None
        self.repairing: set[int] = set()  # being rewritten from memory right now
        self._client: Any = None
        self._script: Any = None

    def bind(self, client: Any) -> None:
        """Write through ``client`` from now on (None: not connected)."""
        self._client = client
        self._script = None if client is None else redis_io.write_script(client)

    def _targets(self, partitions: Iterable[int] | None) -> list[int]:
        held = self.cache.partitions()
        return sorted(held if partitions is None else set(partitions) & held)

    async def flush(self, partitions: Iterable[int] | None = None) -> int:
        """Write the pending state of ``partitions`` (None: all held); returns the keys written."""
        async with self.lock:
            total = 0
            for partition in self._targets(partitions):
                total += await self.flush_locked(partition)
            return total

    async def flush_locked(self, partition: int) -> int:
        written = await self._write(partition)
        if written is None:
            return 0
        if not written.written:  # Redis does not hold what this store wrote last
            return await self._repair(partition, written.found)
        return written.keys

    async def verify(self, partitions: Iterable[int] | None = None) -> set[int]:
        """Compare the version Redis holds for each held partition with the one this store
        wrote last; rewrite those that differ whole from memory. Returns them."""
        async with self.lock:
            targets = self._targets(partitions)
            if not targets or self._client is None:
                return set()
            try:
                found = await redis_io.read_versions(self._client, [self.keys(p)[2] for p in targets])
            except REDIS_ERRORS as exc:
                self.health.failed(exc)
                raise RedisStoreError(f"RedisStore {self.name!r}: version check failed: {exc}") from exc
            lost = {
                p: version
                for p, version in zip(targets, found, strict=True)
                if version != self.cache.version(p)
            }
            for partition, version in sorted(lost.items()):
                await self._repair(partition, version)
            return set(lost)

    def record_lost_writes(self, partition: int, evidence: str, action: str) -> None:
        """Log and count (``rollbacks``) that Redis lost writes of ``partition``."""
        self.rollbacks += 1
        self.last_rollback = {
            "partition": partition,
            "evidence": evidence,
            "action": action,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        log.warning(
            "RedisStore %s: Redis lost writes of partition %s (%s: restarted from an older "
            "snapshot, failed over to a lagging replica, or emptied); %s",
            self.name,
            partition,
            evidence,
            action,
        )

    async def _repair(self, partition: int, found: str) -> int:
        expected = self.cache.version(partition) or "none"
        self.record_lost_writes(
            partition,
            f"it holds version {found or 'none'}, this worker wrote {expected}",
            "rewriting the partition whole from memory",
        )
        self.repairing.add(partition)
        try:
            self.cache.mark_full(partition)
            repaired = await self._write(partition)
        finally:
            self.repairing.discard(partition)
        return repaired.keys if repaired is not None else 0

    async def _write(self, partition: int) -> _Written | None:
        snapshot = self.cache.snapshot(partition)
        if snapshot is None:  # released meanwhile, or nothing pending
            return None
        try:
            if self._script is None:
                raise ConnectionError("not connected")
            result = await redis_io.write_snapshot(self._script, self.keys(partition), snapshot, self.chunk)
        except REDIS_ERRORS as exc:  # ConnectionError is an OSError
            self.cache.restore(snapshot)
            self.health.failed(exc)
            raise RedisStoreFlushError(
                f"RedisStore {self.name!r}: flush of partition {partition} to {self.safe_url} failed "
                f"({type(exc).__name__}: {exc}); {snapshot.keys} pending keys kept for the next flush"
            ) from exc
        except BaseException:  # cancelled mid-flight: keep the data for a retry, re-raise
            self.cache.restore(snapshot)
            raise
        self.health.ok()
        if not result.written:
            self.cache.restore(snapshot)
            return _Written(False, 0, result.found)
        self.cache.written(snapshot)
        if snapshot.full:
            log.warning(
                "RedisStore %s: partition %s rewritten whole from memory (%s keys, version %s)",
                self.name,
                partition,
                snapshot.keys,
                snapshot.version,
            )
        return _Written(True, snapshot.keys, result.found)
