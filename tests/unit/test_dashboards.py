"""The dashboards in both modes: the files use only what local mode's page renders, and
the gateway serves that page on GRAFANA_PORT only when no grafana-server runs instead."""

import json
from pathlib import Path
from typing import Any

import pytest

from shopctl import dashboards, render
from shopctl.ports import INFRA_PORT_VARS
from tests.unit.test_shopctl import topology

pytestmark = pytest.mark.unit

PANEL_TYPES = {"timeseries", "stat", "gauge", "table", "row", "text"}
VARIABLE_TYPES = {"query", "custom", "interval", "constant", "textbox"}


def all_panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    panels = model.get("panels", [])
    return panels + [p for row in panels for p in row.get("panels", [])]


def test_dashboard_files_use_only_what_the_local_page_renders() -> None:
    found = dashboards.dashboards()
    assert found, "no dashboard files"
    assert len({d.uid for d in found}) == len(found), "two dashboards share a uid"
    for dashboard in found:
        model = json.loads(dashboard.path.read_text())
        for panel in all_panels(model):
            where = f"{dashboard.path.name} / {panel.get('title')}"
            assert panel["type"] in PANEL_TYPES, f"{where}: panel type {panel['type']}"
            assert {"x", "y", "w", "h"} <= panel.get("gridPos", {}).keys(), where
            for target in panel.get("targets", []):
                assert target.get("refId") and target.get("expr"), where
        for variable in model.get("templating", {}).get("list", []):
            assert variable["type"] in VARIABLE_TYPES, f"{dashboard.path.name}: ${variable['name']}"


def test_the_page_is_served_on_grafana_port_only_when_asked(tmp_path: Path) -> None:
    t = topology()
    plain = render.nginx_conf(t, tmp_path)
    assert f"listen 127.0.0.1:{t.settings['GRAFANA_PORT']}" not in plain
    page = render.nginx_conf(t, tmp_path, dashboards_page=True)
    assert f"listen 127.0.0.1:{t.settings['GRAFANA_PORT']};" in page
    assert f"proxy_pass http://127.0.0.1:{t.settings['PROMETHEUS_PORT']};" in page
    assert f"alias {dashboards.DASHBOARDS}/;" in page and "autoindex_format json;" in page
    assert "location /api/v1/admin/ { return 403; }" in page
    assert "GRAFANA_PORT" in INFRA_PORT_VARS


def test_make_dashboards_prints_one_url_per_dashboard(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for display in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(display, raising=False)  # no browser window from a test
    t = topology(GRAFANA_PORT="3999")
    assert dashboards.print_urls(t.settings, "docker") == 0
    out = capsys.readouterr().out
    for dashboard in dashboards.dashboards():
        assert f"http://127.0.0.1:3999/d/{dashboard.uid}" in out
