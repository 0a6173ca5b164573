"""On assignment, each routed partition resumes from the offset saved with its state in Redis, not
from a later group commit: Faust seeks to the commits, then this hook seeks back (see plan)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

import faust
from faust.types import TP

from streams.faust_compat import committed_offsets
from streams.integrity.markers import REBUILD
from streams.integrity.plan import ResumePlan, plan_resume

__all__ = ["ResumeFromStore", "ResumableStore", "install_after_seek"]

log = logging.getLogger(__name__)


class ResumableStore(Protocol):
    """What resuming needs of the Redis store (`streams.store.faust_store.RedisStore`)."""

    def partitions(self) -> set[int]: ...
    def persisted_offset(self, tp: Any) -> int | None: ...
    def meta(self, partition: int) -> dict[str, str]: ...
    def set_meta(self, partition: int, name: str, value: str | None) -> bool: ...
    def reset_partition(self, partition: int, offsets: Any) -> None: ...
    def record_lost_writes(self, partition: int, evidence: str, action: str) -> None: ...
    async def flush(self, partitions: Iterable[int] | None = None) -> int: ...


def install_after_seek(app: faust.App, hook: Callable[[Any], Awaitable[None]]) -> None:
    """Run ``hook(consumer)`` each time Faust has sought the assigned partitions to their
    committed offsets, before their messages flow (its recovery calls `perform_seek` last)."""
    transport: Any = app.transport
    base = transport.Consumer

    class AfterSeekConsumer(base):  # type: ignore[misc, valid-type]
        async def perform_seek(self) -> None:
            await super().perform_seek()
            await hook(self)

    transport.Consumer = AfterSeekConsumer


class ResumeFromStore:
    """The hook: plan each held routed partition, count lost writes, empty and mark for a
    rebuild the partitions the routed topic can no longer complete, and seek back."""

    def __init__(
        self,
        store: Callable[[], ResumableStore],
        routed_topic: str,
        on_reset: Callable[[set[int]], None],
        on_rebuild: Callable[[set[int]], None],
        on_planned: Callable[[dict[int, int]], None] | None = None,
    ) -> None:
        self.store = store
        self.routed_topic = routed_topic
        self.on_reset = on_reset  # the decoded states of these partitions are stale
        self.on_rebuild = on_rebuild  # these partitions need the input topics read again
        # partition -> first offset to apply: the processor applies a partition only once planned
        # (`streams.sequence`), as Faust lets messages flow before and while this hook runs
        self.on_planned = on_planned
        self.last_plans: dict[int, ResumePlan] = {}

    async def __call__(self, consumer: Any) -> None:
        store = self.store()
        held = store.partitions()
        tps = sorted(
            tp for tp in consumer.assignment() if tp.topic == self.routed_topic and tp.partition in held
        )
        if not tps:
            return
        earliest = await consumer.earliest_offsets(*tps)
        committed = committed_offsets(consumer)
        seeks: dict[TP, int] = {}
        reset: set[int] = set()
        for tp in tps:
            partition = tp.partition
            saved = store.persisted_offset(tp)
            plan = plan_resume(saved, committed.get(tp), int(earliest.get(tp) or 0))
            self.last_plans[partition] = plan
            if plan.lost_writes:
                store.record_lost_writes(
                    partition,
                    f"its state is saved up to offset {saved} of {tp.topic}, the group committed "
                    f"{committed.get(tp)}",
                    f"replaying {tp.topic} from offset {plan.start}",
                )
            if plan.rebuild:
                log.warning(
                    "partition %s: %s keeps offsets from %s only, the state in Redis needs them "
                    "from %s: emptying it, replaying %s from %s and reading the input topics again",
                    partition,
                    tp.topic,
                    plan.start,
                    0 if saved is None else saved + 1,
                    tp.topic,
                    plan.start,
                )
                store.reset_partition(partition, {tp: plan.start - 1})
                store.set_meta(partition, REBUILD, datetime.now(UTC).isoformat(timespec="seconds"))
                reset.add(partition)
            if plan.seek is not None:
                seeks[tp] = plan.seek
        if reset:
            self.on_reset(reset)
            try:  # the emptied state and its rebuild mark in Redis before anything is applied
                await store.flush(reset)
            except Exception as exc:  # Redis down: kept pending; the agent's flushes retry it
                log.warning("partitions %s: reset not written to Redis yet: %s", sorted(reset), exc)
        if seeks:
            log.info(
                "seeking %s back to the offsets saved with the state in Redis: %s",
                self.routed_topic,
                {tp.partition: offset for tp, offset in seeks.items()},
            )
        if self.on_planned is not None:
            # Planned first, then every partition sought to its start: a message delivered
            # before the plan was set aside by the processor and comes again; one delivered
            # between the two is judged by the plan.
            self.on_planned({tp.partition: self.last_plans[tp.partition].start for tp in tps})
            await consumer.seek_wait({tp: self.last_plans[tp.partition].start for tp in tps})
        elif seeks:
            await consumer.seek_wait(seeks)
        rebuild = {tp.partition for tp in tps if REBUILD in store.meta(tp.partition)}
        if rebuild:
            self.on_rebuild(rebuild)
