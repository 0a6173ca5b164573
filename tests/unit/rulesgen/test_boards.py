"""The generated Grafana boards load in the Grafana that docker-compose runs: SDK build, datasource, grid."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml

from kpi_monitor.rulesgen.dashboards import dashboards
from kpi_rules import load_rules

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def boards() -> dict[str, dict[str, Any]]:
    return dashboards(load_rules())


def test_sdk_build_matches_the_grafana_of_docker_compose() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    image = compose["services"]["grafana"]["image"]
    # the SDK's builds are `<epoch>!<grafana version>`
    assert version("grafana-foundation-sdk").partition("!")[2] == image.rpartition(":")[2]


def test_every_panel_and_query_uses_the_provisioned_datasource(boards: dict[str, dict[str, Any]]) -> None:
    provisioned = yaml.safe_load(
        (REPO / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text(encoding="utf-8")
    )["datasources"]
    expected = {"type": "prometheus", "uid": provisioned[0]["uid"]}
    for name, board in boards.items():
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == expected, (name, panel["title"])
            assert panel["targets"] and all(t["datasource"] == expected for t in panel["targets"])
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                assert variable["datasource"] == expected


def test_boards_have_distinct_uids_and_a_period_variable(boards: dict[str, dict[str, Any]]) -> None:
    uids = [board["uid"] for board in boards.values()]
    assert len(set(uids)) == len(uids) == 4
    for name, board in boards.items():
        names = [v["name"] for v in board["templating"]["list"]]
        uses_period = any("$period" in t["expr"] for p in board["panels"] for t in p.get("targets", []))
        assert ("period" in names) == uses_period, name
        for var in ("team", "rep"):
            used = any(f"${var}" in t["expr"] for p in board["panels"] for t in p.get("targets", []))
            assert (var in names) == used, (name, var)


def test_panels_tile_the_24_column_grid(boards: dict[str, dict[str, Any]]) -> None:
    for name, board in boards.items():
        ids = [panel["id"] for panel in board["panels"]]
        assert len(set(ids)) == len(ids), name
        taken: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, (name, panel["title"], pos)
            if panel["type"] == "row":
                assert (pos["x"], pos["w"], pos["h"]) == (0, 24, 1) and not panel["collapsed"]
            xs, ys = range(pos["x"], pos["x"] + pos["w"]), range(pos["y"], pos["y"] + pos["h"])
            cells = {(x, y) for x in xs for y in ys}
            assert not cells & taken, f"{name}: {panel['title']} overlaps another panel at {pos}"
            taken |= cells
