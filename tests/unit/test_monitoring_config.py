"""The monitoring configuration as its own tools read it: promtool (built from the same
module as local mode's Prometheus) checks the rendered prometheus.yml of both modes and
the alerting rules; nginx serves stub_status only on its loopback listener."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from shopctl import render
from shopctl.monitoring import RULES_DIR
from shopctl.prometheus_build import ensure_promtool
from shopctl.topology import ROOT, Settings, Topology, read_env_file

pytestmark = pytest.mark.unit


def _promtool(*args: str) -> None:
    result = subprocess.run(
        [str(ensure_promtool()), *args], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("mode", ["local", "docker"])
def test_promtool_accepts_the_rendered_prometheus_config(mode: str, tmp_path: Path) -> None:
    config = tmp_path / "prometheus.yml"
    config.write_text(render.prometheus_yml(Topology(mode, Settings(read_env_file()))))  # type: ignore[arg-type]
    # --syntax-only: Docker mode's rule_files path exists only inside its container.
    _promtool("check", "config", "--syntax-only", str(config))


def test_promtool_accepts_every_rules_file() -> None:
    rules = sorted(RULES_DIR.glob("*.yml"))
    assert rules, f"no rules in {RULES_DIR}"
    _promtool("check", "rules", *map(str, rules))


def _servers(nginx_conf: str) -> list[str]:
    """The text of each `server { ... }` block (nginx.conf.j2 nests no braces deeper
    than a location's, so counting braces is enough)."""
    blocks, depth, start = [], 0, 0
    for match in re.finditer(r"server\s*\{|\{|\}", nginx_conf):
        token = match.group()
        if token.startswith("server"):
            if depth == 1:
                start = match.start()
            depth += 1
        elif token == "{":
            depth += 1
        else:
            depth -= 1
            if depth == 1 and start:
                blocks.append(nginx_conf[start : match.end()])
                start = 0
    return blocks


@pytest.mark.parametrize("mode", ["local", "docker"])
def test_nginx_status_is_served_only_on_a_loopback_listener(mode: str, tmp_path: Path) -> None:
    topology = Topology(mode, Settings(read_env_file()))  # type: ignore[arg-type]
    servers = _servers(render.nginx_conf(topology, tmp_path))
    assert len(servers) >= 2, servers
    for server in servers:
        listens = re.findall(r"^\s*listen\s+(\S+);", server, flags=re.M)
        if "stub_status;" in server:
            assert listens and all(a.startswith("127.0.0.1:") for a in listens), listens
        if "proxy_pass" in server:
            assert "stub_status" not in server
    assert any("stub_status;" in server for server in servers)


def _alerts() -> list[dict[str, Any]]:
    """Every alerting rule of every rules file (hand-written and generated)."""
    files = sorted(RULES_DIR.glob("*.yml"))
    documents = [yaml.safe_load(path.read_text()) for path in files]
    return [r for d in documents for group in d["groups"] for r in group["rules"] if "alert" in r]


def test_promtool_unit_tests_fire_and_quiet_every_alert() -> None:
    alerts = {rule["alert"] for rule in _alerts()}
    assert {"InstanceDown", "AvailabilityBudgetBurningFast", "LatencyBudgetBurningSlowly"} <= alerts
    tests = sorted((RULES_DIR / "tests").glob("*.test.yml"))
    cases = [yaml.safe_load(path.read_text()) for path in tests]
    tested = {
        check["alertname"]
        for case in cases
        for test in case["tests"]
        for check in test["alert_rule_test"]
        if check.get("exp_alerts")
    }
    assert alerts <= tested, f"alerts no test sees firing: {sorted(alerts - tested)}"
    _promtool("test", "rules", *map(str, tests))


def test_every_alert_has_a_summary_and_a_runbook_section() -> None:
    readme = (ROOT / "README.md").read_text()
    sections = {m.lower() for m in re.findall(r"^### (\w+)$", readme, flags=re.M)}
    for rule in _alerts():
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["runbook"] == f"README.md#{rule['alert'].lower()}"
        assert rule["alert"].lower() in sections, f"README has no section for {rule['alert']}"
