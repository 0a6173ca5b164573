"""The store's write-back cache without Redis: pending writes, flush snapshots, restore, offsets,
versions and the whole-partition rewrite that repairs a Redis that lost writes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.store.cache import FlushSnapshot, WriteBackCache, next_version
from streams.store.errors import PartitionNotLoadedError


def held(*partitions: int) -> WriteBackCache:
    cache = WriteBackCache("kpi_state")
    for partition in partitions:
        cache.hold(partition, {}, {})
    return cache


def apply(remote: dict[bytes, bytes], remote_offsets: dict[str, str], snap: FlushSnapshot) -> None:
    """What the write script does with a snapshot to the partition's data and offsets hashes."""
    if snap.full:
        remote.clear()
        remote_offsets.clear()
    remote.update(snap.values)
    for key in snap.removed:
        remote.pop(key, None)
    remote_offsets.update(snap.offsets)


def test_writes_are_pending_until_a_snapshot_takes_them() -> None:
    cache = held(0)
    assert not cache.has_dirty() and cache.snapshot(0) is None
    cache.set_in(0, b"a", b"1")
    cache.set_in(0, b"b", b"2")
    assert cache.has_dirty([0]) and cache.dirty_count(0) == 2
    snap = cache.snapshot(0)
    assert snap is not None
    assert sorted(snap.values) == [(b"a", b"1"), (b"b", b"2")] and snap.removed == [] and snap.keys == 2
    assert not cache.has_dirty() and cache.snapshot(0) is None
    assert cache.get_in(0, b"a") == b"1"  # the data stays in memory


def test_delete_after_set_sends_only_the_delete_and_set_after_delete_only_the_value() -> None:
    cache = held(0)
    cache.hold(0, {b"old": b"x"}, {})
    cache.set_in(0, b"k", b"1")
    cache.delete_in(0, b"k")
    cache.delete_in(0, b"old")
    cache.set_in(0, b"old", b"y")
    snap = cache.snapshot(0)
    assert snap is not None
    assert snap.values == [(b"old", b"y")]
    assert snap.removed == [b"k"]
    assert cache.get_in(0, b"k") is None and cache.get_in(0, b"old") == b"y"


def test_a_snapshot_keeps_its_values_while_writes_go_on_and_those_writes_stay_pending() -> None:
    cache = held(0)
    cache.set_in(0, b"a", b"1")
    snap = cache.snapshot(0)
    assert snap is not None
    cache.set_in(0, b"a", b"2")  # while the flush is in flight
    cache.set_in(0, b"b", b"3")
    assert snap.values == [(b"a", b"1")]  # what this flush writes does not move
    remote: dict[bytes, bytes] = {}
    apply(remote, {}, snap)
    after = cache.snapshot(0)  # the flush succeeded; the next one carries the later writes
    assert after is not None
    assert sorted(after.values) == [(b"a", b"2"), (b"b", b"3")]


def test_restore_after_a_failed_flush_keeps_the_latest_intent() -> None:
    cache = held(0)
    cache.hold(0, {b"gone": b"x", b"back": b"y"}, {})
    cache.set_in(0, b"kept", b"1")
    cache.set_in(0, b"later-deleted", b"1")
    cache.delete_in(0, b"gone")
    cache.delete_in(0, b"back")
    cache.set_offset(0, "routed:0", 7)
    snap = cache.snapshot(0)
    assert snap is not None and not cache.has_dirty()
    # Writes while the transaction is in flight, then it fails.
    cache.delete_in(0, b"later-deleted")
    cache.set_in(0, b"back", b"z")
    cache.restore(snap)
    retry = cache.snapshot(0)
    assert retry is not None
    assert sorted(retry.values) == [(b"back", b"z"), (b"kept", b"1")]
    assert sorted(retry.removed) == [b"gone", b"later-deleted"]
    assert retry.offsets == {"routed:0": "7"} and retry.offsets_dirty


def test_offsets_are_staged_with_the_data_and_sent_whole() -> None:
    cache = held(0)
    cache.hold(0, {}, {"changelog:0": 4})
    assert cache.offset(0, "changelog:0") == 4 and cache.offset(0, "routed:0") is None
    assert cache.set_offset(0, "routed:0", 10)
    assert cache.has_dirty([0]) and cache.dirty_count(0) == 0  # an offset alone is a pending write
    cache.set_in(0, b"k", b"v")
    cache.set_offset(0, "routed:0", 11)
    snap = cache.snapshot(0)
    assert snap is not None
    assert snap.values == [(b"k", b"v")]
    assert snap.offsets == {"changelog:0": "4", "routed:0": "11"}
    assert not cache.set_offset(1, "routed:1", 3)  # not held: nothing staged
    assert cache.offset(1, "routed:1") is None


def test_release_forgets_pending_writes_and_a_late_restore_does_nothing() -> None:
    cache = held(0, 1)
    cache.set_in(1, b"k", b"v")
    snap = cache.snapshot(1)
    assert snap is not None
    cache.drop(1)
    cache.restore(snap)  # the flush failed after the partition was released
    assert cache.partitions() == {0} and not cache.has_dirty()
    with pytest.raises(PartitionNotLoadedError, match=r"partition 1 is not loaded \(held: \[0\]\)"):
        cache.get_in(1, b"k")
    with pytest.raises(PartitionNotLoadedError, match="'kpi_state'"):
        cache.set_in(1, b"k", b"v")
    assert cache.snapshot(1) is None


def test_reads_prefer_the_given_partition_else_search_all() -> None:
    cache = held(0, 1)
    cache.set_in(0, b"a", b"0")
    cache.set_in(1, b"b", b"1")
    assert cache.get(b"b", 0) is None and cache.get(b"b", None) == b"1" and cache.get(b"b", 5) == b"1"
    assert not cache.contains(b"b", 0) and cache.contains(b"b", None)
    cache.delete(b"b", None)  # outside an event: wherever the key is
    assert not cache.contains(b"b", None) and cache.snapshot(1) is not None
    assert sorted(cache.keys()) == [b"a"] and cache.size() == 1 and list(cache.values()) == [b"0"]
    cache.clear()
    snap = cache.snapshot(0)
    assert cache.size() == 0 and snap is not None and snap.removed == [b"a"] and snap.values == []


def test_versions_count_writes_and_name_the_writer() -> None:
    assert next_version("", "ab") == "1.ab"
    assert next_version("7.cd", "ab") == "8.ab"
    assert next_version("garbage", "ab") == "1.ab"
    cache = WriteBackCache("t", writer="ab")
    cache.hold(0, {}, {}, version="7.cd", meta={"k": "v"})
    cache.set_in(0, b"k", b"v")
    snap = cache.snapshot(0)
    assert snap is not None and (snap.expected, snap.version) == ("7.cd", "8.ab")
    assert cache.version(0) == "7.cd"  # until the write is known to be in Redis
    cache.written(snap)
    assert cache.version(0) == "8.ab" and cache.version(1) is None


def test_a_full_snapshot_rewrites_everything_and_a_failed_one_stays_full() -> None:
    cache = WriteBackCache("t", writer="ab")
    cache.hold(0, {b"a": b"1", b"b": b"2"}, {"routed:0": 5}, version="3.xx")
    cache.delete_in(0, b"b")
    cache.mark_full(0)
    snap = cache.snapshot(0)
    assert snap is not None and snap.full
    assert snap.values == [(b"a", b"1")] and snap.removed == [] and snap.offsets == {"routed:0": "5"}
    cache.set_in(0, b"c", b"3")  # while the rewrite is in flight
    cache.restore(snap)  # it failed: the next flush is a full rewrite again, with the new key
    again = cache.snapshot(0)
    assert again is not None and again.full
    assert sorted(again.values) == [(b"a", b"1"), (b"c", b"3")]
    cache.written(again)
    assert cache.snapshot(0) is None and cache.version(0) == "4.ab"


def test_reset_empties_the_partition_and_bookkeeping_is_staged_with_it() -> None:
    cache = WriteBackCache("t")
    cache.hold(0, {b"a": b"1"}, {"routed:0": 50}, meta={"x": "1"})
    assert cache.meta(0) == {"x": "1"} and cache.meta(9) == {}
    cache.reset(0, {"routed:0": 9})
    assert cache.set_meta(0, "rebuild", "{}") and cache.set_meta(0, "x", None)
    assert not cache.set_meta(1, "x", "1")
    snap = cache.snapshot(0)
    assert snap is not None and snap.full and snap.values == []
    assert snap.offsets == {"routed:0": "9"} and snap.meta == {"rebuild": "{}"}
    assert cache.size_in(0) == 0


# Operations of the property below: write or delete a key, start a flush (snapshot), finish the
# flush in flight (ok or failed).
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("set"), st.sampled_from([b"a", b"b", b"c"]), st.integers(0, 9)),
        st.tuples(st.just("del"), st.sampled_from([b"a", b"b", b"c"]), st.just(0)),
        st.tuples(st.just("offset"), st.just(b""), st.integers(0, 1000)),
        st.tuples(st.just("snapshot"), st.just(b""), st.just(0)),
        st.tuples(st.just("full"), st.just(b""), st.just(0)),
        st.tuples(st.sampled_from(["ok", "fail"]), st.just(b""), st.just(0)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(_ops)
def test_whatever_flushes_fail_a_final_flush_leaves_redis_equal_to_memory(
    ops: list[tuple[str, bytes, int]],
) -> None:
    cache = held(0)
    remote: dict[bytes, bytes] = {}
    remote_offsets: dict[str, str] = {}
    in_flight: FlushSnapshot | None = None
    for op, key, n in ops:
        if op == "set":
            cache.set_in(0, key, b"%d" % n)
        elif op == "del":
            cache.delete_in(0, key)
        elif op == "offset":
            cache.set_offset(0, "routed:0", n)
        elif op == "full":
            cache.mark_full(0)
        elif op == "snapshot" and in_flight is None:
            in_flight = cache.snapshot(0)
        elif op == "ok" and in_flight is not None:
            apply(remote, remote_offsets, in_flight)
            in_flight = None
        elif op == "fail" and in_flight is not None:
            cache.restore(in_flight)
            in_flight = None
    if in_flight is not None:
        cache.restore(in_flight)
    final = cache.snapshot(0)
    if final is not None:
        apply(remote, remote_offsets, final)
    assert remote == dict(cache.items_in(0))
    expected = cache.offset(0, "routed:0")
    assert remote_offsets.get("routed:0") == (None if expected is None else str(expected))
    assert not cache.has_dirty()
