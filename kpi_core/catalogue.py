"""The KPI catalogue: every KPI declared once; metrics, report, schema, rules and boards derive from it.

A KPI is additive (a count, an amount of money or a duration summed per rep and period bucket),
a snapshot (not windowed: the open pipeline), or derived: a ratio of sums of additive components,
`(sum of numerator terms) / (sum of denominator terms) x scale`, undefined (None) unless the
denominator is above 0 (as the recording rules filter it with `> 0`). A few derived KPIs have
another shape (growth against a compared window, projection over the elapsed part of the period,
pipeline coverage); `Shape` names them, and the code that evaluates them (`kpi_core.derived`,
the rules generator) handles each shape once.

Adding a KPI: one entry here, plus, for an additive one, its `Agg` field and the transition that
counts it (`kpi_core.aggregates`, `kpi_core.transitions`); `tests/unit/core/test_catalogue.py`
checks that every surface (metrics, report columns, JSON Schema, recording rules, boards) follows.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction


class KpiKind(StrEnum):
    COUNT = "count"
    MONEY = "money"
    DURATION = "duration"
    SNAPSHOT = "snapshot"
    DERIVED = "derived"


class Unit(StrEnum):
    """What a value measures; decides its rendering (money as a decimal string) and board units."""

    COUNT = "count"
    MONEY = "money"  # the rules file's base currency
    SECONDS = "seconds"
    DAYS = "days"
    HOURS = "hours"
    PERCENT = "percent"
    RATIO = "ratio"
    TIMES = "times"  # a multiple of something (pipeline coverage: x the remaining target)


class Shape(StrEnum):
    """How a derived KPI is computed from the components."""

    RATIO = "ratio"  # sum(numerator) / sum(denominator) x scale
    GROWTH = "growth"  # (x - x of the compared window) / that x x 100
    PROJECTED = "projected"  # x / elapsed fraction of the period / denominator x 100
    COVERAGE = "coverage"  # a snapshot numerator over the current period's denominator
    TRAILING = "trailing"  # numerator / denominator summed over the trailing completed months
    PER_METRIC = "per_metric"  # each target metric's figure / its target (label `metric`)
    PER_METRIC_PROJECTED = "per_metric_projected"  # the same over the elapsed fraction


class Surface(StrEnum):
    """Where a KPI appears."""

    REPORT = "report"  # report rows (json, table, csv) and GET /kpis
    METRICS = "metrics"  # a `sales_<name>` gauge of the worker (additive and snapshot KPIs)
    RULES = "rules"  # a Prometheus recording rule (derived KPIs)


ALL_SURFACES = frozenset(Surface)


@dataclass(frozen=True, slots=True)
class Text:
    """A text in both locales of the rules file."""

    en: str
    zh: str

    def get(self, locale: str) -> str:
        return self.zh if locale == "zh-CN" else self.en


@dataclass(frozen=True, slots=True)
class Term:
    """One additive component in a derived KPI's numerator or denominator, with its sign."""

    component: str
    sign: int = 1


@dataclass(frozen=True, slots=True)
class Kpi:
    name: str
    kind: KpiKind
    unit: Unit
    title: Text  # short: a column or panel title
    help: Text  # one sentence: metric HELP, schema description, docs
    source: str = ""  # the seed article(s) of CONTRACT.md's `source` column
    label: str | None = None  # an extra label the KPI is split by (`channel`)
    numerator: tuple[Term, ...] = ()
    denominator: tuple[Term, ...] = ()
    scale: Fraction = Fraction(1)
    shape: Shape = Shape.RATIO
    record: tuple[str, str] | None = None  # recording rule `<level>:sales_<metric>:<operation>`
    surfaces: frozenset[Surface] = ALL_SURFACES
    table: str | None = None  # column title in `report --format table`; None: not in the table

    @property
    def additive(self) -> bool:
        return self.kind in (KpiKind.COUNT, KpiKind.MONEY, KpiKind.DURATION)

    @property
    def components(self) -> tuple[str, ...]:
        """The additive components this KPI reads (derived), or itself."""
        if self.kind is not KpiKind.DERIVED:
            return (self.name,)
        return tuple(dict.fromkeys(t.component for t in (*self.numerator, *self.denominator)))


def _terms(*names: str) -> tuple[Term, ...]:
    return tuple(Term(n.lstrip("-"), -1 if n.startswith("-") else 1) for n in names)


def count(name: str, title: Text, help: Text, source: str = "", **kw: object) -> Kpi:
    return Kpi(name, KpiKind.COUNT, Unit.COUNT, title, help, source, **kw)  # type: ignore[arg-type]


def money(name: str, title: Text, help: Text, source: str = "", **kw: object) -> Kpi:
    return Kpi(name, KpiKind.MONEY, Unit.MONEY, title, help, source, **kw)  # type: ignore[arg-type]


def derived(
    name: str,
    unit: Unit,
    numerator: str | tuple[str, ...],
    denominator: str | tuple[str, ...],
    title: Text,
    help: Text,
    source: str = "",
    *,
    scale: Fraction | int = 1,
    record: tuple[str, str],
    **kw: object,
) -> Kpi:
    num = (numerator,) if isinstance(numerator, str) else numerator
    den = (denominator,) if isinstance(denominator, str) else denominator
    return Kpi(
        name, KpiKind.DERIVED, unit, title, help, source,
        numerator=_terms(*num), denominator=_terms(*den), scale=Fraction(scale), record=record,
        **kw,  # type: ignore[arg-type]
    )  # fmt: skip


T = Text
PCT = Fraction(100)

# Order matters: it is the order of report columns, metric families and rules.
ADDITIVE: tuple[Kpi, ...] = (
    count(
        "visits",
        T("Sales visits (SVT)", "销售拜访次数（SVT）"),
        T("Completed sales visits (SVT)", "完成的销售拜访次数（SVT）"),
        "seed 000",
        table="visits",
    ),
    count("deals_created", T("Deals created", "新建商机数"), T("Deals created", "新建的商机数")),
    count("deals_won", T("Deals won", "赢单数"), T("Deals won", "赢得的商机数")),
    count("deals_lost", T("Deals lost", "丢单数"), T("Deals lost", "丢失的商机数")),
    count("quotes_sent", T("Quotes sent", "报价数"), T("Quotes sent", "发出的报价数")),
    money(
        "revenue",
        T("Revenue", "收入"),
        T("Revenue of won deals, base currency", "赢单收入（本位币）"),
        table="revenue",
    ),
    money(
        "revenue_by_channel",
        T("Revenue by channel", "各渠道收入"),
        T("Revenue by the deal's contact method, base currency", "按商机接触渠道划分的收入（本位币）"),
        "seed 001",
        label="channel",
    ),
    Kpi(
        "cycle_seconds_sum",
        KpiKind.DURATION,
        Unit.SECONDS,
        T("Sales cycle, total seconds", "销售周期合计（秒）"),
        T("Sum of won deals' cycle lengths, seconds", "赢单销售周期之和（秒）"),
        "seed 003",
    ),
    count(
        "cycle_seconds_count",
        T("Won deals with a cycle length", "有销售周期的赢单数"),
        T("Won deals with a known cycle length", "已知销售周期的赢单数"),
        "seed 003",
    ),
    Kpi(
        "first_response_seconds_sum",
        KpiKind.DURATION,
        Unit.SECONDS,
        T("First response, total seconds", "首次响应合计（秒）"),
        T("Sum of first-response times, seconds", "首次响应时间之和（秒）"),
        "seed 003",
    ),
    count(
        "first_response_seconds_count",
        T("Deals with a first response", "有首次响应的商机数"),
        T("Deals with a first response", "有首次响应的商机数"),
        "seed 003",
    ),
    money(
        "target",
        T("Target", "目标"),
        T("Latest target for the period, base currency", "本期最新目标（本位币）"),
        "seeds 000, 002",
        table="target",
    ),
    money(
        "gross_margin",
        T("Gross margin", "毛利"),
        T(
            "Amount minus cost of won deals that carry a cost, base currency",
            "带成本赢单的金额减成本之和（本位币）",
        ),
        "seed 004",
    ),
    money(
        "costed_revenue",
        T("Costed revenue", "带成本收入"),
        T("Amount of won deals that carry a cost, base currency", "带成本赢单的金额之和（本位币）"),
        "seed 004",
    ),
    count("leads", T("Leads", "线索数"), T("Leads created", "新增线索数"), "seed 001"),
    count(
        "leads_by_channel",
        T("Leads by channel", "各渠道线索数"),
        T("Leads created by contact method", "按接触渠道划分的新增线索数"),
        "seed 001",
        label="channel",
    ),
    money(
        "spend_marketing",
        T("Marketing spend", "营销费用"),
        T("Marketing spend recorded, base currency", "记录的营销费用（本位币）"),
        "seeds 001, 003",
    ),
    money(
        "spend_sales",
        T("Sales spend", "销售费用"),
        T("Sales spend recorded, base currency", "记录的销售费用（本位币）"),
        "seeds 001, 003",
    ),
    count(
        "csat_responses",
        T("CSAT responses", "CSAT 答卷数"),
        T("CSAT survey responses", "CSAT 满意度调查答卷数"),
        "seeds 002, 003",
    ),
    count(
        "csat_satisfied",
        T("CSAT satisfied", "CSAT 满意数"),
        T("CSAT responses scoring 4 or 5", "CSAT 评分为 4 或 5 的答卷数"),
        "seeds 002, 003",
    ),
    count(
        "nps_responses",
        T("NPS responses", "NPS 答卷数"),
        T("NPS survey responses", "NPS 调查答卷数"),
        "seeds 002, 003",
    ),
    count(
        "nps_promoters",
        T("NPS promoters", "NPS 推荐者"),
        T("NPS responses scoring 9 or 10", "NPS 评分为 9 或 10 的答卷数"),
        "seeds 002, 003",
    ),
    count(
        "nps_detractors",
        T("NPS detractors", "NPS 贬损者"),
        T("NPS responses scoring 0 to 6", "NPS 评分为 0 至 6 的答卷数"),
        "seeds 002, 003",
    ),
    count(
        "new_customers",
        T("New customers", "新客户数"),
        T("Customers whose first purchase falls in the period", "首次购买落在本期的客户数"),
        "seeds 001-004",
    ),
    count(
        "buying_customers",
        T("Buying customers", "购买客户数"),
        T("Customers with a purchase in the period", "本期有购买的客户数"),
        "seeds 001-004",
    ),
    count(
        "returning_customers",
        T("Returning customers", "回头客户数"),
        T(
            "Buying customers whose first purchase was before the period",
            "首次购买在本期之前的购买客户数",
        ),
        "seeds 001-004",
    ),
    count(
        "reactivated_customers",
        T("Reactivated customers", "召回客户数"),
        T("Customers with a purchase in the period that follows a churn", "流失后在本期再次购买的客户数"),
        "seeds 001-004",
    ),
    count(
        "churned_customers",
        T("Churned customers", "流失客户数"),
        T(
            "Customers whose last purchase plus the churn window fell in the period (once passed)",
            "最后一次购买后超过流失期限、流失时刻在本期（且已过）的客户数",
        ),
        "seeds 001-004",
    ),
    count(
        "active_customers_start",
        T("Active customers at start", "期初活跃客户数"),
        T("Customers active at the period's first instant", "本期开始时刻的活跃客户数"),
        "seeds 001-004",
    ),
    count(
        "retained_customers",
        T("Retained customers", "留存客户数"),
        T(
            "Customers active at the start with no churn in the period up to now",
            "期初活跃且本期至今未流失的客户数",
        ),
        "seeds 001-004",
    ),
    Kpi(
        "metric_target",
        KpiKind.MONEY,
        Unit.MONEY,
        T("Target by metric", "各指标目标"),
        T(
            "Latest target for the period by metric (money in the base currency, or a count)",
            "按指标的本期最新目标（金额为本位币，或为数量）",
        ),
        "seed 002",
        label="metric",
    ),
)

SNAPSHOT: tuple[Kpi, ...] = (
    Kpi(
        "open_deals",
        KpiKind.SNAPSHOT,
        Unit.COUNT,
        T("Open deals", "在途商机数"),
        T("Open deals", "在途商机数"),
    ),
    Kpi(
        "open_pipeline",
        KpiKind.SNAPSHOT,
        Unit.MONEY,
        T("Open pipeline", "在途商机金额"),
        T("Open pipeline amount, base currency", "在途商机金额（本位币）"),
    ),
    Kpi(
        "weighted_pipeline",
        KpiKind.SNAPSHOT,
        Unit.MONEY,
        T("Weighted pipeline", "加权商机金额"),
        T(
            "Open pipeline weighted by stage probability, base currency",
            "按阶段赢率加权的在途商机金额（本位币）",
        ),
        "seed 001",
    ),
)

DERIVED: tuple[Kpi, ...] = (
    Kpi(
        "growth_pct",
        KpiKind.DERIVED,
        Unit.PERCENT,
        T("Revenue growth %", "收入增长率 %"),
        T(
            "Revenue against the compared period (previous to date for the current one) %",
            "收入较对比期（本期对上期同期）增长 %",
        ),
        "seed 001",
        numerator=_terms("revenue"),
        shape=Shape.GROWTH,
        record=("revenue", "growth_pct"),
        table="growth%",
    ),
    derived(
        "quote_to_close_pct", Unit.PERCENT, "deals_won", "quotes_sent",
        T("Quote-to-close %", "报价成交率 %"),
        T("Deals won per quote sent %", "赢单数 / 报价数 %"),
        "seed 001", scale=PCT, record=("deals", "quote_to_close_pct"), table="q2c%",
    ),
    derived(
        "win_rate_pct", Unit.PERCENT, "deals_won", ("deals_won", "deals_lost"),
        T("Win rate %", "赢单率 %"),
        T("Deals won of deals closed %", "赢单数 / (赢单数 + 丢单数) %"),
        "seed 003", scale=PCT, record=("deals", "win_rate_pct"), table="win%",
    ),
    derived(
        "lead_conversion_pct", Unit.PERCENT, "deals_won", "deals_created",
        T("Lead conversion %", "线索转化率 %"),
        T("Deals won per deal created %", "赢单数 / 新建商机数 %"),
        "seed 001", scale=PCT, record=("deals", "lead_conversion_pct"),
    ),
    derived(
        "avg_deal_size", Unit.MONEY, "revenue", "deals_won",
        T("Average deal size", "平均成交金额"),
        T("Revenue per deal won, base currency", "收入 / 赢单数（本位币）"),
        record=("revenue", "avg_deal_size"),
    ),
    derived(
        "avg_cycle_days", Unit.DAYS, "cycle_seconds_sum", "cycle_seconds_count",
        T("Average sales cycle (days)", "平均销售周期（天）"),
        T("Won at minus created at, averaged over won deals, days", "赢单时间减创建时间的平均值（天）"),
        "seed 003", scale=Fraction(1, 86400), record=("cycle", "avg_days"), table="cycle d",
    ),
    derived(
        "avg_first_response_hours", Unit.HOURS,
        "first_response_seconds_sum", "first_response_seconds_count",
        T("Average first response (hours)", "平均首次响应（小时）"),
        T(
            "First visit or quote on a deal minus its creation, averaged, hours",
            "商机创建至首次拜访或报价的平均时长（小时）",
        ),
        "seed 003", scale=Fraction(1, 3600), record=("first_response", "avg_hours"),
    ),
    derived(
        "channel_share_pct", Unit.PERCENT, "revenue_by_channel", "revenue",
        T("Revenue share by channel %", "各渠道收入占比 %"),
        T("Revenue of a contact method of all revenue %", "某接触渠道收入 / 总收入 %"),
        "seed 001", scale=PCT, record=("revenue_by_channel", "share_pct"), label="channel",
    ),
    derived(
        "attainment_pct", Unit.PERCENT, "revenue", "target",
        T("Target attainment %", "目标达成率 %"),
        T("Revenue of the target %", "收入 / 目标 %"),
        "seeds 000, 002", scale=PCT, record=("revenue", "attainment_pct"), table="attain%",
    ),
    derived(
        "projected_attainment_pct", Unit.PERCENT, "revenue", "target",
        T("Projected attainment %", "预计达成率 %"),
        T(
            "Revenue over the elapsed fraction of the period, of the target %",
            "收入 / 本期已过比例 / 目标 %",
        ),
        "seed 004", scale=PCT, shape=Shape.PROJECTED, record=("revenue", "projected_attainment_pct"),
    ),
    derived(
        "visits_per_win", Unit.RATIO, "visits", "deals_won",
        T("Visits per won deal", "每单拜访次数"),
        T("Sales visits per deal won", "拜访次数 / 赢单数"),
        "seed 000", record=("visits", "per_win"),
    ),
    derived(
        "gross_margin_pct", Unit.PERCENT, "gross_margin", "costed_revenue",
        T("Gross margin %", "毛利率 %"),
        T("Gross margin of costed revenue %", "毛利 / 带成本收入 %"),
        "seed 004", scale=PCT, record=("gross_margin", "pct"), table="margin%",
    ),
    derived(
        "cost_coverage_pct", Unit.PERCENT, "costed_revenue", "revenue",
        T("Cost coverage %", "成本覆盖率 %"),
        T("Revenue that carries a cost, of all revenue %", "带成本收入 / 收入 %"),
        scale=PCT, record=("costed_revenue", "coverage_pct"),
    ),
    derived(
        "cost_per_lead", Unit.MONEY, "spend_marketing", "leads",
        T("Cost per lead", "平均每条线索成本"),
        T("Marketing spend per lead, base currency", "营销费用 / 线索数（本位币）"),
        "seed 001", record=("spend_marketing", "per_lead"),
    ),
    derived(
        "lead_to_deal_pct", Unit.PERCENT, "deals_created", "leads",
        T("Lead-to-deal %", "线索转商机率 %"),
        T("Deals created per lead %", "新建商机数 / 线索数 %"),
        "seed 001", scale=PCT, record=("leads", "to_deal_pct"),
    ),
    derived(
        "cost_of_sales_pct", Unit.PERCENT, "spend_sales", "revenue",
        T("Cost of sales %", "销售成本比率 %"),
        T("Sales spend of revenue %", "销售费用 / 收入 %"),
        "seed 003", scale=PCT, record=("spend_sales", "of_revenue_pct"),
    ),
    derived(
        "cac", Unit.MONEY, ("spend_marketing", "spend_sales"), "new_customers",
        T("Customer acquisition cost", "客户获取成本"),
        T(
            "Marketing and sales spend per new customer, base currency",
            "（营销 + 销售费用）/ 新客户数（本位币）",
        ),
        "seed 003", record=("spend", "per_new_customer"),
    ),
    derived(
        "csat_pct", Unit.PERCENT, "csat_satisfied", "csat_responses",
        T("CSAT %", "客户满意度 %"),
        T("CSAT responses scoring 4-5 of all %", "CSAT 满意（4-5 分）答卷占比 %"),
        "seed 003", scale=PCT, record=("csat", "pct"), table="csat%",
    ),
    derived(
        "nps", Unit.RATIO, ("nps_promoters", "-nps_detractors"), "nps_responses",
        T("NPS", "净推荐值"),
        T("% promoters minus % detractors, from summed counts", "推荐者占比减贬损者占比（由计数求得）"),
        scale=PCT, record=("nps", "score"),
    ),
    derived(
        "retention_pct", Unit.PERCENT, "retained_customers", "active_customers_start",
        T("Customer retention %", "客户保留率 %"),
        T("Retained of the customers active at the start %", "留存客户数 / 期初活跃客户数 %"),
        scale=PCT, record=("customers", "retention_pct"),
    ),
    derived(
        "churn_pct", Unit.PERCENT, ("active_customers_start", "-retained_customers"),
        "active_customers_start",
        T("Customer churn %", "客户流失率 %"),
        T("100 minus retention %", "100 - 客户保留率 %"),
        scale=PCT, record=("customers", "churn_pct"), table="churn%",
    ),
    derived(
        "repurchase_pct", Unit.PERCENT, "returning_customers", "buying_customers",
        T("Repurchase %", "复购率 %"),
        T("Returning of the buying customers %", "回头客户数 / 购买客户数 %"),
        scale=PCT, record=("customers", "repurchase_pct"),
    ),
    derived(
        "clv", Unit.MONEY, "revenue", "churned_customers",
        T("Customer lifetime value", "客户终身价值"),
        T(
            "Revenue per churned customer over the trailing completed months (average revenue per "
            "customer and month over the monthly churn rate), base currency",
            "最近若干个完整月的收入 / 流失客户数（月均客户收入除以月流失率，本位币）",
        ),
        shape=Shape.TRAILING, record=("customers", "clv"),
    ),
    Kpi(
        "attainment_by_metric_pct",
        KpiKind.DERIVED,
        Unit.PERCENT,
        T("Attainment by metric %", "各指标目标达成率 %"),
        T("Each target metric's figure of its target %", "各目标指标的实际值 / 目标 %"),
        "seed 002",
        numerator=_terms("metric_target"),
        denominator=_terms("metric_target"),
        scale=PCT,
        shape=Shape.PER_METRIC,
        record=("metric_target", "attainment_pct"),
        label="metric",
    ),
    Kpi(
        "projected_by_metric_pct",
        KpiKind.DERIVED,
        Unit.PERCENT,
        T("Projected attainment by metric %", "各指标预计达成率 %"),
        T(
            "Each target metric's figure over the elapsed fraction of the period, of its target %",
            "各目标指标的实际值 / 本期已过比例 / 目标 %",
        ),
        "seed 004",
        numerator=_terms("metric_target"),
        denominator=_terms("metric_target"),
        scale=PCT,
        shape=Shape.PER_METRIC_PROJECTED,
        record=("metric_target", "projected_attainment_pct"),
        label="metric",
    ),
    # Rules only: the like-for-like decline of visits (SalesVisitsDrop); not a report column.
    Kpi(
        "visits_growth_pct",
        KpiKind.DERIVED,
        Unit.PERCENT,
        T("Visits growth %", "拜访量增长率 %"),
        T("Visits against the compared period %", "拜访量较对比期增长 %"),
        "seed 000",
        numerator=_terms("visits"),
        shape=Shape.GROWTH,
        record=("visits", "growth_pct"),
        surfaces=frozenset({Surface.RULES}),
    ),
)

SNAPSHOT_DERIVED: tuple[Kpi, ...] = (
    Kpi(
        "pipeline_coverage",
        KpiKind.DERIVED,
        Unit.TIMES,
        T("Pipeline coverage", "商机覆盖率"),
        T(
            "Weighted pipeline / (target - revenue) of the current period",
            "加权商机金额 / 本期剩余目标（目标 - 收入）",
        ),
        "seed 001",
        numerator=_terms("weighted_pipeline"),
        denominator=_terms("target", "-revenue"),
        shape=Shape.COVERAGE,
        record=("pipeline", "coverage_ratio"),
    ),
)

CATALOGUE: tuple[Kpi, ...] = (*ADDITIVE, *SNAPSHOT, *DERIVED, *SNAPSHOT_DERIVED)
BY_NAME: dict[str, Kpi] = {kpi.name: kpi for kpi in CATALOGUE}


def kpi(name: str) -> Kpi:
    return BY_NAME[name]


def on(surface: Surface, kpis: tuple[Kpi, ...] = CATALOGUE) -> tuple[Kpi, ...]:
    """The KPIs shown on `surface`, in catalogue order."""
    return tuple(k for k in kpis if surface in k.surfaces)


#: Additive components of a report row (contract section 4), in order.
ROW_COMPONENTS: tuple[str, ...] = tuple(k.name for k in on(Surface.REPORT, ADDITIVE))
#: Derived KPIs of a report row's `derived` object, in order.
ROW_DERIVED: tuple[str, ...] = tuple(k.name for k in on(Surface.REPORT, DERIVED))
#: Snapshot fields of a PIPE object.
PIPE_FIELDS: tuple[str, ...] = tuple(k.name for k in (*SNAPSHOT, *SNAPSHOT_DERIVED))


def _check() -> None:
    names = [k.name for k in CATALOGUE]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"KPI declared twice: {sorted(duplicates)}")
    for k in CATALOGUE:
        for term in (*k.numerator, *k.denominator):
            part = BY_NAME.get(term.component)
            if part is None or part.kind is KpiKind.DERIVED:
                raise ValueError(f"{k.name}: {term.component!r} is not an additive or snapshot KPI")


_check()
