"""Numbers, money, percentages and period names in the rules file's locale and currency (Babel)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_datetime, format_skeleton
from babel.numbers import (
    format_compact_currency,
    format_compact_decimal,
    format_currency,
    format_decimal,
    format_percent,
)

#: The rules file's locales and the Babel locale each is formatted with.
BABEL_LOCALES: dict[str, str] = {"en": "en", "zh-CN": "zh_Hans_CN"}
DASH = "–"  # an undefined figure (a ratio whose denominator is 0) or one not set (no target)


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


@dataclass(frozen=True)
class Formatter:
    """Formats the report's figures for one locale (`en`, `zh-CN`) and base currency."""

    locale: str
    currency: str
    zone: ZoneInfo
    fiscal_year_start_month: int = 1

    @property
    def babel(self) -> Locale:
        return Locale.parse(BABEL_LOCALES[self.locale])

    def money(self, value: Any) -> str:
        """A full amount: £327,500.00, ¥327,500.00."""
        if value is None:
            return DASH
        return format_currency(_decimal(value), self.currency, locale=self.babel)

    def money_short(self, value: Any) -> str:
        """An amount on a chart's axis or bar: £328K, £32.8万."""
        if value is None:
            return DASH
        return format_compact_currency(float(value), self.currency, locale=self.babel, fraction_digits=1)

    def count(self, value: Any) -> str:
        if value is None:
            return DASH
        return format_decimal(_decimal(value), "#,##0", locale=self.babel)

    def count_short(self, value: Any) -> str:
        return format_compact_decimal(float(value), locale=self.babel, fraction_digits=1)

    def number(self, value: Any, places: int = 1) -> str:
        """A ratio that is not a percentage (visits per win, NPS, days): one decimal."""
        if value is None:
            return DASH
        return format_decimal(_decimal(value), "#,##0." + "0" * places, locale=self.babel)

    def pct(self, value: Any, signed: bool = False) -> str:
        """A percentage figure of the report (33.0808 -> 33.1%); `signed` shows + on growth."""
        if value is None:
            return DASH
        pattern = "+#,##0.0%;-#,##0.0%" if signed else "#,##0.0%"
        return format_percent(_decimal(value) / 100, pattern, locale=self.babel)

    def period(self, kind: str, start: date | str) -> str:
        """A period's name: Nov 2026, 2026年11月; a week by its Monday; a fiscal quarter and year
        by their number when the fiscal year does not start in January."""
        day = date.fromisoformat(start) if isinstance(start, str) else start
        loc = self.babel
        if kind == "day":
            return format_skeleton("yMMMd", day, locale=loc)
        if kind == "week":
            monday = format_skeleton("yMMMd", day, locale=loc)
            return f"{monday}当周" if self.locale == "zh-CN" else f"w/c {monday}"
        if kind == "month":
            return format_skeleton("yMMM", day, locale=loc)
        if self.fiscal_year_start_month == 1:
            return format_skeleton("yQQQ" if kind == "quarter" else "y", day, locale=loc)
        months_in = (day.month - self.fiscal_year_start_month) % 12
        year = day.year if day.month >= self.fiscal_year_start_month else day.year - 1
        if kind == "quarter":
            number = months_in // 3 + 1
            return f"{year}财年第{number}季度" if self.locale == "zh-CN" else f"FY{year} Q{number}"
        return f"{year}财年" if self.locale == "zh-CN" else f"FY{year}"

    def period_short(self, kind: str, start: date | str) -> str:
        """A period on a chart's axis: Nov, 11月 (months); 23 Nov (weeks, days); Q4 2026."""
        day = date.fromisoformat(start) if isinstance(start, str) else start
        if kind in ("day", "week"):
            return format_skeleton("MMMd", day, locale=self.babel)
        if kind == "month":
            return format_skeleton("yMMM", day, locale=self.babel)
        return self.period(kind, day)

    def moment(self, instant: datetime) -> str:
        """A time stamp in the business time zone: Nov 30, 2026, 6:00 PM."""
        return format_datetime(instant, "medium", tzinfo=self.zone, locale=self.babel)
