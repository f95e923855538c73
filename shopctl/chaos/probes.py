"""What an experiment's steady-state hypothesis checks, as Chaos Toolkit probes."""

from __future__ import annotations

import time

import httpx

from shopctl.chaos.target import current
from shopctl.readiness import saga_group_checks


def shop_answers(within_seconds: float = 30) -> bool:
    """The catalog answers through the gateway, within the time (instances that left the
    gateway with a dependency come back once their next health check passes)."""
    deadline = time.monotonic() + within_seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{current().gateway}/products?limit=1", timeout=5).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


def every_process_ready(within_seconds: float = 90) -> bool:
    """Every process answers and the gateway routes to every instance, within the time
    (a process just restarted by its supervisor gets a moment)."""
    deadline = time.monotonic() + within_seconds
    while time.monotonic() < deadline:
        if all(current().stack.all_ready().values()):
            return True
        time.sleep(0.5)
    return False


def saga_groups_stable(within_seconds: float = 30) -> bool:
    """The saga's consumer groups are stable with one member per instance."""
    deadline = time.monotonic() + within_seconds
    while time.monotonic() < deadline:
        if all(saga_group_checks(current().settings).values()):
            return True
        time.sleep(0.5)
    return False
