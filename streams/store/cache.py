"""The store's in-memory write-back cache: each held partition's values, its pending writes and
deletes, and its offsets, snapshotted for a flush and restored when the flush fails (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from streams.store.errors import PartitionNotLoadedError

__all__ = ["FlushSnapshot", "WriteBackCache"]


@dataclass(frozen=True, slots=True)
class FlushSnapshot:
    """A partition's pending writes taken for one flush: what the transaction writes, and what
    :meth:`WriteBackCache.restore` needs to give them back if it fails."""

    partition: int
    values: list[tuple[bytes, bytes]]  # keys set, with their values at the snapshot
    removed: list[bytes]  # keys deleted
    offsets: dict[str, str]  # the partition's whole offsets hash ("topic:partition" -> offset)
    dirty: frozenset[bytes]
    deleted: frozenset[bytes]
    offsets_dirty: bool

    @property
    def keys(self) -> int:
        """Keys this flush writes (set + deleted)."""
        return len(self.values) + len(self.removed)


class WriteBackCache:
    """Per-partition ``dict[bytes, bytes]`` with dirty/deleted key sets and staged offsets.

    A partition is held between :meth:`hold` (its state loaded) and :meth:`drop`; reads and
    writes of a partition not held raise :class:`PartitionNotLoadedError`. ``name`` (the table)
    only appears in error messages.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._data: dict[int, dict[bytes, bytes]] = {}
        self._dirty: dict[int, set[bytes]] = {}
        self._deleted: dict[int, set[bytes]] = {}
        self._offsets: dict[int, dict[str, int]] = {}
        self._offsets_dirty: set[int] = set()

    # ------------------------------------------------------------------ holding partitions

    def hold(self, partition: int, data: dict[bytes, bytes], offsets: dict[str, int]) -> None:
        """Hold ``partition`` with the state and offsets loaded for it, nothing pending."""
        self._data[partition] = data
        self._dirty[partition] = set()
        self._deleted[partition] = set()
        self._offsets[partition] = offsets
        self._offsets_dirty.discard(partition)

    def drop(self, partition: int) -> None:
        """Forget ``partition``, pending writes included."""
        self._data.pop(partition, None)
        self._dirty.pop(partition, None)
        self._deleted.pop(partition, None)
        self._offsets.pop(partition, None)
        self._offsets_dirty.discard(partition)

    def holds(self, partition: int) -> bool:
        return partition in self._data

    def partitions(self) -> set[int]:
        """Partitions currently held."""
        return set(self._data)

    def _partition_data(self, partition: int) -> dict[bytes, bytes]:
        try:
            return self._data[partition]
        except KeyError:
            raise PartitionNotLoadedError(self.not_loaded_message(partition)) from None

    def not_loaded_message(self, partition: int) -> str:
        held = sorted(self._data)
        return (
            f"RedisStore {self.name!r}: partition {partition} is not loaded "
            f"(held: {held}); it is loaded on rebalance or with load_partition()"
        )

    # ------------------------------------------------------------------ one partition

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

    # ------------------------------------------------------------------ every partition

    def get(self, key: bytes, partition: int | None) -> bytes | None:
        """``key`` in ``partition`` if held, else in any held partition."""
        if partition is not None:
            data = self._data.get(partition)
            if data is not None:
                return data.get(key)
        for data in self._data.values():
            value = data.get(key)
            if value is not None:
                return value
        return None

    def contains(self, key: bytes, partition: int | None) -> bool:
        """Whether ``key`` is in ``partition`` if held, else in any held partition."""
        if partition is not None:
            data = self._data.get(partition)
            if data is not None:
                return key in data
        return any(key in data for data in self._data.values())

    def delete(self, key: bytes, partition: int | None) -> None:
        """Delete ``key`` from ``partition`` if held, else wherever it is."""
        if partition is not None and partition in self._data:
            self.delete_in(partition, key)
            return
        for p, data in self._data.items():
            if key in data:
                self.delete_in(p, key)

    def keys(self) -> Iterator[bytes]:
        for data in list(self._data.values()):
            yield from list(data.keys())

    def values(self) -> Iterator[bytes]:
        for data in list(self._data.values()):
            yield from list(data.values())

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        for data in list(self._data.values()):
            yield from list(data.items())

    def size(self) -> int:
        return sum(len(data) for data in self._data.values())

    def clear(self) -> None:
        """Delete every key of every held partition (pending until the next flush)."""
        for partition, data in self._data.items():
            self._deleted[partition].update(data)
            self._dirty[partition].clear()
            data.clear()

    # ------------------------------------------------------------------ pending writes

    def has_dirty(self, partitions: Iterable[int] | None = None) -> bool:
        targets = list(self._data) if partitions is None else partitions
        return any(self._dirty.get(p) or self._deleted.get(p) or p in self._offsets_dirty for p in targets)

    def dirty_count(self, partition: int | None = None) -> int:
        """Pending writes (keys set + keys deleted), for one partition or all."""
        targets = list(self._data) if partition is None else [partition]
        return sum(len(self._dirty.get(p, ())) + len(self._deleted.get(p, ())) for p in targets)

    # ------------------------------------------------------------------ offsets

    def offset(self, partition: int, name: str) -> int | None:
        """Offset ``name`` ("topic:partition") of a held partition; None when unknown."""
        offsets = self._offsets.get(partition)
        if offsets is None:
            return None
        return offsets.get(name)

    def set_offset(self, partition: int, name: str, offset: int) -> bool:
        """Stage ``offset`` with the partition's data; False (nothing staged) when not held."""
        offsets = self._offsets.get(partition)
        if offsets is None:
            return False
        offsets[name] = int(offset)
        self._offsets_dirty.add(partition)
        return True

    # ------------------------------------------------------------------ flush

    def snapshot(self, partition: int) -> FlushSnapshot | None:
        """Take ``partition``'s pending writes for a flush (None when not held or nothing is
        pending). Writes made while the flush is in flight go to fresh sets."""
        if partition not in self._data:
            return None
        dirty = self._dirty[partition]
        deleted = self._deleted[partition]
        offsets_dirty = partition in self._offsets_dirty
        if not dirty and not deleted and not offsets_dirty:
            return None
        data = self._data[partition]
        self._dirty[partition] = set()
        self._deleted[partition] = set()
        self._offsets_dirty.discard(partition)
        return FlushSnapshot(
            partition=partition,
            values=[(key, data[key]) for key in dirty],
            removed=list(deleted),
            offsets={name: str(value) for name, value in self._offsets[partition].items()},
            dirty=frozenset(dirty),
            deleted=frozenset(deleted),
            offsets_dirty=offsets_dirty,
        )

    def restore(self, snapshot: FlushSnapshot) -> None:
        """Give a failed flush's writes back as pending (no-op if the partition was dropped).

        The values are not restored: the cache holds each key's latest value, and a key touched
        after the snapshot already carries its latest intent (set or delete)."""
        partition = snapshot.partition
        new_dirty = self._dirty.get(partition)
        new_deleted = self._deleted.get(partition)
        if new_dirty is None or new_deleted is None:  # dropped meanwhile
            return
        new_dirty.update(snapshot.dirty - new_deleted - new_dirty)
        new_deleted.update(snapshot.deleted - new_dirty - new_deleted)
        if snapshot.offsets_dirty:
            self._offsets_dirty.add(partition)
