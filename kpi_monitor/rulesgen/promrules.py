"""Prometheus recording and alerting rules generated from the rules file.

Recording rules are named `level:metric:operation`; levels and their grouping labels:

    rep      by (rep, team, region)      team     by (team)
    region   by (region)                 company  (no label)

Windowed figures keep `period` and `window` (`current`, `previous`, `previous_to_date`).
Every `sales_*` series comes from the one worker that owns the rep's partition, so a plain
`sum` over instances is the true total. Every ratio is a ratio of sums, and its denominator is
filtered with `(d > 0)`, so a zero denominator gives no sample at all (never 0, never Inf).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from kpi_core.catalogue import (
    ADDITIVE,
    BY_NAME,
    DERIVED,
    SNAPSHOT,
    SNAPSHOT_DERIVED,
    Kpi,
    Shape,
    Surface,
    on,
)
from kpi_core.derived import ACTUAL_OF_METRIC
from kpi_core.periods import PERIOD_KINDS, shift
from kpi_monitor.rulesgen.annotations import (
    MEMBER_WORDS,
    PERIOD_WORDS,
    PERIOD_WORDS_PLURAL,
    SCOPE_WORDS,
    noun,
    render,
)
from kpi_rules.models import Rules
from kpi_rules.vocabulary import TARGET_PERIODS, TargetMetric, Window

LEVELS: dict[str, tuple[str, ...]] = {
    "rep": ("rep", "team", "region"),
    "team": ("team",),
    "region": ("region",),
    "company": (),
}
WINDOWED: tuple[Kpi, ...] = on(Surface.METRICS, ADDITIVE)
SNAPSHOTS: tuple[Kpi, ...] = on(Surface.METRICS, SNAPSHOT)
RATIOS: tuple[Kpi, ...] = on(Surface.RULES, (*DERIVED, *SNAPSHOT_DERIVED))
# A component exported apart from the period buckets: a rep can have a target and no activity
# (no series of the bucket components), which counts as 0 activity against that target.
STANDALONE = frozenset({"target"})
ELAPSED = "company:sales_period_elapsed_ratio:max"
#: The label naming a level's members, and the level whose targets add up to a level's.
LEVEL_LABEL: dict[str, str | None] = {"rep": "rep", "team": "team", "region": "region", "company": None}
MEMBERS: dict[str, str] = {"team": "rep", "region": "team", "company": "region"}
#: Contract section 3.3: a scope's own target minus the sum of its members' (current period).
ALLOCATION_GAP = "sales_target_allocation_gap"

Rule = dict[str, Any]
Group = dict[str, Any]


def _num(value: Decimal | int | float) -> str:
    """A threshold as PromQL/text shows it: 20, 0.1, 2.5 (no exponent, no trailing zeros)."""
    text = format(Decimal(str(value)).normalize(), "f")
    return text


def _by(labels: tuple[str, ...]) -> str:
    return f"by ({', '.join(labels)}) " if labels else ""


def rec(level: str, metric: str, operation: str) -> str:
    return f"{level}:sales_{metric}:{operation}"


def _sel(name: str, **matchers: str) -> str:
    if not matchers:
        return name
    inner = ",".join(f'{k}="{v}"' for k, v in matchers.items())
    return f"{name}{{{inner}}}"


# --------------------------------------------------------------------------------- recording rules


def _scale(kpi: Kpi) -> str:
    """` * 100`, ` / 86400` or nothing: the scale of a ratio as PromQL writes it."""
    scale = kpi.scale
    if scale == 1:
        return ""
    if scale.denominator == 1:
        return f" * {scale.numerator}"
    if scale.numerator == 1:
        return f" / {scale.denominator}"
    return f" * {scale.numerator} / {scale.denominator}"


def _filter(level: str) -> str:
    """The matcher that keeps a level to its own members: `rep!=""` at the rep level (team,
    region and company states are exported with rep=""), `team!=""` at the team level (region
    and company states), `region!=""` at the region level (the company state); none for the
    company, which takes everything."""
    own = LEVEL_LABEL[level]
    return f',{own}!=""' if own else ""


def _effective_targets(level: str, by: tuple[str, ...], periods: str) -> str:
    """PromQL of the targets in force at `level` (own when set, else the sum of the members' in
    force), from the exported `sales_metric_target`, summed by `by` (which holds the level's
    label): the same decomposition as the report's ScopeBook."""
    own = f'sum {_by(by)}(sales_metric_target{{scope="{level}",period=~"{periods}"}})'
    return f"{own}\nor {_members_targets(level, by, periods)}"


def _members_targets(level: str, by: tuple[str, ...], periods: str) -> str:
    """The sum of the targets in force of a level's members: a team's reps, a region's teams, the
    company's regions."""
    child = MEMBERS[level]
    if child == "rep":
        return f'sum {_by(by)}(sales_metric_target{{scope="rep",period=~"{periods}"}})'
    inner = _effective_targets(child, tuple(dict.fromkeys((*by, child))), periods)
    return f"sum {_by(by)}(\n{_indent(inner)}\n)"


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _actuals(level: str, **m: str) -> str:
    """Each target metric's actual figure at `level`, labelled `metric` as its target is."""
    return "\n  or ".join(
        f'label_replace({_sel(rec(level, actual, "sum"), **m)}, "metric", "{metric}", "", "")'
        for metric, actual in ACTUAL_OF_METRIC.items()
    )


def _level_rules(level: str, periods: tuple[str, ...]) -> list[Rule]:
    labels = LEVELS[level]
    windowed = (*labels, "period", "window")
    period_re = "|".join(periods)
    # Targets exist for months, quarters and years: their rules cover those too (gaps, boards).
    target_re = "|".join(k for k in PERIOD_KINDS if k in {*periods, *TARGET_PERIODS})
    only = _filter(level)
    rules: list[Rule] = []

    def record(name: str, expr: str, **extra: str) -> None:
        rules.append({"record": name, "expr": expr} | ({"labels": extra} if extra else {}))

    def s(metric: str, **m: str) -> str:
        return _sel(rec(level, metric, "sum"), **m)

    def target_rules() -> None:
        """Targets in force at a scope level: its own where set, else its members' (contract
        section 3.3); the revenue one is `sales_target` (attainment, projection, coverage)."""
        by = (*windowed, "metric")
        own, members = rec(level, "metric_target", "own"), rec(level, "metric_target", "members")
        record(own, f'sum {_by(by)}(sales_metric_target{{scope="{level}",period=~"{target_re}"}})')
        record(members, _members_targets(level, by, target_re))
        record(s("metric_target"), f"{own}\nor {members}")
        revenue = f'{s("metric_target")}{{metric="{TargetMetric.REVENUE}",period=~"{period_re}"}}'
        record(s("target"), f"sum without (metric) ({revenue})")
        # The allocation gap (own minus the members'), where the scope has its own target.
        now = {"window": "current"}
        record(
            ALLOCATION_GAP,
            f"sum without (window) (\n  {_sel(own, **now)}\n"
            f"  - ({_sel(members, **now)} or {_sel(own, **now)} * 0)\n)",
            scope=level,
        )

    for item in WINDOWED:
        if level != "rep" and item.name in ("target", "metric_target"):
            if item.name == "target":
                target_rules()
            continue
        by = (*windowed, item.label) if item.label else windowed
        kinds = target_re if item.name == "metric_target" else period_re
        record(s(item.name), f'sum {_by(by)}(sales_{item.name}{{period=~"{kinds}"{only}}})')
    for item in SNAPSHOTS:
        matcher = f"{{{only.lstrip(',')}}}" if only else ""
        record(s(item.name), f"sum {_by(labels)}(sales_{item.name}{matcher})")
    if level == "company":
        record(ELAPSED, f'max by (period) (sales_period_elapsed_ratio{{period=~"{period_re}"}})')

    def terms(kpi: Kpi, side: str, **m: str) -> str:
        parts = kpi.numerator if side == "numerator" else kpi.denominator
        text = ""
        for term in parts:
            text += (" - " if term.sign < 0 else " + ") if text else ("-" if term.sign < 0 else "")
            text += s(term.component, **m)
        return f"({text})" if len(parts) > 1 else text

    def numerator(kpi: Kpi, **m: str) -> str:
        # With a standalone denominator (a target), missing activity counts as 0.
        standalone = [t.component for t in kpi.denominator if t.component in STANDALONE]
        top = terms(kpi, "numerator", **m)
        if standalone:
            return f"({top} or {s(standalone[0], **m)} * 0)"
        return top

    elapsed = "on (period) group_left () (max by (period) (sales_period_elapsed_ratio) > 0)"
    for item in RATIOS:
        assert item.record is not None
        name = rec(level, *item.record)
        if item.shape is Shape.GROWTH:
            # A rep or team with no activity this period has no `current` series: count it as 0
            # (a drop to nothing is the steepest decline), as long as the compared figure exists.
            (part,) = item.numerator
            cur = f"sum without (window) ({s(part.component, window='current')})"
            ptd = f"sum without (window) ({s(part.component, window='previous_to_date')})"
            record(name, f"(({cur} or {ptd} * 0) - {ptd})\n/ ({ptd} > 0) * 100")
        elif item.shape is Shape.PROJECTED:
            # numerator / elapsed fraction / denominator; the elapsed ratio is the same on every
            # worker (max).
            record(
                name,
                f"{numerator(item, window='current')}\n"
                f"/ {elapsed}\n"
                f"/ ({terms(item, 'denominator', window='current')} > 0){_scale(item)}",
            )
        elif item.shape is Shape.COVERAGE:
            # weighted pipeline / (target - revenue) of the current period; no sample once the
            # target is met (nothing left to cover) or where no target is set.
            (top,) = item.numerator
            (goal, done) = item.denominator
            on = f"on ({', '.join(labels)})" if labels else "on ()"
            goal_now = s(goal.component, window="current")
            gap = (
                f"({goal_now}\n  - ({s(done.component, window='current')} or {goal_now} * 0))"
            )
            record(name, f"{s(top.component)}\n/ {on} group_right () ({gap} > 0)")
        elif item.shape is Shape.TRAILING:
            # Sums over the trailing completed months, which the worker exports as their own
            # window (period month): the report's figure for a current period.
            trailing = {"window": Window.TRAILING.value}
            record(
                name,
                f"{terms(item, 'numerator', **trailing)}\n"
                f"/ ({terms(item, 'denominator', **trailing)} > 0){_scale(item)}",
            )
        elif item.shape is Shape.PER_METRIC:
            # Each metric's actual figure over its target in force. A state with a target exports
            # every figure (0 without activity), so the actuals exist wherever a target does, in
            # the recorded periods (a year target has no sample unless years are recorded).
            target = s("metric_target")
            record(name, f"(\n  {_actuals(level)}\n)\n/ ({target} > 0){_scale(item)}")
        elif item.shape is Shape.PER_METRIC_PROJECTED:
            target = s("metric_target", window="current")
            record(
                name,
                f"(\n  {_actuals(level, window='current')}\n)\n/ {elapsed}\n/ ({target} > 0){_scale(item)}",
            )
        elif item.label is not None:
            record(
                name,
                f"{terms(item, 'numerator')}\n/ ignoring ({item.label}) group_left () "
                f"({terms(item, 'denominator')} > 0){_scale(item)}",
            )
        else:
            record(name, f"{numerator(item)}\n/ ({terms(item, 'denominator')} > 0){_scale(item)}")
    return rules


def recording_groups(rules: Rules) -> list[Group]:
    periods = rules.alerts.recorded_periods
    return [{"name": f"kpi-sales-{level}", "rules": _level_rules(level, periods)} for level in LEVELS]


# ------------------------------------------------------------------------------ SalesDownTrend


@dataclass(frozen=True)
class TrendLookback:
    """How SalesDownTrend reads the revenue of earlier completed periods from TSDB history.

    The worker exports only the last completed period (`window="previous"`). The period before it
    is that same series as it was one period ago: `offset L`. Calendar periods vary in length
    (months 28-31 days, DST days 23-25 hours), so with a fixed `L` the lookups `offset j*L`
    (j = 1..N) land in the right period only for part of the current period: between
    `min_elapsed` and `max_elapsed` (fractions of the current period), computed over the calendar
    of 2000-2100 with an hour of margin for DST. The alert is only evaluated inside that window.
    """

    offset_hours: int
    min_elapsed: float
    max_elapsed: float


_NOMINAL_DAYS = {"day": 1.0, "week": 7.0, "month": 30.436875, "quarter": 91.310625, "year": 365.2425}


def _period_starts(kind: str) -> list[date]:
    start = {"day": date(2019, 1, 1), "week": date(2000, 1, 3)}.get(kind, date(2000, 1, 1))
    end = {"day": date(2021, 1, 1)}.get(kind, date(2100, 1, 1))
    out = [start]
    while out[-1] < end:
        out.append(shift(kind, out[-1], 1))
    return out


@lru_cache(maxsize=64)
def trend_lookback(kind: str, consecutive: int) -> TrendLookback:
    margin = 1.0  # hours: DST moves a local period boundary by up to an hour
    hours = [
        (b - a).days * 24.0 for a, b in zip(_period_starts(kind), _period_starts(kind)[1:], strict=False)
    ]
    starts = [0.0]
    for length in hours:
        starts.append(starts[-1] + length)
    nominal = round(_NOMINAL_DAYS[kind] * 24)
    best: TrendLookback | None = None
    for offset in range(nominal - 24, nominal + 25) if kind != "day" else (24,):
        lo, hi = 0.0, 1.0
        for k in range(consecutive, len(hours)):
            length = hours[k]
            for j in range(1, consecutive + 1):
                # t = starts[k] + r*length must satisfy, for period k-j:
                # starts[k-j] + margin <= t - j*offset < starts[k-j+1] - margin
                lo = max(lo, (starts[k - j] + margin + j * offset - starts[k]) / length)
                hi = min(hi, (starts[k - j + 1] - margin + j * offset - starts[k]) / length)
        if hi - lo > 0.2 and (best is None or hi - lo > best.max_elapsed - best.min_elapsed):
            best = TrendLookback(offset, lo, hi)
    if best is None:
        raise ValueError(f"down_trend: no usable look-back for {consecutive} consecutive {kind}s")
    # round inwards to whole percent
    return TrendLookback(best.offset_hours, _ceil2(best.min_elapsed), _floor2(best.max_elapsed))


def _ceil2(x: float) -> float:
    return -(-round(x * 10000) // 100) / 100


def _floor2(x: float) -> float:
    return (round(x * 10000) // 100) / 100


# ---------------------------------------------------------------------------------- alert rules


def _query_figure(expr: str, fmt: str = "%.0f") -> str:
    """A Go-template snippet printing the first value of `expr` with `fmt` (0 if none)."""
    quoted = expr.replace('"', '\\"')
    return (
        f'{{{{ with query "{quoted}" }}}}{{{{ . | first | value | printf "{fmt}" }}}}'
        "{{ else }}0{{ end }}"
    )


def _figure(name: str, labels: tuple[str, ...], fmt: str = "", **matchers: str) -> str:
    """A Go-template snippet printing the first value of `name{<label>="<the alert's label>"...,
    matchers...}`, humanized (or with printf `fmt`), 0 if there is none."""
    pairs = [f"{label}=%q" for label in labels] + [f'{k}=\\"{v}\\"' for k, v in matchers.items()]
    query = f"{name}{{{','.join(pairs)}}}"
    args = "".join(f" $labels.{label}" for label in labels)
    show = f'printf "{fmt}"' if fmt else "humanize"
    return (
        f'{{{{ with printf "{query}"{args} | query }}}}'
        f"{{{{ . | first | value | {show} }}}}{{{{ else }}}}0{{{{ end }}}}"
    )


def _scoped_figure(scope: str, name: str, **matchers: str) -> str:
    """`_figure` of `name{<scope>="<the alert's label>", matchers...}`."""
    return _figure(name, (scope,), **matchers)


def _label_words(label: str, words: dict[str, str]) -> str:
    """A Go-template snippet writing the word for the alert's `label` value (else the value)."""
    out = ""
    for value, word in words.items():
        out += f'{{{{ {"else if" if out else "if"} eq $labels.{label} "{value}" }}}}{word}'
    return out + f"{{{{ else }}}}{{{{ $labels.{label} }}}}{{{{ end }}}}"


def _alert(name: str, expr: str, for_: str, labels: dict[str, str], texts: dict[str, str]) -> Rule:
    rule: Rule = {"alert": name, "expr": expr}
    if for_ not in ("0s", "0m", "0h", "0d"):
        rule["for"] = for_
    rule["labels"] = labels
    rule["annotations"] = texts
    return rule


def _words(rules: Rules, scope: str, period: str) -> dict[str, str]:
    """The placeholders every sales alert's texts share: its scope, who, period and currency."""
    loc = rules.locale
    return {
        "Scope": SCOPE_WORDS[loc][scope],
        "who": f"{{{{ $labels.{scope} }}}}",
        "period": PERIOD_WORDS[loc][period],
        "currency": rules.currency,
    }


def _on_level(scope: str, *extra: str) -> str:
    """`on (...)` matching a scope level's labels and `extra`."""
    return f"on ({', '.join((*LEVELS[scope], *extra))})"


def sales_alerts(rules: Rules) -> list[Rule]:
    a = rules.alerts
    loc = rules.locale
    out: list[Rule] = []

    def words(scope: str, period: str) -> dict[str, str]:
        return _words(rules, scope, period)

    def labels(severity: str, scope: str) -> dict[str, str]:
        return {"severity": severity, "scope": scope}

    on = _on_level

    def decline(name: str, metric: str, cfg: Any, minimum: str) -> None:
        """A period-to-date decline of `metric` against previous_to_date, with a volume guard."""
        expr = (
            f"-{_sel(rec(cfg.scope, metric, 'growth_pct'), period=cfg.period)} > {_num(cfg.threshold_pct)}\n"
            f"and {on(cfg.scope, 'period')}\n"
            f"{_sel(rec(cfg.scope, metric, 'sum'), period=cfg.period, window='previous_to_date')}"
            f" >= {minimum}"
        )
        total = rec(cfg.scope, metric, "sum")
        text = words(cfg.scope, cfg.period) | {
            "kpi": noun(metric, loc),
            "threshold": _num(cfg.threshold_pct),
            "min": minimum,
            "current": _scoped_figure(cfg.scope, total, period=cfg.period, window="current"),
            "previous": _scoped_figure(cfg.scope, total, period=cfg.period, window="previous_to_date"),
        }
        out.append(_alert(name, expr, cfg.for_, labels(cfg.severity, cfg.scope), render(loc, name, text)))

    # SalesRevenueDecline: decline % of revenue period-to-date vs previous_to_date.
    decline("SalesRevenueDecline", "revenue", a.revenue_decline, _num(a.revenue_decline.min_previous_revenue))

    # SalesDownTrend: see TrendLookback.
    t = a.down_trend
    look = trend_lookback(t.period, t.consecutive_periods)
    prev = _sel(rec(t.scope, "revenue", "sum"), period=t.period, window="previous")

    def at(j: int) -> str:
        return prev if j == 0 else f"{prev} offset {j * look.offset_hours}h"

    falls = [f"({at(j)}\n  < {at(j + 1)})" for j in range(t.consecutive_periods)]
    expr = (
        "\nand ".join(falls) + f"\nand on (period) ({_sel(ELAPSED, period=t.period)} >= {look.min_elapsed}"
        f" <= {look.max_elapsed})"
    )
    text = words(t.scope, t.period) | {"n": str(t.consecutive_periods), "kpi": noun("revenue", loc)}
    out.append(
        _alert(
            "SalesDownTrend", expr, t.for_, labels(t.severity, t.scope), render(loc, "SalesDownTrend", text)
        )
    )

    # SalesVisitsDrop: decline % of visits period-to-date vs previous_to_date.
    decline("SalesVisitsDrop", "visits", a.visits_drop, str(a.visits_drop.min_previous_visits))

    # SalesTargetPaceBehind: projected attainment low once enough of the period has elapsed.
    p = a.target_pace_behind
    min_ratio = _num(p.min_elapsed_pct / 100)
    expr = (
        f"{_sel(rec(p.scope, 'revenue', 'projected_attainment_pct'), period=p.period)}"
        f" < {_num(p.threshold_pct)}\n"
        f"and on (period) {_sel(ELAPSED, period=p.period)} >= {min_ratio}"
    )
    text = words(p.scope, p.period) | {
        "threshold": _num(p.threshold_pct),
        "elapsed": _num(p.min_elapsed_pct),
        "elapsed_now": _query_figure(f"{_sel(ELAPSED, period=p.period)} * 100"),
    }
    out.append(
        _alert(
            "SalesTargetPaceBehind",
            expr,
            p.for_,
            labels(p.severity, p.scope),
            render(loc, "SalesTargetPaceBehind", text),
        )
    )

    # SalesQuoteToCloseLow: won / quotes of the current period, with a minimum of quotes.
    q = a.quote_to_close_low
    expr = (
        f"{_sel(rec(q.scope, 'deals', 'quote_to_close_pct'), period=q.period, window='current')}"
        f" < {_num(q.threshold_pct)}\n"
        f"and {_sel(rec(q.scope, 'quotes_sent', 'sum'), period=q.period, window='current')} >= {q.min_quotes}"
    )
    text = words(q.scope, q.period) | {
        "kpi": noun("quote_to_close_pct", loc),
        "threshold": _num(q.threshold_pct),
        "min": str(q.min_quotes),
        "quotes": _scoped_figure(
            q.scope, rec(q.scope, "quotes_sent", "sum"), period=q.period, window="current"
        ),
    }
    out.append(
        _alert(
            "SalesQuoteToCloseLow",
            expr,
            q.for_,
            labels(q.severity, q.scope),
            render(loc, "SalesQuoteToCloseLow", text),
        )
    )

    # SalesPipelineCoverageLow: weighted pipeline / remaining target of the current period.
    c = a.pipeline_coverage_low
    expr = f"{_sel(rec(c.scope, 'pipeline', 'coverage_ratio'), period=c.period)} < {_num(c.threshold)}"
    text = words(c.scope, c.period) | {"threshold": _num(c.threshold), "kpi": noun("pipeline_coverage", loc)}
    out.append(
        _alert(
            "SalesPipelineCoverageLow",
            expr,
            c.for_,
            labels(c.severity, c.scope),
            render(loc, "SalesPipelineCoverageLow", text),
        )
    )
    out += customer_alerts(rules) + target_alerts(rules)
    return out


def customer_alerts(rules: Rules) -> list[Rule]:
    """SalesChurnRising, SalesMarginDrop and SalesSatisfactionLow, each with its volume guard."""
    a = rules.alerts
    loc = rules.locale
    out: list[Rule] = []

    def words(scope: str, period: str, kpi: str) -> dict[str, str]:
        return _words(rules, scope, period) | {"kpi": noun(kpi, loc)}

    on = _on_level

    # SalesChurnRising: churn % of the period to date, with enough customers active at its start.
    c = a.churn_rising
    now = {"period": c.period, "window": "current"}
    active = rec(c.scope, "active_customers_start", "sum")
    expr = (
        f"{_sel(rec(c.scope, 'customers', 'churn_pct'), **now)} > {_num(c.threshold_pct)}\n"
        f"and {on(c.scope, 'period', 'window')}\n{_sel(active, **now)} >= {c.min_active_customers}"
    )
    text = words(c.scope, c.period, "churn_pct") | {
        "threshold": _num(c.threshold_pct),
        "min": str(c.min_active_customers),
        "days": str(rules.customers.churn_after_days),
        "active": _scoped_figure(c.scope, active, **now),
    }
    labels: dict[str, str] = {"severity": c.severity, "scope": c.scope}
    out.append(_alert("SalesChurnRising", expr, c.for_, labels, render(loc, "SalesChurnRising", text)))

    # SalesMarginDrop: gross margin % points lost against the same point of the previous period,
    # with enough costed revenue on both sides (a margin % of a few deals swings widely).
    m = a.margin_drop
    pct = rec(m.scope, "gross_margin", "pct")
    costed = rec(m.scope, "costed_revenue", "sum")

    def at(name: str, window: str) -> str:
        return f"sum without (window) ({_sel(name, period=m.period, window=window)})"

    minimum = _num(m.min_costed_revenue)
    expr = (
        f"{at(pct, 'previous_to_date')}\n- {at(pct, 'current')}\n> {_num(m.threshold_points)}\n"
        f"and {on(m.scope, 'period')} {at(costed, 'current')} >= {minimum}\n"
        f"and {on(m.scope, 'period')} {at(costed, 'previous_to_date')} >= {minimum}"
    )
    text = words(m.scope, m.period, "gross_margin_pct") | {
        "threshold": _num(m.threshold_points),
        "min": minimum,
        "current": _figure(pct, (m.scope,), "%.1f", period=m.period, window="current"),
        "previous": _figure(pct, (m.scope,), "%.1f", period=m.period, window="previous_to_date"),
    }
    labels = {"severity": m.severity, "scope": m.scope}
    out.append(_alert("SalesMarginDrop", expr, m.for_, labels, render(loc, "SalesMarginDrop", text)))

    # SalesSatisfactionLow: one rule per survey kind (label `survey`), each with its own count of
    # responses as the guard.
    q = a.satisfaction_low
    now = {"period": q.period, "window": "current"}
    for survey, threshold, kpi, responses in (
        ("csat", q.csat_threshold_pct, "csat_pct", "csat_responses"),
        ("nps", q.nps_threshold, "nps", "nps_responses"),
    ):
        if threshold is None:
            continue  # turned off in the rules file
        item = BY_NAME[kpi]
        assert item.record is not None
        count = rec(q.scope, responses, "sum")
        expr = (
            f"{_sel(rec(q.scope, *item.record), **now)} < {_num(threshold)}\n"
            f"and {on(q.scope, 'period', 'window')}\n{_sel(count, **now)} >= {q.min_responses}"
        )
        text = words(q.scope, q.period, kpi) | {
            "threshold": _num(threshold),
            "min": str(q.min_responses),
            "responses": _scoped_figure(q.scope, count, **now),
        }
        labels = {"severity": q.severity, "scope": q.scope, "survey": survey}
        texts = render(loc, f"SalesSatisfactionLow.{survey}", text)
        out.append(_alert("SalesSatisfactionLow", expr, q.for_, labels, texts))
    return out


#: Differences below this are float rounding of summed targets, never a gap (targets are whole
#: cents or whole counts).
ROUNDING = "0.005"


def target_alerts(rules: Rules) -> list[Rule]:
    """SalesTargetAllocationGap: per scope, the allocation gap (a team, region or company target
    against its members') and the split gap (a year's target against its quarters', a quarter's
    against its months': any scope, reps included), beyond `targets.allocation_tolerance_pct`."""
    g = rules.alerts.target_allocation_gap
    loc = rules.locale
    tolerance = _num(rules.targets.allocation_tolerance_pct / 100)
    metric_words = {m.value: noun(actual, loc) for m, actual in _target_metrics()}
    common = {
        "metric": _label_words("metric", metric_words),
        "period": _label_words("period", {k: PERIOD_WORDS[loc][k] for k in TARGET_PERIODS}),
        "tolerance": _num(rules.targets.allocation_tolerance_pct),
    }
    out: list[Rule] = []

    def gap_alert(kind: str, scope: str, gap: str, target: str, on: str, text: dict[str, str]) -> None:
        # the gap itself (signed) where its size exceeds the tolerance of the target
        bound = f"clamp_min({target} * {tolerance}, {ROUNDING})"
        expr = f"{gap}\nand {on}\n(\n  abs({gap})\n  > {on}\n  {bound}\n)"
        labels = {"severity": g.severity, "scope": scope, "gap": kind}
        texts = render(loc, f"SalesTargetAllocationGap.{kind}", text)
        out.append(_alert("SalesTargetAllocationGap", expr, g.for_, labels, texts))

    for scope in ("team", "region", "company"):
        keys = (*LEVELS[scope], "metric", "period")
        on = f"on ({', '.join(keys)})"
        gap = _sel(ALLOCATION_GAP, scope=scope)
        own = _sel(rec(scope, "metric_target", "own"), window="current")
        members = rec(scope, "metric_target", "members")
        text = common | {
            "Who": _who(loc, scope),
            "members": MEMBER_WORDS[loc][scope],
            "target": _figure(rec(scope, "metric_target", "own"), keys, window="current"),
            "members_total": _figure(members, keys, window="current"),
        }
        gap_alert("allocation", scope, gap, own, on, text)
    keys = ("rep", "team", "region", "scope", "metric", "period")
    by = f"by ({', '.join(keys)})"
    on = f"on ({', '.join(keys)})"
    parts = {"year": PERIOD_WORDS_PLURAL[loc]["quarter"], "quarter": PERIOD_WORDS_PLURAL[loc]["month"]}
    for scope in ("rep", "team", "region", "company"):
        gap = f"sum {by} ({_sel('sales_target_split_gap', scope=scope)})"
        own = f"sum {by} ({_sel('sales_metric_target', scope=scope, window='current')})"
        text = common | {
            "Who": _who(loc, scope),
            "parts": _label_words("period", parts),
            "target": _figure("sales_metric_target", keys, window="current"),
        }
        gap_alert("split", scope, gap, own, on, text)
    return out


def _target_metrics() -> list[tuple[TargetMetric, str]]:
    return [(TargetMetric(m), actual) for m, actual in ACTUAL_OF_METRIC.items()]


def _who(locale: str, scope: str) -> str:
    """ "Team {{ $labels.team }}", or the company's name in the texts."""
    if scope == "company":
        return SCOPE_WORDS[locale]["company"]
    return f"{SCOPE_WORDS[locale][scope]} {{{{ $labels.{scope} }}}}"


def service_alerts(rules: Rules) -> list[Rule]:
    s = rules.alerts.service
    loc = rules.locale
    lab = {"severity": s.severity, "scope": "service"}
    return [
        _alert(
            "KpiWorkerDown",
            'up{job="kpi-worker"} == 0',
            s.worker_down_for,
            lab,
            render(loc, "KpiWorkerDown", {"for": s.worker_down_for}),
        ),
        _alert(
            "KpiConsumerLagHigh",
            # each partition's lag once (max: a worker that just lost it may still report it)
            f"sum by (topic) (max by (topic, partition) (kpi_consumer_lag_messages)) > {s.consumer_lag_max}",
            s.for_,
            lab,
            render(loc, "KpiConsumerLagHigh", {"threshold": str(s.consumer_lag_max)}),
        ),
        _alert(
            "KpiDeadLetterRising",
            f"sum by (reason) (rate(kpi_events_rejected_total[{s.rate_window}]))"
            f" > {_num(s.dead_letter_rate_per_s)}",
            s.for_,
            lab,
            render(loc, "KpiDeadLetterRising", {"threshold": _num(s.dead_letter_rate_per_s)}),
        ),
        _alert(
            "KpiNoEvents",
            # no processed-events series at all (fresh workers, no traffic) counts as none
            f"(sum(increase(kpi_events_processed_total[{s.no_events_for}])) or on () vector(0)) == 0\n"
            'and on () (sum(up{job="kpi-worker"}) > 0)',
            s.for_,
            lab,
            render(loc, "KpiNoEvents", {"window": s.no_events_for}),
        ),
        _alert(
            "KpiStateIncomplete",
            # per partition once (max: the worker that just lost it may still export it)
            "max by (partition) (kpi_state_incomplete) > 0",
            s.for_,
            lab,
            render(loc, "KpiStateIncomplete", {}),
        ),
    ]


def alert_groups(rules: Rules) -> list[Group]:
    return [{"name": "kpi-sales-alerts", "rules": sales_alerts(rules)}]


def service_groups(rules: Rules) -> list[Group]:
    return [{"name": "kpi-service", "rules": service_alerts(rules)}]


def recorded_names(rules: Rules) -> set[str]:
    """Every series name the recording rules produce."""
    return {r["record"] for g in recording_groups(rules) for r in g["rules"]}
