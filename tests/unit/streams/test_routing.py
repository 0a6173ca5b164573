"""The routed micro-batch wire form round-trips any bytes, and reads the first (JSON) form."""

from __future__ import annotations

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from streams.routing import FRAME_V1, Routed, decode_batch, encode_batch, partition_for

routed = st.builds(
    Routed,
    raw=st.binary(max_size=300),
    topic=st.text(min_size=1, max_size=40),
    partition=st.integers(0, 1000),
    offset=st.integers(0, 2**62),
)


@given(st.lists(routed, max_size=60))
def test_any_batch_round_trips(items: list[Routed]) -> None:
    encoded = encode_batch(items)
    assert encoded[:1] == FRAME_V1
    assert list(decode_batch(encoded)) == items


def test_raw_bytes_are_carried_unescaped() -> None:
    raw = b'{"event_id":"e\\"1","rep_id":"r\xc3\xa9p"}'
    encoded = encode_batch([Routed(raw, "crm.visits", 3, 7)])
    assert raw in encoded  # not re-escaped as a JSON string
    assert list(decode_batch(encoded)) == [Routed(raw, "crm.visits", 3, 7)]


def test_first_wire_form_still_decodes() -> None:
    legacy = orjson.dumps([['{"a":"\\u00e9"}', "crm.deals", 1, 42], ["{}", "crm.visits", 0, 5]])
    assert list(decode_batch(legacy)) == [
        Routed(b'{"a":"\\u00e9"}', "crm.deals", 1, 42),
        Routed(b"{}", "crm.visits", 0, 5),
    ]


def test_unknown_form_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown routed batch format"):
        list(decode_batch(b"\x07abc"))


@given(st.text(min_size=1, max_size=64), st.integers(1, 64))
def test_partition_is_the_kafka_default_partitioners(rep_id: str, partitions: int) -> None:
    expected = DefaultPartitioner()(rep_id.encode(), list(range(partitions)), list(range(partitions)))
    assert partition_for(rep_id, partitions) == expected


@pytest.mark.parametrize("kind", [["deal.won"], {"a": 1}, 7, None, "deal.exploded"])
def test_a_malformed_type_routes_to_its_owner_with_no_customer(kind: object) -> None:
    from streams.ingest import _keys_of

    raw = orjson.dumps({"type": kind, "rep_id": "r-1", "customer_id": "c-1"})
    # Routed to the rep (whose worker dead-letters it), never a crash of the whole batch.
    assert _keys_of(raw, 65536) == ("r-1", None)
    assert _keys_of(orjson.dumps({"type": "deal.won", "rep_id": "r-1", "customer_id": "c-1"}), 65536) == (
        "r-1",
        "c-1",
    )
