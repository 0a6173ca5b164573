"""Per-event cost of each stage of the worker's hot path, for this tree and an earlier commit, same
events, same run: where the time goes, and what the profile-driven changes bought.

    python -m benchmarks.hot_path --before e942565 [--events 100000] [--worker]

The earlier commit is checked out in a temporary git worktree; each stage runs in a child process
(`benchmarks/hot_path_stages.py`, this checkout's version) whose project imports come from that tree
(so both sides run their own code on identical input), three times alternately, and the best run of
each counts. The earlier tree may have any benchmarks layout (scripts or this package): only its
kpi_core, kpi_rules, streams and kpi_monitor are used. Stages (microseconds per event):
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
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.harness import produce
from benchmarks.stream_throughput import make_events
from kpi_testkit import CHECKOUT, Deployment, install_cleanup, wait_for
from kpi_testkit.probes import sample

STAGES = Path(__file__).resolve().parent / "hot_path_stages.py"


def _child(root: Path, events_file: Path, core: str | None) -> dict[str, float]:
    """The stages over `events_file` with the project's packages of the tree at `root`: first on
    sys.path through PYTHONPATH (ahead of the editable install's finder, which comes last), and
    the KPI core `core` (KPI_CORE) when that tree has the compiled core."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPI_")} | {"PYTHONPATH": str(root)}
    if core is not None:
        env["KPI_CORE"] = core
    result = subprocess.run(
        [sys.executable, "-P", str(STAGES), str(events_file)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def _worktree(rev: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix="kpi-before-"))
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(path), rev], cwd=CHECKOUT, check=True, capture_output=True
    )
    return path


def _remove_worktree(path: Path) -> None:
    subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=CHECKOUT, capture_output=True)


CUSTOMER_COUNTERS = (
    "kpi_customer_facts_routed_total",
    "kpi_customer_facts_total",
    "kpi_customer_summaries_sent_total",
    "kpi_customer_summaries_received_total",
)


def _worker_rate(
    root: Path, bootstrap: str, redis_url: str, prefix: str, total: int, workdir: Path, core: str | None
) -> tuple[float, float]:
    """Events/s of a worker of the tree at `root` (its own app id, that tree's rules, KPI_CORE
    `core`) over the topics of `prefix`, from its first poll until it has processed `total` events,
    and until its customer side has settled too (counted by /metrics in both trees: polled once,
    after every event is applied, then every 0.2 s, as rendering /metrics costs the worker time)."""
    name = f"hot{uuid.uuid4().hex[:8]}"
    # Every side's worker reads the same input topics (`prefix`), not topics of their own app id.
    extra = {"KPI_TOPIC_PREFIX": prefix} | ({"KPI_CORE": core} if core is not None else {})
    deployment = Deployment(bootstrap, redis_url, workdir, name=name, source=root, extra_env=extra)
    worker = deployment.start_worker()
    try:
        worker.wait_first_poll(180)
        started = time.perf_counter()
        worker.wait_processed(total, 1200, 0.1)
        applied = total / (time.perf_counter() - started)

        def settled() -> bool:  # /metrics: the earlier tree's /status does not count them
            metrics = worker.metrics()
            routed, handled, sent, received = (sample(metrics, n) for n in CUSTOMER_COUNTERS)
            return handled >= routed and received >= sent

        wait_for(settled, 1200, 0.2, "the customer side settling")
        return applied, total / (time.perf_counter() - started)
    finally:
        worker.stop()
        deployment.cleanup()  # its Faust topics and Redis keys; the input topics are the caller's


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="the earlier commit (e.g. e942565)")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help="also time a real worker of each tree")
    parser.add_argument(
        "--cores",
        default="",
        help="measure this checkout once per KPI_CORE listed (e.g. python,compiled); "
        "default: once, as KPI_CORE is unset (auto)",
    )
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--output", type=Path, default=None, help="also write the Markdown here")
    args = parser.parse_args()
    install_cleanup()
    events = make_events(args.events, args.reps)
    before_root = _worktree(args.before)
    after_rev = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=CHECKOUT, capture_output=True, text=True
    ).stdout.strip()
    dirty = bool(
        subprocess.run(
            ["git", "status", "--porcelain"], cwd=CHECKOUT, capture_output=True, text=True
        ).stdout.strip()
    )
    cores = [c.strip() for c in args.cores.split(",") if c.strip()]
    sides: list[tuple[str, Path, str | None]] = [("before", before_root, None)] + (
        [(f"after ({core})", CHECKOUT, core) for core in cores] if cores else [("after", CHECKOUT, None)]
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            events_file = Path(tmp) / "events.jsonl"
            events_file.write_bytes(b"\n".join(events) + b"\n")
            best: dict[str, dict[str, float]] = {side: {} for side, _, _ in sides}
            for run in range(args.runs):
                for side, root, core in sides:
                    figures = _child(root, events_file, core)
                    for stage, seconds in figures.items():
                        best[side][stage] = min(best[side].get(stage, seconds), seconds)
                    line = ", ".join(f"{k} {v * 1e6:.1f} us" for k, v in figures.items())
                    print(f"run {run + 1} {side}: {line}", file=sys.stderr)
            workers: dict[str, float] = {}
            settled: dict[str, float] = {}
            if args.worker:
                inputs = f"hot{uuid.uuid4().hex[:8]}"
                prefix = f"{inputs}.crm."
                asyncio.run(produce(args.bootstrap, prefix, events, 4))
                try:
                    for _ in range(2):
                        for side, root, core in sides:
                            rate, whole = _worker_rate(
                                root, args.bootstrap, args.redis, prefix, len(events), Path(tmp), core
                            )
                            workers[side] = max(workers.get(side, 0.0), rate)
                            settled[side] = max(settled.get(side, 0.0), whole)
                            print(
                                f"worker {side}: {rate:,.0f} events/s applied, {whole:,.0f} with the "
                                "customer side settled",
                                file=sys.stderr,
                            )
                finally:
                    inputs_only = Deployment(args.bootstrap, args.redis, Path(tmp), name=inputs)
                    inputs_only.cleanup()  # the input topics
    finally:
        _remove_worktree(before_root)

    names = [side for side, _, _ in sides]
    lines = [
        f"`{' '.join(['python', '-m', 'benchmarks.hot_path', *sys.argv[1:]])}` on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {len(events):,} events, {args.reps} reps; "
        f"before = `{args.before}`, after = `{after_rev}`{' + working tree' if dirty else ''}; "
        f"best of {args.runs} alternating runs.",
        "",
        "| stage | " + " | ".join(f"{n} (us/event)" for n in names) + " | "
        + " | ".join(f"{n} / before" for n in names[1:]) + " |",
        "|---|" + "---:|" * (2 * len(names) - 1),
    ]
    for side in names:
        best[side]["apply (decode+apply - decode)"] = best[side]["decode+apply"] - best[side]["decode"]
    for stage in best[names[-1]]:
        if not all(stage in best[n] for n in names):
            continue  # a stage the earlier tree cannot run (e.g. the customer side)
        values = [best[n][stage] * 1e6 for n in names]
        lines.append(
            f"| {stage} | " + " | ".join(f"{v:.1f}" for v in values) + " | "
            + " | ".join(f"{v / values[0]:.2f}" for v in values[1:]) + " |"
        )
    for title, rates in (
        ("real worker, events/s until every event is applied (best of 2)", workers),
        ("real worker, events/s until the customer side has settled too (best of 2)", settled),
    ):
        if rates:
            lines.append(
                f"| {title} | "
                + " | ".join(f"{rates[n]:,.0f}" for n in names) + " | "
                + " | ".join(f"{rates[n] / rates['before']:.2f}" for n in names[1:]) + " |"
            )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output is not None:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
