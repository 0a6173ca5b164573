"""The ``faust.stores`` backend ``redis://``: Faust's table store API over the write-back cache,
flushed to and loaded from Redis.

``redis://[[user]:password@]host:port/db`` (``rediss://`` or ``?ssl=true`` for TLS,
``?cluster=true`` for Redis Cluster) selects this store through the ``faust.stores`` entry point
``redis = "streams.store.faust_store:RedisStore"``.

Design:

* The whole state of every partition this worker owns lives in memory (``cache.WriteBackCache``).
  Faust's store API is synchronous and runs on the event loop, so every read and write
  (``table[k]``, ``get_in``/``set_in``...) is served from memory, never from the network.
* Writes mark keys dirty; :meth:`RedisStore.flush` writes, per partition, ONE atomic script
  holding the dirty keys (``HSET``), the deleted keys (``HDEL``), the partition's persisted
  offsets and a new version (``redis_io.write_snapshot``).  Data and offsets in Redis therefore
  always agree, whatever the moment of a crash.  A background task flushes every
  ``flush_interval`` seconds; stopping the store flushes too.
* Redis forgetting writes (restarted from an older snapshot, a failover to a lagging replica,
  emptied) is detected: the script writes only if Redis still holds the version this store
  wrote last, and a background check compares the versions of idle partitions every
  ``verify_interval`` seconds.  On a mismatch the store rewrites the partition whole from memory
  (which is the partition's exact state at its offsets), logs it and counts it (``rollbacks``).
* Keys: ``kpi:{<app_id>:<table>:<partition>}:data``, ``...:offsets`` and ``...:meta`` (hashes,
  ``keys``); the hash tag keeps a partition's keys in one Redis Cluster slot, as a script needs.
* A rebalance loads newly owned partitions from Redis (``HSCAN``, 5000 a batch) and flushes then
  drops revoked ones.  The revoke-time flush also runs from ``app.on_partitions_revoked``, which
  Faust sends before the consumer rejoins the group, so the next owner reads the final state.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from faust.exceptions import ImproperlyConfigured
from faust.stores.base import SerializedStore
from faust.streams import current_event
from faust.types import TP, AppT, CollectionT, EventT
from mode import Service
from yarl import URL

from streams.store import keys, redis_io
from streams.store.cache import WriteBackCache
from streams.store.errors import (
    PartitionNotLoadedError,
    RedisStoreConnectionError,
    RedisStoreError,
)
from streams.store.redis_io import REDIS_ERRORS, PartitionLoad
from streams.store.url import parse_store_url
from streams.store.writer import PartitionWriter, StoreHealth

__all__ = ["DEFAULT_FLUSH_INTERVAL", "RedisStore"]

log = logging.getLogger(__name__)

DEFAULT_FLUSH_INTERVAL = 1.0
DEFAULT_HSCAN_COUNT = 5000
DEFAULT_HSET_CHUNK = 1000  # fields per HSET command inside the write script
DEFAULT_VERIFY_INTERVAL = 5.0
LOAD_ATTEMPTS = 3
REVOKE_FLUSH_ATTEMPTS = 3


class RedisStore(SerializedStore):
    """Faust store: per-partition in-memory state, written back to Redis (see module docs).

    Options (``app.Table(..., options={...})``; most also as URL query parameters):
    ``flush_interval`` (s, default 1.0), ``key_prefix`` ("kpi"), ``hscan_count`` (5000),
    ``hset_chunk`` (1000), ``verify_interval`` (s, 5.0: how often the versions of partitions
    with nothing to write are checked), ``source_topics`` (extra topics whose partitions count as this
    table's partitions on rebalance, besides its changelog topic), ``username``/``password``
    (so the password need not be in the URL that Faust prints in its banner).
    """

    recovery_stats: dict[str, float]
    partition_stats: dict[int, PartitionLoad]

    def __init__(
        self,
        url: str | URL,
        app: AppT,
        table: CollectionT,
        *,
        options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(url, app, table, options=options, **kwargs)
        # Copy: never mutate the table's options (Faust builds more than one store from them).
        opts: dict[str, Any] = dict(options or {})
        self.config = parse_store_url(self.url)
        if getattr(table, "is_global", False) or getattr(table, "use_partitioner", False):
            raise ImproperlyConfigured(
                f"RedisStore does not support global or use_partitioner tables "
                f"(table {self.table_name!r}): their writes do not follow the event's "
                f"partition. Give that table store='memory://'."
            )
        interval = opts.get("flush_interval", self.config.flush_interval)
        self.flush_interval = float(interval if interval is not None else DEFAULT_FLUSH_INTERVAL)
        if self.flush_interval <= 0:
            raise ValueError("flush_interval must be > 0")
        self.key_prefix = str(opts.get("key_prefix") or self.config.key_prefix or keys.DEFAULT_KEY_PREFIX)
        self.hscan_count = int(opts.get("hscan_count", DEFAULT_HSCAN_COUNT))
        self.hset_chunk = max(1, int(opts.get("hset_chunk", DEFAULT_HSET_CHUNK)))
        self.verify_interval = float(opts.get("verify_interval", DEFAULT_VERIFY_INTERVAL))
        self.source_topics = frozenset(str(t) for t in opts.get("source_topics", ()))
        self._client_kwargs: dict[str, Any] = {}
        for name in ("username", "password"):
            if opts.get(name):
                self._client_kwargs[name] = str(opts[name])

        # The writer id makes this instance's versions its own (see cache.next_version).
        self.cache = WriteBackCache(self.table_name, writer=secrets.token_hex(4))
        self._client: Any = None
        self.health = StoreHealth()
        self.writer = PartitionWriter(
            self.cache, self._keys, self.health, self.table_name, self.config.safe_url, self.hset_chunk
        )
        self._rebalance_lock = asyncio.Lock()
        self._signal_connected = False
        self._skipped_partitions: set[int] = set()

        self.recovery_stats = {"partitions": 0, "keys": 0, "offsets": 0, "seconds": 0.0}
        self.partition_stats = {}

    # ------------------------------------------------------------------ naming

    @property
    def app_id(self) -> str:
        return str(self.app.conf.id)

    def data_key(self, partition: int) -> str:
        return keys.data_key(self.app_id, self.table_name, partition, self.key_prefix)

    def offsets_key(self, partition: int) -> str:
        return keys.offsets_key(self.app_id, self.table_name, partition, self.key_prefix)

    def meta_key(self, partition: int) -> str:
        return keys.meta_key(self.app_id, self.table_name, partition, self.key_prefix)

    def _keys(self, partition: int) -> tuple[str, str, str]:
        return self.data_key(partition), self.offsets_key(partition), self.meta_key(partition)

    def _repr_info(self) -> str:
        return f"table_name={self.table_name} url={self.config.safe_url}"

    @property
    def label(self) -> str:
        return f"{type(self).__name__}: {self.config.safe_url}"

    # ------------------------------------------------------------------ connection

    async def connect(self) -> None:
        """Create the client and PING; idempotent.  Raises :class:`RedisStoreConnectionError`."""
        if self._client is not None:
            return
        client = redis_io.new_client(self.config, self._client_kwargs)
        try:
            await client.ping()
        except Exception as exc:
            await redis_io.close_client(client)
            self.health.failed(exc)
            raise RedisStoreConnectionError(
                f"RedisStore for table {self.table_name!r} cannot reach Redis at "
                f"{self.config.safe_url}: {type(exc).__name__}: {exc}"
            ) from exc
        self._client = client
        self.writer.bind(client)
        self.health.ok()

    async def close(self) -> None:
        """Close the client (does not flush; see :meth:`on_stop`)."""
        client, self._client = self._client, None
        self.writer.bind(None)
        if client is not None:
            await redis_io.close_client(client)

    def _require_client(self) -> Any:
        if self._client is None:
            raise RedisStoreError(
                f"RedisStore for table {self.table_name!r} is not connected "
                f"({self.config.safe_url}); start the store (or call connect()) first"
            )
        return self._client

    async def shared_max(self, name: str, value: int | None) -> int | None:
        """Raise the app-wide maximum `name` to `value` (if given) and return the maximum over
        every worker of this app (see ``redis_io.shared_max``)."""
        client = self._require_client()
        key = keys.shared_max_key(self.app_id, self.key_prefix)
        return await redis_io.shared_max(client, key, name, value)

    # ------------------------------------------------------------------ service lifecycle

    async def on_start(self) -> None:
        await self.connect()
        if not self._signal_connected:
            self.app.on_partitions_revoked.connect(self._revoked_handler())
            self._signal_connected = True

    async def on_stop(self) -> None:
        if self._signal_connected:
            self.app.on_partitions_revoked.disconnect(self._revoked_handler())
            self._signal_connected = False
        if self._client is not None:
            try:
                await self.flush()
            except RedisStoreError as exc:
                log.error("RedisStore %s: final flush on stop failed: %s", self.table_name, exc)
        await self.close()

    @Service.task
    async def _periodic_flush(self) -> None:
        last_verify = time.monotonic()
        while not self.should_stop:
            await self.sleep(self.flush_interval)
            if self.should_stop:
                break
            if self._client is not None and time.monotonic() - last_verify >= self.verify_interval:
                last_verify = time.monotonic()
                try:
                    await self.verify()
                except RedisStoreError:
                    pass  # unreachable: the flushes report it
            if self._client is None or not self.has_dirty():
                continue
            was_healthy = self.healthy
            try:
                await self.flush()
            except RedisStoreError as exc:
                if was_healthy:
                    log.warning("RedisStore %s: background flush failed: %s", self.table_name, exc)
            except Exception as exc:  # never let a flush bug crash the whole worker silently
                self.health.failed(exc)
                log.exception("RedisStore %s: background flush crashed", self.table_name)

    def _revoked_handler(self) -> Any:
        # mode's SignalHandlerT (mypy_extensions NamedArg) rejects any concrete signature.
        return self._on_app_partitions_revoked

    async def _on_app_partitions_revoked(
        self, sender: Any, *args: Any, signal: Any = None, **kwargs: Any
    ) -> None:
        """Flush revoked partitions before the consumer rejoins (new owners load after this)."""
        revoked: Iterable[TP] = args[0] if args else kwargs.get("revoked", ())
        partitions = self._partitions_for(revoked, exclude_standbys=False) & self.cache.partitions()
        if not partitions or self._client is None:
            return
        try:
            await self.flush(partitions)
        except RedisStoreError as exc:
            log.error("RedisStore %s: flush on revoke failed: %s", self.table_name, exc)

    # ------------------------------------------------------------------ partition resolution

    def _relevant_topics(self) -> set[str]:
        topics = set(self.source_topics)
        try:
            changelog = self.table.changelog_topic
            topics.update(changelog.topics)
        except Exception:  # pragma: no cover - table without a changelog topic
            pass
        return topics

    def _standby_tps(self) -> set[TP]:
        try:
            return set(self.app.assignor.assigned_standbys())
        except Exception:  # no assignment yet (tests, client-only apps)
            return set()

    def _partitions_for(self, tps: Iterable[TP], *, exclude_standbys: bool) -> set[int]:
        """Partitions of ``tps`` that belong to this table (changelog/source topics, actives)."""
        topics = self._relevant_topics()
        standbys = self._standby_tps() if exclude_standbys else set()
        return {tp.partition for tp in tps if tp.topic in topics and tp not in standbys}

    def _event_partition(self) -> int | None:
        event = current_event()
        if event is None:
            return None
        return int(event.message.partition)

    def _write_partition(self, what: str) -> int:
        partition = self._event_partition()
        if partition is None:
            raise RuntimeError(
                f"RedisStore {self.table_name!r}: cannot {what} outside of a stream event "
                f"(the partition comes from faust.current_event()); use set_in/delete_in"
            )
        if not self.cache.holds(partition):
            raise PartitionNotLoadedError(self.cache.not_loaded_message(partition))
        return partition

    # ------------------------------------------------------------------ explicit partition API

    def partitions(self) -> set[int]:
        """Partitions currently held in memory."""
        return self.cache.partitions()

    def get_in(self, partition: int, key: bytes) -> bytes | None:
        return self.cache.get_in(partition, key)

    def set_in(self, partition: int, key: bytes, value: bytes) -> None:
        self.cache.set_in(partition, key, value)

    def delete_in(self, partition: int, key: bytes) -> None:
        self.cache.delete_in(partition, key)

    def items_in(self, partition: int) -> Iterator[tuple[bytes, bytes]]:
        """Iterate a snapshot of the partition's items (safe against concurrent writes)."""
        return self.cache.items_in(partition)

    def size_in(self, partition: int) -> int:
        return self.cache.size_in(partition)

    def has_dirty(self, partitions: Iterable[int] | None = None) -> bool:
        return self.cache.has_dirty(partitions)

    def dirty_count(self, partition: int | None = None) -> int:
        """Pending writes (keys set + keys deleted), for one partition or all."""
        return self.cache.dirty_count(partition)

    # ------------------------------------------------------------------ Faust sync store API

    def _get(self, key: bytes) -> bytes | None:
        return self.cache.get(key, self._event_partition())

    def _set(self, key: bytes, value: bytes | None) -> None:
        partition = self._write_partition("write a key")
        if value is None:  # Redis hashes cannot hold None: same as a delete
            self.cache.delete_in(partition, key)
        else:
            self.cache.set_in(partition, key, value)

    def _del(self, key: bytes) -> None:
        # Outside an event (e.g. Faust's window cleanup timer): deleted wherever the key is.
        self.cache.delete(key, self._event_partition())

    def _contains(self, key: bytes) -> bool:
        return self.cache.contains(key, self._event_partition())

    def _iterkeys(self) -> Iterator[bytes]:
        return self.cache.keys()

    def _itervalues(self) -> Iterator[bytes | None]:
        return self.cache.values()

    def _iteritems(self) -> Iterator[tuple[bytes, bytes]]:
        return self.cache.items()

    def _size(self) -> int:
        return self.cache.size()

    def _clear(self) -> None:
        """Delete every key of every held partition (written to Redis at the next flush)."""
        self.cache.clear()

    # ------------------------------------------------------------------ bookkeeping

    def meta(self, partition: int) -> dict[str, str]:
        """The partition's bookkeeping fields, as loaded or last set (empty when not held)."""
        return self.cache.meta(partition)

    def set_meta(self, partition: int, name: str, value: str | None) -> bool:
        """Stage a bookkeeping field (None removes it), written with the partition's next flush."""
        return self.cache.set_meta(partition, name, value)

    def reset_partition(self, partition: int, offsets: Mapping[TP, int]) -> None:
        """Empty a held partition and give it ``offsets``; the next flush rewrites it whole."""
        self.cache.reset(partition, {keys.offset_field(tp): int(o) for tp, o in offsets.items()})

    # ------------------------------------------------------------------ offsets

    def persisted_offset(self, tp: TP) -> int | None:
        """Offset last set for ``tp`` or loaded from Redis; None when unknown / not held."""
        return self.cache.offset(tp.partition, keys.offset_field(tp))

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        """Record ``offset`` for ``tp``; written with the partition's data at the next flush."""
        if not self.cache.set_offset(tp.partition, keys.offset_field(tp), offset):
            # E.g. a changelog ack arriving after the partition was revoked: the data was
            # flushed at revoke with the older offset, so recovery just replays a bit more.
            log.warning(
                "RedisStore %s: offset %s for %s dropped, partition %s is not held",
                self.table_name,
                offset,
                tp,
                tp.partition,
            )

    # ------------------------------------------------------------------ changelog recovery

    def apply_changelog_batch(
        self,
        batch: Iterable[EventT],
        to_key: Callable[[Any], Any],
        to_value: Callable[[Any], Any],
    ) -> None:
        """Apply raw changelog events to held partitions (dirty); set their offsets."""
        tp_offsets: dict[TP, int] = {}
        for event in batch:
            message = event.message
            partition = message.partition
            if not self.cache.holds(partition):
                # Standby or foreign partition: Redis (owned by the active) is the durable copy.
                if partition not in self._skipped_partitions:
                    self._skipped_partitions.add(partition)
                    log.info(
                        "RedisStore %s: ignoring changelog events of partition %s (not held)",
                        self.table_name,
                        partition,
                    )
                continue
            key = message.key
            if key is None:
                raise TypeError(f"Changelog entry is missing key: {message}")
            if message.value is None:
                self.cache.delete_in(partition, key)
            else:
                self.cache.set_in(partition, key, message.value)
            tp = message.tp
            previous = tp_offsets.get(tp)
            if previous is None or message.offset > previous:
                tp_offsets[tp] = message.offset
        for tp, offset in tp_offsets.items():
            self.set_persisted_offset(tp, offset)

    # ------------------------------------------------------------------ flush

    async def flush(self, partitions: Iterable[int] | None = None) -> int:
        """Write dirty state: one atomic script per partition.  Returns the keys written.

        ``partitions`` None means all held partitions; partitions not held are ignored.
        On a Redis error raises :class:`RedisStoreFlushError` and keeps the partition's dirty
        keys and offsets for the next attempt (partitions flushed before it stay flushed).
        A partition Redis lost writes of is rewritten whole (see ``writer``).
        """
        self._require_client()
        return await self.writer.flush(partitions)

    async def verify(self, partitions: Iterable[int] | None = None) -> set[int]:
        """Rewrite whole the held partitions whose version in Redis is not the one this store
        wrote last (the periodic check of idle partitions); returns them."""
        self._require_client()
        return await self.writer.verify(partitions)

    def record_lost_writes(self, partition: int, evidence: str, action: str) -> None:
        """Log and count (``rollbacks``) that Redis lost writes of ``partition``."""
        self.writer.record_lost_writes(partition, evidence, action)

    @property
    def rollbacks(self) -> int:
        """Times Redis was found without writes it had acknowledged."""
        return self.writer.rollbacks

    @property
    def last_rollback(self) -> dict[str, Any] | None:
        return self.writer.last_rollback

    @property
    def repairing(self) -> set[int]:
        """Partitions being rewritten whole from memory right now."""
        return set(self.writer.repairing)

    @property
    def healthy(self) -> bool:
        """Whether the last Redis call succeeded."""
        return self.health.healthy

    @property
    def last_error(self) -> str | None:
        return self.health.last_error

    # ------------------------------------------------------------------ load / release

    async def load_partition(self, partition: int) -> PartitionLoad:
        """Load a partition's data and offsets from Redis (no-op when already held)."""
        async with self._rebalance_lock:
            return await self._load_partition_locked(partition)

    async def release_partition(self, partition: int, *, drop_on_error: bool = True) -> bool:
        """Flush then drop a partition from memory.  Returns whether the flush succeeded.

        With ``drop_on_error`` (the rebalance default) the partition is dropped even when the
        flush keeps failing: another worker owns it now; what Redis holds is consistent with
        its stored offsets, so changelog replay restores the rest.
        """
        async with self._rebalance_lock:
            return await self._release_partition_locked(partition, drop_on_error=drop_on_error)

    async def _load_partition_locked(self, partition: int) -> PartitionLoad:
        if self.cache.holds(partition):
            return self.partition_stats.get(
                partition, PartitionLoad(partition, self.cache.size_in(partition), 0, 0.0, 0)
            )
        client = self._require_client()
        last_exc: BaseException | None = None
        for attempt in range(LOAD_ATTEMPTS):
            try:
                loaded = await redis_io.read_partition(
                    client, partition, self._keys(partition), self.hscan_count
                )
            except REDIS_ERRORS as exc:
                last_exc = exc
                self.health.failed(exc)
                await asyncio.sleep(0.5 * (attempt + 1))
                continue
            stats = loaded.stats
            self.cache.hold(partition, loaded.data, loaded.offsets, loaded.version, loaded.meta)
            self._skipped_partitions.discard(partition)
            self.partition_stats[partition] = stats
            self.health.ok()
            log.info(
                "RedisStore %s: loaded partition %s: %s keys, %s offsets, version %s in %.3fs",
                self.table_name,
                partition,
                stats.keys,
                stats.offsets,
                loaded.version or "none",
                stats.seconds,
            )
            return stats
        raise RedisStoreConnectionError(
            f"RedisStore {self.table_name!r}: cannot load partition {partition} from "
            f"{self.config.safe_url}: {type(last_exc).__name__}: {last_exc}"
        ) from last_exc

    async def _release_partition_locked(self, partition: int, *, drop_on_error: bool) -> bool:
        if not self.cache.holds(partition):
            return True
        async with self.writer.lock:  # no flush of this partition in flight while dropping it
            flushed = True
            if self.has_dirty([partition]):
                last_exc: RedisStoreError | None = None
                for attempt in range(REVOKE_FLUSH_ATTEMPTS):
                    try:
                        self._require_client()
                        await self.writer.flush_locked(partition)
                        last_exc = None
                        break
                    except RedisStoreError as exc:
                        last_exc = exc
                        if self._client is None:
                            break
                        await asyncio.sleep(0.2 * (attempt + 1))
                if last_exc is not None:
                    flushed = False
                    if not drop_on_error:
                        raise last_exc
                    log.error(
                        "RedisStore %s: dropping partition %s with %s unflushed keys: %s",
                        self.table_name,
                        partition,
                        self.dirty_count(partition),
                        last_exc,
                    )
            self._drop(partition)
            return flushed

    def _drop(self, partition: int) -> None:
        self.cache.drop(partition)
        self.partition_stats.pop(partition, None)

    # ------------------------------------------------------------------ Faust rebalance hooks

    async def on_rebalance(
        self,
        assigned: set[TP],
        revoked: set[TP],
        newly_assigned: set[TP],
        generation_id: int = 0,
    ) -> None:
        """Hold exactly the active partitions of ``assigned`` that belong to this table.

        Revoked/no-longer-assigned partitions are flushed then dropped; newly held ones are
        loaded from Redis.  Faust calls this (via ``Table.on_rebalance``) before its recovery
        asks ``persisted_offset`` for the changelog partitions.
        """
        assigned, revoked, newly_assigned, generation_id = _normalise_rebalance_args(
            assigned, revoked, newly_assigned, generation_id
        )
        async with self._rebalance_lock:
            wanted = self._partitions_for(assigned, exclude_standbys=True)
            held = self.cache.partitions()
            for partition in sorted(held - wanted):
                await self._release_partition_locked(partition, drop_on_error=True)
            started = time.perf_counter()
            loads: list[PartitionLoad] = []
            for partition in sorted(wanted - held):
                if generation_id and generation_id != _current_generation(self.app, generation_id):
                    log.info(
                        "RedisStore %s: rebalancing again (generation %s), stop loading",
                        self.table_name,
                        generation_id,
                    )
                    break
                loads.append(await self._load_partition_locked(partition))
            if loads:
                self.recovery_stats = {
                    "partitions": len(loads),
                    "keys": sum(s.keys for s in loads),
                    "offsets": sum(s.offsets for s in loads),
                    "seconds": time.perf_counter() - started,
                }

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        """Persist what changelog recovery applied, so Redis is current before processing."""
        if self._client is not None and self.has_dirty():
            try:
                await self.flush()
            except RedisStoreError as exc:
                log.warning("RedisStore %s: flush after recovery failed: %s", self.table_name, exc)

    async def need_active_standby_for(self, tp: TP) -> bool:
        return True

    def reset_state(self) -> None:
        """Forget the local (in-memory) state only; Redis is untouched.

        Unflushed writes are discarded: their offsets were not flushed either, so changelog
        recovery replays them.  Partitions must be loaded again (rebalance / load_partition).
        """
        for partition in self.cache.partitions():
            self._drop(partition)

    async def backup_partition(
        self, tp: TP | int, flush: bool = True, purge: bool = False, keep: int = 1
    ) -> None:
        """Redis is the durable copy: a backup is a flush of that partition."""
        partition = tp.partition if isinstance(tp, TP) else int(tp)
        if flush and self._client is not None:
            await self.flush([partition])

    def restore_backup(self, tp: TP | int, latest: bool = True, backup_id: int = 0) -> None:
        raise NotImplementedError(
            "RedisStore keeps no backups: Redis is the durable copy (use load_partition)"
        )


def _normalise_rebalance_args(
    assigned: Any, revoked: Any, newly_assigned: Any, generation_id: Any
) -> tuple[set[TP], set[TP], set[TP], int]:
    # faust's ChangeloggedObjectManager.on_rebalance takes a leading `table` argument and
    # forwards it as `assigned`; accept that shifted form too.
    if hasattr(assigned, "changelog_topic"):  # a table, not a set of TPs
        assigned, revoked, newly_assigned = revoked, newly_assigned, generation_id
        generation_id = 0
    gen = generation_id if isinstance(generation_id, int) else 0
    return set(assigned or ()), set(revoked or ()), set(newly_assigned or ()), gen


def _current_generation(app: AppT, default: int) -> int:
    value = getattr(app, "consumer_generation_id", default)
    return value if isinstance(value, int) else default
