"""Command-line options shared by `report` and `digest`: which period kind, scope and periods."""

from __future__ import annotations

import argparse

#: Period kinds (kpi_core.periods.PERIOD_KINDS), spelled here so the parser imports nothing heavy.
PERIOD_CHOICES: tuple[str, ...] = ("day", "week", "month", "quarter", "year")


def add_selection_arguments(parser: argparse.ArgumentParser, periods: tuple[str, ...]) -> None:
    parser.add_argument(
        "--period",
        choices=periods,
        default=None,
        help="period kind shown (report: month for table, html and pdf, every kind for json and "
        "csv; digest: month)",
    )
    parser.add_argument(
        "--scope",
        default="company",
        help="rep | team | region | company, optionally :NAME (team:north): that level and "
        "everything under it (default company: every row)",
    )
    parser.add_argument(
        "--last",
        type=int,
        default=None,
        metavar="N",
        help="the last N periods up to the current one (html and pdf: 6 by default)",
    )
