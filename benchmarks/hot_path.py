"""Per-event cost of each stage of the worker's hot path, for this tree and an earlier commit, same
events, same run: where the time goes, and what the profile-driven changes bought.

    python benchmarks/hot_path.py --before e942565 [--events 100000] [--worker]

The earlier commit is checked out in a temporary git worktree; each stage runs in a child process
whose imports come from that tree (so both sides run their own code on identical input), three
times alternately, and the best run of each counts. Stages (microseconds per event):
- json: `json.loads` of each message (what the plain-consumer ceiling does per event);
- decode: full validation, `kpi_core.events.decode_event` (pydantic, exact money);
- decode+apply: decoding plus `KpiEngine.apply` on per-rep states (the KPI transitions);
- worker path offline: `BatchProcessor.apply_batch` over routed micro-batches with an in-memory
  store: unframing, decoding, applying and encoding the touched state parts (no Kafka, no Redis);
- route: the ingest's per-event work (rep lookup, partition, micro-batch framing).
With `--worker`, the events are also produced to Kafka (the local stack) and a real worker of each
tree consumes them (contract topics to KPIs in Redis): events/s, best of two runs each."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WALL = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)  # an hour after the generated history ends


# --------------------------------------------------------------------------- child: one tree


def stages(events_file: Path, partitions: int = 4) -> dict[str, float]:
    """Seconds per event of each stage, with the packages importable from sys.path[0]."""
    import orjson
    from prometheus_client import CollectorRegistry

    from kpi_core.clock import KpiClock
    from kpi_core.engine import KpiEngine
    from kpi_core.events import Rejection, decode_event
    from kpi_core.state import RepState
    from kpi_rules import load_rules
    from streams.metrics import KpiMetrics
    from streams.processor import BatchProcessor, PartitionedStates
    from streams.routing import Routed, encode_batch, partition_for

    raws = events_file.read_bytes().splitlines()
    count = len(raws)
    rules = load_rules()

    def engine() -> KpiEngine:
        return KpiEngine(rules, KpiClock(mode="event", wall=lambda: WALL))

    out: dict[str, float] = {}
    started = time.perf_counter()
    for raw in raws:
        json.loads(raw)
    out["json"] = time.perf_counter() - started

    started = time.perf_counter()
    for raw in raws:
        decode_event(raw, rules)
    out["decode"] = time.perf_counter() - started

    kpi = engine()
    ctx = kpi.context()
    states: dict[str, RepState] = {}
    started = time.perf_counter()
    for raw in raws:
        try:
            event = decode_event(raw, rules)
            state = states.get(event.rep_id)
            if state is None:
                state = states[event.rep_id] = RepState(rep_id=event.rep_id)
            kpi.apply(state, event, ctx)
        except Rejection:
            pass
    out["decode+apply"] = time.perf_counter() - started

    started = time.perf_counter()
    routed: dict[int, list[Routed]] = defaultdict(list)
    for offset, raw in enumerate(raws):
        rep_id = orjson.loads(raw)["rep_id"]
        routed[partition_for(rep_id, partitions)].append(Routed(raw, "t", 0, offset))
    batches = [
        (partition, encode_batch(items[i : i + 1250]))
        for partition, items in routed.items()
        for i in range(0, len(items), 1250)
    ]
    out["route"] = time.perf_counter() - started

    store = _MemoryStore(partitions)
    processor = BatchProcessor(
        engine(), PartitionedStates(store), KpiMetrics(CollectorRegistry()), lambda p: p
    )
    started = time.perf_counter()
    for offset, (partition, value) in enumerate(batches):
        processor.apply_batch(partition, offset, value)
    out["worker path offline"] = time.perf_counter() - started
    return {name: seconds / count for name, seconds in out.items()}


class _MemoryStore:
    """The part of the store the processor uses, in a dict: the offline stage has no Redis.
    Defined here, not imported, because `stages` also runs against earlier commits' code."""

    def __init__(self, partitions: int) -> None:
        self.data: dict[int, dict[bytes, bytes]] = {p: {} for p in range(partitions)}
        self.offsets: dict[Any, int] = {}

    def partitions(self) -> set[int]:
        return set(self.data)

    def get_in(self, partition: int, key: bytes) -> bytes | None:
        return self.data[partition].get(key)

    def set_in(self, partition: int, key: bytes, value: bytes) -> None:
        self.data[partition][key] = value

    def delete_in(self, partition: int, key: bytes) -> None:
        self.data[partition].pop(key, None)

    def items_in(self, partition: int) -> Any:
        return iter(list(self.data[partition].items()))

    def persisted_offset(self, tp: Any) -> int | None:
        return self.offsets.get(tp)

    def set_persisted_offset(self, tp: Any, offset: int) -> None:
        self.offsets[tp] = offset


# --------------------------------------------------------------------------- parent


def _child(root: Path, events_file: Path) -> dict[str, float]:
    code = (
        "import sys, json; sys.path.insert(0, sys.argv[1]); sys.path.insert(1, sys.argv[2]);"
        "from hot_path import stages; from pathlib import Path;"
        "print(json.dumps(stages(Path(sys.argv[3]))))"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", code, str(root), str(HERE), str(events_file)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def _worktree(rev: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix="kpi-before-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(path), rev], cwd=REPO, check=True,
                   capture_output=True)
    return path


def _remove_worktree(path: Path) -> None:
    subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=REPO, capture_output=True)


def _done(status: dict[str, Any], total: int) -> bool:
    return bool(status["applied"] + status["duplicates"] + status["ingest"]["rejected"] >= total)


def _worker_rate(root: Path, bootstrap: str, redis_url: str, prefix: str, total: int) -> float:
    """A worker of the tree at `root` (its own app id) over the topics of `prefix`."""
    import signal
    import urllib.request

    name = f"hot{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPI_") and k != "PYTHONPATH"}
    env |= {
        "KPI_APP_ID": name,
        "KPI_TOPIC_PREFIX": prefix,
        "KPI_KAFKA_BOOTSTRAP": bootstrap,
        "KPI_REDIS_URL": redis_url,
        "KPI_PARTITIONS": "4",
        "KPI_CLOCK": "event",
        "KPI_LOG_LEVEL": "warning",
        "KPI_DATA_DIR": f"/tmp/{name}",
        "KPI_WEB_PORT": "6197",
    }
    log = open(f"/tmp/{name}-worker.log", "ab")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "kpi_monitor.cli", "worker"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )

    def status() -> dict[str, Any]:
        with urllib.request.urlopen("http://127.0.0.1:6197/status", timeout=10) as response:
            return dict(json.loads(response.read()))

    def until(predicate: Any, timeout: float, interval: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return
            except OSError:
                pass
            time.sleep(interval)
        raise TimeoutError(f"worker of {root} did not finish")

    try:
        until(lambda: status()["ingest"]["polled"] > 0, 180, 0.02)
        started = time.perf_counter()
        until(lambda: _done(status(), total), 1200, 0.1)
        return total / (time.perf_counter() - started)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="the earlier commit (e.g. e942565)")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help="also time a real worker of each tree")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--output", type=Path, default=None, help="also write the Markdown here")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(HERE))
    from stream_throughput import make_events

    events = make_events(args.events, args.reps)
    before_root = _worktree(args.before)
    after_rev = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True,
                                text=True).stdout.strip())
    try:
        with tempfile.TemporaryDirectory() as tmp:
            events_file = Path(tmp) / "events.jsonl"
            events_file.write_bytes(b"\n".join(events) + b"\n")
            best: dict[str, dict[str, float]] = {"before": {}, "after": {}}
            for run in range(args.runs):
                for side, root in (("before", before_root), ("after", REPO)):
                    figures = _child(root, events_file)
                    for stage, seconds in figures.items():
                        best[side][stage] = min(best[side].get(stage, seconds), seconds)
                    print(f"run {run + 1} {side}: " + ", ".join(
                        f"{k} {v * 1e6:.1f} us" for k, v in figures.items()), file=sys.stderr)
            workers: dict[str, float] = {}
            if args.worker:
                from harness import produce

                prefix = f"hot{uuid.uuid4().hex[:8]}.crm."
                asyncio.run(produce(args.bootstrap, prefix, events, 4))
                for _ in range(2):
                    for side, root in (("before", before_root), ("after", REPO)):
                        rate = _worker_rate(root, args.bootstrap, args.redis, prefix, len(events))
                        workers[side] = max(workers.get(side, 0.0), rate)
                        print(f"worker {side}: {rate:,.0f} events/s", file=sys.stderr)
    finally:
        _remove_worktree(before_root)

    lines = [
        f"`{' '.join(['python', 'benchmarks/hot_path.py', *sys.argv[1:]])}` on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {len(events):,} events, {args.reps} reps; "
        f"before = `{args.before}`, after = `{after_rev}`{' + working tree' if dirty else ''}; "
        f"best of {args.runs} alternating runs.",
        "",
        "| stage | before (us/event) | after (us/event) | after / before |",
        "|---|---:|---:|---:|",
    ]
    for side in ("before", "after"):
        best[side]["apply (decode+apply - decode)"] = best[side]["decode+apply"] - best[side]["decode"]
    for stage in best["after"]:
        b, a = best["before"][stage] * 1e6, best["after"][stage] * 1e6
        lines.append(f"| {stage} | {b:.1f} | {a:.1f} | {a / b:.2f} |")
    if workers:
        lines.append(
            f"| real worker, events/s (best of 2) | {workers['before']:,.0f} | {workers['after']:,.0f} "
            f"| {workers['after'] / workers['before']:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output is not None:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
