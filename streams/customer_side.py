"""The customer side of the worker: customer facts routed by customer, applied to customer states
with the core's batch driver, and the summaries they produce, versioned so that a newer one
always replaces an older one on the rep side, whatever crashed and was replayed in between.

Exactness under kill -9 at any point:
* a customer partition's states and its applied offset are written in one Redis transaction;
  a routed message at or below that offset is skipped, so a replay applies each fact once (and
  the customer-side transitions are idempotent anyway: purchases by event id, maxima);
* summaries are sent, and acknowledged by Kafka, BEFORE the customer states and offset are
  written: a crash in between replays the facts and sends the summaries again;
* a summary carries (epoch, sequence): the epoch of a partition's owner is above every epoch
  used before for that partition (the consumer group generation, or one more than the epoch
  stored with the partition, written before the first summary of the epoch is sent), the
  sequence grows with every batch; the rep side keeps the newest version, so a resent or stale
  summary changes nothing and the last one sent always wins;
* on the rep side, summaries travel in the rep-partitioned topic like events, applied and
  stored with the offset of their message: the rep side is exact under redelivery as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kpi_core.codec import decode_customer, encode_customer, split_store_key, store_key
from kpi_core.customers import CustomerState, CustomerSummary, summaries
from kpi_core.engine import KpiEngine, apply_customer_batch
from kpi_core.events import Event, Rejection, decode_event
from streams.processor import OncePerPartition, PartitionStore
from streams.routing import decode_batch, decode_resend, is_resend, partition_for
from streams.sequence import OffsetSequence, Verdict

EPOCH_KEY = b"\x00epoch"  # per customer partition; no customer key starts with a NUL


@dataclass(slots=True)
class CustomerResult:
    summaries: list[tuple[str, CustomerSummary]] = field(default_factory=list)
    facts: int = 0  # routed facts in the message (applied, already known, or not kept)
    skipped: bool = False  # already applied, or out of turn (not applied)
    resume_at: int | None = None  # out of turn: the offset the consumer must go back to


class PartitionedCustomers:
    """Customer states of the owned customer partitions, loaded from the store on first use."""

    def __init__(self, store: PartitionStore) -> None:
        self.store = store
        self.partitions: dict[int, dict[str, CustomerState]] = {}

    def customers(self, partition: int) -> dict[str, CustomerState]:
        found = self.partitions.get(partition)
        if found is None:
            found = self.partitions[partition] = {}
            for key, value in self.store.items_in(partition):
                if key != EPOCH_KEY:
                    customer_id, _ = split_store_key(key)
                    found[customer_id] = decode_customer(customer_id, value)
        return found

    def stored_epoch(self, partition: int) -> int:
        raw = self.store.get_in(partition, EPOCH_KEY)
        return int(raw) if raw is not None else 0

    def release(self, partitions: set[int]) -> None:
        for partition in partitions:
            self.partitions.pop(partition, None)

    def owned(self) -> set[int]:
        return set(self.store.partitions())


class CustomerProcessor:
    """Applies routed customer facts; the summaries are sent by the agent, then `stage()`."""

    def __init__(
        self,
        engine: KpiEngine,
        customers: PartitionedCustomers,
        offset_tp: Callable[[int], Any],
        generation: Callable[[], int],
        partitions_count: int = 1,
        prune_every_s: float = 60.0,
        sequence: OffsetSequence | None = None,
    ) -> None:
        self.sequence = sequence if sequence is not None else OffsetSequence(strict=False)
        self.partitions_count = partitions_count  # of the rep side's routed topic
        self.engine = engine
        self.customers = customers
        self.offset_tp = offset_tp
        self.generation = generation
        self._prune_due = OncePerPartition(prune_every_s)
        self._epochs: dict[int, int] = {}  # partition -> this owner's epoch
        self.new_epochs: set[int] = set()  # epochs chosen but not yet written to the store
        self._sequence = 0
        self._unstaged: dict[int, dict[str, CustomerState]] = {}
        self._forgotten: dict[int, set[str]] = {}
        self._unstaged_offsets: dict[int, int] = {}

    def epoch(self, partition: int) -> int:
        epoch = self._epochs.get(partition)
        if epoch is None:
            stored = self.customers.stored_epoch(partition)
            epoch = self._epochs[partition] = max(self.generation(), stored + 1)
            self.customers.store.set_in(partition, EPOCH_KEY, str(epoch).encode())
            self.new_epochs.add(partition)
        return epoch

    def release(self, partitions: set[int]) -> None:
        for partition in partitions:
            self._epochs.pop(partition, None)
            self.new_epochs.discard(partition)
        self.customers.release(partitions)

    def apply_batch(self, partition: int, offset: int, value: bytes) -> CustomerResult:
        result = CustomerResult()
        applied = self._unstaged_offsets.get(partition)
        if applied is None:
            applied = self.customers.store.persisted_offset(self.offset_tp(partition))
        verdict = self.sequence.judge(partition, offset, applied)
        if verdict is not Verdict.APPLY:
            result.skipped = True
            if verdict is Verdict.OUT_OF_TURN:
                result.resume_at = self.sequence.expected(partition, applied)
            return result
        if is_resend(value):
            return self._resend(partition, offset, decode_resend(value), result)
        rules = self.engine.rules
        events: list[Event] = []
        for item in decode_batch(value):
            result.facts += 1
            try:
                events.append(decode_event(item.raw, rules))
            except Rejection:
                continue  # the rep side judges and dead-letters the event
        customers = self.customers.customers(partition)
        before = set(customers)
        self._sequence += 1
        version = (self.epoch(partition), self._sequence)
        outcome = apply_customer_batch(
            self.engine, events, customers, version, prune=self._prune_due(partition)
        )
        result.summaries = outcome.summaries
        self._unstaged.setdefault(partition, {}).update(outcome.changed)
        self._forgotten.setdefault(partition, set()).update(before - set(customers))
        self._unstaged_offsets[partition] = offset
        return result

    def _resend(
        self, partition: int, offset: int, rep_partitions: set[int], result: CustomerResult
    ) -> CustomerResult:
        """Summaries again, newly versioned, of every customer held by a rep of `rep_partitions`."""
        self._sequence += 1
        version = (self.epoch(partition), self._sequence)
        count = self.partitions_count
        for state in self.customers.customers(partition).values():
            if any(partition_for(rep, count) in rep_partitions for rep in state.holders):
                result.summaries.extend(summaries(state, version))
        self._unstaged_offsets[partition] = offset
        return result

    def stage(self) -> set[int]:
        """Put the changed customer states and their partition's offset in the store (written
        together at the next flush); call only after the summaries are acknowledged."""
        owned = self.customers.owned()
        staged: set[int] = set()
        store = self.customers.store
        for partition, offset in self._unstaged_offsets.items():
            if partition not in owned:
                continue
            for customer_id in self._forgotten.get(partition, ()):
                store.delete_in(partition, store_key(customer_id, ""))
            for customer_id, state in self._unstaged.get(partition, {}).items():
                store.set_in(partition, store_key(customer_id, ""), encode_customer(state))
            store.set_persisted_offset(self.offset_tp(partition), offset)
            staged.add(partition)
        self._unstaged.clear()
        self._forgotten.clear()
        self._unstaged_offsets.clear()
        return staged
