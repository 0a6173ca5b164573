"""The Redis store without services: key naming, URL parsing, the Faust adapter's construction and rules."""

from __future__ import annotations

import faust
import pytest
from faust.exceptions import ImproperlyConfigured
from faust.types import TP

from streams.store.errors import PartitionNotLoadedError
from streams.store.faust_store import RedisStore, _normalise_rebalance_args
from streams.store.keys import (
    data_key,
    escape_key_component,
    hash_tag,
    offset_field,
    offsets_key,
    parse_offset_field,
    shared_max_key,
)
from streams.store.url import parse_store_url, redact_url

# --------------------------------------------------------------------------- key names


def test_key_names_share_the_partition_hash_tag() -> None:
    assert data_key("kpi-monitor", "kpi_state", 3) == "kpi:{kpi-monitor:kpi_state:3}:data"
    assert offsets_key("kpi-monitor", "kpi_state", 3) == "kpi:{kpi-monitor:kpi_state:3}:offsets"
    assert hash_tag("kpi-monitor", "kpi_state", 3) == "kpi-monitor:kpi_state:3"
    assert data_key("a", "t", 0, prefix="x") == "x:{a:t:0}:data"


def _slot_tag(key: str) -> str:
    """What Redis Cluster hashes: the content of the first {...}."""
    start = key.index("{")
    return key[start + 1 : key.index("}", start + 1)]


def test_data_and_offsets_keys_hash_to_the_same_slot_but_partitions_differ() -> None:
    for app_id, table in [("app", "t"), ("we{ird}", "ta:ble"), ("a%3Ab", "c")]:
        assert _slot_tag(data_key(app_id, table, 1)) == _slot_tag(offsets_key(app_id, table, 1))
        assert _slot_tag(data_key(app_id, table, 1)) != _slot_tag(data_key(app_id, table, 2))


def test_components_are_escaped_so_names_cannot_collide() -> None:
    assert escape_key_component("a:b{c}d%") == "a%3Ab%7Bc%7Dd%25"
    # app "a:b" + table "c" must not collide with app "a" + table "b:c"
    assert data_key("a:b", "c", 0) != data_key("a", "b:c", 0)
    assert "{" not in hash_tag("x{y", "z}", 0) and "}" not in hash_tag("x{y", "z}", 0)


def test_negative_partition_rejected() -> None:
    with pytest.raises(ValueError):
        data_key("a", "t", -1)


def test_shared_max_key_is_per_app_and_outside_every_partition_slot() -> None:
    assert shared_max_key("kpi-monitor") == "kpi:{kpi-monitor:shared}:max"
    assert shared_max_key("a:b", prefix="x") == "x:{a%3Ab:shared}:max"
    assert _slot_tag(shared_max_key("app")) != _slot_tag(data_key("app", "shared", 0))


def test_offset_field_round_trip() -> None:
    tp = TP("kpi-monitor-kpi_state-changelog", 5)
    assert offset_field(tp) == "kpi-monitor-kpi_state-changelog:5"
    assert parse_offset_field(offset_field(tp)) == tp
    assert parse_offset_field(b"routed:0") == ("routed", 0)
    assert parse_offset_field("a:b:3") == ("a:b", 3)
    with pytest.raises(ValueError):
        parse_offset_field("nopartition")


# --------------------------------------------------------------------------- URL parsing


def test_plain_url_defaults() -> None:
    cfg = parse_store_url("redis://127.0.0.1:6379/0")
    assert (cfg.host, cfg.port, cfg.db) == ("127.0.0.1", 6379, 0)
    assert not cfg.ssl and not cfg.cluster and not cfg.has_password
    assert cfg.redis_url == "redis://127.0.0.1:6379/0"
    assert cfg.safe_url == "redis://127.0.0.1:6379/0"
    bare = parse_store_url("redis://")
    assert (bare.host, bare.port, bare.db) == ("127.0.0.1", 6379, 0)


@pytest.mark.parametrize(
    ("url", "db"),
    [("redis://h:1/3", 3), ("redis://h:1", 0), ("redis://h:1/", 0), ("redis://h:1?db=5", 5)],
)
def test_db_number(url: str, db: int) -> None:
    cfg = parse_store_url(url)
    assert cfg.db == db
    assert cfg.redis_url.startswith(f"redis://h:1/{db}")


def test_bad_db_rejected() -> None:
    with pytest.raises(ValueError, match="db must be an integer"):
        parse_store_url("redis://h:1/zero")


def test_password_is_passed_to_redis_but_hidden_everywhere_else() -> None:
    cfg = parse_store_url("redis://:s3cret@redis.example:6380/2")
    assert cfg.has_password and cfg.username is None
    assert "s3cret" in cfg.redis_url  # redis-py needs it
    assert "s3cret" not in cfg.safe_url
    assert cfg.safe_url == "redis://:***@redis.example:6380/2"
    user = parse_store_url("redis://kpi:p%40ss@h:1/0")
    assert user.username == "kpi" and user.safe_url == "redis://kpi:***@h:1/0"
    assert redact_url("redis://h:1/0") == "redis://h:1/0"
    with pytest.raises(ValueError) as info:
        parse_store_url("http://u:topsecret@h:1/0")
    assert "topsecret" not in str(info.value) and "***" in str(info.value)


def test_tls_flag_and_passthrough_parameters() -> None:
    cfg = parse_store_url("rediss://:pw@h:6380/0?ssl_cert_reqs=none&ssl_ca_certs=/etc/ssl/ca.pem")
    assert cfg.ssl
    assert cfg.redis_params == {"ssl_cert_reqs": "none", "ssl_ca_certs": "/etc/ssl/ca.pem"}
    assert cfg.redis_url.startswith("rediss://:pw@h:6380/0?")
    assert "ssl_cert_reqs=none" in cfg.redis_url
    # redis:// + ssl=true also means TLS (the faust.stores entry point is named "redis")
    alt = parse_store_url("redis://h:1/0?ssl=true")
    assert alt.ssl and alt.redis_url == "rediss://h:1/0"
    assert not parse_store_url("redis://h:1/0?ssl=false").ssl
    with pytest.raises(ValueError, match="boolean"):
        parse_store_url("redis://h:1/0?ssl=maybe")


def test_cluster_flag() -> None:
    cfg = parse_store_url("redis://node1:7000?cluster=true")
    assert cfg.cluster and cfg.db == 0
    assert cfg.redis_url == "redis://node1:7000"  # no db path for the cluster client
    assert not parse_store_url("redis://h:1/0?cluster=0").cluster
    with pytest.raises(ValueError, match="db 0"):
        parse_store_url("redis://node1:7000/1?cluster=true")


def test_store_parameters_are_not_passed_to_redis() -> None:
    cfg = parse_store_url(
        "redis://h:1/0?flush_interval=0.25&key_prefix=kpi2&health_check_interval=5"
    )
    assert cfg.flush_interval == 0.25 and cfg.key_prefix == "kpi2"
    assert cfg.redis_params == {"health_check_interval": "5"}
    assert "flush_interval" not in cfg.redis_url
    with pytest.raises(ValueError, match="managed by RedisStore"):
        parse_store_url("redis://h:1/0?decode_responses=true")
    with pytest.raises(ValueError, match="> 0"):
        parse_store_url("redis://h:1/0?flush_interval=0")


# --------------------------------------------------------------------------- construction


def _app(store: str = "redis://:hunter2@127.0.0.1:1/0") -> faust.App:
    return faust.App("unit-rs", broker="kafka://127.0.0.1:9092", store=store)


def test_table_data_builds_a_redis_store_without_connecting() -> None:
    app = _app()
    table = app.Table("kpi_state", partitions=4, options={"flush_interval": 0.5})
    store = table.data
    assert isinstance(store, RedisStore)
    assert store.flush_interval == 0.5
    assert store.data_key(2) == "kpi:{unit-rs:kpi_state:2}:data"
    assert "hunter2" not in store.label and "hunter2" not in repr(store)
    assert table.options == {"flush_interval": 0.5}  # the table's options are not consumed
    assert store.partitions() == set() and not store.healthy


def test_global_tables_are_refused_with_a_clear_message() -> None:
    app = _app()
    table = app.GlobalTable("g", partitions=1)
    with pytest.raises(ImproperlyConfigured, match="memory://"):
        _ = table.data


def _store(table: object) -> RedisStore:
    store = table.data  # type: ignore[attr-defined]
    assert isinstance(store, RedisStore)
    return store


def test_sync_api_needs_a_loaded_partition_and_an_event_for_writes() -> None:
    store = _store(_app().Table("t", partitions=2))
    with pytest.raises(PartitionNotLoadedError, match="partition 1 is not loaded"):
        store.set_in(1, b"k", b"v")
    with pytest.raises(PartitionNotLoadedError):
        store.get_in(0, b"k")
    with pytest.raises(RuntimeError, match="outside of a stream event"):
        store[b"k"] = b"v"
    assert store._get(b"k") is None and not store._contains(b"k") and len(store) == 0
    assert store.persisted_offset(TP("x", 0)) is None


def test_rebalance_args_accept_the_shifted_object_manager_form() -> None:
    app = _app()
    table = app.Table("t", partitions=2)
    a, r, n = {TP("a", 0)}, {TP("a", 1)}, {TP("a", 0)}
    assert _normalise_rebalance_args(a, r, n, 7) == (a, r, n, 7)
    assert _normalise_rebalance_args(table, a, r, n) == (a, r, n, 0)


def test_rebalance_partitions_come_from_changelog_and_source_topics_only() -> None:
    app = _app()
    store = _store(app.Table("t", partitions=4, options={"source_topics": ["routed"]}))
    changelog = "unit-rs-t-changelog"
    tps = {TP(changelog, 0), TP("routed", 1), TP("other-table-changelog", 2), TP("x", 3)}
    assert store._partitions_for(tps, exclude_standbys=True) == {0, 1}
