"""RedisStore against a real Redis (no Kafka: the Faust apps here are never started).

Uses the dev stack's Redis at 127.0.0.1:6379 (or KPI_TEST_REDIS_URL); every test has its own app
id and deletes its keys.  The outage test runs its own throwaway redis-server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import faust
import pytest
import redis.asyncio as aioredis
from faust.streams import _current_event
from faust.types import TP, Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.integrity.plan import plan_resume
from streams.store.errors import (
    PartitionNotLoadedError,
    RedisStoreConnectionError,
    RedisStoreFlushError,
)
from streams.store.faust_store import RedisStore

TABLE = "kpi_state"
PARTITIONS = 4
DEFAULT_URL = "redis://127.0.0.1:6379/0"


async def _reachable(url: str) -> bool:
    client = aioredis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        return bool(await client.ping())
    except Exception:
        return False
    finally:
        await client.aclose()


@pytest.fixture
async def url(request: pytest.FixtureRequest) -> str:
    candidate = os.environ.get("KPI_TEST_REDIS_URL", DEFAULT_URL)
    if await _reachable(candidate):
        return candidate
    return str(request.getfixturevalue("redis_url"))  # bring the dev stack up


@pytest.fixture
async def app_id(url: str) -> AsyncIterator[str]:
    ident = f"rs-test-{uuid.uuid4().hex[:10]}"
    yield ident
    client = aioredis.Redis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=f"kpi:{{{ident}:*", count=1000)]
        if keys:
            await client.unlink(*keys)
    finally:
        await client.aclose()


def changelog(app_id: str, partition: int) -> TP:
    return TP(f"{app_id}-{TABLE}-changelog", partition)


def new_store(app_id: str, url: str, **options: Any) -> RedisStore:
    """Build the store the way Faust does: ``app.Table(...)`` then ``table.data``."""
    app = faust.App(app_id, broker="kafka://127.0.0.1:9092", store=url)
    table = app.Table(
        TABLE,
        partitions=PARTITIONS,
        options=options or None,
        key_type=bytes,  # the store's serializers come from key_type/value_type (not schema)
        value_type=bytes,
    )
    store = table.data
    assert isinstance(store, RedisStore)
    return store


@contextlib.asynccontextmanager
async def running(store: RedisStore) -> AsyncIterator[RedisStore]:
    await store.start()
    try:
        yield store
    finally:
        await store.stop()


class FakeEvent:
    """Just enough of faust.Event for current_event() and apply_changelog_batch."""

    def __init__(self, message: Message) -> None:
        self.message = message
        self.key = message.key
        self.value = message.value


def message(topic: str, partition: int, offset: int, key: bytes, value: bytes | None) -> Message:
    return Message(topic, partition, offset, time.time(), 0, None, key, value, None, tp=TP(topic, partition))


@contextlib.contextmanager
def in_event(partition: int, topic: str = "routed") -> Iterator[FakeEvent]:
    event = FakeEvent(message(topic, partition, 0, b"k", b"v"))
    ref: Any = weakref.ref(event)
    token = _current_event.set(ref)  # what a Faust stream does per event
    try:
        yield event
    finally:
        _current_event.reset(token)


async def raw_hash(url: str, key: str) -> dict[Any, Any]:
    client = aioredis.Redis.from_url(url)
    try:
        return dict(await client.hgetall(key))
    finally:
        await client.aclose()


# --------------------------------------------------------------------------- (a) round trip


async def test_values_and_offsets_survive_a_new_store_instance(url: str, app_id: str) -> None:
    routed = TP("routed", 1)
    async with running(new_store(app_id, url)) as store:
        await store.load_partition(0)
        await store.load_partition(1)
        assert store.partitions() == {0, 1}
        store.set_in(0, b"rep:a", b"1")
        store.set_in(1, b"rep:b", b"2")
        store.set_in(1, b"rep:gone", b"x")
        with in_event(1):  # the generic Faust store API: partition from current_event()
            store[b"rep:c"] = b"3"
            assert store[b"rep:c"] == b"3" and b"rep:c" in store
        store.delete_in(1, b"rep:gone")
        store.set_persisted_offset(changelog(app_id, 1), 41)
        store.set_persisted_offset(routed, 1234)
        written = await store.flush()
        assert written == 4  # 3 keys set + 1 deleted (rep:gone never reaches Redis as a value)
        assert not store.has_dirty()
        assert store.healthy

    again = new_store(app_id, url)
    assert again is not store
    async with running(again):
        assert again.persisted_offset(routed) is None  # not loaded yet
        await again.load_partition(0)
        await again.load_partition(1)
        assert again.get_in(0, b"rep:a") == b"1"
        assert dict(again.items_in(1)) == {b"rep:b": b"2", b"rep:c": b"3"}
        assert again.persisted_offset(routed) == 1234
        assert again.persisted_offset(changelog(app_id, 1)) == 41
        assert again.persisted_offset(changelog(app_id, 0)) is None  # never written
        assert sorted(again.keys()) == [b"rep:a", b"rep:b", b"rep:c"]
        assert len(again) == 3
        with in_event(0):
            assert again.get(b"rep:b") is None  # reads stay in the event's partition
        assert again.get(b"rep:b") == b"2"  # outside an event: all partitions
        assert again.partition_stats[1].keys == 2


# --------------------------------------------------------------------------- (b) one MULTI


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_redis(port: int, directory: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),  # where SAVE writes dump.rdb, and a start reads it
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return proc
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"throwaway redis-server on {port} did not start")


def _stop_redis(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()  # by PID: only the server this test started
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[tuple[int, Callable[[], None], Callable[[], None]]]:
    """A private redis-server (no persistence unless a test SAVEs: then `start` after `stop`
    comes back with that snapshot, as a restore from a backup does)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    port = _free_port()
    directory = tmp_path / "redis"
    directory.mkdir()
    procs = [_start_redis(port, directory)]

    def stop() -> None:
        _stop_redis(procs[-1])

    def start() -> None:
        procs.append(_start_redis(port, directory))

    yield port, stop, start
    for proc in procs:
        _stop_redis(proc)


async def test_data_offsets_and_version_are_written_by_one_atomic_script(
    throwaway_redis: tuple[int, Callable[[], None], Callable[[], None]],
) -> None:
    # A private server: MONITOR on the shared one also streams other clients' traffic.
    port = throwaway_redis[0]
    url = f"redis://127.0.0.1:{port}/0"
    app_id = f"rs-test-{uuid.uuid4().hex[:10]}"
    monitor_client = aioredis.Redis.from_url(url)
    seen: list[tuple[str, str]] = []
    ready = asyncio.Event()
    tag = f"{{{app_id}:{TABLE}:2}}"

    async def watch() -> None:
        async with monitor_client.monitor() as mon:
            ready.set()
            async for cmd in mon.listen():
                text = cmd["command"]
                if tag in text or text.startswith(("EVALSHA", "MULTI", "EXEC")):
                    name, key = text.split(" ", 2)[:2]
                    seen.append((cmd["client_type"], f"{name.upper()} {key}"))
                    if text.startswith("HSET") and ":meta version" in text:
                        return

    async with running(new_store(app_id, url, hset_chunk=3)) as store:
        await store.load_partition(2)
        for i in range(7):
            store.set_in(2, f"k{i}".encode(), b"v")
        store.set_persisted_offset(changelog(app_id, 2), 9)
        watcher = asyncio.create_task(watch())
        await asyncio.wait_for(ready.wait(), 5)
        await asyncio.sleep(0.1)
        assert await store.flush([2]) == 7
        await asyncio.wait_for(watcher, 5)
    await monitor_client.aclose()
    data, offsets, meta = (f"kpi:{tag}:{name}" for name in ("data", "offsets", "meta"))
    # One script (after the first EVALSHA finds no script, it is loaded and sent again): it
    # checks the version, then 7 keys in chunks of 3, the offsets and the new version.
    calls = [entry for entry in seen if entry[0] == "lua"]
    assert calls == [
        ("lua", f"HGET {meta}"),
        ("lua", f"DEL {meta}"),
        ("lua", f"HSET {data}"),
        ("lua", f"HSET {data}"),
        ("lua", f"HSET {data}"),
        ("lua", f"HSET {offsets}"),
        ("lua", f"HSET {meta}"),
    ], seen
    assert not any(entry[1].startswith(("MULTI", "EXEC")) for entry in seen)
    assert await raw_hash(url, offsets) == {f"{app_id}-{TABLE}-changelog:2".encode(): b"9"}
    assert len(await raw_hash(url, data)) == 7
    version = (await raw_hash(url, meta))[b"version"].decode()
    assert version.startswith("1.") and store.cache.version(2) == version


async def test_failed_flush_keeps_dirty_state_and_recovers(
    throwaway_redis: tuple[int, Callable[[], None], Callable[[], None]],
) -> None:
    port, stop_server, start_server = throwaway_redis
    url = f"redis://127.0.0.1:{port}/0"
    app_id = f"rs-test-{uuid.uuid4().hex[:10]}"
    async with running(new_store(app_id, url, flush_interval=3600)) as store:
        await store.load_partition(0)
        store.set_in(0, b"first", b"1")
        assert await store.flush() == 1
        store.set_in(0, b"a", b"1")
        store.set_in(0, b"b", b"2")
        store.delete_in(0, b"first")
        store.set_persisted_offset(TP("routed", 0), 7)
        stop_server()
        with pytest.raises(RedisStoreFlushError, match=f"127.0.0.1:{port}") as info:
            await store.flush()
        assert "3 pending keys kept" in str(info.value)
        assert not store.healthy and store.last_error
        assert store.dirty_count(0) == 3 and store.has_dirty([0])
        # writes made while Redis is down: the latest intent wins at the retry
        store.delete_in(0, b"b")
        store.set_in(0, b"c", b"3")
        # An empty server (no persistence): the retry finds Redis without the version it wrote
        # and rewrites the partition whole (a, c), not just what is pending on an empty Redis.
        start_server()
        assert await store.flush() == 2
        assert store.healthy and not store.has_dirty()
        assert store.rollbacks == 1 and store.last_rollback is not None
        assert store.last_rollback["partition"] == 0
        assert store.last_rollback["evidence"].startswith("it holds version none, this worker wrote 1.")
    data = await raw_hash(url, f"kpi:{{{app_id}:{TABLE}:0}}:data")
    assert data == {b"a": b"1", b"c": b"3"}
    assert await raw_hash(url, f"kpi:{{{app_id}:{TABLE}:0}}:offsets") == {b"routed:0": b"7"}


async def test_unreachable_redis_fails_start_with_a_clear_error_without_the_password(
    app_id: str,
) -> None:
    port = _free_port()
    store = new_store(app_id, f"redis://:hunter2@127.0.0.1:{port}/0")
    with pytest.raises(RedisStoreConnectionError) as info:
        await store.connect()
    message_text = str(info.value)
    assert f"redis://:***@127.0.0.1:{port}/0" in message_text
    assert "hunter2" not in message_text
    assert not store.healthy


# --------------------------------------------------------------------------- (b2) Redis forgets


async def _client(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(url)


async def _flush_retrying(store: RedisStore, partitions: list[int]) -> int:
    """Flush as the worker does after a Redis restart: the pooled connection the server closed
    fails the first attempt; what was pending is kept and the next attempt writes it."""
    for _ in range(3):
        try:
            return await store.flush(partitions)
        except RedisStoreFlushError:
            await asyncio.sleep(0.1)
    return await store.flush(partitions)


async def test_redis_restarted_from_an_older_snapshot_is_repaired_from_memory(
    throwaway_redis: tuple[int, Callable[[], None], Callable[[], None]],
) -> None:
    port, stop_server, start_server = throwaway_redis
    url = f"redis://127.0.0.1:{port}/0"
    app_id = f"rs-test-{uuid.uuid4().hex[:10]}"
    routed = TP("routed", 0)
    async with running(new_store(app_id, url, flush_interval=3600)) as store:
        await store.load_partition(0)
        await store.load_partition(1)
        store.set_in(0, b"kept", b"1")
        store.set_in(0, b"changed", b"old")
        store.set_in(0, b"deleted-later", b"x")
        store.set_in(1, b"other", b"1")
        store.set_persisted_offset(routed, 10)
        await store.flush()
        client = await _client(url)
        assert await client.save()  # the snapshot Redis will come back with
        await client.aclose()
        store.set_in(0, b"changed", b"new")
        store.delete_in(0, b"deleted-later")
        store.set_in(0, b"added", b"2")
        store.set_persisted_offset(routed, 20)
        await store.flush()
        memory = dict(store.items_in(0))
        stop_server()
        start_server()  # back with the older snapshot: the last flush is lost
        assert (await raw_hash(url, store.offsets_key(0)))[b"routed:0"] == b"10"

        store.set_in(0, b"after", b"3")  # the next write notices, and repairs
        assert await _flush_retrying(store, [0]) == len(memory) + 1
        assert await raw_hash(url, store.data_key(0)) == memory | {b"after": b"3"}
        assert (await raw_hash(url, store.offsets_key(0)))[b"routed:0"] == b"20"
        assert store.rollbacks == 1 and store.last_rollback is not None
        assert store.last_rollback["partition"] == 0 and not store.repairing
        # Partition 1 lost nothing (no write since the snapshot): its version still matches.
        assert await store.verify() == set() and store.rollbacks == 1

        # Emptied (FLUSHALL, or a new instance) with nothing to write: the periodic check
        # finds both partitions gone and rewrites them.
        client = await _client(url)
        await client.flushall()
        await client.aclose()
        assert await store.verify() == {0, 1}
        assert store.rollbacks == 3
        assert await raw_hash(url, store.data_key(0)) == memory | {b"after": b"3"}
        assert await raw_hash(url, store.data_key(1)) == {b"other": b"1"}
        assert await store.verify() == set()

    again = new_store(app_id, url)  # a later owner loads exactly the repaired state
    async with running(again):
        await again.load_partition(0)
        assert dict(again.items_in(0)) == memory | {b"after": b"3"}
        assert again.persisted_offset(routed) == 20


# Batches of a routed partition: offset i sets (or, with None, deletes) a few keys.
_batches = st.lists(
    st.dictionaries(st.sampled_from([b"a", b"b", b"c", b"d"]), st.none() | st.binary(min_size=1, max_size=3)),
    min_size=1,
    max_size=12,
)
# What happens between two batches: nothing, a flush, a snapshot of Redis, Redis going back to
# a snapshot (or empty), the periodic version check, or the worker crashing (-9) and a new one
# resuming from the offset saved in Redis.
_events = st.lists(
    st.sampled_from(["flush", "flush", "snapshot", "rollback", "empty", "verify", "crash", "none"]),
    min_size=1,
    max_size=30,
)


async def _rollback_scenario(
    url: str, batches: list[dict[bytes, bytes | None]], events: list[str], pick: int
) -> None:
    app_id = f"rs-prop-{uuid.uuid4().hex[:10]}"
    routed = TP("routed", 0)
    client = aioredis.Redis.from_url(url)
    snapshots: list[dict[str, bytes | None]] = []

    async def resume(store: RedisStore, produced: int) -> None:
        """A new owner: load, then apply from the saved offset what the routed topic holds."""
        await store.load_partition(0)
        start = plan_resume(store.persisted_offset(routed), None, 0).start
        for offset in range(start, produced):
            apply(store, offset)

    def apply(store: RedisStore, offset: int) -> None:
        for key, value in batches[offset].items():
            if value is None:
                store.delete_in(0, key)
            else:
                store.set_in(0, key, value)
        store.set_persisted_offset(routed, offset)

    store = new_store(app_id, url, flush_interval=3600)
    keys = [store.data_key(0), store.offsets_key(0), store.meta_key(0)]
    try:
        await store.start()
        await resume(store, 0)
        for offset in range(len(batches)):
            apply(store, offset)
            event = events[offset % len(events)]
            if event == "flush":
                await store.flush()
            elif event == "snapshot":
                snapshots.append({key: await client.dump(key) for key in keys})
            elif event in ("rollback", "empty"):
                snapshot = snapshots[pick % len(snapshots)] if snapshots and event == "rollback" else {}
                await client.delete(*keys)
                for key, dumped in snapshot.items():
                    if dumped is not None:
                        await client.restore(key, 0, dumped)
            elif event == "verify":
                await store.verify()
            elif event == "crash":
                await store.close()  # nothing pending reaches Redis
                store = new_store(app_id, url, flush_interval=3600)
                await store.start()
                await resume(store, offset + 1)
        await store.flush()
        await store.stop()
        expected: dict[bytes, bytes] = {}
        for batch in batches:
            for key, value in batch.items():
                if value is None:
                    expected.pop(key, None)
                else:
                    expected[key] = value
        reader = new_store(app_id, url)
        async with running(reader):
            await reader.load_partition(0)
            assert dict(reader.items_in(0)) == expected
            assert reader.persisted_offset(routed) == len(batches) - 1
    finally:
        await client.delete(*keys)
        await client.aclose()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=_batches, events=_events, pick=st.integers(0, 10))
def test_for_any_point_redis_rolls_back_to_the_final_state_is_exact(
    redis_url: str, batches: list[dict[bytes, bytes | None]], events: list[str], pick: int
) -> None:
    """Whenever Redis goes back to an older snapshot (or empties), with or without the worker
    crashing after it, the state ends equal to applying every routed batch once: a running
    worker rewrites what Redis lost from memory, a new one replays from the offset saved."""
    asyncio.run(_rollback_scenario(redis_url, batches, events, pick))


# --------------------------------------------------------------------------- (c) rebalance


async def test_rebalance_loads_assigned_and_flushes_then_drops_revoked(url: str, app_id: str) -> None:
    cl = [changelog(app_id, p) for p in range(PARTITIONS)]
    seed = new_store(app_id, url)
    async with running(seed):
        await seed.load_partition(3)
        seed.set_in(3, b"seeded", b"yes")
        seed.set_persisted_offset(cl[3], 100)
        await seed.flush()

    async with running(new_store(app_id, url, flush_interval=3600)) as store:
        # source-topic TPs and other tables' changelogs are not this table's partitions
        assigned = {cl[0], cl[3], TP("routed", 0), TP("other-changelog", 1)}
        await store.on_rebalance(assigned, set(), assigned, 0)
        assert store.partitions() == {0, 3}
        assert store.get_in(3, b"seeded") == b"yes"
        assert store.persisted_offset(cl[3]) == 100  # what Faust recovery asks next
        assert store.recovery_stats["partitions"] == 2 and store.recovery_stats["keys"] == 1

        store.set_in(3, b"late", b"write")
        store.set_persisted_offset(cl[3], 101)
        await store.on_rebalance({cl[0]}, {cl[3]}, set(), 0)
        assert store.partitions() == {0}
        with pytest.raises(PartitionNotLoadedError):
            store.get_in(3, b"late")
        assert await raw_hash(url, store.data_key(3)) == {b"seeded": b"yes", b"late": b"write"}
        assert await raw_hash(url, store.offsets_key(3)) == {f"{cl[3].topic}:3".encode(): b"101"}

        # the app's on_partitions_revoked signal (sent before the consumer rejoins) flushes
        store.set_in(0, b"before-rejoin", b"1")
        await store.app.on_partitions_revoked.send({cl[0]})
        assert not store.has_dirty()
        assert await raw_hash(url, store.data_key(0)) == {b"before-rejoin": b"1"}
        assert store.partitions() == {0}  # still held until the assignment says otherwise


async def test_changelog_batch_applies_to_held_partitions_and_sets_offsets(url: str, app_id: str) -> None:
    async with running(new_store(app_id, url, flush_interval=3600)) as store:
        await store.load_partition(1)
        topic = changelog(app_id, 1).topic
        batch: list[Any] = [
            FakeEvent(message(topic, 1, 10, b"k1", b"v1")),
            FakeEvent(message(topic, 1, 11, b"k2", b"v2")),
            FakeEvent(message(topic, 1, 12, b"k1", None)),  # tombstone
            FakeEvent(message(topic, 2, 50, b"standby", b"x")),  # partition not held: ignored
        ]
        store.apply_changelog_batch(batch, to_key=lambda k: k, to_value=lambda v: v)
        assert dict(store.items_in(1)) == {b"k2": b"v2"}
        assert store.persisted_offset(TP(topic, 1)) == 12
        assert store.persisted_offset(TP(topic, 2)) is None
        await store.on_recovery_completed({TP(topic, 1)}, set())  # flushes what recovery applied
        assert not store.has_dirty()
    assert await raw_hash(url, f"kpi:{{{app_id}:{TABLE}:1}}:data") == {b"k2": b"v2"}


async def test_background_flush_persists_generic_table_writes(url: str, app_id: str) -> None:
    store = new_store(app_id, url, flush_interval=0.05)
    async with running(store):
        await store.load_partition(0)
        with in_event(0):
            store[b"x"] = b"1"
        deadline = time.monotonic() + 5
        while store.has_dirty() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert await raw_hash(url, store.data_key(0)) == {b"x": b"1"}
        store.set_in(0, b"on-stop", b"1")
        store.flush_interval = 3600  # only the stop-time flush can write it now
    assert (await raw_hash(url, store.data_key(0)))[b"on-stop"] == b"1"


# --------------------------------------------------------------------------- (d) 100,000 keys


async def test_load_of_100000_keys(url: str, app_id: str) -> None:
    n = 100_000
    async with running(new_store(app_id, url, flush_interval=3600)) as writer:
        await writer.load_partition(0)
        for i in range(n):
            writer.set_in(0, b"rep:%06d:day" % i, b"%d" % (i * 7))
        writer.set_persisted_offset(TP("routed", 0), n)
        started = time.perf_counter()
        assert await writer.flush() == n
        flush_s = time.perf_counter() - started

    reader = new_store(app_id, url)
    async with running(reader):
        started = time.perf_counter()
        await reader.on_rebalance({changelog(app_id, 0)}, set(), {changelog(app_id, 0)}, 0)
        load_s = time.perf_counter() - started
        assert reader.size_in(0) == n
        assert reader.get_in(0, b"rep:054321:day") == b"%d" % (54321 * 7)
        assert reader.persisted_offset(TP("routed", 0)) == n
        stats = reader.recovery_stats
        assert stats["keys"] == n and stats["partitions"] == 1
        batches = reader.partition_stats[0].batches
    print(
        f"\n100,000 keys: flush (one MULTI) {flush_s:.3f}s; load (HSCAN count=5000, "
        f"{batches} batches) {load_s:.3f}s, store-measured {stats['seconds']:.3f}s"
    )
