"""The ingest finds an event's owner and customer before validating it: any JSON must give an
answer (or None), never an exception (a crash here stalls the whole ingest), and for a valid event
the owner is the one the core applies it to."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from kpi_core.events import decode_event, example_events
from kpi_core.owners import owner_key
from kpi_rules import load_rules
from streams.ingest import _keys_of

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
FIELDS = st.sampled_from(["type", "rep_id", "customer_id", "scope", "team", "region"])


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(FIELDS, JSON, max_size=6))
def test_any_json_object_gives_keys_or_none(obj: dict[str, object]) -> None:
    keys = _keys_of(json.dumps(obj).encode(), 65536)  # json: integers of any size, as Kafka may carry
    assert keys is None or (isinstance(keys[0], str) and (keys[1] is None or isinstance(keys[1], str)))


def test_a_valid_events_owner_is_the_cores_and_customer_facts_name_their_customer() -> None:
    rules = load_rules()
    for event in example_events(datetime(2026, 3, 10, 9, tzinfo=UTC)):
        raw = orjson.dumps(event)
        owner, customer = _keys_of(raw, 65536) or ("", None)
        assert owner == owner_key(decode_event(raw, rules)), event["type"]
        facts = {"deal.won", "visit.completed", "quote.sent"}
        assert customer == (event["customer_id"] if event["type"] in facts else None), event["type"]
