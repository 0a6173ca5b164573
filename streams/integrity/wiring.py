"""Attach the integrity checks to a worker's app: the resume hook, the rebuild service, and what
they report (for `/readyz`, `/kpis` and the metrics)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import faust

from kpi_core.coverage import incomplete_periods
from kpi_core.engine import KpiEngine
from kpi_core.state import Horizon
from streams.integrity.markers import INCOMPLETE, parse_instant
from streams.integrity.rebuild import RebuildService
from streams.integrity.resume import ResumableStore, ResumeFromStore, install_after_seek
from streams.metrics import KpiMetrics
from streams.settings import Settings

__all__ = ["Integrity", "attach_integrity"]


class Integrity:
    """What the worker knows about the trustworthiness of the state it owns."""

    def __init__(self, store: Callable[[], Any], engine: KpiEngine, rebuild: RebuildService) -> None:
        self.store = store
        self.engine = engine
        self.rebuild = rebuild
        self._rollbacks_exported = 0

    def incomplete(self) -> dict[int, dict[str, Any]]:
        """Owned partitions whose retained periods may miss events the input topics no longer
        hold: partition -> {"before": instant, "periods": {kind: [first start, last start]}}."""
        store = self.store()
        engine = self.engine
        horizon = Horizon.at(engine.clock.now(), engine.calendar, engine.keep)
        out: dict[int, dict[str, Any]] = {}
        for partition in sorted(store.partitions()):
            before = parse_instant(store.meta(partition).get(INCOMPLETE))
            if before is None:
                continue
            periods = incomplete_periods(engine.calendar, horizon, before)
            if periods:
                out[partition] = {"before": before.isoformat(), "periods": _dates(periods)}
        return out

    def rebuilding(self) -> list[int]:
        return sorted(self.rebuild.rebuilding)

    def repairing(self) -> list[int]:
        return sorted(getattr(self.store(), "repairing", ()))

    def ready(self) -> bool:
        """Not ready while a partition is rewritten from memory or rebuilt from the input."""
        return not self.rebuilding() and not self.repairing()

    def status(self) -> dict[str, Any]:
        store = self.store()
        return {
            "store_rollbacks": int(getattr(store, "rollbacks", 0)),
            "last_rollback": getattr(store, "last_rollback", None),
            "repairing": self.repairing(),
            "rebuilding": self.rebuilding(),
            "last_rebuild": self.rebuild.last,
            "incomplete": {str(p): value for p, value in self.incomplete().items()},
        }

    def export(self, metrics: KpiMetrics) -> None:
        """Bring the integrity metrics up to date (called by the worker's gauge timer)."""
        store = self.store()
        rollbacks = int(getattr(store, "rollbacks", 0))
        if rollbacks > self._rollbacks_exported:
            metrics.store_rollbacks.inc(rollbacks - self._rollbacks_exported)
            self._rollbacks_exported = rollbacks
        incomplete = self.incomplete()
        metrics.state_incomplete.clear()  # a partition that moved takes its series with it
        for partition in store.partitions():
            metrics.state_incomplete.labels(str(partition)).set(1 if partition in incomplete else 0)
        metrics.state_rebuilding.set(len(self.rebuilding()))

    def incomplete_for(self, partition: int, kind: str) -> dict[str, Any] | None:
        """What `/kpis` adds for a rep of ``partition`` asked about periods of ``kind``."""
        entry = self.incomplete().get(partition)
        if entry is None or kind not in entry["periods"]:
            return None
        first, last = entry["periods"][kind]
        return {"before": entry["before"], "first_period": first, "last_period": last}


def _dates(periods: dict[str, tuple[date, date]]) -> dict[str, list[str]]:
    return {kind: [first.isoformat(), last.isoformat()] for kind, (first, last) in periods.items()}


def attach_integrity(
    app: faust.App,
    store: Callable[[], ResumableStore],
    settings: Settings,
    engine: KpiEngine,
    on_reset: Callable[[set[int]], None],
) -> Integrity:
    """Install the resume hook and the rebuild service on ``app`` (before it starts)."""
    rebuild = RebuildService(settings, engine, store)

    @app.service
    class _Rebuild(faust.Service):  # the rebuild runs and stops with the app
        async def on_start(self) -> None:
            await rebuild.start()

        async def on_stop(self) -> None:
            await rebuild.stop()

    install_after_seek(app, ResumeFromStore(store, settings.routed_topic, on_reset, rebuild.request))
    return Integrity(store, engine, rebuild)
