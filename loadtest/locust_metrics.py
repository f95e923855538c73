"""Locust's figures for Prometheus while a run goes, so the dashboards show the load next to
what it does to the shop. The run serves them on LOCUST_METRICS_PORT and registers itself
in Consul as the service `locust` (with a health check, so a crashed run leaves Consul by
itself); Prometheus finds it there as it finds the services. No run, no target: nothing
reads as down between runs."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import time
from pathlib import Path
from typing import Any

import requests
import shoppers
from locust import events
from locust.env import Environment
from locust.runners import Runner
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

REGISTRY = CollectorRegistry()
REQUESTS = Counter(
    "locust_requests_total",
    "Requests Locust sent, by entry (a route template or a journey) and outcome.",
    ["name", "method", "outcome"],
    registry=REGISTRY,
)
DURATION = Histogram(
    "locust_request_duration_seconds",
    "Time from sending a request (or starting a journey) to its answer, as users see it.",
    ["name", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
ANSWERS = Counter(
    "locust_answers_total",
    "HTTP answers Locust received, by status class (none: no answer, or not an HTTP entry).",
    ["status_class"],
    registry=REGISTRY,
)
USERS = Gauge("locust_users", "Users Locust runs now.", registry=REGISTRY)

_environment: Environment | None = None
# The same counts for the verdict (shopctl/load_gates.py), written at the end of the run.
answers: dict[str, int] = {}
# Orders the shop acknowledged (202) during the run: a chaos run checks that none is lost.
acknowledged: list[str] = []
# Every failed request, as the client saw it: a chaos run checks that a dependency's loss
# costs only fast 503s with Retry-After.
failures: list[dict[str, Any]] = []
_service_id = f"locust-{os.getpid()}"


def expect(entries: list[tuple[str, str]]) -> None:
    """Export these (method, name) entries from zero, so that their first request counts in
    rate() (a series first scraped at 1 shows no increase) and their panels show a run."""
    for method, name in entries:
        for outcome in ("ok", "failed"):
            REQUESTS.labels(name, method, outcome)
        DURATION.labels(name, method)


def runner() -> Runner | None:
    return _environment.runner if _environment else None


def _consul() -> str:
    return os.environ.get("CONSUL_HTTP_ADDR", "")


@events.init.add_listener
def _remember(environment: Environment, **_: Any) -> None:
    global _environment
    _environment = environment
    USERS.set_function(lambda: environment.runner.user_count if environment.runner else 0)


@events.request.add_listener
def _count(
    request_type: str,
    name: str,
    response_time: float,
    exception: Any,
    response: Any = None,
    **_: Any,
) -> None:
    REQUESTS.labels(name, request_type, "failed" if exception else "ok").inc()
    DURATION.labels(name, request_type).observe(response_time / 1000)
    code = getattr(response, "status_code", 0) or 0
    status_class = f"{code // 100}xx" if code else "none"
    answers[status_class] = answers.get(status_class, 0) + 1
    ANSWERS.labels(status_class).inc()
    if exception:
        headers = getattr(response, "headers", None) or {}
        failures.append(
            {
                "at": time.time(),
                "method": request_type,
                "name": name,
                "status": code,
                "retry_after": headers.get("Retry-After"),
                "ms": round(response_time, 1),
                "error": str(exception)[:200],
            }
        )


@events.test_start.add_listener
def _serve(**_: Any) -> None:
    port = int(os.environ.get("LOCUST_METRICS_PORT", "0"))
    if not port:
        return
    start_http_server(
        port, addr=os.environ.get("LOCUST_METRICS_HOST", "127.0.0.1"), registry=REGISTRY
    )
    if _consul():
        address = os.environ.get("LOCUST_METRICS_ADDRESS", "127.0.0.1")
        service = {
            "ID": _service_id,
            "Name": "locust",
            "Address": address,
            "Port": port,
            "Check": {
                "HTTP": f"http://{address}:{port}/metrics",
                "Interval": "5s",
                "Timeout": "2s",
                "DeregisterCriticalServiceAfter": "1m",
            },
        }
        requests.put(f"http://{_consul()}/v1/agent/service/register", json=service, timeout=5)


@events.quitting.add_listener
def _leave(environment: Environment, **_: Any) -> None:
    if os.environ.get("LOAD_STATUS_FILE"):
        Path(os.environ["LOAD_STATUS_FILE"]).write_text(json.dumps(answers))
    if os.environ.get("LOAD_ORDERS_FILE"):
        Path(os.environ["LOAD_ORDERS_FILE"]).write_text("\n".join(acknowledged))
    if os.environ.get("LOAD_FAILURES_FILE"):
        Path(os.environ["LOAD_FAILURES_FILE"]).write_text(json.dumps(failures, indent=1))
    if os.environ.get("LOAD_REPLAYS_FILE"):
        Path(os.environ["LOAD_REPLAYS_FILE"]).write_text(json.dumps(shoppers.replays, indent=1))
    if os.environ.get("LOAD_FINAL_STATS"):
        # Locust's own --csv file is written every few seconds and may miss the last ones;
        # by now every user has stopped, so these figures are the whole run's.
        with open(os.environ["LOAD_FINAL_STATS"], "w", newline="") as handle:
            StatsCSV(environment, PERCENTILES_TO_REPORT).requests_csv(csv.writer(handle))
    if _consul() and os.environ.get("LOCUST_METRICS_PORT"):
        # If Consul does not answer, its check removes the run within a minute.
        with contextlib.suppress(requests.RequestException):
            requests.put(f"http://{_consul()}/v1/agent/service/deregister/{_service_id}", timeout=5)
