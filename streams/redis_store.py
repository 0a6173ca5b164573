"""A Faust table store kept in memory and written back to Redis in batches.

``redis://[[user]:password@]host:port/db`` (``rediss://`` or ``?ssl=true`` for TLS,
``?cluster=true`` for Redis Cluster) selects this store through the ``faust.stores`` entry point
``redis = "streams.redis_store:RedisStore"``.

Design:

* The whole state of every partition this worker owns lives in memory, ``dict[bytes, bytes]`` per
  partition.  Faust's store API is synchronous and runs on the event loop, so every read and write
  (``table[k]``, ``get_in``/``set_in``...) is served from memory, never from the network.
* Writes mark keys dirty; :meth:`RedisStore.flush` writes, per partition, ONE ``MULTI``/``EXEC``
  holding the dirty keys (``HSET``), the deleted keys (``HDEL``) and the partition's persisted
  offsets.  Data and offsets in Redis therefore always agree, whatever the moment of a crash.
  A background task flushes every ``flush_interval`` seconds; stopping the store flushes too.
* Keys: ``kpi:{<app_id>:<table>:<partition>}:data`` and ``...:offsets`` (hashes); the hash tag
  keeps a partition's two keys in one Redis Cluster slot, as a transaction needs.
* A rebalance loads newly owned partitions from Redis (``HSCAN``, 5000 a batch) and flushes then
  drops revoked ones.  The revoke-time flush also runs from ``app.on_partitions_revoked``, which
  Faust sends before the consumer rejoins the group, so the next owner reads the final state.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from faust.exceptions import ImproperlyConfigured
from faust.stores.base import SerializedStore
from faust.streams import current_event
from faust.types import TP, AppT, CollectionT, EventT
from mode import Service
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError
from yarl import URL

__all__ = [
    "DEFAULT_FLUSH_INTERVAL",
    "DEFAULT_KEY_PREFIX",
    "PartitionLoad",
    "PartitionNotLoadedError",
    "RedisStore",
    "RedisStoreConnectionError",
    "RedisStoreError",
    "RedisStoreFlushError",
    "RedisURLConfig",
    "data_key",
    "escape_key_component",
    "hash_tag",
    "key_pattern",
    "offset_field",
    "offsets_key",
    "parse_offset_field",
    "parse_store_url",
    "redact_url",
]

log = logging.getLogger(__name__)

DEFAULT_KEY_PREFIX = "kpi"
DEFAULT_FLUSH_INTERVAL = 1.0
DEFAULT_HSCAN_COUNT = 5000
DEFAULT_HSET_CHUNK = 5000  # fields per HSET/HDEL command inside one MULTI
DEFAULT_SOCKET_TIMEOUT = 10.0
DEFAULT_CONNECT_TIMEOUT = 5.0
LOAD_ATTEMPTS = 3
REVOKE_FLUSH_ATTEMPTS = 3

# Query parameters consumed by the store itself; all others go to redis-py untouched.
_STORE_PARAMS = frozenset({"cluster", "ssl", "tls", "flush_interval", "key_prefix"})
# Query parameters the store must control (it works with bytes).
_FORBIDDEN_PARAMS = frozenset({"decode_responses", "encoding", "encoding_errors"})
_TRUE = frozenset({"1", "true", "yes", "on", "y", "t"})
_FALSE = frozenset({"0", "false", "no", "off", "n", "f", ""})

_REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, asyncio.TimeoutError)


# --------------------------------------------------------------------------- errors


class RedisStoreError(Exception):
    """Base class of the errors raised by :class:`RedisStore`."""


class RedisStoreConnectionError(RedisStoreError):
    """Redis cannot be reached (message names the URL without its password)."""


class RedisStoreFlushError(RedisStoreError):
    """A flush failed; the dirty keys and offsets are kept for the next attempt."""


class PartitionNotLoadedError(RedisStoreError, KeyError):
    """A write (or a partition-scoped read) for a partition this store does not hold."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


# --------------------------------------------------------------------------- key naming (pure)


def escape_key_component(value: str) -> str:
    """Escape ``%``, ``:``, ``{`` and ``}`` so names cannot collide or break the hash tag."""
    return value.replace("%", "%25").replace(":", "%3A").replace("{", "%7B").replace("}", "%7D")


def hash_tag(app_id: str, table_name: str, partition: int) -> str:
    """The Redis Cluster hash tag content shared by one partition's keys."""
    if partition < 0:
        raise ValueError(f"partition must be >= 0, got {partition}")
    return f"{escape_key_component(app_id)}:{escape_key_component(table_name)}:{int(partition)}"


def data_key(app_id: str, table_name: str, partition: int, prefix: str = DEFAULT_KEY_PREFIX) -> str:
    """``kpi:{app:table:partition}:data``: hash of the partition's keys and values."""
    return f"{prefix}:{{{hash_tag(app_id, table_name, partition)}}}:data"


def offsets_key(app_id: str, table_name: str, partition: int, prefix: str = DEFAULT_KEY_PREFIX) -> str:
    """``kpi:{app:table:partition}:offsets``: hash ``"topic:partition" -> offset``."""
    return f"{prefix}:{{{hash_tag(app_id, table_name, partition)}}}:offsets"


def _glob_escape(value: str) -> str:
    out = []
    for ch in value:
        if ch in "*?[]\\":
            out.append("\\")
        out.append(ch)
    return "".join(out)


def key_pattern(app_id: str, table_name: str, prefix: str = DEFAULT_KEY_PREFIX) -> str:
    """SCAN ``MATCH`` pattern for every key of one table (all partitions, data and offsets)."""
    app = _glob_escape(escape_key_component(app_id))
    table = _glob_escape(escape_key_component(table_name))
    return f"{_glob_escape(prefix)}:{{{app}:{table}:*}}:*"


def offset_field(tp: TP) -> str:
    """Field of a topic partition in the offsets hash: ``"topic:partition"``."""
    return f"{tp.topic}:{int(tp.partition)}"


def parse_offset_field(value: str | bytes) -> TP:
    """Inverse of :func:`offset_field`."""
    text = value.decode() if isinstance(value, bytes) else value
    topic, sep, partition = text.rpartition(":")
    if not sep or not topic:
        raise ValueError(f"not an offset field: {text!r}")
    return TP(topic, int(partition))


# --------------------------------------------------------------------------- URL parsing (pure)


def _to_bool(name: str, value: str) -> bool:
    low = value.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"store URL parameter {name}={value!r} is not a boolean")


def redact_url(url: str | URL) -> str:
    """The URL with its password replaced by ``***`` (safe for logs and error messages)."""
    parts = urlsplit(str(url))
    if parts.password is None:
        return str(url)
    userinfo = f"{parts.username or ''}:***"
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{userinfo}@{host}" + (f":{parts.port}" if parts.port is not None else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class RedisURLConfig:
    """A store URL split into what redis-py gets and what the store itself uses."""

    redis_url: str  # passed to redis-py ``from_url`` (may contain the password: never log it)
    safe_url: str  # password hidden
    host: str
    port: int
    db: int
    username: str | None
    has_password: bool
    ssl: bool
    cluster: bool
    flush_interval: float | None
    key_prefix: str | None
    redis_params: Mapping[str, str] = field(default_factory=dict)


def parse_store_url(url: str | URL) -> RedisURLConfig:
    """Parse ``redis://`` / ``rediss://`` store URLs (see the module docstring)."""
    text = str(url)
    parts = urlsplit(text)
    safe = redact_url(text)
    scheme = parts.scheme.lower()
    if scheme not in ("redis", "rediss"):
        raise ValueError(f"RedisStore needs a redis:// or rediss:// URL, got {safe!r}")
    store_params: dict[str, str] = {}
    redis_params: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in _STORE_PARAMS:
            store_params[name] = value
        elif name in _FORBIDDEN_PARAMS:
            raise ValueError(f"store URL parameter {name!r} is managed by RedisStore: {safe!r}")
        else:
            redis_params[name] = value
    ssl = scheme == "rediss"
    for name in ("ssl", "tls"):
        if name in store_params and _to_bool(name, store_params[name]):
            ssl = True
    cluster = _to_bool("cluster", store_params["cluster"]) if "cluster" in store_params else False
    flush_interval: float | None = None
    if "flush_interval" in store_params:
        try:
            flush_interval = float(store_params["flush_interval"])
        except ValueError:
            raise ValueError(f"flush_interval must be a number of seconds: {safe!r}") from None
        if flush_interval <= 0:
            raise ValueError(f"flush_interval must be > 0: {safe!r}")
    key_prefix = store_params.get("key_prefix") or None

    path = parts.path.strip("/")
    db_text = redis_params.pop("db", None) or path or "0"
    try:
        db = int(db_text)
    except ValueError:
        raise ValueError(f"Redis db must be an integer, got {db_text!r} in {safe!r}") from None
    if db < 0:
        raise ValueError(f"Redis db must be >= 0 in {safe!r}")
    if cluster and db != 0:
        raise ValueError(f"Redis Cluster only has db 0, got db {db} in {safe!r}")
    try:
        port = parts.port or 6379
    except ValueError:
        raise ValueError(f"invalid port in {safe!r}") from None
    host = parts.hostname or "127.0.0.1"

    out_scheme = "rediss" if ssl else "redis"
    out_path = "" if cluster else f"/{db}"
    redis_url = urlunsplit(
        (out_scheme, parts.netloc or f"{host}:{port}", out_path, urlencode(redis_params), "")
    )
    return RedisURLConfig(
        redis_url=redis_url,
        safe_url=safe,
        host=host,
        port=port,
        db=db,
        username=parts.username or None,
        has_password=parts.password is not None,
        ssl=ssl,
        cluster=cluster,
        flush_interval=flush_interval,
        key_prefix=key_prefix,
        redis_params=redis_params,
    )


# --------------------------------------------------------------------------- the store


@dataclass(frozen=True)
class PartitionLoad:
    """What loading one partition from Redis took."""

    partition: int
    keys: int
    offsets: int
    seconds: float
    batches: int


class RedisStore(SerializedStore):
    """Faust store: per-partition in-memory state, written back to Redis (see module docs).

    Options (``app.Table(..., options={...})``; most also as URL query parameters):
    ``flush_interval`` (s, default 1.0), ``key_prefix`` ("kpi"), ``hscan_count`` (5000),
    ``hset_chunk`` (5000), ``source_topics`` (extra topics whose partitions count as this
    table's partitions on rebalance, besides its changelog topic), ``username``/``password``
    (so the password need not be in the URL that Faust prints in its banner).
    """

    healthy: bool
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
        self.key_prefix = str(opts.get("key_prefix") or self.config.key_prefix or DEFAULT_KEY_PREFIX)
        self.hscan_count = int(opts.get("hscan_count", DEFAULT_HSCAN_COUNT))
        self.hset_chunk = max(1, int(opts.get("hset_chunk", DEFAULT_HSET_CHUNK)))
        self.source_topics = frozenset(str(t) for t in opts.get("source_topics", ()))
        self._client_kwargs: dict[str, Any] = {}
        for name in ("username", "password"):
            if opts.get(name):
                self._client_kwargs[name] = str(opts[name])

        self._data: dict[int, dict[bytes, bytes]] = {}
        self._dirty: dict[int, set[bytes]] = {}
        self._deleted: dict[int, set[bytes]] = {}
        self._offsets: dict[int, dict[str, int]] = {}
        self._offsets_dirty: set[int] = set()
        self._client: Any = None
        self._flush_lock = asyncio.Lock()
        self._rebalance_lock = asyncio.Lock()
        self._signal_connected = False
        self._skipped_partitions: set[int] = set()

        self.healthy = False
        self.last_error: str | None = None
        self.recovery_stats = {"partitions": 0, "keys": 0, "offsets": 0, "seconds": 0.0}
        self.partition_stats = {}
        self.flush_stats: dict[str, float] = {"flushes": 0, "keys": 0, "errors": 0, "seconds": 0.0}

    # ------------------------------------------------------------------ naming

    @property
    def app_id(self) -> str:
        return str(self.app.conf.id)

    def data_key(self, partition: int) -> str:
        return data_key(self.app_id, self.table_name, partition, self.key_prefix)

    def offsets_key(self, partition: int) -> str:
        return offsets_key(self.app_id, self.table_name, partition, self.key_prefix)

    def _repr_info(self) -> str:
        return f"table_name={self.table_name} url={self.config.safe_url}"

    @property
    def label(self) -> str:
        return f"{type(self).__name__}: {self.config.safe_url}"

    # ------------------------------------------------------------------ connection

    def _new_client(self) -> Any:
        kwargs: dict[str, Any] = {
            "socket_timeout": DEFAULT_SOCKET_TIMEOUT,
            "socket_connect_timeout": DEFAULT_CONNECT_TIMEOUT,
            **self._client_kwargs,
            "decode_responses": False,
        }
        if self.config.cluster:
            return RedisCluster.from_url(self.config.redis_url, **kwargs)
        return aioredis.Redis.from_url(self.config.redis_url, **kwargs)

    async def connect(self) -> None:
        """Create the client and PING; idempotent.  Raises :class:`RedisStoreConnectionError`."""
        if self._client is not None:
            return
        client = self._new_client()
        try:
            await client.ping()
        except Exception as exc:
            await _close_client(client)
            self.healthy = False
            self.last_error = f"{type(exc).__name__}: {exc}"
            raise RedisStoreConnectionError(
                f"RedisStore for table {self.table_name!r} cannot reach Redis at "
                f"{self.config.safe_url}: {type(exc).__name__}: {exc}"
            ) from exc
        self._client = client
        self.healthy = True

    async def close(self) -> None:
        """Close the client (does not flush; see :meth:`on_stop`)."""
        client, self._client = self._client, None
        if client is not None:
            await _close_client(client)

    def _require_client(self) -> Any:
        if self._client is None:
            raise RedisStoreError(
                f"RedisStore for table {self.table_name!r} is not connected "
                f"({self.config.safe_url}); start the store (or call connect()) first"
            )
        return self._client

    async def shared_max(self, name: str, value: int | None) -> int | None:
        """Raise the app-wide maximum `name` to `value` (if given) and return the maximum over
        every worker of this app (a sorted-set member updated with ZADD GT, so it only grows)."""
        client = self._require_client()
        key = f"{self.key_prefix}:{{{escape_key_component(self.app_id)}:shared}}:max"
        pipe = client.pipeline(transaction=False)
        if value is not None:
            pipe.zadd(key, {name: value}, gt=True)
        pipe.zscore(key, name)
        result = await pipe.execute()
        score = result[-1]
        return None if score is None else int(score)

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
        while not self.should_stop:
            await self.sleep(self.flush_interval)
            if self.should_stop:
                break
            if self._client is None or not self.has_dirty():
                continue
            was_healthy = self.healthy
            try:
                await self.flush()
            except RedisStoreError as exc:
                if was_healthy:
                    log.warning("RedisStore %s: background flush failed: %s", self.table_name, exc)
            except Exception:  # never let a flush bug crash the whole worker silently
                self.healthy = False
                log.exception("RedisStore %s: background flush crashed", self.table_name)

    def _revoked_handler(self) -> Any:
        # mode's SignalHandlerT (mypy_extensions NamedArg) rejects any concrete signature.
        return self._on_app_partitions_revoked

    async def _on_app_partitions_revoked(
        self, sender: Any, *args: Any, signal: Any = None, **kwargs: Any
    ) -> None:
        """Flush revoked partitions before the consumer rejoins (new owners load after this)."""
        revoked: Iterable[TP] = args[0] if args else kwargs.get("revoked", ())
        partitions = self._partitions_for(revoked, exclude_standbys=False) & set(self._data)
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
        if partition not in self._data:
            raise PartitionNotLoadedError(self._not_loaded_message(partition))
        return partition

    def _not_loaded_message(self, partition: int) -> str:
        held = sorted(self._data)
        return (
            f"RedisStore {self.table_name!r}: partition {partition} is not loaded "
            f"(held: {held}); it is loaded on rebalance or with load_partition()"
        )

    def _partition_data(self, partition: int) -> dict[bytes, bytes]:
        try:
            return self._data[partition]
        except KeyError:
            raise PartitionNotLoadedError(self._not_loaded_message(partition)) from None

    # ------------------------------------------------------------------ explicit partition API

    def partitions(self) -> set[int]:
        """Partitions currently held in memory."""
        return set(self._data)

    def get_in(self, partition: int, key: bytes) -> bytes | None:
        return self._partition_data(partition).get(key)

    def set_in(self, partition: int, key: bytes, value: bytes) -> None:
        data = self._partition_data(partition)
        data[key] = value
        self._dirty[partition].add(key)
        self._deleted[partition].discard(key)

    def delete_in(self, partition: int, key: bytes) -> None:
        data = self._partition_data(partition)
        data.pop(key, None)
        self._dirty[partition].discard(key)
        self._deleted[partition].add(key)

    def items_in(self, partition: int) -> Iterator[tuple[bytes, bytes]]:
        """Iterate a snapshot of the partition's items (safe against concurrent writes)."""
        return iter(list(self._partition_data(partition).items()))

    def size_in(self, partition: int) -> int:
        return len(self._partition_data(partition))

    def has_dirty(self, partitions: Iterable[int] | None = None) -> bool:
        targets = self._data.keys() if partitions is None else partitions
        return any(self._dirty.get(p) or self._deleted.get(p) or p in self._offsets_dirty for p in targets)

    def dirty_count(self, partition: int | None = None) -> int:
        """Pending writes (keys set + keys deleted), for one partition or all."""
        targets = list(self._data) if partition is None else [partition]
        return sum(len(self._dirty.get(p, ())) + len(self._deleted.get(p, ())) for p in targets)

    # ------------------------------------------------------------------ Faust sync store API

    def _get(self, key: bytes) -> bytes | None:
        partition = self._event_partition()
        if partition is not None:
            data = self._data.get(partition)
            if data is not None:
                return data.get(key)
        for data in self._data.values():
            value = data.get(key)
            if value is not None:
                return value
        return None

    def _set(self, key: bytes, value: bytes | None) -> None:
        partition = self._write_partition("write a key")
        if value is None:  # Redis hashes cannot hold None: same as a delete
            self.delete_in(partition, key)
        else:
            self.set_in(partition, key, value)

    def _del(self, key: bytes) -> None:
        partition = self._event_partition()
        if partition is not None and partition in self._data:
            self.delete_in(partition, key)
            return
        # Outside an event (e.g. Faust's window cleanup timer): delete wherever the key is.
        for p, data in self._data.items():
            if key in data:
                self.delete_in(p, key)

    def _contains(self, key: bytes) -> bool:
        partition = self._event_partition()
        if partition is not None:
            data = self._data.get(partition)
            if data is not None:
                return key in data
        return any(key in data for data in self._data.values())

    def _iterkeys(self) -> Iterator[bytes]:
        for data in list(self._data.values()):
            yield from list(data.keys())

    def _itervalues(self) -> Iterator[bytes | None]:
        for data in list(self._data.values()):
            yield from list(data.values())

    def _iteritems(self) -> Iterator[tuple[bytes, bytes]]:
        for data in list(self._data.values()):
            yield from list(data.items())

    def _size(self) -> int:
        return sum(len(data) for data in self._data.values())

    def _clear(self) -> None:
        """Delete every key of every held partition (written to Redis at the next flush)."""
        for partition, data in self._data.items():
            self._deleted[partition].update(data)
            self._dirty[partition].clear()
            data.clear()

    # ------------------------------------------------------------------ offsets

    def persisted_offset(self, tp: TP) -> int | None:
        """Offset last set for ``tp`` or loaded from Redis; None when unknown / not held."""
        offsets = self._offsets.get(tp.partition)
        if offsets is None:
            return None
        return offsets.get(offset_field(tp))

    def set_persisted_offset(self, tp: TP, offset: int) -> None:
        """Record ``offset`` for ``tp``; written with the partition's data at the next flush."""
        offsets = self._offsets.get(tp.partition)
        if offsets is None:
            # E.g. a changelog ack arriving after the partition was revoked: the data was
            # flushed at revoke with the older offset, so recovery just replays a bit more.
            log.warning(
                "RedisStore %s: offset %s for %s dropped, partition %s is not held",
                self.table_name,
                offset,
                tp,
                tp.partition,
            )
            return
        offsets[offset_field(tp)] = int(offset)
        self._offsets_dirty.add(tp.partition)

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
            data = self._data.get(partition)
            if data is None:
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
                self.delete_in(partition, key)
            else:
                self.set_in(partition, key, message.value)
            tp = message.tp
            previous = tp_offsets.get(tp)
            if previous is None or message.offset > previous:
                tp_offsets[tp] = message.offset
        for tp, offset in tp_offsets.items():
            self.set_persisted_offset(tp, offset)

    # ------------------------------------------------------------------ flush

    async def flush(self, partitions: Iterable[int] | None = None) -> int:
        """Write dirty state: one MULTI/EXEC per partition.  Returns the keys written.

        ``partitions`` None means all held partitions; partitions not held are ignored.
        On a Redis error raises :class:`RedisStoreFlushError` and keeps the partition's dirty
        keys and offsets for the next attempt (partitions flushed before it stay flushed).
        """
        client = self._require_client()
        async with self._flush_lock:
            if partitions is None:
                targets = sorted(self._data)
            else:
                targets = sorted(p for p in set(partitions) if p in self._data)
            total = 0
            started = time.perf_counter()
            for partition in targets:
                total += await self._flush_partition_locked(client, partition)
            if targets:
                self.flush_stats["flushes"] += 1
                self.flush_stats["keys"] += total
                self.flush_stats["seconds"] = time.perf_counter() - started
            return total

    async def _flush_partition_locked(self, client: Any, partition: int) -> int:
        if partition not in self._data:  # released meanwhile
            return 0
        dirty = self._dirty[partition]
        deleted = self._deleted[partition]
        offsets_dirty = partition in self._offsets_dirty
        if not dirty and not deleted and not offsets_dirty:
            return 0
        data = self._data[partition]
        # Take the pending sets now: writes made while EXEC is in flight go to fresh sets.
        self._dirty[partition] = set()
        self._deleted[partition] = set()
        self._offsets_dirty.discard(partition)
        values = [(key, data[key]) for key in dirty]
        removed = list(deleted)
        offsets = {name: str(value) for name, value in self._offsets[partition].items()}
        dkey = self.data_key(partition)
        okey = self.offsets_key(partition)
        chunk = self.hset_chunk
        try:
            async with client.pipeline(transaction=True) as pipe:
                for i in range(0, len(values), chunk):
                    pipe.hset(dkey, mapping=dict(values[i : i + chunk]))
                for i in range(0, len(removed), chunk):
                    pipe.hdel(dkey, *removed[i : i + chunk])
                if offsets:
                    pipe.hset(okey, mapping=offsets)
                await pipe.execute()
        except _REDIS_ERRORS as exc:
            self._restore_dirty(partition, dirty, deleted, offsets_dirty)
            self.healthy = False
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.flush_stats["errors"] += 1
            raise RedisStoreFlushError(
                f"RedisStore {self.table_name!r}: flush of partition {partition} to "
                f"{self.config.safe_url} failed ({type(exc).__name__}: {exc}); "
                f"{len(dirty) + len(deleted)} pending keys kept for the next flush"
            ) from exc
        except BaseException:  # cancelled mid-flight: keep the data for a retry, re-raise
            self._restore_dirty(partition, dirty, deleted, offsets_dirty)
            raise
        self.healthy = True
        self.last_error = None
        return len(values) + len(removed)

    def _restore_dirty(
        self, partition: int, dirty: set[bytes], deleted: set[bytes], offsets_dirty: bool
    ) -> None:
        new_dirty = self._dirty.get(partition)
        new_deleted = self._deleted.get(partition)
        if new_dirty is None or new_deleted is None:  # released meanwhile
            return
        # A key touched after the snapshot already carries its latest intent.
        new_dirty.update(dirty - new_deleted - new_dirty)
        new_deleted.update(deleted - new_dirty - new_deleted)
        if offsets_dirty:
            self._offsets_dirty.add(partition)

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
        if partition in self._data:
            return self.partition_stats.get(
                partition, PartitionLoad(partition, len(self._data[partition]), 0, 0.0, 0)
            )
        client = self._require_client()
        last_exc: BaseException | None = None
        for attempt in range(LOAD_ATTEMPTS):
            try:
                loaded = await self._read_partition(client, partition)
            except _REDIS_ERRORS as exc:
                last_exc = exc
                self.healthy = False
                self.last_error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(0.5 * (attempt + 1))
                continue
            data, offsets, stats = loaded
            self._data[partition] = data
            self._dirty[partition] = set()
            self._deleted[partition] = set()
            self._offsets[partition] = offsets
            self._offsets_dirty.discard(partition)
            self._skipped_partitions.discard(partition)
            self.partition_stats[partition] = stats
            self.healthy = True
            log.info(
                "RedisStore %s: loaded partition %s: %s keys, %s offsets in %.3fs",
                self.table_name,
                partition,
                stats.keys,
                stats.offsets,
                stats.seconds,
            )
            return stats
        raise RedisStoreConnectionError(
            f"RedisStore {self.table_name!r}: cannot load partition {partition} from "
            f"{self.config.safe_url}: {type(last_exc).__name__}: {last_exc}"
        ) from last_exc

    async def _read_partition(
        self, client: Any, partition: int
    ) -> tuple[dict[bytes, bytes], dict[str, int], PartitionLoad]:
        started = time.perf_counter()
        dkey = self.data_key(partition)
        data: dict[bytes, bytes] = {}
        cursor = 0
        batches = 0
        while True:
            cursor, batch = await client.hscan(dkey, cursor, count=self.hscan_count)
            data.update(batch)
            batches += 1
            if not cursor:
                break
        raw_offsets = await client.hgetall(self.offsets_key(partition))
        offsets: dict[str, int] = {}
        for name, value in raw_offsets.items():
            field_name = name.decode() if isinstance(name, bytes) else str(name)
            offsets[field_name] = int(value)
        seconds = time.perf_counter() - started
        return data, offsets, PartitionLoad(partition, len(data), len(offsets), seconds, batches)

    async def _release_partition_locked(self, partition: int, *, drop_on_error: bool) -> bool:
        if partition not in self._data:
            return True
        async with self._flush_lock:  # no flush of this partition in flight while dropping it
            flushed = True
            if self.has_dirty([partition]):
                last_exc: RedisStoreError | None = None
                for attempt in range(REVOKE_FLUSH_ATTEMPTS):
                    try:
                        client = self._require_client()
                        await self._flush_partition_locked(client, partition)
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
        self._data.pop(partition, None)
        self._dirty.pop(partition, None)
        self._deleted.pop(partition, None)
        self._offsets.pop(partition, None)
        self._offsets_dirty.discard(partition)
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
            held = set(self._data)
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
        """Forget the local (in-memory) state only; Redis is untouched (see purge_remote).

        Unflushed writes are discarded: their offsets were not flushed either, so changelog
        recovery replays them.  Partitions must be loaded again (rebalance / load_partition).
        """
        for partition in list(self._data):
            self._drop(partition)

    async def purge_remote(self) -> int:
        """Delete this table's keys in Redis (all partitions) and the local state."""
        client = self._require_client()
        self.reset_state()
        pattern = key_pattern(self.app_id, self.table_name, self.key_prefix)
        deleted = 0
        batch: list[bytes] = []
        async for key in client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += await _delete_keys(client, batch)
                batch = []
        if batch:
            deleted += await _delete_keys(client, batch)
        return deleted

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


# --------------------------------------------------------------------------- helpers


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


async def _close_client(client: Any) -> None:
    try:
        await client.aclose()
    except Exception:  # pragma: no cover - closing a broken client
        log.debug("RedisStore: error closing client", exc_info=True)


async def _delete_keys(client: Any, keys: list[bytes]) -> int:
    deleted = 0
    for key in keys:  # one key a command: works across cluster slots too
        deleted += int(await client.unlink(key))
    return deleted
