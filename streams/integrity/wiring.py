"""Attach the integrity checks to a worker's app: the resume hook, the rebuild service, and what
they report (for `/readyz`, `/kpis` and the metrics)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import faust

from kpi_core.coverage import incomplete_periods
from kpi_core.engine import KpiEngine, customer_key
from kpi_core.state import Horizon
from streams.connections import aiokafka_kwargs
from streams.integrity.markers import INCOMPLETE, parse_instant
from streams.integrity.rebuild import RebuildService
from streams.integrity.resume import ResumableStore, ResumeFromStore, install_after_seek
from streams.metrics import KpiMetrics
from streams.routing import encode_resend
from streams.settings import Settings

__all__ = ["Integrity", "attach_integrity"]


class Integrity:
    """What the worker knows about the trustworthiness of the state it owns (the rep side's; and
    the customer side's, whose partitions are reported as `customers-<p>`)."""

    def __init__(
        self,
        store: Callable[[], Any],
        engine: KpiEngine,
        rebuild: RebuildService,
        customer_store: Callable[[], Any] | None = None,
        customer_rebuild: RebuildService | None = None,
    ) -> None:
        self.store = store
        self.engine = engine
        self.rebuild = rebuild
        self.customer_store = customer_store
        self.customer_rebuild = customer_rebuild
        self._rollbacks_exported = 0

    def incomplete(self) -> dict[int, dict[str, Any]]:
        """Owned partitions whose retained periods may miss events the input topics no longer
        hold: partition -> {"before": instant, "periods": {kind: [first start, last start]}}."""
        store = self.store()
        horizon = self._horizon()
        out: dict[int, dict[str, Any]] = {}
        for partition in sorted(store.partitions()):
            entry = self._incomplete_entry(store, horizon, partition)
            if entry is not None:
                out[partition] = entry
        return out

    def _horizon(self) -> Horizon:
        engine = self.engine
        return Horizon.at(engine.clock.now(), engine.calendar, engine.keep)

    def _incomplete_entry(self, store: Any, horizon: Horizon, partition: int) -> dict[str, Any] | None:
        """One partition's entry of :meth:`incomplete` (None: complete, or not held)."""
        before = _incomplete_before(store, partition)
        if before is None:
            return None
        periods = incomplete_periods(self.engine.calendar, horizon, before)
        if not periods:
            return None
        return {"before": before.isoformat(), "periods": _dates(periods)}

    def customers_incomplete(self) -> dict[str, str]:
        """Customer partitions rebuilt when the input topics no longer held every fact: `before`
        instants (the customer figures of every rep may miss purchases before them)."""
        if self.customer_store is None:
            return {}
        store = self.customer_store()
        out: dict[str, str] = {}
        for partition in sorted(store.partitions()):
            before = _incomplete_before(store, partition)
            if before is not None:
                out[f"customers-{partition}"] = before.isoformat()
        return out

    def rebuilding(self) -> list[int]:
        return sorted(self.rebuild.rebuilding)

    def repairing(self) -> list[int]:
        return sorted(getattr(self.store(), "repairing", ()))

    def customers_busy(self) -> dict[str, list[int]]:
        """Customer partitions being rewritten from memory or rebuilt from the input."""
        if self.customer_store is None or self.customer_rebuild is None:
            return {"repairing": [], "rebuilding": []}
        return {
            "repairing": sorted(getattr(self.customer_store(), "repairing", ())),
            "rebuilding": sorted(self.customer_rebuild.rebuilding),
        }

    def ready(self) -> bool:
        """Not ready while a partition is rewritten from memory or rebuilt from the input."""
        busy = self.customers_busy()
        return not (self.rebuilding() or self.repairing() or busy["repairing"] or busy["rebuilding"])

    def status(self) -> dict[str, Any]:
        store = self.store()
        return {
            "store_rollbacks": self._rollbacks(),
            "customers": self.customers_busy(),
            "last_rollback": getattr(store, "last_rollback", None),
            "repairing": self.repairing(),
            "rebuilding": self.rebuilding(),
            "last_rebuild": self.rebuild.last,
            "incomplete": {str(p): value for p, value in self.incomplete().items()},
            "customers_incomplete": self.customers_incomplete(),
        }

    def export(self, metrics: KpiMetrics) -> None:
        """Bring the integrity metrics up to date (called by the worker's gauge timer)."""
        store = self.store()
        rollbacks = self._rollbacks()
        if rollbacks > self._rollbacks_exported:
            metrics.store_rollbacks.inc(rollbacks - self._rollbacks_exported)
            self._rollbacks_exported = rollbacks
        incomplete = self.incomplete()
        metrics.state_incomplete.clear()  # a partition that moved takes its series with it
        for partition in store.partitions():
            metrics.state_incomplete.labels(str(partition)).set(1 if partition in incomplete else 0)
        for label in self.customers_incomplete():
            metrics.state_incomplete.labels(label).set(1)
        metrics.state_rebuilding.set(len(self.rebuilding()))

    def _rollbacks(self) -> int:
        total = int(getattr(self.store(), "rollbacks", 0))
        if self.customer_store is not None:
            total += int(getattr(self.customer_store(), "rollbacks", 0))
        return total

    def incomplete_for(self, partition: int, kind: str) -> dict[str, Any] | None:
        """What `/kpis` adds for a rep of ``partition`` asked about periods of ``kind``."""
        # Only this partition: the lookup runs on every `/kpis` request.
        entry = self._incomplete_entry(self.store(), self._horizon(), partition)
        if entry is None or kind not in entry["periods"]:
            return None
        first, last = entry["periods"][kind]
        return {"before": entry["before"], "first_period": first, "last_period": last}


def _incomplete_before(store: Any, partition: int) -> datetime | None:
    """The partition's INCOMPLETE marker (None: absent, or the partition is not held)."""
    return parse_instant(store.meta(partition).get(INCOMPLETE))


def _dates(periods: dict[str, tuple[date, date]]) -> dict[str, list[str]]:
    return {kind: [first.isoformat(), last.isoformat()] for kind, (first, last) in periods.items()}


def attach_integrity(
    app: faust.App,
    store: Callable[[], ResumableStore],
    settings: Settings,
    engine: KpiEngine,
    on_reset: Callable[[set[int]], None],
    customers: tuple[Callable[[], ResumableStore], Callable[[set[int]], None]] | None = None,
    on_planned: Callable[[dict[int, int]], None] | None = None,
    on_customers_planned: Callable[[dict[int, int]], None] | None = None,
) -> Integrity:
    """Install the resume hooks and the rebuild services on ``app`` (before it starts): for the
    rep side and, with ``customers`` (its store and its reset), for the customer side.

    A rep partition rebuilt from the input topics asks the customer side to send its summaries
    again: they travelled in the routed messages that were lost."""

    async def resend(partitions: set[int]) -> None:
        await _ask_summaries_again(settings, partitions)

    rebuild = RebuildService(
        settings, engine, store, after=resend if customers is not None else None
    )
    services: list[RebuildService] = [rebuild]
    install_after_seek(
        app, ResumeFromStore(store, settings.routed_topic, on_reset, rebuild.request, on_planned)
    )
    customer_store: Callable[[], ResumableStore] | None = None
    customer_rebuild: RebuildService | None = None
    if customers is not None:
        customer_store, customer_reset = customers
        customer_rebuild = RebuildService(
            settings, engine, customer_store, topic=settings.customer_topic, key_of=customer_key
        )
        services.append(customer_rebuild)
        install_after_seek(
            app,
            ResumeFromStore(
                customer_store,
                settings.customer_topic,
                customer_reset,
                customer_rebuild.request,
                on_customers_planned,
            ),
        )

    @app.service
    class _Rebuild(faust.Service):  # the rebuilds run and stop with the app
        async def on_start(self) -> None:
            for service in services:
                await service.start()

        async def on_stop(self) -> None:
            for service in services:
                await service.stop()

    return Integrity(store, engine, rebuild, customer_store, customer_rebuild)


async def _ask_summaries_again(settings: Settings, rep_partitions: set[int]) -> None:
    """One resend request to every partition of the customer side's topic (each customer
    partition answers for its own customers)."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", **aiokafka_kwargs(settings)
    )
    await producer.start()
    try:
        value = encode_resend(rep_partitions)
        sends = [
            await producer.send(settings.customer_topic, value, partition=p)
            for p in range(settings.partitions)
        ]
        for delivery in sends:
            await delivery
    finally:
        await producer.stop()
