"""Fuzzing `decode_event`: malformed input of every kind either decodes to a valid event or raises
`Rejection` with a reason in REASONS; never another exception, never a crash or a hang.

Two generators, both deterministic: hypothesis strategies (derandomized) and `malformed`, a seeded
plain-`random` generator of malformations of valid events that the end-to-end fuzz test
(`tests/integration/test_fuzz.py`) also uses. Over 20,000 messages in all, in a few seconds."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpi_core.events import EVENT_TYPES, REASONS, BaseEvent, Rejection, decode_event, example_events
from kpi_core.owners import owner_key
from kpi_rules import load_rules

RULES = load_rules()  # the packaged rules file: max_event_bytes 65536, as a worker runs it
MAX = RULES.max_event_bytes
EXAMPLES = example_events(datetime(2026, 3, 10, 9, 30, tzinfo=UTC), RULES)
FIELDS = sorted({name for event in EXAMPLES for name in event})

# Values of the wrong kind (or of the right kind but out of range) for any field.
WEIRD: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    2**63,
    -(2**63) - 1,
    10**100,
    -(10**100),
    1.5,
    -0.000001,
    1e308,
    [],
    {},
    [1, "a", None],
    {"$gt": ""},
    {"amount": 1.5},
    "",
    " ",
    "\t\n",
    "\x00",
    "\u202e\u0000evil",
    "\ud7ff\ue000\uffff",
    "x" * 129,
    "x" * 5000,
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-5",
    "0x10",
    "1_000",
    "１２３",  # full-width digits
    "2026-01-01T00:00:00",
    "2026-02-30T00:00:00Z",
    "0000-01-01T00:00:00+00:00",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+14:00",
    "2026-01-01T00:00:00+00:00:30",
    "2026-13-01",
    "cust-42",
    "deal.won ",
    "DEAL.WON",
)
# Raw number tokens spliced into the text where a JSON number or string would be.
TOKENS: tuple[bytes, ...] = (
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"1e400",
    b"-1e400",
    b"1e-400",
    b"1E+999999",
    b"10000000000000000000000000000000000000000000000000000000000000000000000000000000000",
    b"-0",
    b"-0.0",
    b"0.1234567",
    b"1.000000000000000000000000001",
    b"01",
    b"1.",
    b".5",
    b"+1",
    b"0x1F",
    b"true",
    b"null",
    b"undefined",
)
INVALID_UTF8: tuple[bytes, ...] = (
    b"\xff",
    b"\xfe\xff",
    b"\xc3\x28",
    b"\xa0\xa1",
    b"\xe2\x28\xa1",
    b"\xf0\x28\x8c\xbc",
    b"\xed\xa0\x80",  # an encoded surrogate
    b"\xc0\xaf",  # overlong '/'
    b"\xf8\x88\x80\x80\x80",
    b"\x00",
)
BOMS: tuple[bytes, ...] = (b"\xef\xbb\xbf", b"\xfe\xff", b"\xff\xfe", b"\x00\x00\xfe\xff")


def check(raw: Any) -> str | None:
    """Decode; return the rejection reason (None when valid). Any other exception fails."""
    try:
        event = decode_event(raw, RULES)
    except Rejection as exc:
        assert exc.reason in REASONS, (exc.reason, exc.error, raw[:200])
        assert isinstance(exc.error, str) and exc.error.strip(), raw[:200]
        return exc.reason
    assert isinstance(event, BaseEvent), type(event)
    assert event.type in EVENT_TYPES
    assert 1 <= len(owner_key(event)) <= 140 and 1 <= len(event.event_id) <= 128
    return None


def nested(depth: int, inner: bytes = b"1") -> bytes:
    return b"[" * depth + inner + b"]" * depth


def nested_objects(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


# --------------------------------------------------------------------------- seeded generator


def _dump(obj: Any) -> bytes:
    """Compact JSON (any int size, lone surrogates kept as escapes)."""
    return json.dumps(obj, separators=(",", ":")).encode("utf-8", "surrogatepass")


def _splice_value(text: bytes, field: str, token: bytes) -> bytes:
    """Replace the value of top-level `"field": <value>` in compact JSON text by a raw token."""
    key = b'"' + field.encode() + b'":'
    at = text.find(key)
    if at < 0:
        return text[:-1] + b"," + key + token + b"}"
    start = at + len(key)
    if text[start : start + 1] == b'"':
        end = text.index(b'"', start + 1) + 1
    else:
        end = start
        while end < len(text) and text[end : end + 1] not in (b",", b"}"):
            end += 1
    return text[:start] + token + text[end:]


def malformed(rng: random.Random, base: dict[str, Any], max_bytes: int = MAX) -> bytes:
    """One malformation of the valid event `base` (a JSON-ready dict), as raw message bytes.

    Most keep a plausible `rep_id` so that, in a worker, they are routed and rejected by the
    full validation at the rep's owner; others are rejected at ingest. A few may still be valid
    (e.g. an optional field set to null): callers classify with `decode_event`."""
    obj = dict(base)
    text = orjson.dumps(obj)
    kind = rng.randrange(18)
    if kind == 0:  # a field of the wrong type or out of range
        obj[rng.choice(FIELDS)] = rng.choice(WEIRD)
        return _dump(obj)
    if kind == 1:  # required fields missing
        for name in rng.sample(sorted(obj), rng.randint(1, 3)):
            del obj[name]
        return _dump(obj)
    if kind == 2:  # type-confused ids
        name = rng.choice(["event_id", "rep_id", "customer_id", "deal_id", "visit_id", "quote_id"])
        obj[name] = rng.choice([12345, 10**30, ["rep-1"], {"id": "rep-1"}, True, None, "", " " * 5])
        return _dump(obj)
    if kind == 3:  # raw number / constant tokens
        field = rng.choice(["amount", "amount", "duration_minutes", "event_id", "occurred_at"])
        return _splice_value(text, field, rng.choice(TOKENS))
    if kind == 4:  # truncated
        return text[: rng.randrange(len(text))]
    if kind == 5:  # invalid UTF-8 somewhere
        at = rng.randrange(len(text) + 1)
        return text[:at] + rng.choice(INVALID_UTF8) + text[at:]
    if kind == 6:  # a byte-order mark
        return rng.choice(BOMS) + text
    if kind == 7:  # duplicate keys: the later one of another type or value
        name = rng.choice(["type", "amount", "rep_id", "occurred_at", "event_id", "currency"])
        value = _dump(rng.choice(WEIRD[:16]))
        dup = b'"' + name.encode() + b'":' + value
        return (b"{" + dup + b"," + text[1:]) if rng.random() < 0.5 else text[:-1] + b"," + dup + b"}"
    if kind == 8:  # not an object at the top level
        return rng.choice(
            [b"[" + text + b"]", b"null", b"true", b"42", b'"' + text.replace(b'"', b"'") + b'"', b"", b" "]
        )
    if kind == 9:  # deep nesting, inside a field or as the whole message
        depth = rng.choice([100, 1000, 1025, 5000, 10_000])
        inner = nested(depth) if rng.random() < 0.5 else nested_objects(min(depth, 4000))
        if rng.random() < 0.5:
            return inner
        return _splice_value(text, rng.choice(["amount", "team", "customer_id", "extra"]), inner)
    if kind == 10:  # near or above the size limit
        pad = max(max_bytes - len(text) - 12 + rng.randint(-8, 40), 1)
        obj["notes"] = "x" * pad
        return _dump(obj)
    if kind == 11:  # random bytes
        return rng.randbytes(rng.randint(0, 300))
    if kind == 12:  # naive, malformed or absurd timestamps
        name = rng.choice(["occurred_at", "occurred_at", "deal_created_at", "period_start"])
        obj[name] = rng.choice([w for w in WEIRD if isinstance(w, str) and w[:1].isdigit()] + [1_700_000_000])
        return _dump(obj)
    if kind == 13:  # unknown or mistyped event type
        obj["type"] = rng.choice(["deal.archived", "call.logged", "", "deal", 7, None, ["deal.won"]])
        return _dump(obj)
    if kind == 14:  # negative, too precise or too big money
        obj["amount"] = rng.choice(["-0.01", "-1", "0.0000001", "1" * 19, "1e19", "NaN", "-Infinity", -5])
        return _dump(obj)
    if kind == 15:  # a currency without a rate, or not a currency
        obj["currency"] = rng.choice(["JPY", "gbp", "GB", "GBPX", "", 826, None])
        return _dump(obj)
    if kind == 16:  # escaped control characters and lone surrogates in strings
        name = rng.choice(["rep_id", "team", "customer_id", "stage", "event_id"])
        return _splice_value(text, name, rng.choice([b'"\\ud800"', b'"\\u0000"', b'"a\\udfff"', b'"\\x41"']))
    # kind 17: garbage appended after a complete object
    return text + rng.choice([b"}", b",", b"{}", b" x", b"\x00", b"\n{}"])


def seeded_malformed(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    return [malformed(rng, rng.choice(EXAMPLES)) for _ in range(count)]


# --------------------------------------------------------------------------- hypothesis

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**120), max_value=10**120),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(WEIRD),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def mutated_event(draw: st.DrawFn) -> bytes:
    obj = dict(draw(st.sampled_from(EXAMPLES)))
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=3)):
        if draw(st.booleans()):
            obj[name] = draw(json_value)
        else:
            obj.pop(name, None)
    return json.dumps(obj).encode("utf-8", "surrogatepass")


@st.composite
def byte_damage(draw: st.DrawFn) -> bytes:
    text = orjson.dumps(draw(st.sampled_from(EXAMPLES)))
    how = draw(st.integers(0, 4))
    at = draw(st.integers(0, len(text)))
    if how == 0:
        return text[:at]
    if how == 1:
        return text[:at] + draw(st.sampled_from(INVALID_UTF8) | st.binary(min_size=1, max_size=4)) + text[at:]
    if how == 2:
        return draw(st.sampled_from(BOMS)) + text
    if how == 3:
        field = draw(st.sampled_from(["amount", "duration_minutes", "occurred_at", "rep_id", "type"]))
        return _splice_value(text, field, draw(st.sampled_from(TOKENS)))
    return text[:at] + text[at + draw(st.integers(1, 8)) :]


top_level = st.one_of(
    json_value.map(lambda v: json.dumps(v).encode("utf-8", "surrogatepass")),
    st.binary(max_size=200),
    st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass")),
)
message = st.one_of(mutated_event(), byte_damage(), top_level)
BATCH = 8
FUZZ = settings(
    max_examples=1300,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@FUZZ
@given(st.lists(message, min_size=BATCH, max_size=BATCH))
def test_hypothesis_messages_decode_or_reject(batch: list[bytes]) -> None:
    # 1300 examples x 8 messages: over 10,000 generated messages.
    for raw in batch:
        check(raw)


@settings(max_examples=200, derandomize=True, deadline=None, database=None)
@given(
    st.sampled_from(EXAMPLES),
    st.integers(min_value=MAX - 64, max_value=MAX + 64),
)
def test_sizes_around_the_limit(base: dict[str, Any], size: int) -> None:
    text = orjson.dumps(base | {"notes": ""})
    raw = text.replace(b'"notes":""', b'"notes":"' + b"y" * (size - len(text)) + b'"')
    assert len(raw) == size
    reason = check(raw)
    assert (reason == "too_large") == (size > MAX), (size, reason)


def test_seeded_malformations() -> None:
    """The generator the end-to-end fuzz test uses: 14,000 messages, each decoded or rejected."""
    reasons: dict[str | None, int] = {}
    for raw in seeded_malformed(20261123, 14_000):
        reason = check(raw)
        reasons[reason] = reasons.get(reason, 0) + 1
    # Mostly rejected, for many reasons (the valid ones are harmless mutations such as team=null).
    assert sum(n for r, n in reasons.items() if r is not None) > 10_000, reasons
    assert {"invalid_json", "schema", "unknown_type", "too_large", "negative_amount"} <= set(reasons)
    assert {"naive_timestamp", "currency_mismatch"} <= set(reasons)


def test_deep_nesting_never_recurses() -> None:
    """10,000 levels (arrays, objects, inside a field, with a float amount that takes the slow
    exact-money path): rejected, no RecursionError."""
    deep = nested(10_000)
    base = orjson.dumps(EXAMPLES[0])
    cases = [
        deep,
        nested_objects(10_000),
        _splice_value(base, "team", deep),
        _splice_value(base, "extra", deep),
        # a float amount plus a backslash forces the standard-library re-parse
        _splice_value(_splice_value(base, "amount", b"1.5"), "notes", b'"\\u0041' + b'"'),
        _splice_value(_splice_value(base, "amount", b"1.5"), "notes", nested(10_000, b'"\\n"')),
    ]
    for raw in cases:
        assert len(raw) <= MAX
        check(raw)
    assert check(deep) == "invalid_json"


def test_specific_edges() -> None:
    base = orjson.dumps(EXAMPLES[4])  # deal.won
    assert check(_splice_value(base, "amount", b"1e400")) in ("invalid_json", "schema")
    assert check(_splice_value(base, "amount", b"1e-400")) == "schema"
    assert check(_splice_value(base, "amount", b"NaN")) == "invalid_json"
    assert check(_splice_value(base, "amount", b"Infinity")) == "invalid_json"
    assert check(_splice_value(base, "amount", str(10**100).encode())) in ("invalid_json", "schema")
    assert check(b"\xef\xbb\xbf" + base) in (None, "invalid_json")
    assert check(b"[" + base + b"]") == "invalid_json"
    assert check(b"null") == "invalid_json"
    assert check(b"\xff" + base) == "invalid_json"
    # duplicate keys: the last one wins, as in orjson (the earlier one is ignored)
    assert check(b'{"type": 5, ' + base[1:]) is None
    assert check(base[:-1] + b', "type": 5}') == "schema"
    for value in (None, 42, bytearray(base), memoryview(base), "{}", 1.5):
        check(value)
