"""Pydantic models of `rules.yaml`; every key validated, errors name the key and what is allowed."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from kpi_rules.vocabulary import PeriodKind, Scope, Severity

PERIOD_KINDS: tuple[PeriodKind, ...] = tuple(PeriodKind)
# Label a business alert is evaluated and grouped by (the recording-rule level it reads).
AlertScope = Literal[Scope.REP, Scope.TEAM, Scope.REGION]
_DURATION = r"^\d+[smhd]$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Alert(_Strict):
    """An alert's settings: `for` is the YAML key of `for_` (a Python keyword)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# The label an alert is evaluated and grouped by: team unless the rules file says otherwise.
_TeamScope = Annotated[AlertScope, Field(description="rep | team | region (default team)")]


class Keep(_Strict):
    """How many periods of each kind are retained (the current one included)."""

    hour: int = Field(
        default=768,
        ge=25,
        le=24 * 400,
        description="hours of 15-minute slots kept: like-for-like compares with the same time of "
        "day of a previous day, week or month while its slots are kept (768 h covers a month "
        "ago), else with that previous day whole",
    )
    day: int = Field(default=400, ge=2, le=3660)
    week: int = Field(default=60, ge=2, le=520)
    month: int = Field(default=26, ge=2, le=240)
    quarter: int = Field(default=10, ge=2, le=80)
    year: int = Field(default=3, ge=2, le=20)


class DeclineAlert(_Alert):
    threshold_pct: Decimal = Field(default=Decimal(20), gt=0, le=100)
    min_previous_revenue: Decimal = Field(default=Decimal(1000), ge=0)
    period: PeriodKind = PeriodKind.MONTH
    for_: str = Field(default="30m", alias="for", pattern=_DURATION)
    severity: Severity = Severity.WARNING
    scope: _TeamScope = Scope.TEAM


class DownTrendAlert(_Alert):
    consecutive_periods: int = Field(default=3, ge=2, le=12)
    period: PeriodKind = PeriodKind.MONTH
    for_: str = Field(
        default="1h", alias="for", pattern=_DURATION,
        description="how long the trend must hold before the alert fires (default 1h)",
    )
    severity: Severity = Severity.WARNING
    scope: _TeamScope = Scope.TEAM


class VisitsDropAlert(_Alert):
    threshold_pct: Decimal = Field(default=Decimal(30), gt=0, le=100)
    min_previous_visits: int = Field(default=10, ge=0)
    period: PeriodKind = PeriodKind.WEEK
    for_: str = Field(default="1h", alias="for", pattern=_DURATION)
    severity: Severity = Severity.WARNING
    scope: _TeamScope = Scope.TEAM


class PaceBehindAlert(_Alert):
    threshold_pct: Decimal = Field(default=Decimal(80), gt=0)
    min_elapsed_pct: Decimal = Field(default=Decimal(25), ge=0, le=100)
    period: PeriodKind = PeriodKind.MONTH
    for_: str = Field(default="1h", alias="for", pattern=_DURATION)
    severity: Severity = Severity.WARNING
    scope: _TeamScope = Scope.TEAM


class QuoteToCloseAlert(_Alert):
    threshold_pct: Decimal = Field(default=Decimal(10), gt=0, le=100)
    min_quotes: int = Field(default=20, ge=1)
    period: PeriodKind = PeriodKind.MONTH
    for_: str = Field(default="1h", alias="for", pattern=_DURATION, description="default 1h")
    severity: Severity = Severity.INFO
    scope: _TeamScope = Scope.TEAM


class CoverageAlert(_Alert):
    threshold: Decimal = Field(default=Decimal(2), gt=0)
    period: PeriodKind = PeriodKind.MONTH
    for_: str = Field(default="1h", alias="for", pattern=_DURATION, description="default 1h")
    severity: Severity = Severity.WARNING
    scope: _TeamScope = Scope.TEAM


class ChurnRisingAlert(_Alert):
    """SalesChurnRising: customer churn % of the period to date, with enough customers at its start."""

    threshold_pct: Decimal = Field(
        default=Decimal(20), gt=0, le=100, description="churn % of the period above which it fires"
    )
    min_active_customers: int = Field(
        default=20, ge=1, description="only with at least this many customers active at the period's start"
    )
    period: PeriodKind = PeriodKind.MONTH
    for_: str = Field(default="1h", alias="for", pattern=_DURATION, description="default 1h")
    severity: Severity = Severity.WARNING
    scope: _TeamScope = Scope.TEAM


class MarginDropAlert(_Alert):
    """SalesMarginDrop: gross margin % points below the same point of the previous period."""

    threshold_points: Decimal = Field(
        default=Decimal(5), gt=0, le=100, description="percentage points of gross margin lost"
    )
    min_costed_revenue: Decimal = Field(
        default=Decimal(10000),
        ge=0,
        description="only when both periods to date have at least this much costed revenue",
    )
    period: PeriodKind = PeriodKind.MONTH
    for_: str = Field(default="1h", alias="for", pattern=_DURATION, description="default 1h")
    severity: Severity = Severity.WARNING
    scope: _TeamScope = Scope.TEAM


class SatisfactionLowAlert(_Alert):
    """SalesSatisfactionLow: CSAT % or NPS of the period to date low, with enough responses."""

    csat_threshold_pct: Decimal | None = Field(
        default=Decimal(70), gt=0, le=100, description="CSAT % below which it fires; null: no CSAT alert"
    )
    nps_threshold: Decimal | None = Field(
        default=Decimal(0), gt=-100, le=100, description="NPS below which it fires; null: no NPS alert"
    )
    min_responses: int = Field(
        default=20, ge=1, description="only with at least this many responses of that survey kind"
    )
    period: PeriodKind = PeriodKind.MONTH
    for_: str = Field(default="1h", alias="for", pattern=_DURATION, description="default 1h")
    severity: Severity = Severity.WARNING
    scope: _TeamScope = Scope.TEAM

    @model_validator(mode="after")
    def _one_threshold(self) -> SatisfactionLowAlert:
        if self.csat_threshold_pct is None and self.nps_threshold is None:
            raise ValueError("set csat_threshold_pct or nps_threshold (null turns one of them off, not both)")
        return self


class AllocationGapAlert(_Alert):
    """SalesTargetAllocationGap: a scope's target off the sum of its members' (or of its periods')
    by more than `targets.allocation_tolerance_pct`."""

    for_: str = Field(
        default="1h",
        alias="for",
        pattern=_DURATION,
        description="default 1h: targets entered one by one leave a gap for a while",
    )
    severity: Severity = Severity.INFO


class ServiceAlerts(_Alert):
    consumer_lag_max: int = Field(default=10000, ge=1)
    dead_letter_rate_per_s: Decimal = Field(default=Decimal("0.1"), ge=0)
    no_events_for: str = Field(default="15m", pattern=_DURATION)
    severity: Severity = Severity.CRITICAL
    worker_down_for: str = Field(
        default="1m", pattern=_DURATION, description="KpiWorkerDown: scrape failing this long (default 1m)"
    )
    for_: str = Field(
        default="5m", alias="for", pattern=_DURATION,
        description=(
            "KpiConsumerLagHigh, KpiDeadLetterRising, KpiNoEvents, KpiStateIncomplete: held this "
            "long (default 5m)"
        ),
    )
    rate_window: str = Field(
        default="5m", pattern=_DURATION, description="KpiDeadLetterRising: rate() window (default 5m)"
    )


class Notify(_Strict):
    """Alertmanager routing, written to prometheus/alertmanager.yml by `kpi-monitor rules`."""

    webhook_url: str = Field(
        default="http://127.0.0.1:5001/hook",
        pattern=r"^https?://\S+$",
        description="on-call webhook every alert is sent to (default http://127.0.0.1:5001/hook)",
    )
    group_wait: str = Field(default="30s", pattern=_DURATION, description="default 30s")
    group_interval: str = Field(default="5m", pattern=_DURATION, description="default 5m")
    repeat_interval: str = Field(default="4h", pattern=_DURATION, description="default 4h")
    send_resolved: bool = Field(default=True, description="also notify when an alert resolves")


class AlertRules(_Strict):
    revenue_decline: DeclineAlert = DeclineAlert()
    down_trend: DownTrendAlert = DownTrendAlert()
    visits_drop: VisitsDropAlert = VisitsDropAlert()
    target_pace_behind: PaceBehindAlert = PaceBehindAlert()
    quote_to_close_low: QuoteToCloseAlert = QuoteToCloseAlert()
    pipeline_coverage_low: CoverageAlert = CoverageAlert()
    churn_rising: ChurnRisingAlert = ChurnRisingAlert()
    margin_drop: MarginDropAlert = MarginDropAlert()
    satisfaction_low: SatisfactionLowAlert = SatisfactionLowAlert()
    target_allocation_gap: AllocationGapAlert = AllocationGapAlert()
    service: ServiceAlerts = ServiceAlerts()
    record_periods: tuple[PeriodKind, ...] = Field(
        default=(PeriodKind.WEEK, PeriodKind.MONTH, PeriodKind.QUARTER),
        min_length=1,
        description=(
            "periods the Prometheus recording rules and dashboards cover (default week, month, "
            "quarter); the period of every alert above is recorded too"
        ),
    )
    notify: Notify = Notify()

    @field_validator("record_periods")
    @classmethod
    def _unique_periods(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError(f"record_periods lists a period twice: {list(value)}")
        return value

    @property
    def recorded_periods(self) -> tuple[PeriodKind, ...]:
        """record_periods plus every alert's period, in calendar order."""
        # Read off the alerts themselves, so an alert added with a `period` is recorded too.
        alerts = (getattr(self, name) for name in type(self).model_fields)
        wanted = set(self.record_periods) | {
            alert.period for alert in alerts if isinstance(alert, _Alert) and hasattr(alert, "period")
        }
        return tuple(kind for kind in PERIOD_KINDS if kind in wanted)


class Customers(_Strict):
    """Customer KPIs (contract section 3.1): when a customer churns, is at risk, is forgotten."""

    churn_after_days: int = Field(
        default=90, ge=1, le=3660, description="days without a purchase after which a customer churns"
    )
    at_risk_after_days: int = Field(
        default=45,
        ge=1,
        le=3660,
        description="days without a purchase or visit after which an active customer is at risk",
    )
    clv_trailing_months: int = Field(
        default=6, ge=1, le=60, description="completed months the customer lifetime value is taken over"
    )
    customer_keep_days: int = Field(
        default=1100,
        ge=1,
        le=36600,
        description="how long a customer with no purchase is remembered; older purchases, visits "
        "and quotes are ignored on the customer side (counted, not dead-lettered: the rep side "
        "judges the event)",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Customers:
        if self.at_risk_after_days >= self.churn_after_days:
            raise ValueError(
                f"customers.at_risk_after_days ({self.at_risk_after_days}) must be below "
                f"customers.churn_after_days ({self.churn_after_days}): a customer is at risk "
                "before it churns"
            )
        if self.customer_keep_days < self.churn_after_days:
            raise ValueError(
                f"customers.customer_keep_days ({self.customer_keep_days}) must be at least "
                f"customers.churn_after_days ({self.churn_after_days}): a customer is remembered at "
                "least until it churns"
            )
        return self


class Targets(_Strict):
    """Targets by scope and metric (contract section 3.3)."""

    allocation_tolerance_pct: Decimal = Field(
        default=Decimal(1),
        ge=0,
        le=100,
        description="SalesTargetAllocationGap fires when a scope's target and the sum of its "
        "members' (or of its periods') differ by more than this % of the scope's target",
    )


class Rules(_Strict):
    """The whole rules file. `timezone`, `currency`, `fx` and `stages` are fixed by the contract."""

    timezone: str = Field(description="IANA time zone of the business calendar")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 base currency")
    fx: dict[str, Decimal] = Field(default_factory=dict)
    stages: dict[str, Decimal] = Field(min_length=1)
    fiscal_year_start_month: int = Field(default=1, ge=1, le=12)
    keep: Keep = Keep()
    max_future_skew_seconds: int = Field(default=300, ge=0, le=7 * 86400)
    dedupe_horizon_hours: int = Field(default=168, ge=1, le=24 * 400)
    max_event_bytes: int = Field(default=65536, ge=256, le=10 * 1024 * 1024)
    locale: Literal["en", "zh-CN"] = "en"
    customers: Customers = Customers()
    targets: Targets = Targets()
    alerts: AlertRules = AlertRules()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown IANA time zone {value!r}; use a name from the IANA database such as "
                "'Europe/London', 'America/New_York' or 'Asia/Shanghai'"
            ) from None
        return value

    @field_validator("fx")
    @classmethod
    def _fx_rates(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for code, rate in value.items():
            if len(code) != 3 or not code.isalpha() or not code.isupper():
                raise ValueError(f"fx key {code!r} is not an ISO 4217 code (three capital letters)")
            if not rate.is_finite() or rate <= 0:
                raise ValueError(f"fx rate for {code} must be a positive number, got {rate}")
        return value

    @field_validator("stages")
    @classmethod
    def _probabilities(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for stage, p in value.items():
            if not stage:
                raise ValueError("stage names must be non-empty")
            if not p.is_finite() or p < 0 or p > 1:
                raise ValueError(
                    f"stage {stage!r}: win probability must be between 0 and 1, got {p}"
                )
        return value

    @field_validator("fx")
    @classmethod
    def _base_not_in_fx(cls, value: dict[str, Decimal], info: ValidationInfo) -> dict[str, Decimal]:
        base = info.data.get("currency")
        if base is not None and base in value:
            raise ValueError(f"must not list the base currency {base} (its rate is 1 by definition)")
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def keep_for(self, kind: str) -> int:
        return int(getattr(self.keep, kind))
