"""Alerts reach Alertmanager: a paused instance fires InstanceDown in Prometheus and in
Alertmanager, and both resolve once it runs again."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from shopctl.local import LocalStack
from tests.integration.monitoring import alertmanager, eventually, prometheus, query

pytestmark = pytest.mark.integration

ALERT = "InstanceDown"
# Consul drops an instance that stays critical for kit's consul_deregister_critical_after
# (1m, plus up to its reaper's interval); Prometheus would then lose the target and the
# alert with it. InstanceDown fires after `for: 15s` plus a scrape and an evaluation (5s
# each), so everything below must be seen well inside that minute.
WITHIN_CONSUL_GRACE = 45


def _prometheus_alert(client: httpx.Client, instance_id: str) -> dict[str, Any] | None:
    alerts = client.get("/api/v1/alerts").json()["data"]["alerts"]
    for alert in alerts:
        labels = alert["labels"]
        if labels.get("alertname") == ALERT and labels.get("instance_id") == instance_id:
            return dict(alert)
    return None


def _alertmanager_alert(client: httpx.Client, instance_id: str) -> dict[str, Any] | None:
    """The alert as Alertmanager holds it, while it is active (not yet ended)."""
    alerts = client.get("/api/v2/alerts", params={"filter": f'alertname="{ALERT}"'}).json()
    now = datetime.now(UTC)
    for alert in alerts:
        ends = datetime.fromisoformat(alert["endsAt"].replace("Z", "+00:00"))
        if alert["labels"].get("instance_id") == instance_id and ends > now:
            return dict(alert)
    return None


def test_a_paused_instance_fires_instance_down_in_prometheus_and_alertmanager(
    stack: LocalStack,
) -> None:
    victim = stack.topology.instances("cart")[-1]
    with prometheus(stack) as prom, alertmanager(stack) as am:
        # Starts from a clean slate: the rule is loaded and nothing about the victim fires.
        rules = prom.get("/api/v1/rules", params={"type": "alert"}).json()["data"]["groups"]
        assert ALERT in {rule["name"] for group in rules for rule in group["rules"]}
        # Right after the stack starts, Prometheus may not have discovered the victim yet.
        eventually(
            lambda: query(prom, f'up{{job="services", instance_id="{victim.id}"}} == 1'),
            timeout=30,
            what=f"{victim.id} scraped",
        )
        assert _prometheus_alert(prom, victim.id) is None

        paused_at = time.monotonic()
        stack.supervisor.signal(victim.id, signal.SIGSTOP)
        try:
            firing = eventually(
                lambda: (a := _prometheus_alert(prom, victim.id)) and a["state"] == "firing" and a,
                timeout=WITHIN_CONSUL_GRACE,
                what=f"{ALERT} firing in Prometheus for {victim.id}",
            )
            assert firing["labels"]["severity"] == "critical"
            assert victim.id in firing["annotations"]["summary"]
            received = eventually(
                lambda: _alertmanager_alert(am, victim.id),
                timeout=WITHIN_CONSUL_GRACE - (time.monotonic() - paused_at),
                what=f"{ALERT} for {victim.id} in Alertmanager",
            )
            assert received["status"]["state"] == "active"
            assert received["labels"]["job"] == "services"
            print(
                f"\n{victim.id} paused: {ALERT} in Alertmanager after "
                f"{time.monotonic() - paused_at:.1f}s"
            )
        finally:
            stack.supervisor.signal(victim.id, signal.SIGCONT)

        resumed_at = time.monotonic()
        eventually(
            lambda: _prometheus_alert(prom, victim.id) is None,
            timeout=30,
            what=f"{ALERT} for {victim.id} resolved in Prometheus",
        )
        eventually(
            lambda: _alertmanager_alert(am, victim.id) is None,
            timeout=30,
            what=f"{ALERT} for {victim.id} resolved in Alertmanager",
        )
        print(f"resolved in both {time.monotonic() - resumed_at:.1f}s after SIGCONT")
    stack.wait_ready()  # routed again through the gateway, for the tests that follow
