"""Field-level wire form of a rep's state: each part (bucket, deal, target, seen id) encodes alone."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson

from kpi_core.aggregates import Agg
from kpi_core.state import META_FIELD, DealState, RepState, Won

_Encoded = bytes


def _dt(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _from_dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _fact(value: tuple[datetime, str, Any] | None) -> list[Any] | None:
    return None if value is None else [value[0].isoformat(), value[1], str(value[2])]


def _encode_deal(deal: DealState) -> dict[str, Any]:
    return {
        "c": _dt(deal.created_at),
        "ch": _fact(deal.channel),
        "st": _fact(deal.stage),
        "am": _fact(deal.amount),
        "w": {
            k: [w.at.isoformat(), str(w.amount), w.channel, _dt(w.deal_created_at)]
            for k, w in deal.wons.items()
        },
        "l": {k: v.isoformat() for k, v in deal.lost.items()},
        "t": [t.isoformat() for t in deal.touches],
        "i": sorted(deal.ids),
        "la": deal.last_at.isoformat(),
    }


def _decode_deal(data: dict[str, Any]) -> DealState:
    def fact(raw: list[Any] | None, money: bool) -> tuple[datetime, str, Any] | None:
        if raw is None:
            return None
        return (datetime.fromisoformat(raw[0]), raw[1], Decimal(raw[2]) if money else raw[2])

    return DealState(
        created_at=_from_dt(data["c"]),
        channel=fact(data["ch"], False),
        stage=fact(data["st"], False),
        amount=fact(data["am"], True),
        wons={
            k: Won(datetime.fromisoformat(v[0]), Decimal(v[1]), v[2], _from_dt(v[3]))
            for k, v in data["w"].items()
        },
        lost={k: datetime.fromisoformat(v) for k, v in data["l"].items()},
        touches=[datetime.fromisoformat(t) for t in data["t"]],
        ids=set(data["i"]),
        last_at=datetime.fromisoformat(data["la"]),
    )


def encode_part(state: RepState, name: str) -> _Encoded | None:
    """The bytes of one part of `state`, or None when the part no longer exists (delete it)."""
    tag, _, rest = name.partition("|")
    if name == META_FIELD:
        return orjson.dumps(
            {
                "team": state.team,
                "region": state.region,
                "lk": [state.label_key[0].isoformat(), state.label_key[1]],
                "od": state.open_deals,
                "op": str(state.open_pipeline),
                "wp": str(state.weighted_pipeline),
            }
        )
    if tag == "b":
        kind, _, raw_key = rest.partition("|")
        key: Any = int(raw_key) if kind == "slot" else date.fromisoformat(raw_key)
        agg = state.buckets[kind].get(key)
        return None if agg is None else orjson.dumps(agg.to_dict())
    if tag == "t":
        kind, _, raw_start = rest.partition("|")
        fact = state.targets.get((kind, date.fromisoformat(raw_start)))
        return None if fact is None else orjson.dumps(_fact(fact))
    if tag == "d":
        deal = state.deals.get(rest)
        return None if deal is None else orjson.dumps(_encode_deal(deal))
    if tag == "s":
        seen = state.seen.get(rest)
        return None if seen is None else repr(seen).encode()
    raise ValueError(f"unknown state part {name!r}")


def decode_parts(rep_id: str, parts: Iterable[tuple[str, bytes]]) -> RepState:
    """Rebuild a rep's state from all its stored parts."""
    state = RepState(rep_id=rep_id)
    for name, raw in parts:
        tag, _, rest = name.partition("|")
        if name == META_FIELD:
            meta = orjson.loads(raw)
            state.team, state.region = meta["team"], meta["region"]
            state.label_key = (datetime.fromisoformat(meta["lk"][0]), meta["lk"][1])
            state.open_deals = meta["od"]
            state.open_pipeline = Decimal(meta["op"])
            state.weighted_pipeline = Decimal(meta["wp"])
        elif tag == "b":
            kind, _, raw_key = rest.partition("|")
            key: Any = int(raw_key) if kind == "slot" else date.fromisoformat(raw_key)
            state.buckets[kind][key] = Agg.from_dict(orjson.loads(raw))
        elif tag == "t":
            kind, _, raw_start = rest.partition("|")
            at, event_id, amount = orjson.loads(raw)
            state.targets[(kind, date.fromisoformat(raw_start))] = (
                datetime.fromisoformat(at),
                event_id,
                Decimal(amount),
            )
        elif tag == "d":
            state.deals[rest] = _decode_deal(orjson.loads(raw))
        elif tag == "s":
            state.seen[rest] = float(raw)
        else:
            raise ValueError(f"unknown state part {name!r} for rep {rep_id!r}")
    return state


def store_key(rep_id: str, part: str) -> bytes:
    """Store key of one part: the rep id is length-prefixed so any characters are safe."""
    rep = rep_id.encode()
    return b"%d:%s%s" % (len(rep), rep, part.encode())


def split_store_key(key: bytes) -> tuple[str, str]:
    length, _, rest = key.partition(b":")
    n = int(length)
    return rest[:n].decode(), rest[n:].decode()


def encode_all(state: RepState) -> dict[str, bytes]:
    """Every part of `state` (a full save, used by tests and first writes)."""
    names = {META_FIELD}
    names.update(f"b|{kind}|{key}" for kind, buckets in state.buckets.items() for key in buckets)
    names.update(f"t|{kind}|{start}" for kind, start in state.targets)
    names.update(f"d|{d}" for d in state.deals)
    names.update(f"s|{e}" for e in state.seen)
    out: dict[str, bytes] = {}
    for name in names:
        encoded = encode_part(state, name)
        if encoded is not None:
            out[name] = encoded
    return out
