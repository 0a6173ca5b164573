"""The field-level wire form of a rep's state: full and incremental (touched parts) round trips."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import factories as f
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kpi_core.aggregates import SLOTS as AGG_SLOTS
from kpi_core.aggregates import Agg, stored_form
from kpi_core.clock import KpiClock
from kpi_core.codec import decode_parts, encode_all, encode_part, split_store_key, store_key
from kpi_core.engine import KpiEngine, replay
from kpi_core.events import decode_obj
from kpi_core.owners import owner_key
from kpi_core.periods import PERIOD_KINDS
from kpi_core.report import report_document
from kpi_core.state import RepState

PROPERTY = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _views(engine: KpiEngine, state: RepState) -> list[dict[str, Any]]:
    view = engine.view(state)
    return [view.windows(kind) for kind in PERIOD_KINDS]


@PROPERTY
@given(events=f.event_sets())
def test_encode_all_then_decode_gives_the_same_windows_and_report(
    events: list[dict[str, Any]],
) -> None:
    engine = f.engine()
    states, rejected = replay(engine, [decode_obj(e, engine.rules) for e in events])
    assert not rejected
    decoded: dict[str, RepState] = {}
    for rep_id, state in states.items():
        parts = encode_all(state)
        again = decode_parts(rep_id, parts.items())
        assert _views(engine, again) == _views(engine, state)
        assert encode_all(again) == parts  # the wire form is canonical
        decoded[rep_id] = again
    counter = rejected.copy()
    assert report_document(decoded, engine, counter) == report_document(states, engine, counter)


@settings(max_examples=100, deadline=None)
@given(rep_id=st.text(min_size=1, max_size=40), part=st.text(max_size=40))
def test_store_key_round_trip_for_any_rep_id(rep_id: str, part: str) -> None:
    key = store_key(rep_id, part)
    assert isinstance(key, bytes)
    assert split_store_key(key) == (rep_id, part)


def test_store_key_keeps_reps_apart_whatever_their_characters() -> None:
    tricky = ["1:ab", "1", "a|b", "m", ":", "12:x", "代表-1", "a\nb"]
    keys = {store_key(rep, part) for rep in tricky for part in ("m", "b|day|2026-11-23", "d|1:a")}
    assert len(keys) == len(tricky) * 3
    for key in keys:
        rep, part = split_store_key(key)
        assert store_key(rep, part) == key


class _Wall:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@PROPERTY
@given(
    events=f.event_sets(),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=4),
    prune=st.booleans(),
)
def test_saving_only_touched_parts_reproduces_the_live_state(
    events: list[dict[str, Any]], cuts: list[int], prune: bool
) -> None:
    """Apply in batches; after each, write encode_part of every touched part (delete on None)
    and clear `touched`. Decoding the store must give the live state's rows."""
    rules = f.rules(dedupe_horizon_hours=1)
    wall = _Wall(f.FIXED)
    engine = KpiEngine(rules, KpiClock(mode="wall", wall=wall))
    live: dict[str, RepState] = {}
    store: dict[bytes, bytes] = {}
    bounds = sorted({0, len(events), *(c % (len(events) + 1) for c in cuts)})
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        ctx = engine.context()
        for event in events[lo:hi]:
            decoded = decode_obj(event, rules)
            key = owner_key(decoded)  # a team's spend or a scope's target: the scope's state
            state = live.setdefault(key, RepState(rep_id=key))
            engine.apply(state, decoded, ctx)  # generated events are never rejected
        if prune:
            # The wall clock moves on: remembered ids expire and their parts are deleted.
            wall.now += timedelta(hours=2)
            for state in live.values():
                engine.prune(state)
        for rep_id, state in live.items():
            for name in state.touched:
                encoded = encode_part(state, name)
                if encoded is None:
                    store.pop(store_key(rep_id, name), None)
                else:
                    store[store_key(rep_id, name)] = encoded
            state.touched.clear()
    grouped: dict[str, list[tuple[str, bytes]]] = defaultdict(list)
    for key, value in store.items():
        rep_id, name = split_store_key(key)
        grouped[rep_id].append((name, value))
    restored = {rep_id: decode_parts(rep_id, parts) for rep_id, parts in grouped.items()}
    assert set(restored) == set(live)
    for rep_id, state in live.items():
        assert _views(engine, restored[rep_id]) == _views(engine, state)
        assert encode_all(restored[rep_id]) == encode_all(state)
        if prune:
            assert restored[rep_id].seen == state.seen == {}


def test_encoded_parts_hold_no_more_memory_than_their_bytes() -> None:
    """A store keeps every encoded part; each must cost about its length, not an encoder's whole
    output buffer (orjson 3.13 returns bytes that keep at least 4 KiB: a worker held ~10x its
    state in memory before the codec copied them)."""
    import tracemalloc

    engine = f.engine()
    events = [f.deal_created(f.FIXED - timedelta(minutes=i), f"deal-{i}") for i in range(200)]
    states, _ = replay(engine, [decode_obj(e, engine.rules) for e in events])
    state = states["rep-1"]
    names = sorted(encode_all(state))
    tracemalloc.start()
    try:
        parts = [encode_part(state, name) for name in names]
        traced, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    length = sum(len(p) for p in parts if p is not None)
    assert len(parts) > 200 and traced < 2 * length + 100 * len(parts), (traced, length)


# A bucket's components at random: zeros (left out when stored), counts, exact money (negative
# too: a retraction can pass through it), labelled mappings with zero and non-zero entries.
_count = st.integers(min_value=-3, max_value=10**12) | st.just(0)
_money = st.decimals(min_value=-(10**6), max_value=10**12, places=6, allow_nan=False) | st.sampled_from(
    [Decimal(0), Decimal("0.00"), Decimal("-0"), Decimal("1E+3")]
)


@st.composite
def aggs(draw: st.DrawFn) -> Agg:
    agg = Agg()
    for slot in AGG_SLOTS:
        if draw(st.booleans()):
            continue  # most components of a bucket are zero
        if slot.labelled:
            value: Any = draw(
                st.dictionaries(st.sampled_from(f.CHANNELS), _money if slot.kind.value == "money" else _count)
            )
        else:
            value = draw(_money if slot.kind.value == "money" else _count)
        setattr(agg, slot.attr, value)
    return agg


@settings(max_examples=300, deadline=None)
@given(agg=aggs())
def test_the_written_out_stored_form_equals_the_one_driven_by_the_slots(agg: Agg) -> None:
    """`Agg.to_dict` is written field by field for speed; `stored_form` follows `SLOTS`."""
    written, reference = agg.to_dict(), stored_form(agg)
    assert written == reference
    assert list(written) == list(reference)  # the same key order, so the same stored bytes
    assert orjson.dumps(written) == orjson.dumps(reference)
