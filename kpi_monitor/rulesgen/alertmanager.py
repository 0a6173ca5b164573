"""Alertmanager configuration (prometheus/alertmanager.yml) from the rules file's `alerts.notify`."""

from __future__ import annotations

from typing import Any

from kpi_rules.models import Rules

SALES_ALERTS_MATCHER = 'alertname=~"Sales.*"'
# Business alerts carry their scope label (team, region or rep); service alerts carry none.
GROUP_BY: list[str] = ["alertname", "team", "region", "rep"]


def alertmanager_config(rules: Rules, webhook_url: str | None = None) -> dict[str, Any]:
    """Route by severity to the on-call webhook; a down worker inhibits every Sales* alert.

    `page`/`critical` go to `oncall`, `warning`/`info` to `sales` (the same hook, repeated less
    often); both send resolutions. `webhook_url` overrides `alerts.notify.webhook_url` (tests)."""
    n = rules.alerts.notify
    url = webhook_url or n.webhook_url

    def receiver(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "webhook_configs": [{"url": url, "send_resolved": n.send_resolved, "max_alerts": 0}],
        }

    return {
        "route": {
            "receiver": "sales",
            "group_by": GROUP_BY,
            "group_wait": n.group_wait,
            "group_interval": n.group_interval,
            "repeat_interval": n.repeat_interval,
            "routes": [
                {"receiver": "oncall", "matchers": ['severity=~"page|critical"']},
                {"receiver": "sales", "matchers": ['severity=~"warning|info"']},
            ],
        },
        "receivers": [receiver("oncall"), receiver("sales")],
        "inhibit_rules": [
            {
                # Missing partitions make every sales figure wrong: say "worker down" only.
                "source_matchers": ['alertname="KpiWorkerDown"'],
                "target_matchers": [SALES_ALERTS_MATCHER],
                "equal": [],
            }
        ],
    }
