"""The benchmark suite in one command: every measurement on the local stack, written to
benchmarks/RESULTS.md (machine, command line, one table per measurement with figures and their
ratio to a reference taken in the same run).

    kpi-monitor dev up
    python -m benchmarks.suite                        # everything (about 35-40 minutes)
    python -m benchmarks.suite --only latency,soak    # a subset: the other sections are kept
    python -m benchmarks.suite --quick --output /tmp/RESULTS.md   # tiny sizes, a few minutes

Sections (each in its own module): 1 throughput (`bench_throughput`), 2 latency (`bench_latency`),
3 recovery after kill -9 (`bench_recovery`), 4 memory soak (`bench_soak`); deployments and worker
processes from `kpi_testkit`, shared pieces in `harness`, `paced`, `machine` and `tables`. This
module only orchestrates and renders."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import shlex
import shutil
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import bench_latency, bench_recovery, bench_soak, bench_throughput
from benchmarks.harness import DEFAULT_BOOTSTRAP, DEFAULT_REDIS, RedisProbe, say
from benchmarks.machine import Machine, machine_facts
from benchmarks.tables import Table
from kpi_testkit import install_cleanup, stop_all
from kpi_testkit.cleanup import delete_topics

HERE = Path(__file__).resolve().parent
COMMAND = ("python", "-m", "benchmarks.suite")  # how RESULTS.md records the run

SECTIONS: dict[str, str] = {
    "throughput": "1. Throughput per worker process",
    "latency": "2. Event-to-visible latency up to saturation",
    "recovery": "3. Recovery after kill -9",
    "soak": "4. Memory over a soak",
}
BEGIN = "<!-- BEGIN section:{} -->"
END = "<!-- END section:{} -->"
_BLOCK = re.compile(r"<!-- BEGIN section:(\w+) -->\n.*?<!-- END section:\1 -->\n?", re.DOTALL)


@dataclass
class Context:
    """What every section needs: the stack, a token unique to this run, a scratch directory."""

    bootstrap: str
    redis_url: str
    token: str
    workdir: Path
    keep_data: bool
    quick: bool

    def delete_topics(self, wanted: Callable[[str], bool]) -> None:
        try:
            asyncio.run(delete_topics(self.bootstrap, wanted))
        except Exception as exc:
            say(f"cleanup: topics not deleted: {exc}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run the benchmark suite and write RESULTS.md.")
    parser.add_argument(
        "--output", type=Path, default=HERE / "RESULTS.md", help="default benchmarks/RESULTS.md"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (seconds each): the smoke test")
    parser.add_argument("--only", default="", help="comma-separated subset of: " + ",".join(SECTIONS))
    parser.add_argument("--bootstrap", default=DEFAULT_BOOTSTRAP, help="Kafka bootstrap servers")
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="Redis URL of the state store")
    parser.add_argument("--events", type=int, default=None, help="throughput: events (default 300000)")
    parser.add_argument(
        "--rates",
        default=None,
        help="latency: offered events/s, comma-separated (default 100,250,500,1000,...,16000)",
    )
    parser.add_argument(
        "--cores",
        default=None,
        help="throughput and latency: KPI_CORE of the workers measured, comma-separated "
        "(auto = compiled when built; python = the reference); default auto,python for "
        "throughput and auto for latency",
    )
    parser.add_argument(
        "--without-customers",
        action="store_true",
        help="throughput: also time a worker of the first core with KPI_CUSTOMER_SIDE=false",
    )
    parser.add_argument("--latency-warmup", type=float, default=None, help="latency: warm-up s per rate (10)")
    parser.add_argument(
        "--latency-measure", type=float, default=None, help="latency: measured s per rate (45)"
    )
    parser.add_argument(
        "--recovery-keys",
        default=None,
        help="recovery: target key counts, comma-separated (default 100000,1000000)",
    )
    parser.add_argument("--soak-minutes", type=float, default=None, help="soak length (default 20)")
    parser.add_argument("--soak-rate", type=float, default=None, help="soak events/s (default 500)")
    parser.add_argument("--soak-reps", type=int, default=None, help="soak reps (default 500)")
    parser.add_argument(
        "--keep-data", action="store_true", help="keep the benchmark topics, Redis keys, logs"
    )
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in SECTIONS]
    if unknown:
        parser.error(f"--only: unknown section(s) {', '.join(unknown)}; allowed: {', '.join(SECTIONS)}")
    args.sections = only or list(SECTIONS)
    return args


def _ints(text: str | None) -> list[int] | None:
    return [int(x.replace("_", "")) for x in text.split(",") if x.strip()] if text else None


def plans(args: argparse.Namespace) -> dict[str, Any]:
    """Parameters of every section: full sizes, or tiny ones with --quick; flags override both."""
    if args.quick:
        throughput = bench_throughput.ThroughputParams(events=5_000, reps=50, peer_timeout_s=240)
        latency = bench_latency.LatencyParams(
            rates=[100, 250], warmup_s=3, measure_s=8, reps=100, pool=5_000, drain_timeout_s=60
        )
        recovery = bench_recovery.RecoveryParams(targets=[3_000], sample_reps=3)
        soak = bench_soak.SoakParams(minutes=1, rate=200, reps=100, interval_s=5)
    else:
        throughput = bench_throughput.ThroughputParams()
        latency = bench_latency.LatencyParams()
        recovery = bench_recovery.RecoveryParams()
        soak = bench_soak.SoakParams()
    if args.events:
        throughput.events = args.events
    latency.rates = _ints(args.rates) or latency.rates
    if args.cores:
        cores = [c.strip() for c in args.cores.split(",") if c.strip()]
        throughput.cores = latency.cores = cores
    throughput.without_customers = args.without_customers
    if args.latency_warmup is not None:
        latency.warmup_s = args.latency_warmup
    if args.latency_measure is not None:
        latency.measure_s = args.latency_measure
    recovery.targets = _ints(args.recovery_keys) or recovery.targets
    if args.soak_minutes is not None:
        soak.minutes = args.soak_minutes
    if args.soak_rate is not None:
        soak.rate = args.soak_rate
    if args.soak_reps is not None:
        soak.reps = args.soak_reps
    return {"throughput": throughput, "latency": latency, "recovery": recovery, "soak": soak}


def check_stack(ctx: Context) -> None:
    """Fail early, with the fix, when Kafka or Redis is not there."""
    try:
        RedisProbe(ctx.redis_url).client.ping()
    except Exception as exc:
        raise SystemExit(
            f"Redis at {ctx.redis_url} does not answer ({exc}); start the stack: kpi-monitor dev up"
        ) from None
    try:
        asyncio.run(delete_topics(ctx.bootstrap, lambda _: False))  # lists topics only
    except Exception as exc:
        raise SystemExit(
            f"Kafka at {ctx.bootstrap} does not answer ({exc}); start the stack: kpi-monitor dev up"
        ) from None


def run_section(name: str, ctx: Context, params: Any, output: Path) -> str:
    if name == "throughput":
        return bench_throughput.render(bench_throughput.run(ctx, params))
    if name == "latency":
        return bench_latency.render(bench_latency.run(ctx, params))
    if name == "recovery":
        return bench_recovery.render(bench_recovery.run(ctx, params))
    if name == "soak":
        return bench_soak.render(bench_soak.run(ctx, params, output.parent / "soak-memory.csv"))
    raise ValueError(name)


def section_block(
    name: str, body: str, machine: Machine, command: str, minutes: float, quick: bool = False
) -> str:
    stamp = (
        f"_Measured {machine.date} in {minutes:.1f} min · commit {machine.revision} · `{command}` · "
        f"{machine.short()}_"
    )
    if quick:
        stamp += "\n\n**`--quick` run: tiny sizes; these figures only show that the suite works.**"
    return f"{BEGIN.format(name)}\n## {SECTIONS[name]}\n\n{stamp}\n\n{body.rstrip()}\n{END.format(name)}\n"


def placeholder(name: str) -> str:
    return (
        f"{BEGIN.format(name)}\n## {SECTIONS[name]}\n\nNot measured yet: "
        f"`python -m benchmarks.suite --only {name}`.\n{END.format(name)}\n"
    )


def header(machine: Machine, command: str) -> str:
    table = Table(["machine of the latest run", ""], align="ll")
    for label, value in (
        ("CPU", machine.cpu),
        ("nproc", str(machine.nproc)),
        ("RAM", f"{machine.ram_gib:.1f} GiB"),
        ("OS", machine.os),
        ("Python", machine.python),
        ("Kafka", machine.kafka),
        ("Redis", machine.redis),
        ("git commit", machine.revision),
        ("date", machine.date),
        ("load average at start (1, 5, 15 min)", machine.load),
        ("command", f"`{command}`"),
    ):
        table.add(label, value)
    return (
        "# Benchmark results\n\n"
        "Written by `python -m benchmarks.suite` (needs the local stack, `kpi-monitor dev up`; see "
        "`benchmarks/README.md`). Do not edit by hand: a run rewrites the sections it measured and keeps "
        "the others, so each section carries the date, commit, command and machine of its own run. "
        "Every ratio is to a reference measured in the same run as its figure.\n\n"
        + table.markdown()
        + "\n\n"
    )


def merge(existing: str, blocks: dict[str, str], head: str) -> str:
    """The document: `head`, then the four sections in order, new `blocks` replacing old ones."""
    kept = {m.group(1): m.group(0) for m in _BLOCK.finditer(existing)}
    parts = [head]
    for name in SECTIONS:
        block = blocks.get(name) or kept.get(name) or placeholder(name)
        parts.append(block if block.endswith("\n") else block + "\n")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    install_cleanup()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.ERROR)  # retries while new topics elect leaders
    command = shlex.join([*COMMAND, *(sys.argv[1:] if argv is None else argv)])
    workdir = Path(tempfile.mkdtemp(prefix="kpi-bench-"))
    ctx = Context(args.bootstrap, args.redis, uuid.uuid4().hex[:6], workdir, args.keep_data, args.quick)
    check_stack(ctx)
    machine = machine_facts(args.bootstrap, args.redis)
    say(f"suite: {', '.join(args.sections)} -> {args.output} (work directory {workdir})")
    params = plans(args)
    blocks: dict[str, str] = {}
    failed: list[str] = []
    args.output.parent.mkdir(parents=True, exist_ok=True)
    try:
        for name in args.sections:
            started = time.monotonic()
            say(f"suite: section {name}")
            try:
                body = run_section(name, ctx, params[name], args.output)
            except Exception as exc:
                traceback.print_exc()
                failed.append(name)
                body = (
                    f"**This run failed**: `{type(exc).__name__}: {str(exc)[:500]}` (see the suite's output)."
                )
            minutes = (time.monotonic() - started) / 60
            blocks[name] = section_block(name, body, machine, command, minutes, args.quick)
            existing = args.output.read_text() if args.output.exists() else ""
            args.output.write_text(merge(existing, blocks, header(machine, command)))
            say(f"suite: section {name} written to {args.output}")
    finally:
        stop_all()
        if not args.keep_data:
            shutil.rmtree(workdir, ignore_errors=True)
    if failed:
        say(f"suite: FAILED sections: {', '.join(failed)}")
        return 1
    say(f"suite: done: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
