"""The dashboard files are what shopctl/grafana generates, and each is a dashboard both
Grafana and the local page can draw: known panel types, the provisioned datasource, and a
grid that fits 24 columns with no two panels on the same cells."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from shopctl.grafana import OUT, rendered
from shopctl.topology import ROOT

pytestmark = pytest.mark.unit

PANEL_TYPES = {"timeseries", "stat", "gauge", "table", "row"}


def all_panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = model["panels"]
    return panels + [p for r in panels for p in r.get("panels", [])]


def test_the_checked_in_files_are_what_the_code_generates() -> None:
    generated = rendered()
    on_disk = {path.name: path.read_text() for path in OUT.glob("*.json")}
    assert sorted(on_disk) == sorted(generated), "run `make generate`"
    stale = [name for name, text in generated.items() if on_disk[name] != text]
    assert not stale, f"out of date, run `make generate`: {stale}"


def test_every_dashboard_covers_what_the_issue_names() -> None:
    uids = {json.loads(text)["uid"] for text in rendered().values()}
    wanted = {"overview", "auth", "cart", "orders", "payments", "gateway", "events", "cache"}
    wanted |= {"postgres", "redis", "kafka", "consul", "business", "load"}
    assert uids == {f"shopstack-{name}" for name in wanted}


@pytest.mark.parametrize("name", sorted(rendered()))
def test_panels_use_the_datasource_and_fit_the_grid(name: str) -> None:
    model = json.loads(rendered()[name])
    taken: set[tuple[int, int]] = set()
    ids = [p["id"] for p in all_panels(model)]
    assert len(ids) == len(set(ids))
    for panel in all_panels(model):
        assert panel["type"] in PANEL_TYPES, panel["title"]
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        cells = {(pos["x"] + dx, pos["y"] + dy) for dx in range(pos["w"]) for dy in range(pos["h"])}
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}
        assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]
        assert panel.get("description"), f"{panel['title']} has no description"


def test_service_dashboards_pick_instances() -> None:
    model = json.loads(rendered()["shopstack-cart.json"])
    [instance] = model["templating"]["list"]
    assert instance["name"] == "instance" and instance["includeAll"]
    exprs = [t["expr"] for p in all_panels(model) for t in p.get("targets", [])]
    assert sum('instance_id=~"$instance"' in e for e in exprs) >= 8


def test_the_panels_datasource_is_the_one_grafana_is_provisioned_with() -> None:
    provisioned = yaml.safe_load(
        (ROOT / "infra" / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    [datasource] = provisioned["datasources"]
    for text in rendered().values():
        for panel in all_panels(json.loads(text)):
            if panel["type"] != "row":
                assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
                assert panel["datasource"]["type"] == datasource["type"]
