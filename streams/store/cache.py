"""The store's in-memory write-back cache: each held partition's values, its pending writes and
deletes, its offsets and bookkeeping, snapshotted for a flush and restored when the flush fails
(pure)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from streams.store.errors import PartitionNotLoadedError

__all__ = ["FlushSnapshot", "WriteBackCache", "next_version"]


def next_version(version: str, writer: str) -> str:
    """The version a write after ``version`` leaves in Redis: ``"<count>.<writer>"``.

    The count grows with every write, whoever makes it; the writer (random per store instance)
    makes two writes from the same base differ, so Redis holding exactly the version this
    worker wrote last means it holds exactly what this worker wrote."""
    count, _, _ = version.partition(".")
    return f"{int(count) + 1 if count.isdigit() else 1}.{writer}"


@dataclass(frozen=True, slots=True)
class FlushSnapshot:
    """A partition's pending writes taken for one flush: what the transaction writes, and what
    :meth:`WriteBackCache.restore` needs to give them back if it fails.

    A ``full`` snapshot rewrites the whole partition (every key in ``values``, nothing else
    kept): the repair when Redis no longer holds what this worker wrote."""

    partition: int
    values: list[tuple[bytes, bytes]]  # keys set, with their values at the snapshot
    removed: list[bytes]  # keys deleted
    offsets: dict[str, str]  # the partition's whole offsets hash ("topic:partition" -> offset)
    meta: dict[str, str]  # the partition's whole bookkeeping hash (the version excepted)
    expected: str  # the version Redis must hold for an incremental write ("" = none)
    version: str  # the version this write leaves
    full: bool
    dirty: frozenset[bytes]
    deleted: frozenset[bytes]
    offsets_dirty: bool

    @property
    def keys(self) -> int:
        """Keys this flush writes (set + deleted)."""
        return len(self.values) + len(self.removed)


@dataclass(slots=True)
class _Partition:
    data: dict[bytes, bytes]
    offsets: dict[str, int]
    version: str
    meta: dict[str, str]
    dirty: set[bytes] = field(default_factory=set)
    deleted: set[bytes] = field(default_factory=set)
    offsets_dirty: bool = False  # offsets or meta changed
    full: bool = False  # the next flush rewrites everything


class WriteBackCache:
    """Per-partition ``dict[bytes, bytes]`` with dirty/deleted key sets, staged offsets, a
    bookkeeping hash (``meta``) and the version Redis holds.

    A partition is held between :meth:`hold` (its state loaded) and :meth:`drop`; reads and
    writes of a partition not held raise :class:`PartitionNotLoadedError`. ``name`` (the table)
    only appears in error messages; ``writer`` goes into the versions this cache writes.
    """

    def __init__(self, name: str, writer: str = "w") -> None:
        self.name = name
        self.writer = writer
        self._parts: dict[int, _Partition] = {}

    # ------------------------------------------------------------------ holding partitions

    def hold(
        self,
        partition: int,
        data: dict[bytes, bytes],
        offsets: dict[str, int],
        version: str = "",
        meta: dict[str, str] | None = None,
    ) -> None:
        """Hold ``partition`` with the state, offsets, version and bookkeeping loaded for it,
        nothing pending."""
        self._parts[partition] = _Partition(data, offsets, version, dict(meta or {}))

    def drop(self, partition: int) -> None:
        """Forget ``partition``, pending writes included."""
        self._parts.pop(partition, None)

    def holds(self, partition: int) -> bool:
        return partition in self._parts

    def partitions(self) -> set[int]:
        """Partitions currently held."""
        return set(self._parts)

    def _part(self, partition: int) -> _Partition:
        try:
            return self._parts[partition]
        except KeyError:
            raise PartitionNotLoadedError(self.not_loaded_message(partition)) from None

    def not_loaded_message(self, partition: int) -> str:
        held = sorted(self._parts)
        return (
            f"RedisStore {self.name!r}: partition {partition} is not loaded "
            f"(held: {held}); it is loaded on rebalance or with load_partition()"
        )

    # ------------------------------------------------------------------ one partition

    def get_in(self, partition: int, key: bytes) -> bytes | None:
        return self._part(partition).data.get(key)

    def set_in(self, partition: int, key: bytes, value: bytes) -> None:
        part = self._part(partition)
        part.data[key] = value
        part.dirty.add(key)
        part.deleted.discard(key)

    def delete_in(self, partition: int, key: bytes) -> None:
        part = self._part(partition)
        part.data.pop(key, None)
        part.dirty.discard(key)
        part.deleted.add(key)

    def items_in(self, partition: int) -> Iterator[tuple[bytes, bytes]]:
        """Iterate a snapshot of the partition's items (safe against concurrent writes)."""
        return iter(list(self._part(partition).data.items()))

    def size_in(self, partition: int) -> int:
        return len(self._part(partition).data)

    def reset(self, partition: int, offsets: dict[str, int]) -> None:
        """Empty the partition and give it ``offsets``: the next flush rewrites it whole."""
        part = self._part(partition)
        part.data.clear()
        part.dirty.clear()
        part.deleted.clear()
        part.offsets = dict(offsets)
        part.offsets_dirty = True
        part.full = True

    # ------------------------------------------------------------------ every partition

    def get(self, key: bytes, partition: int | None) -> bytes | None:
        """``key`` in ``partition`` if held, else in any held partition."""
        if partition is not None:
            part = self._parts.get(partition)
            if part is not None:
                return part.data.get(key)
        for part in self._parts.values():
            value = part.data.get(key)
            if value is not None:
                return value
        return None

    def contains(self, key: bytes, partition: int | None) -> bool:
        """Whether ``key`` is in ``partition`` if held, else in any held partition."""
        if partition is not None:
            part = self._parts.get(partition)
            if part is not None:
                return key in part.data
        return any(key in part.data for part in self._parts.values())

    def delete(self, key: bytes, partition: int | None) -> None:
        """Delete ``key`` from ``partition`` if held, else wherever it is."""
        if partition is not None and partition in self._parts:
            self.delete_in(partition, key)
            return
        for p, part in self._parts.items():
            if key in part.data:
                self.delete_in(p, key)

    def keys(self) -> Iterator[bytes]:
        for part in list(self._parts.values()):
            yield from list(part.data.keys())

    def values(self) -> Iterator[bytes]:
        for part in list(self._parts.values()):
            yield from list(part.data.values())

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        for part in list(self._parts.values()):
            yield from list(part.data.items())

    def size(self) -> int:
        return sum(len(part.data) for part in self._parts.values())

    def clear(self) -> None:
        """Delete every key of every held partition (pending until the next flush)."""
        for part in self._parts.values():
            part.deleted.update(part.data)
            part.dirty.clear()
            part.data.clear()

    # ------------------------------------------------------------------ pending writes

    def has_dirty(self, partitions: Iterable[int] | None = None) -> bool:
        targets = list(self._parts) if partitions is None else partitions
        for p in targets:
            part = self._parts.get(p)
            if part is not None and (part.dirty or part.deleted or part.offsets_dirty or part.full):
                return True
        return False

    def dirty_count(self, partition: int | None = None) -> int:
        """Pending writes (keys set + keys deleted), for one partition or all."""
        targets = list(self._parts) if partition is None else [partition]
        total = 0
        for p in targets:
            part = self._parts.get(p)
            if part is not None:
                total += len(part.dirty) + len(part.deleted)
        return total

    def mark_full(self, partition: int) -> None:
        """The next flush of ``partition`` rewrites it whole (no-op when not held)."""
        part = self._parts.get(partition)
        if part is not None:
            part.full = True

    # ------------------------------------------------------------------ offsets, bookkeeping

    def offset(self, partition: int, name: str) -> int | None:
        """Offset ``name`` ("topic:partition") of a held partition; None when unknown."""
        part = self._parts.get(partition)
        if part is None:
            return None
        return part.offsets.get(name)

    def set_offset(self, partition: int, name: str, offset: int) -> bool:
        """Stage ``offset`` with the partition's data; False (nothing staged) when not held."""
        part = self._parts.get(partition)
        if part is None:
            return False
        part.offsets[name] = int(offset)
        part.offsets_dirty = True
        return True

    def meta(self, partition: int) -> dict[str, str]:
        """A copy of the partition's bookkeeping (empty when not held)."""
        part = self._parts.get(partition)
        return dict(part.meta) if part is not None else {}

    def set_meta(self, partition: int, name: str, value: str | None) -> bool:
        """Stage a bookkeeping field (None removes it) with the partition's data; False when
        the partition is not held."""
        part = self._parts.get(partition)
        if part is None:
            return False
        if value is None:
            part.meta.pop(name, None)
        else:
            part.meta[name] = value
        part.offsets_dirty = True
        return True

    def version(self, partition: int) -> str | None:
        """The version this cache expects Redis to hold for ``partition`` (None: not held)."""
        part = self._parts.get(partition)
        return part.version if part is not None else None

    # ------------------------------------------------------------------ flush

    def snapshot(self, partition: int) -> FlushSnapshot | None:
        """Take ``partition``'s pending writes for a flush (None when not held or nothing is
        pending). Writes made while the flush is in flight go to fresh sets."""
        part = self._parts.get(partition)
        if part is None:
            return None
        dirty, deleted, offsets_dirty, full = part.dirty, part.deleted, part.offsets_dirty, part.full
        if not dirty and not deleted and not offsets_dirty and not full:
            return None
        part.dirty = set()
        part.deleted = set()
        part.offsets_dirty = False
        part.full = False
        data = part.data
        return FlushSnapshot(
            partition=partition,
            values=list(data.items()) if full else [(key, data[key]) for key in dirty],
            removed=[] if full else list(deleted),
            offsets={name: str(value) for name, value in part.offsets.items()},
            meta=dict(part.meta),
            expected=part.version,
            version=next_version(part.version, self.writer),
            full=full,
            dirty=frozenset(dirty),
            deleted=frozenset(deleted),
            offsets_dirty=offsets_dirty,
        )

    def written(self, snapshot: FlushSnapshot) -> None:
        """Record that ``snapshot`` is in Redis: Redis now holds its version."""
        part = self._parts.get(snapshot.partition)
        if part is not None:
            part.version = snapshot.version

    def restore(self, snapshot: FlushSnapshot) -> None:
        """Give a failed flush's writes back as pending (no-op if the partition was dropped).

        The values are not restored: the cache holds each key's latest value, and a key touched
        after the snapshot already carries its latest intent (set or delete)."""
        part = self._parts.get(snapshot.partition)
        if part is None:  # dropped meanwhile
            return
        part.dirty.update(snapshot.dirty - part.deleted - part.dirty)
        part.deleted.update(snapshot.deleted - part.dirty - part.deleted)
        if snapshot.offsets_dirty:
            part.offsets_dirty = True
        if snapshot.full:
            part.full = True
