"""kpi_core.events: decoding CRM events, exact money, and every rejection reason it owns."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpi_core.events import (
    EVENT_MODELS,
    EVENT_TYPES,
    REASONS,
    DealCreated,
    DealStageChanged,
    DealWon,
    QuoteSent,
    Rejection,
    TargetSet,
    VisitCompleted,
    decode_event,
    decode_obj,
    example_events,
)
from kpi_rules.models import Rules
from kpi_rules.vocabulary import TOPIC_OF

RULES = Rules(
    timezone="Europe/London",
    currency="GBP",
    fx={"EUR": Decimal("0.86"), "USD": Decimal("0.79")},
    stages={"qualification": Decimal("0.1"), "proposal": Decimal("0.4")},
    max_event_bytes=4096,
)
BASE = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
EXAMPLES = {e["type"]: e for e in example_events(BASE, RULES)}


def encode(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def event(type_: str, /, **changes: Any) -> dict[str, Any]:
    """The example of type `type_` with fields changed (a value of ... removes the field)."""
    out = dict(EXAMPLES[type_])
    for key, value in changes.items():
        if value is ...:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def reject(raw: bytes | dict[str, Any]) -> Rejection:
    data = raw if isinstance(raw, bytes) else encode(raw)
    with pytest.raises(Rejection) as info:
        decode_event(data, RULES)
    rejection = info.value
    assert rejection.reason in REASONS
    assert str(rejection) == rejection.error
    return rejection


def won_with_amount(text: str, currency: str = "GBP") -> bytes:
    """A deal.won whose amount is the JSON text `text`, exactly as a CRM would write it."""
    raw = encode(event("deal.won", amount="__AMOUNT__", currency=currency))
    return raw.replace(b'"__AMOUNT__"', text.encode())


# --------------------------------------------------------------------------- valid events


def test_constants_match_the_contract() -> None:
    assert set(EVENT_TYPES) == set(EVENT_MODELS) == set(TOPIC_OF)
    assert len(EVENT_TYPES) == 10
    assert {TOPIC_OF[t] for t in EVENT_TYPES} == {
        "deals", "visits", "quotes", "targets", "surveys", "leads", "spend"
    }  # fmt: skip
    assert TOPIC_OF["deal.lost"] == "deals" and TOPIC_OF["target.set"] == "targets"
    assert TOPIC_OF["survey.completed"] == "surveys" and TOPIC_OF["spend.recorded"] == "spend"


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_every_example_decodes_to_its_model(kind: str) -> None:
    decoded = decode_event(encode(EXAMPLES[kind]), RULES)
    assert type(decoded) is EVENT_MODELS[kind]
    assert decoded.type == kind
    assert decoded.occurred_at.tzinfo is UTC
    assert decode_obj(EXAMPLES[kind], RULES) == decoded


def test_example_events_cover_every_type_once() -> None:
    kinds = [e["type"] for e in example_events(BASE)]
    assert sorted(kinds) == sorted(EVENT_TYPES)
    with pytest.raises(ValueError):
        example_events(datetime(2026, 3, 10))


def test_fields_are_typed() -> None:
    won = decode_event(encode(EXAMPLES["deal.won"]), RULES)
    assert isinstance(won, DealWon)
    assert won.amount == Decimal("11250.50") and str(won.amount) == "11250.50"
    assert won.deal_created_at == BASE and won.channel == "phone"
    target = decode_event(encode(EXAMPLES["target.set"]), RULES)
    assert isinstance(target, TargetSet)
    assert target.period_start == date(2026, 3, 1) and target.period == "month"
    visit = decode_event(encode(EXAMPLES["visit.completed"]), RULES)
    assert isinstance(visit, VisitCompleted) and visit.duration_minutes == 45


def test_models_are_frozen() -> None:
    won = decode_event(encode(EXAMPLES["deal.won"]), RULES)
    with pytest.raises(ValueError):
        won.amount = Decimal(1)  # type: ignore[misc]


def test_missing_or_null_team_and_region_are_unknown() -> None:
    missing = decode_event(encode(event("deal.lost", team=..., region=...)), RULES)
    assert (missing.team, missing.region) == ("unknown", "unknown")
    null = decode_event(encode(event("deal.lost", team=None, region="  ")), RULES)
    assert (null.team, null.region) == ("unknown", "unknown")


def test_extra_fields_are_ignored() -> None:
    raw = encode(event("visit.completed", crm_owner={"x": [1, 2.5]}, note="hi", amount=3.3))
    decoded = decode_event(raw, RULES)
    assert isinstance(decoded, VisitCompleted)
    assert not hasattr(decoded, "crm_owner") and not hasattr(decoded, "note")


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-03-10T09:30:00Z",
        "2026-03-10T09:30:00+00:00",
        "2026-03-10T10:30:00+01:00",
        "2026-03-10T04:30:00-05:00",
        "2026-03-10T09:30:00.000Z",
    ],
)
def test_offsets_and_z_are_accepted_and_normalised_to_utc(stamp: str) -> None:
    decoded = decode_event(encode(event("deal.lost", occurred_at=stamp)), RULES)
    assert decoded.occurred_at == BASE
    assert decoded.occurred_at.tzinfo is UTC


def test_stage_changed_amount_defaults_to_base_currency() -> None:
    decoded = decode_event(encode(event("deal.stage_changed", currency=...)), RULES)
    assert isinstance(decoded, DealStageChanged)
    assert decoded.currency == "GBP" and decoded.amount == Decimal("11500.00")
    without = decode_event(encode(event("deal.stage_changed", amount=..., currency="JPY")), RULES)
    assert isinstance(without, DealStageChanged)
    assert without.amount is None and without.currency is None


# --------------------------------------------------------------------------- exact money


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.1", "0.1"),
        ("1e-6", "0.000001"),
        ("1E-6", "0.000001"),
        ("12.50", "12.50"),
        ('"12.50"', "12.50"),
        ("0.30000000000000004", None),  # 17 decimals: more than 6 places
        ("123456789012.123456", "123456789012.123456"),
        ("999999999999999999", "999999999999999999"),
        ("1e3", "1000"),
        ("1.10000000", "1.100000"),  # only trailing zeros beyond 6 places
        ("0", "0"),
        ("-0.0", "0"),
        ("12500.5", "12500.5"),
    ],
)
def test_money_is_exact_from_the_json_text(text: str, expected: str | None) -> None:
    raw = won_with_amount(text)
    if expected is None:
        rejection = reject(raw)
        assert rejection.reason == "schema" and "amount" in rejection.error
        assert "6 after the decimal point" in rejection.error
        return
    decoded = decode_event(raw, RULES)
    assert isinstance(decoded, DealWon)
    assert decoded.amount == Decimal(expected)
    assert str(decoded.amount) == expected


def test_point_one_is_not_read_through_a_float() -> None:
    decoded = decode_event(won_with_amount("0.1"), RULES)
    assert decoded.amount == Decimal("0.1") != Decimal(0.1)  # type: ignore[union-attr]


def test_amounts_stay_exact_when_the_message_has_escapes_or_nested_amounts() -> None:
    nested = won_with_amount("0.1").replace(b"{", b'{"meta": {"amount": 7.25}, "n": "a\\"b", ', 1)
    decoded = decode_event(nested, RULES)
    assert decoded.amount == Decimal("0.1")  # type: ignore[union-attr]
    escaped = won_with_amount("2.675").replace(b'"amount"', b'"\\u0061mount"')
    assert decode_event(escaped, RULES).amount == Decimal("2.675")  # type: ignore[union-attr]


@pytest.mark.parametrize("text", ["123456789012345678.5", "1234567890123456789", "1e19", '"1e400"'])
def test_too_many_digits_is_a_schema_rejection_naming_the_limit(text: str) -> None:
    rejection = reject(won_with_amount(text))
    assert rejection.reason == "schema"
    assert rejection.error.startswith("amount: ")
    assert "at most 18 digits" in rejection.error


@pytest.mark.parametrize(
    "text", ['"NaN"', '"Infinity"', '"12,50"', '"1_000"', '" 12"', "true", "[1]", '"0x10"', '"٣"']
)
def test_non_numbers_are_schema_rejections(text: str) -> None:
    rejection = reject(won_with_amount(text))
    assert rejection.reason == "schema" and rejection.error.startswith("amount: ")


def test_nan_and_infinity_literals_are_invalid_json() -> None:
    assert reject(won_with_amount("NaN")).reason == "invalid_json"
    assert reject(won_with_amount("Infinity")).reason == "invalid_json"
    assert reject(won_with_amount("1e400")).reason == "invalid_json"  # not a finite double either


@given(st.decimals(min_value=0, max_value=Decimal("999999999999"), places=6, allow_nan=False))
def test_any_amount_within_the_limits_survives_exactly(value: Decimal) -> None:
    for text in (str(value), f'"{value}"'):
        decoded = decode_event(won_with_amount(text), RULES)
        assert decoded.amount == value  # type: ignore[union-attr]


# --------------------------------------------------------------------------- currency


def test_foreign_currency_with_a_rate_is_converted_exactly() -> None:
    decoded = decode_event(won_with_amount("100.10", currency="EUR"), RULES)
    assert isinstance(decoded, DealWon)
    assert decoded.currency == "GBP"
    assert decoded.amount == Decimal("86.0860")  # 100.10 x 0.86, no rounding
    quote = decode_event(encode(event("quote.sent", amount="0.1", currency="USD")), RULES)
    assert isinstance(quote, QuoteSent) and quote.amount == Decimal("0.079")
    created = decode_event(encode(event("deal.created", amount=10, currency="EUR")), RULES)
    assert isinstance(created, DealCreated) and created.amount == Decimal("8.60")


def test_currency_without_a_rate_is_currency_mismatch() -> None:
    rejection = reject(won_with_amount("10", currency="JPY"))
    assert rejection.reason == "currency_mismatch"
    assert rejection.error.startswith("currency: JPY")
    assert "GBP" in rejection.error and "EUR" in rejection.error and "USD" in rejection.error
    target = reject(event("target.set", currency="CHF"))
    assert target.reason == "currency_mismatch" and "CHF" in target.error


@pytest.mark.parametrize("code", ["gbp", "GB", "GBPX", 826, None])
def test_malformed_currency_is_schema(code: Any) -> None:
    rejection = reject(event("deal.won", currency=code))
    assert rejection.reason == "schema" and rejection.error.startswith("currency: ")


# --------------------------------------------------------------------------- rejections


def test_too_large() -> None:
    raw = encode(event("deal.lost", note="x" * RULES.max_event_bytes))
    rejection = reject(raw)
    assert rejection.reason == "too_large"
    assert str(len(raw)) in rejection.error and "max_event_bytes" in rejection.error


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"{",
        b'{"a":1}x',
        b"\xff\xfe{}",
        b'{"type": "deal.lost", "x": "\xc3"}',
        b"[1, 2]",
        b'"deal.won"',
        b"null",
        b"42",
        b"\xef\xbb\xbf{}",
        b'{"x": "\\ud800"}',
    ],
)
def test_invalid_json(raw: bytes) -> None:
    rejection = reject(raw)
    assert rejection.reason == "invalid_json"
    assert "JSON" in rejection.error


def test_non_bytes_values_are_rejected_not_raised() -> None:
    for value in (None, 42, ["x"]):
        with pytest.raises(Rejection) as info:
            decode_event(value, RULES)  # type: ignore[arg-type]
        assert info.value.reason == "invalid_json"
    assert decode_event(json.dumps(EXAMPLES["deal.lost"]), RULES).type == "deal.lost"  # type: ignore[arg-type]
    assert decode_event(bytearray(encode(EXAMPLES["deal.lost"])), RULES).type == "deal.lost"  # type: ignore[arg-type]


def test_deeply_nested_json_is_not_a_recursion_error() -> None:
    for raw in (b"[" * 10_000, b"[" * 10_000 + b"]" * 10_000, b'{"a":' * 10_000):
        big_rules = RULES.model_copy(update={"max_event_bytes": 10 * 1024 * 1024})
        with pytest.raises(Rejection) as info:
            decode_event(raw, big_rules)
        assert info.value.reason in {"invalid_json", "schema"}
    nested_extra = b'{"deep": ' + b"[" * 900 + b"]" * 900 + b', "amount": 1.5}'
    assert reject(nested_extra).reason == "schema"


@pytest.mark.parametrize(
    ("obj", "needle"),
    [
        ({"event_id": "e"}, "type: required field is missing"),
        ({"type": None}, "type: is null"),
        ({"type": 7}, "type: expected a string"),
        ({"type": ["deal.won"]}, "type: expected a string"),
    ],
)
def test_missing_or_non_string_type_is_schema(obj: dict[str, Any], needle: str) -> None:
    rejection = reject(obj)
    assert rejection.reason == "schema" and needle in rejection.error
    assert "deal.won" in rejection.error  # lists the allowed types


def test_unknown_type_lists_the_known_ones() -> None:
    rejection = reject(event("deal.won", type="deal.closed"))
    assert rejection.reason == "unknown_type"
    assert rejection.error.startswith("type: 'deal.closed'")
    for kind in EVENT_TYPES:
        assert kind in rejection.error


@pytest.mark.parametrize(
    ("kind", "field"),
    [
        (kind, field)
        for kind, example in sorted(EXAMPLES.items())
        for field in example
        if field not in {"team", "region", "channel", "deal_created_at", "duration_minutes", "type"}
        and not (kind == "deal.stage_changed" and field in {"amount", "currency"})
        and not (kind == "visit.completed" and field == "deal_id")
        and not (kind == "survey.completed" and field == "deal_id")
        # required by a rule across fields, with a message of its own (test_rules_across_fields)
        and not (kind == "target.set" and field in {"rep_id", "currency"})
    ],
)
def test_missing_required_field_is_schema_naming_it(kind: str, field: str) -> None:
    rejection = reject(event(kind, **{field: ...}))
    assert rejection.reason == "schema"
    assert rejection.error == f"{field}: required field is missing"


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("event_id", "", "event_id: "),
        ("event_id", "x" * 129, "event_id: "),
        ("rep_id", "   ", "rep_id: must not be blank"),
        ("rep_id", 42, "rep_id: "),
        ("deal_id", None, "deal_id: "),
        ("team", 5, "team: "),
        ("region", "r" * 129, "region: "),
        ("channel", "fax", "channel: "),
        ("occurred_at", 1_700_000_000, "occurred_at: "),
        ("occurred_at", "yesterday", "occurred_at: 'yesterday' is not a timestamp"),
        ("deal_created_at", "2026-13-01T00:00:00Z", "deal_created_at: "),
    ],
)
def test_bad_field_is_schema_naming_it(field: str, value: Any, needle: str) -> None:
    rejection = reject(event("deal.won", **{field: value}))
    assert rejection.reason == "schema"
    assert rejection.error.startswith(needle), rejection.error


def test_bad_visit_and_target_fields_are_schema() -> None:
    for value in (-1, 1441, 30.5, "30", True):
        rejection = reject(event("visit.completed", duration_minutes=value))
        assert rejection.reason == "schema" and rejection.error.startswith("duration_minutes: ")
    for field, value in (
        ("period", "week"),
        ("period_start", "2026-03"),
        ("period_start", "2026-03-01T00:00:00Z"),
        ("period_start", 20260301),
    ):
        rejection = reject(event("target.set", **{field: value}))
        assert rejection.reason == "schema" and rejection.error.startswith(f"{field}: ")


def test_unknown_stage_is_schema_listing_the_stages() -> None:
    for kind in ("deal.created", "deal.stage_changed"):
        rejection = reject(event(kind, stage="won-ish"))
        assert rejection.reason == "schema"
        assert rejection.error.startswith("stage: 'won-ish'")
        assert "qualification" in rejection.error and "proposal" in rejection.error


def test_naive_occurred_at() -> None:
    rejection = reject(event("deal.lost", occurred_at="2026-03-01T10:00:00"))
    assert rejection.reason == "naive_timestamp"
    assert rejection.error == (
        "occurred_at: '2026-03-01T10:00:00' has no UTC offset; use RFC 3339 with an offset "
        "such as +00:00 or Z"
    )


def test_naive_deal_created_at() -> None:
    rejection = reject(event("deal.won", deal_created_at="2026-02-01T09:00:00"))
    assert rejection.reason == "naive_timestamp"
    assert rejection.error.startswith("deal_created_at: '2026-02-01T09:00:00' has no UTC offset")


def test_naive_timestamp_wins_over_other_problems_and_counts_them() -> None:
    rejection = reject(event("deal.won", occurred_at="2026-03-01T10:00:00", deal_id=..., amount=-1))
    assert rejection.reason == "naive_timestamp"
    assert rejection.error.endswith("(and 2 more: amount, deal_id)")


@pytest.mark.parametrize("amount", [-1, -0.01, "-5.00", -1e-7])
def test_negative_amount(amount: Any) -> None:
    rejection = reject(event("quote.sent", amount=amount))
    assert rejection.reason == "negative_amount"
    assert rejection.error.startswith("amount: -") and "is negative" in rejection.error
    assert reject(event("deal.stage_changed", amount=amount)).reason == "negative_amount"


def test_rejection_pickles_and_reprs() -> None:
    import pickle

    rejection = Rejection("schema", "rep_id: required field is missing")
    copy = pickle.loads(pickle.dumps(rejection))
    assert (copy.reason, copy.error) == (rejection.reason, rejection.error)
    assert "schema" in repr(rejection)


def test_decode_obj_accepts_parsed_objects() -> None:
    parsed = json.loads(won_with_amount("0.1"), parse_float=Decimal)
    assert decode_obj(parsed, RULES).amount == Decimal("0.1")  # type: ignore[union-attr]
    floaty = json.loads(won_with_amount("0.1"))
    assert decode_obj(floaty, RULES).amount == Decimal("0.1")  # type: ignore[union-attr]
    offset = event(
        "deal.won", occurred_at=datetime(2026, 3, 10, 10, 30, tzinfo=timezone(timedelta(hours=1)))
    )
    assert decode_obj(offset, RULES).occurred_at == BASE
    with pytest.raises(Rejection) as info:
        decode_obj(["not", "a", "dict"], RULES)  # type: ignore[arg-type]
    assert info.value.reason == "invalid_json"


# --------------------------------------------------------------------------- never anything else

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=40)
    | st.sampled_from(["deal.won", "visit.completed", "2026-03-01T10:00:00Z", "GBP", "12.5"]),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.text(max_size=12) | st.sampled_from(list(EXAMPLES["deal.won"])), children, max_size=6
        )
    ),
    max_leaves=30,
)


def check_outcome(call: Any) -> None:
    try:
        decoded = call()
    except Rejection as rejection:
        assert rejection.reason in REASONS
        assert isinstance(rejection.error, str) and rejection.error
    else:
        assert decoded.type in EVENT_TYPES


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=5000))
def test_arbitrary_bytes_never_raise_anything_but_rejection(raw: bytes) -> None:
    check_outcome(lambda: decode_event(raw, RULES))


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_arbitrary_json_never_raises_anything_but_rejection(value: Any) -> None:
    check_outcome(lambda: decode_obj(value, RULES))
    check_outcome(lambda: decode_event(json.dumps(value).encode(), RULES))


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(EVENT_TYPES), st.data())
def test_mutated_examples_never_raise_anything_but_rejection(
    kind: str, data: st.DataObject
) -> None:
    obj = dict(EXAMPLES[kind])
    for _ in range(data.draw(st.integers(1, 3))):
        field = data.draw(st.sampled_from(sorted(obj)))
        if data.draw(st.booleans()):
            obj[field] = data.draw(json_values)
        else:
            obj.pop(field)
    check_outcome(lambda: decode_obj(obj, RULES))
    check_outcome(lambda: decode_event(json.dumps(obj).encode(), RULES))
    if all(not isinstance(v, float) for v in obj.values()):
        try:
            via_bytes: Any = decode_event(orjson.dumps(obj), RULES)
        except (Rejection, TypeError):
            return
        assert via_bytes == decode_obj(obj, RULES)
