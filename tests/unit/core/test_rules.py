"""The rules file (contract section 5): the packaged one loads; every bad key is a clear error."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from kpi_rules import Rules, RulesError, load_rules, packaged_rules_path
from kpi_rules.loader import parse_rules


def _base() -> dict[str, Any]:
    return load_rules(packaged_rules_path()).model_dump(mode="json", by_alias=True)


def test_packaged_rules_load() -> None:
    rules = load_rules(packaged_rules_path())
    assert isinstance(rules, Rules)
    assert rules.timezone == "Europe/London" and rules.zone == ZoneInfo("Europe/London")
    assert rules.currency == "GBP"
    assert rules.fx == {"EUR": Decimal("0.86"), "USD": Decimal("0.79")}
    assert set(rules.stages) == {"qualification", "discovery", "proposal", "negotiation", "commit"}
    assert all(Decimal(0) <= p <= Decimal(1) for p in rules.stages.values())
    assert rules.keep_for("day") == 400
    assert rules.alerts.revenue_decline.for_ == "30m"
    # The default path falls back to the packaged file; a round trip validates again.
    assert load_rules() == rules
    assert parse_rules(_base()) == rules


def test_minimal_rules_take_documented_defaults() -> None:
    rules = parse_rules({"timezone": "Asia/Shanghai", "currency": "CNY", "stages": {"a": "0.5"}})
    assert rules.fx == {}
    assert rules.fiscal_year_start_month == 1
    assert rules.locale == "en"
    assert rules.max_future_skew_seconds == 300


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            {"colour": "blue"},
            ["colour: unknown key", "allowed here:", "timezone"],
            id="unknown-key",
        ),
        pytest.param(
            {"timezone": "Mars/Olympus"},
            ["timezone:", "Mars/Olympus", "Europe/London"],
            id="bad-timezone",
        ),
        pytest.param(
            {"currency": "gbp"}, ["currency:", "ISO 4217", "three capital letters"], id="bad-currency"
        ),
        pytest.param(
            {"currency": "POUNDS"}, ["currency:", "ISO 4217", "three capital letters"], id="long-currency"
        ),
        pytest.param(
            {"stages": {"proposal": "1.5"}},
            ["stages:", "proposal", "between 0 and 1", "1.5"],
            id="probability-above-1",
        ),
        pytest.param(
            {"stages": {"proposal": "-0.1"}},
            ["stages:", "between 0 and 1"],
            id="probability-below-0",
        ),
        pytest.param({"stages": {}}, ["stages:", "at least 1"], id="no-stages"),
        pytest.param({"locale": "fr"}, ["locale:", "'en'", "'zh-CN'", "'fr'"], id="bad-locale"),
        pytest.param(
            {"keep": {"day": 1}},
            ["keep.day:", "greater than or equal to 2"],
            id="keep-day-too-small",
        ),
        pytest.param(
            {"keep": {"hour": 24}},
            ["keep.hour:", "greater than or equal to 25"],
            id="keep-hour-too-small",
        ),
        pytest.param({"fx": {"GBP": "1"}}, ["fx:", "must not list the base currency GBP"], id="fx-for-base"),
        pytest.param({"fx": {"EUR": "0"}}, ["fx:", "EUR", "positive"], id="fx-rate-zero"),
        pytest.param({"fx": {"eur": "1"}}, ["fx:", "'eur'", "ISO 4217"], id="fx-code"),
        pytest.param({"fiscal_year_start_month": 13}, ["fiscal_year_start_month:", "12"], id="fiscal-month"),
        pytest.param({"timezone": None}, ["timezone:"], id="timezone-null"),
    ],
)
def test_invalid_rules_name_the_key_and_what_is_allowed(change: dict[str, Any], expected: list[str]) -> None:
    data = _base()
    for key, value in change.items():
        # `keep` is a section: change one of its keys; any other key is replaced whole.
        data[key] = {**data[key], **value} if key == "keep" else value
    with pytest.raises(RulesError) as error:
        parse_rules(data, "rules.yaml")
    message = str(error.value)
    assert message.startswith("invalid rules file rules.yaml:")
    for part in expected:
        assert part in message, message


def test_missing_required_key() -> None:
    with pytest.raises(RulesError, match=r"currency: required key is missing"):
        parse_rules({"timezone": "UTC", "stages": {"a": "0.5"}})


def test_rules_file_errors(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read rules file"):
        load_rules(tmp_path / "absent.yaml")
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("timezone: [unclosed\n")
    with pytest.raises(RulesError, match="is not valid YAML"):
        load_rules(bad_yaml)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(RulesError, match="top level must be a mapping"):
        load_rules(listing)


def test_rules_error_is_a_value_error() -> None:
    assert issubclass(RulesError, ValueError)
