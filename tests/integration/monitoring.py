"""Reading the test stack's Prometheus and Alertmanager through their HTTP APIs."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from shopctl.local import LocalStack

T = TypeVar("T")


def prometheus(stack: LocalStack) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{stack.settings['PROMETHEUS_PORT']}", timeout=5)


def alertmanager(stack: LocalStack) -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{stack.settings['ALERTMANAGER_PORT']}", timeout=5
    )


def query(client: httpx.Client, promql: str) -> list[dict[str, Any]]:
    """The instant vector `promql` evaluates to now."""
    answer = client.get("/api/v1/query", params={"query": promql}).json()
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def active_targets(client: httpx.Client) -> list[dict[str, Any]]:
    answer = client.get("/api/v1/targets", params={"state": "active"}).json()
    targets: list[dict[str, Any]] = answer["data"]["activeTargets"]
    return targets


def eventually(probe: Callable[[], T | None], *, timeout: float, what: str) -> T:
    """Poll `probe` until it returns something other than None (or falsy), within
    `timeout`; the last value seen goes into the failure message."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout:.0f}s (last: {last!r})")


def until_no_problems(problems: Callable[[], list[str]], *, timeout: float, what: str) -> float:
    """Poll `problems` until it finds none, within `timeout`; returns the time it took and
    fails with the problems of the last look."""
    started = time.monotonic()
    while True:
        found = problems()
        if not found:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout:.0f}s: {'; '.join(found)}")
        time.sleep(0.5)
