"""The `kpi-monitor` command line: dev stack, worker, simulator, publisher, report, rules."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from kpi_monitor import compiled_core
from kpi_monitor.report_options import PERIOD_CHOICES, add_selection_arguments
from kpi_rules import DEFAULT_RULES_PATH, RulesError, load_rules


def _add_rules(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rules",
        type=Path,
        default=None,
        help=f"rules file (default {DEFAULT_RULES_PATH}, else KPI_RULES, else the packaged one)",
    )


def _rules_path(args: argparse.Namespace) -> Path:
    if args.rules is not None:
        return Path(args.rules)
    return Path(os.environ.get("KPI_RULES", str(DEFAULT_RULES_PATH)))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kpi-monitor",
        description="Live sales-KPI monitoring: CRM events in Kafka -> KPIs in Prometheus.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dev = sub.add_parser(
        "dev", help="the local stack without Docker (Kafka, Redis, Prometheus, Alertmanager)"
    )
    dev.add_argument("action", choices=("up", "down", "status"))
    dev.add_argument(
        "--data-dir", default=None, help="stack data, logs and PID files (default ./.kpi-dev)"
    )
    _add_rules(dev)

    worker = sub.add_parser("worker", help="run a streaming worker (settings from KPI_* variables)")
    worker.add_argument(
        "--web-port", type=int, default=None, help="HTTP port (default 6066, KPI_WEB_PORT)"
    )
    worker.add_argument(
        "--clock", choices=("wall", "event"), default=None, help="KPI clock (KPI_CLOCK)"
    )
    _add_rules(worker)

    simulate = sub.add_parser("simulate", help="publish synthetic CRM traffic")
    simulate.add_argument(
        "--scenario",
        default="steady",
        help="steady | decline | visits-drop | pace-behind | churn | messy; combined with + and "
        "with a team for some: decline+churn:east",
    )
    simulate.add_argument("--reps", type=int, default=12)
    simulate.add_argument(
        "--rate", type=float, default=50.0, help="events per second; 0 = as fast as possible"
    )
    simulate.add_argument(
        "--count",
        type=int,
        default=0,
        help="stop after N events (0 = run until stopped; with --output, the history alone)",
    )
    simulate.add_argument("--seed", type=int, default=1)
    simulate.add_argument(
        "--days", type=int, default=0, help="backfill N days of history first (sent at full speed)"
    )
    simulate.add_argument(
        "--history-per-hour",
        type=float,
        default=40.0,
        help="events per business hour of all reps together; targets follow this pace",
    )
    simulate.add_argument(
        "--output", type=Path, default=None, help="write JSONL to a file instead of Kafka"
    )
    simulate.add_argument(
        "--until",
        default=None,
        metavar="TIME",
        help="end the history at this ISO 8601 time instead of now (no offset: the rules file's "
        "zone); with the same --seed, the same file every day. Live traffic after it keeps the "
        "wall clock",
    )
    _add_rules(simulate)

    publish = sub.add_parser(
        "publish", help="publish a CRM export file (JSONL, or CSV with --mapping) into Kafka"
    )
    publish.add_argument("file", type=Path, help="JSONL events, or a CSV export with --mapping")
    publish.add_argument(
        "--mapping", type=Path, default=None, help="YAML mapping of the CSV columns to contract fields"
    )
    publish.add_argument("--rate", type=float, default=0.0, help="events per second; 0 = unlimited")
    publish.add_argument(
        "--dry-run",
        action="store_true",
        help="map and validate as the worker would, report what it would reject; send nothing",
    )
    publish.add_argument(
        "--show-refused", type=int, default=20, metavar="N", help="refused lines shown (default 20)"
    )
    publish.add_argument(
        "--clock",
        choices=("wall", "event"),
        default="wall",
        help="dry run: judge too_late as a worker with this KPI_CLOCK would (event: against the "
        "file's newest event, for a backfill of history)",
    )
    _add_rules(publish)

    report = sub.add_parser("report", help="KPIs from an event file, no services needed")
    report.add_argument(
        "events",
        type=Path,
        help="JSONL file, one event per line ('-' for stdin), or a CSV export with --mapping",
    )
    report.add_argument(
        "--mapping", type=Path, default=None, help="YAML mapping of a CSV export (as for publish)"
    )
    report.add_argument(
        "--format", choices=("json", "table", "csv", "html", "pdf"), default="table"
    )
    report.add_argument(
        "--output", type=Path, default=None, help="write to this file (html and pdf need it)"
    )
    add_selection_arguments(report, (*PERIOD_CHOICES, "all"))
    report.add_argument(
        "--clock", choices=("wall", "event"), default=None, help="KPI clock (KPI_CLOCK)"
    )
    _add_rules(report)

    digest = sub.add_parser(
        "digest", help="the HTML/PDF report of a running deployment, from its Prometheus"
    )
    digest.add_argument(
        "--prometheus", required=True, metavar="URL", help="Prometheus base URL (http://127.0.0.1:9090)"
    )
    digest.add_argument("--format", choices=("html", "pdf", "json"), default="html")
    digest.add_argument("--output", type=Path, default=None, help="write to this file (html and pdf need it)")
    add_selection_arguments(digest, PERIOD_CHOICES)
    digest.add_argument(
        "--at",
        default=None,
        metavar="TIME",
        help="the moment whose periods are current (default now); for workers run with "
        "KPI_CLOCK=event, their newest event's time (ISO 8601; no offset: the rules file's zone)",
    )
    _add_rules(digest)

    alerts = sub.add_parser("alerts", help="receive Alertmanager's notifications")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    listen = alerts_sub.add_parser(
        "listen",
        help="print each alert Alertmanager sends as one readable line (where "
        "alerts.notify.webhook_url of the rules file points, by default)",
    )
    listen.add_argument("--host", default=None, help="address to listen on (default: the webhook URL's)")
    listen.add_argument("--port", type=int, default=None, help="port (default: the webhook URL's, 5001)")
    listen.add_argument("--path", default=None, help="path (default: the webhook URL's, /hook)")
    listen.add_argument("--json", action="store_true", help="print each alert as a JSON line")
    _add_rules(listen)

    rules = sub.add_parser("rules", help="generate Prometheus rules and Grafana dashboards")
    rules.add_argument("--out", type=Path, default=Path("."), help="repository root to write into")
    rules.add_argument("--check", action="store_true", help="fail if the generated files are stale")
    _add_rules(rules)
    return parser


def _report(args: argparse.Namespace) -> int:
    from kpi_monitor.report_command import run_report

    rules = load_rules(_rules_path(args))
    mode = args.clock or os.environ.get("KPI_CLOCK", "wall")
    if mode not in ("wall", "event"):
        raise RulesError(f"KPI_CLOCK must be 'wall' or 'event', got {mode!r}")
    return run_report(args, rules, mode)


def _digest(args: argparse.Namespace) -> int:
    from kpi_monitor.digest_command import run_digest

    return run_digest(args, load_rules(_rules_path(args)))


def _dev(args: argparse.Namespace) -> int:
    from kpi_monitor import devstack

    cfg = devstack.DevConfig.from_env(args.data_dir)
    if args.rules is not None:
        # The stack's Prometheus and Alertmanager run what this rules file generates (e.g. the
        # quick start's short `for:` durations); without --rules, the repository's files.
        load_rules(args.rules)  # a bad file stops here, with the key named
        cfg = dataclasses.replace(cfg, rules_file=Path(args.rules).absolute())
    if args.action == "up":
        devstack.dev_up(cfg)
        devstack.print_status(cfg)
    elif args.action == "down":
        devstack.dev_down(cfg)
    else:
        devstack.print_status(cfg)
    return 0


def _worker(args: argparse.Namespace) -> int:
    from streams.app import run_worker
    from streams.settings import load_settings

    settings = load_settings(web_port=args.web_port, clock=args.clock, rules=_rules_path(args))
    rules = load_rules(settings.rules)
    core = getattr(args, "core", None)
    if core is not None:  # which KPI core this worker runs, and why (its /status says it too)
        print(f"kpi-monitor worker: KPI core {core.core} ({core.reason})", file=sys.stderr, flush=True)
    return run_worker(settings, rules)


def _simulate(args: argparse.Namespace) -> int:
    from kpi_monitor.simulate import run_simulation
    from streams.settings import load_settings

    rules = load_rules(_rules_path(args))
    return run_simulation(load_settings(), rules, args)


def _publish(args: argparse.Namespace) -> int:
    from kpi_monitor.publish import run_publish
    from streams.settings import load_settings

    # The rules map a CSV, check events (dry run), and say which history a wall-clock worker
    # would reject (the warning before sending).
    return run_publish(
        None if args.dry_run else load_settings(),
        args.file,
        rate=args.rate,
        mapping_path=args.mapping,
        rules=load_rules(_rules_path(args)),
        dry_run=args.dry_run,
        show=args.show_refused,
        clock=args.clock,
    )


def _alerts(args: argparse.Namespace) -> int:
    from kpi_monitor.alerts_listen import Endpoint, endpoint_of, run_listen

    rules = load_rules(_rules_path(args))
    default = endpoint_of(rules.alerts.notify.webhook_url)
    endpoint = Endpoint(args.host or default.host, args.port or default.port, args.path or default.path)
    return run_listen(endpoint, rules.locale, args.json)


def _rules(args: argparse.Namespace) -> int:
    from kpi_monitor.rulesgen import render_all, stale_files, write_all

    path = _rules_path(args)
    rules = load_rules(path)
    files = render_all(rules)
    out = Path(args.out)
    if args.check:
        stale = stale_files(out, files)
        if stale:
            print(
                "kpi-monitor rules: generated files are stale (run `kpi-monitor rules` and commit):\n"
                + "\n".join(f"  {rel}" for rel in stale),
                file=sys.stderr,
            )
            return 1
        print(f"kpi-monitor rules: {len(files)} generated files are up to date")
        return 0
    changed = write_all(out, files)
    for rel in files:
        print(f"{'wrote    ' if rel in changed else 'unchanged'} {out / rel}")
    return 0


COMMANDS = {
    "report": _report,
    "digest": _digest,
    "dev": _dev,
    "worker": _worker,
    "simulate": _simulate,
    "publish": _publish,
    "rules": _rules,
    "alerts": _alerts,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # Before any command imports kpi_core: the compiled core unless KPI_CORE=python. Only for
        # the command line itself: a caller in the same process (tests) keeps the core it has.
        args.core = compiled_core.select(os.environ) if argv is None else None
        return COMMANDS[args.command](args)
    except (RulesError, ValueError, RuntimeError) as exc:
        # Configuration errors: one clear message, no traceback.
        print(f"kpi-monitor {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
