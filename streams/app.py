"""The Faust application: ingest service, the agent over routed micro-batches, the Redis-backed
table, and the HTTP views (`/kpis`, `/healthz`, `/readyz`, `/metrics`). Built by `create_app`."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import faust
from faust.types import TP
from prometheus_client import CollectorRegistry

from kpi_core.clock import KpiClock
from kpi_core.engine import KpiEngine
from kpi_rules import Rules
from streams.connections import faust_credentials, redis_store_options, redis_store_url
from streams.customer_side import CustomerProcessor, PartitionedCustomers
from streams.deadletter import dead_letter_headers
from streams.faust_compat import recovery_completed
from streams.http import register_views
from streams.ingest import IngestService
from streams.integrity.resume import ResumableStore
from streams.integrity.wiring import Integrity, attach_integrity
from streams.metrics import KpiMetrics, SalesExposition
from streams.processor import BatchProcessor, PartitionedStates, PartitionStore
from streams.routing import encode_summaries, summaries_by_partition
from streams.sequence import OffsetSequence
from streams.settings import Settings

log = logging.getLogger(__name__)

HOLE_CHECK_INTERVAL_S = 5.0  # a partition standing still two checks in a row is read again
TABLE_NAME = "kpi_state"
CUSTOMER_TABLE_NAME = "kpi_customers"  # the customer side's states (issue 12), keyed by customer
DEFAULT_EXPORT_PERIODS: tuple[str, ...] = ("day", "week", "month", "quarter", "year")
# Routed messages applied per round, and how long a round waits for more before it runs with
# what it has (the latency this can add when traffic is light).
TAKE_MAX_MESSAGES = 16
TAKE_WITHIN_S = 0.02


@dataclass
class Worker:
    """Everything `create_app` wires together, for tests and the CLI."""

    app: faust.App
    settings: Settings
    rules: Rules
    engine: KpiEngine
    metrics: KpiMetrics
    registry: CollectorRegistry
    ingest: IngestService
    table: Any
    customer_table: Any = None
    states: PartitionedStates | None = None
    processor: BatchProcessor | None = None
    customer_processor: CustomerProcessor | None = None
    sales: SalesExposition | None = None
    states_factory: Callable[[], PartitionedStates] | None = None
    integrity: Integrity | None = None

    def get_states(self) -> PartitionedStates | None:
        """The rep states, built on first use (a restarted worker serves /kpis before any batch)."""
        if self.states is None and self.states_factory is not None:
            return self.states_factory()
        return self.states

    @property
    def store(self) -> Any:
        return self.table.data

    def ready(self) -> bool:
        app = self.app
        # Not ready while Redis writes fail: batches are paused (kept, retried), not processed.
        store_healthy = getattr(self.table.data, "healthy", True)
        # Nor while a partition is rewritten into Redis or rebuilt from the input topics.
        intact = self.integrity is None or self.integrity.ready()
        return bool(
            self.ingest.running
            and not app.rebalancing
            and recovery_completed(app)
            and store_healthy
            and intact
        )


def create_app(settings: Settings, rules: Rules, registry: CollectorRegistry | None = None) -> Worker:
    registry = registry or CollectorRegistry()
    engine = KpiEngine(rules, KpiClock(mode=settings.clock))
    metrics = KpiMetrics(registry)
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        broker_credentials=faust_credentials(settings),
        store=redis_store_url(settings),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        datadir=str(settings.data_dir / settings.app_id),
        table_standby_replicas=0,
        stream_buffer_maxsize=64,
        broker_commit_interval=1.0,
        # Faust's default (60 s) keeps a crashed worker's partitions assigned to it, frozen, for a
        # minute before anyone (its own restart included) takes over; heartbeats run in the
        # consumer thread, so a busy event loop does not make a live worker miss them.
        broker_session_timeout=10.0,
        producer_max_request_size=4 * 1024 * 1024,
        consumer_max_fetch_size=16 * 1024 * 1024,
        web_enabled=True,
    )
    routed = app.topic(
        settings.routed_topic,
        partitions=settings.partitions,
        internal=True,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    deadletter = app.topic(settings.deadletter_topic, key_serializer="raw", value_serializer="raw")
    table = app.Table(
        TABLE_NAME,
        partitions=settings.partitions,
        schema=faust.Schema(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"),
        options=redis_store_options(settings) or None,  # KPI_REDIS_PASSWORD, kept out of the URL
    )
    customer_topic = app.topic(
        settings.customer_topic,
        partitions=settings.partitions,
        internal=True,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    customer_table = app.Table(
        CUSTOMER_TABLE_NAME,
        partitions=settings.partitions,
        schema=faust.Schema(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"),
        options=redis_store_options(settings) or None,
    )
    ingest = IngestService(settings, rules, metrics, loop=None, beacon=None)
    worker = Worker(app, settings, rules, engine, metrics, registry, ingest, table, customer_table)
    # The next offset each partition of the two internal topics may apply (see streams.sequence).
    rep_sequence = OffsetSequence()
    customer_sequence = OffsetSequence()

    def customer_processor() -> CustomerProcessor:
        if worker.customer_processor is None:
            worker.customer_processor = CustomerProcessor(
                engine,
                PartitionedCustomers(cast(PartitionStore, customer_table.data)),
                lambda p: TP(settings.customer_topic, p),
                lambda: int(getattr(app, "consumer_generation_id", 0) or 0),
                settings.partitions,
                sequence=customer_sequence,
            )
        return worker.customer_processor

    def states() -> PartitionedStates:
        if worker.states is None:
            worker.states = PartitionedStates(cast(PartitionStore, table.data), observe=engine.clock.observe)
            worker.states.churn_after = engine.churn_after
            worker.states.clock_now = engine.clock.now
            worker.processor = BatchProcessor(
                engine,
                worker.states,
                metrics,
                lambda p: TP(settings.routed_topic, p),
                sequence=rep_sequence,
            )
        return worker.states

    worker.states_factory = states

    def reset(partitions: set[int]) -> None:  # emptied to be rebuilt: decode them again
        if worker.states is not None:
            worker.states.release(partitions)

    def reset_customers(partitions: set[int]) -> None:
        if worker.customer_processor is not None:
            worker.customer_processor.release(partitions)

    worker.integrity = attach_integrity(
        app,
        lambda: cast(ResumableStore, table.data),
        settings,
        engine,
        reset,
        customers=(lambda: cast(ResumableStore, customer_table.data), reset_customers),
        on_planned=rep_sequence.planned,
        on_customers_planned=customer_sequence.planned,
    )

    async def resume_in_turn(
        topic: str, sequence: OffsetSequence, events: list[Any], results: list[Any]
    ) -> None:
        # Messages past the next offset were set aside (Faust acks them all the same): send the
        # consumer back to the next one, once per hole.
        sent_back = {
            e.message.partition: r.resume_at
            for e, r in zip(events, results, strict=True)
            if r.resume_at is not None
        }
        for partition, offset in sent_back.items():
            metrics.out_of_turn.labels(topic).inc()
            if sequence.seek_due(partition, offset):
                log.warning(
                    "%s partition %s: messages after offset %s were delivered before it; "
                    "reading again from there",
                    topic,
                    partition,
                    offset,
                )
                await app.consumer.seek_wait({TP(topic, partition): offset})
    worker.sales = SalesExposition(
        engine,
        lambda: states().current(engine.clock.now()),
        DEFAULT_EXPORT_PERIODS,
        lambda rep_id: states().versions.get(rep_id, 0),
    )

    @app.service
    class _Ingest(faust.Service):  # the ingest runs and stops with the app
        async def on_start(self) -> None:
            await _ensure_input_topics(app, settings)
            await ingest.start()

        async def on_stop(self) -> None:
            await ingest.stop()

    @app.agent(routed)
    async def apply_routed(stream: Any) -> None:
        # Several routed messages per round: each state part they change is encoded once and
        # each partition written in one transaction. take_events acks the messages only after
        # this body has run, so a message is never acked before its state is in Redis.
        async for events in stream.take_events(TAKE_MAX_MESSAGES, within=TAKE_WITHIN_S):
            states()
            processor = worker.processor
            assert processor is not None
            with metrics.batch_seconds.time():
                results = [
                    processor.apply_batch(e.message.partition, e.message.offset, e.value, stage=False)
                    for e in events
                ]
                partitions = processor.stage()
                sent = []
                for result in results:
                    for dead in result.dead:
                        metrics.rejected.labels(dead.reason).inc()
                        # force: not attached to the event (Faust would publish it only at the
                        # ack, after the flush below has stored this batch's offset: a crash in
                        # between would lose the dead letter, as the batch is then skipped).
                        sent.append(
                            await deadletter.send(
                                value=dead.raw,
                                headers=dead_letter_headers(
                                    dead.reason, dead.error, dead.topic, dead.partition, dead.offset
                                ),
                                force=True,
                            )
                        )
                for delivery in sent:
                    await delivery  # in Kafka before the batch counts as done
                await _flush_until_written(worker, partitions)
            await resume_in_turn(settings.routed_topic, rep_sequence, events, results)
            for result in results:
                if not result.skipped:
                    metrics.customer_summaries_received.inc(result.summaries)
                    metrics.applied.inc(result.applied)
                    metrics.duplicates.inc(result.duplicates)
                    metrics.batch_events.observe(result.applied + result.duplicates)
            metrics.observe_event_time(engine.clock.high_water, engine.clock.wall())

    @app.agent(customer_topic)
    async def apply_customer_facts(stream: Any) -> None:
        # The customer side: facts applied, summaries sent and acknowledged, THEN the customer
        # states and offsets written, then the messages acked (see streams/customer_side.py).
        async for events in stream.take_events(TAKE_MAX_MESSAGES, within=TAKE_WITHIN_S):
            processor = customer_processor()
            with metrics.customer_batch_seconds.time():
                results = [
                    processor.apply_batch(e.message.partition, e.message.offset, e.value)
                    for e in events
                ]
                items = [item for result in results for item in result.summaries]
                if items:
                    # A new epoch is in Redis before any summary of it is in Kafka.
                    await _flush_until_written(worker, set(processor.new_epochs), customer_table.data)
                    processor.new_epochs.clear()
                    deliveries = []
                    for partition, chunk in summaries_by_partition(items, settings.partitions):
                        deliveries.append(
                            await routed.send(value=encode_summaries(chunk), partition=partition, force=True)
                        )
                    for delivery in deliveries:
                        await delivery
                    metrics.customer_summaries.inc(len(items))
                await _flush_until_written(worker, processor.stage(), customer_table.data)
            await resume_in_turn(settings.customer_topic, customer_sequence, events, results)
            for result in results:
                if not result.skipped:
                    metrics.customer_facts.inc(result.facts)

    def by_side(tps: set[TP]) -> tuple[set[int], set[int]]:
        """The partitions of the routed (rep side) and customer topics among ``tps``."""
        routed = {tp.partition for tp in tps if tp.topic == settings.routed_topic}
        customer = {tp.partition for tp in tps if tp.topic == settings.customer_topic}
        return routed, customer

    async def _on_revoked(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        routed, customer = by_side(revoked)
        rep_sequence.forget(routed)
        customer_sequence.forget(customer)
        if worker.states is not None:
            worker.states.release(routed)
        if worker.customer_processor is not None:
            worker.customer_processor.release(customer)

    async def _on_assigned(sender: Any, assigned: set[TP], **kwargs: Any) -> None:
        owned, held = by_side(assigned)
        rep_sequence.forget(set(rep_sequence.starts) - owned)
        customer_sequence.forget(set(customer_sequence.starts) - held)
        metrics.owned_partitions.set(len(owned))
        if worker.states is not None:
            worker.states.release(set(worker.states.partitions) - owned)
        if worker.customer_processor is not None:
            worker.customer_processor.release(
                set(worker.customer_processor.customers.partitions) - held
            )

    # Faust's signal types expect a `signal` keyword these handlers take through **kwargs.
    app.on_partitions_revoked.connect(cast(Any, _on_revoked))
    app.on_partitions_assigned.connect(cast(Any, _on_assigned))

    @app.timer(interval=HOLE_CHECK_INTERVAL_S)
    async def _read_holes_again() -> None:
        # A message lost at the end of a burst has no later one to reveal it (streams.sequence).
        sides = (
            (settings.routed_topic, rep_sequence, cast(PartitionStore, table.data)),
            (settings.customer_topic, customer_sequence, cast(PartitionStore, customer_table.data)),
        )
        for topic, sequence, store in sides:
            for partition in sorted(sequence.starts):
                tp = TP(topic, partition)
                try:
                    highwater = app.consumer.highwater(tp)
                except Exception:  # not assigned any more (a rebalance under way)
                    continue
                offset = sequence.stalled(partition, store.persisted_offset(tp), highwater)
                if offset is not None:
                    metrics.out_of_turn.labels(topic).inc()
                    log.warning(
                        "%s partition %s: idle at offset %s with messages up to %s in Kafka; "
                        "reading again from %s",
                        topic,
                        partition,
                        offset,
                        highwater,
                        offset,
                    )
                    await app.consumer.seek_wait({tp: offset})

    @app.timer(interval=settings.metrics_interval_s)
    async def _refresh_gauges() -> None:
        metrics.ready.set(1 if worker.ready() else 0)
        metrics.store_healthy.set(1 if getattr(table.data, "healthy", True) else 0)
        if worker.states is not None:
            metrics.owned_reps.set(sum(len(r) for r in worker.states.partitions.values()))
        if worker.integrity is not None:
            worker.integrity.export(metrics)
        stats = getattr(table.data, "recovery_stats", None)
        if stats:
            metrics.recovery_keys.set(stats.get("keys", 0))
            metrics.recovery_seconds.set(stats.get("seconds", 0.0))
        await _update_consumer_lag(worker)

    if settings.clock == "event":

        @app.timer(interval=1.0)
        async def _share_event_clock() -> None:
            await share_event_clock(worker)

    register_views(worker)
    return worker


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def share_event_clock(worker: Worker) -> None:
    """With KPI_CLOCK=event, "now" is the highest event time seen by ANY worker of the app, so
    every worker (and so /kpis and /metrics) agrees whoever owns a rep."""
    clock = worker.engine.clock
    local = None if clock.high_water is None else (clock.high_water - _EPOCH) // timedelta(microseconds=1)
    try:
        shared = await worker.store.shared_max("event_clock_us", local)
    except Exception as exc:  # Redis down: keep the local clock; the flush path reports it
        log.debug("event clock not shared: %s", exc)
        return
    if shared is not None:
        clock.observe(_EPOCH + timedelta(microseconds=shared))


async def _flush_until_written(worker: Worker, partitions: set[int], store: Any = None) -> None:
    """Persist the batches before they are acknowledged; while Redis is down, pause (never drop)."""
    if not partitions:
        return
    store = worker.store if store is None else store
    delay = 0.5
    while True:
        try:
            await store.flush(partitions)
            worker.metrics.store_healthy.set(1)
            return
        except Exception as exc:  # Redis unavailable: keep the dirty state, retry, report it
            worker.metrics.store_healthy.set(0)
            log.warning("state flush to Redis failed (%s); retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def _ensure_input_topics(app: faust.App, settings: Settings) -> None:
    """Create the contract topics if missing (targets compacted), with the configured partitions."""
    from streams.topics import ensure_topics

    await ensure_topics(settings)


async def _update_consumer_lag(worker: Worker) -> None:
    consumer = worker.ingest.consumer
    if consumer is None:
        return
    try:
        assignment = consumer.assignment()
        if not assignment:
            return
        ends = await consumer.end_offsets(list(assignment))
        for tp in assignment:
            position = await consumer.position(tp)
            worker.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(max(ends[tp] - position, 0))
    except Exception as exc:  # lag is informational; never let it break the timer
        log.debug("consumer lag not available: %s", exc)


# Third-party loggers that print message payloads (CRM events: customer ids) at DEBUG: kept at
# INFO whatever KPI_LOG_LEVEL says. No personal data in logs (README; tests/integration/test_privacy.py).
PAYLOAD_LOGGERS: tuple[str, ...] = ("aiokafka", "faust.topics", "faust.transport.drivers.aiokafka")


def run_worker(settings: Settings, rules: Rules) -> int:
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    for name in PAYLOAD_LOGGERS:
        if logging.getLogger(name).getEffectiveLevel() < logging.INFO:
            logging.getLogger(name).setLevel(logging.INFO)
    (settings.data_dir / settings.app_id).mkdir(parents=True, exist_ok=True)
    from streams.connections import check_kafka, check_redis
    from streams.topics import ensure_topics, worker_topics

    # Fail at start, with the reason, when Kafka or Redis refuses the configured connection.
    asyncio.run(check_kafka(settings))
    asyncio.run(check_redis(settings))
    asyncio.run(ensure_topics(settings, worker_topics(settings, (TABLE_NAME, CUSTOMER_TABLE_NAME))))
    worker = create_app(settings, rules)
    tune_gc()
    faust_worker_for(worker, settings).execute_from_commandline()
    return 0


# Allocations between two collections of the youngest generation (CPython's default is 700), and
# how many collections of a generation run one of the next (default 10 and 10).
GC_THRESHOLDS = (100_000, 50, 100)


def tune_gc() -> None:
    """Collect cycles less often: the states are large, long-lived and acyclic (freed by reference
    counting), and the hot path allocates many short-lived objects, so the default thresholds
    made the collector run every few events and, as the states grew, walk them again and again:
    28% of the offline worker path (benchmarks/README.md, "Garbage collection"). What exists at
    start (modules, the app) is frozen out of every collection."""
    gc.set_threshold(*GC_THRESHOLDS)
    gc.freeze()


def faust_worker_for(worker: Worker, settings: Settings) -> faust.Worker:
    """The Faust worker that runs the app, without its progress spinner.

    At log levels WARNING and above Faust turns the spinner on and, for it, sets the root logger
    to DEBUG: every debug call of aiokafka and Faust then builds a log record that the handlers
    drop. That cost 21% of a worker's CPU under live traffic (py-spy, the suite's soak)."""
    # No banner when logs go to a file (tests, services).
    quiet = not sys.stdout.isatty()
    faust_worker = faust.Worker(worker.app, loglevel=settings.log_level.upper(), quiet=quiet)
    faust_worker.spinner = None
    return faust_worker
