"""`kpi-monitor alerts listen`: Alertmanager's webhook body as readable lines; bad bodies refused."""

from __future__ import annotations

import io
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from kpi_monitor.alerts_listen import (
    PayloadError,
    endpoint_of,
    format_alert,
    make_app,
    parse_notification,
)
from kpi_monitor.rulesgen.promrules import sales_alerts
from kpi_rules import load_rules

FIRING: dict[str, Any] = {
    "status": "firing",
    "labels": {
        "alertname": "SalesRevenueDecline",
        "severity": "warning",
        "scope": "team",
        "team": "north",
        "period": "month",
    },
    "annotations": {
        "summary": "Team north: revenue down 72.1% on the same point of last month",
        "description": "Team north has won ...",
    },
    "startsAt": "2026-11-30T18:20:05.123456789Z",
    "endsAt": "0001-01-01T00:00:00Z",
}


def _body(*alerts: dict[str, Any]) -> bytes:
    # The shape of Alertmanager's webhook (version 4), trimmed to what matters here.
    return orjson.dumps(
        {
            "version": "4",
            "status": "firing",
            "receiver": "sales",
            "groupKey": "{}:{alertname=\"SalesRevenueDecline\"}",
            "alerts": list(alerts),
        }
    )


def test_a_firing_alert_is_one_line_with_status_severity_name_scope_and_summary() -> None:
    line = format_alert(FIRING)
    assert line == (
        "2026-11-30 18:20:05Z  FIRING  warning  SalesRevenueDecline  team=north period=month"
        "  | Team north: revenue down 72.1% on the same point of last month"
    )


def test_resolved_alerts_show_when_they_ended_and_chinese_status_words() -> None:
    resolved = FIRING | {"status": "resolved", "endsAt": "2026-11-30T19:00:00Z"}
    assert format_alert(resolved).startswith("2026-11-30 19:00:00Z  RESOLVED  warning")
    assert format_alert(resolved, "zh-CN").startswith("2026-11-30 19:00:00Z  已恢复  warning")
    assert "  触发  " in format_alert(FIRING, "zh-CN")


def test_scope_labels_come_first_and_line_breaks_in_texts_do_not_split_the_line() -> None:
    alert = {
        "status": "firing",
        "labels": {"alertname": "KpiDeadLetterRising", "severity": "critical", "reason": "schema",
                   "rep": "r1", "region": "emea", "team": "north"},
        "annotations": {"summary": "0.50 events/s\nrejected (schema)"},
        "startsAt": "2026-11-30T18:20:05+00:00",
    }  # fmt: skip
    line = format_alert(alert)
    assert "\n" not in line
    assert "region=emea team=north rep=r1 reason=schema" in line
    assert line.endswith("| 0.50 events/s rejected (schema)")


def test_every_generated_alert_has_a_summary_the_receiver_prints() -> None:
    for locale in ("en", "zh-CN"):
        rules = load_rules().model_copy(update={"locale": locale})
        for rule in sales_alerts(rules):
            assert rule["annotations"]["summary"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"status": "firing"}', "no `alerts` list"),
        (b'{"alerts": [1]}', "alerts[0] is not an object"),
        (b'{"alerts": [{"labels": {}}]}', "no labels.alertname"),
        (b'{"alerts": [{"labels": {"alertname": "X"}, "annotations": []}]}', "annotations is not"),
    ],
)
def test_bodies_that_are_not_notifications_are_refused_with_the_reason(body: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_notification(body)


def test_the_default_endpoint_is_where_the_rules_file_sends_alerts() -> None:
    endpoint = endpoint_of(load_rules().alerts.notify.webhook_url)
    assert (endpoint.host, endpoint.port, endpoint.path) == ("127.0.0.1", 5001, "/hook")
    with pytest.raises(ValueError, match="--host, --port and --path"):
        endpoint_of("https://hooks.example.com/x")


async def test_the_server_prints_alerts_answers_400_to_bad_bodies_and_keeps_serving() -> None:
    out = io.StringIO()
    async with TestClient(TestServer(make_app("en", False, "/hook", out))) as client:
        bad = await client.post("/hook", data=b"{")
        assert bad.status == 400 and "not JSON" in (await bad.json())["error"]
        huge = await client.post("/hook", data=b" " * (2 * 1024 * 1024))
        assert huge.status in (400, 413)
        good = await client.post("/hook", data=_body(FIRING, FIRING | {"status": "resolved"}))
        assert good.status == 200 and (await good.json()) == {"received": 2}
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "FIRING" in lines[0] and "RESOLVED" in lines[1]


async def test_json_mode_prints_each_alert_as_it_came() -> None:
    out = io.StringIO()
    async with TestClient(TestServer(make_app("en", True, "/hook", out))) as client:
        assert (await client.post("/hook", data=_body(FIRING))).status == 200
    assert orjson.loads(out.getvalue()) == FIRING
