"""The load test as it runs (`make load`): what Locust sends and what its users see, next to
what the shop answers, so a breach of a gate can be read off one page. Locust's figures
come from loadtest/locust_metrics.py, scraped while a run is registered in Consul."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from shopctl.grafana.common import GREEN, RED, graph, new_dashboard, row, single, steps
from shopctl.grafana.queries import error_ratio, latency, rate

JOURNEY = 'name=~"checkout → CONFIRMED|declined checkout → CANCELLED"'
SENT = rate("locust_requests_total")
FAILED = rate("locust_requests_total", 'outcome="failed"')
ANSWERED = rate("locust_answers_total")
SERVER_ERRORS = rate("locust_answers_total", 'status_class="5xx"')


def _entry_quantile(quantile: float, selector: str = "") -> str:
    buckets = rate("locust_request_duration_seconds_bucket", selector, "le, name")
    return f"histogram_quantile({quantile}, {buckets})"


def build() -> Dashboard:
    d = new_dashboard(
        "shopstack-load",
        "Load test",
        "Locust's users, requests and latencies as its users see them, per entry (a route or "
        "a journey), against what the shop answers; empty between runs.",
        "load",
    )
    d.with_row(row("The run"))
    d.with_panel(
        single(
            "Users",
            "Locust's users running (the last reading while a run went).",
            "sum(locust_users)",
            width=4,
        )
    )
    d.with_panel(
        single(
            "Requests/s",
            "What Locust sends, all entries.",
            SENT,
            unit="reqps",
            width=4,
        )
    )
    d.with_panel(
        single(
            "Failed share",
            "Failed requests over all requests (slo.yml's load gate: 0.1 %).",
            f"({FAILED} or {SENT} * 0) / {SENT}",
            unit="percentunit",
            thresholds=steps((None, GREEN), (0.001, RED)),
            width=4,
        )
    )
    d.with_panel(
        single(
            "5xx answers/s",
            "Server errors Locust received (the gate allows none).",
            f"{SERVER_ERRORS} or {ANSWERED} * 0",
            unit="reqps",
            thresholds=steps((None, GREEN), (0.0001, RED)),
            width=4,
        )
    )
    d.with_panel(
        single(
            "Checkout p99",
            "From POST /orders to the CONFIRMED the user reads.",
            _entry_quantile(0.99, 'name="checkout → CONFIRMED"'),
            unit="s",
            thresholds=steps((None, GREEN), (2.5, RED)),
            width=8,
        )
    )
    d.with_panel(
        graph(
            "Requests/s by entry",
            "Locust's entries: routes as the gateway sees them, and journeys.",
            [(rate("locust_requests_total", by="name"), "{{name}}")],
            unit="reqps",
            stacked=True,
        )
    )
    d.with_panel(
        graph(
            "Answers by status class",
            "2xx, 4xx (the abuser's bad input expects them), 5xx; none for journeys.",
            [(rate("locust_answers_total", by="status_class"), "{{status_class}}")],
            unit="reqps",
            stacked=True,
        )
    )
    d.with_row(row("Latency as users see it"))
    d.with_panel(
        graph(
            "p95 by entry",
            "95th percentile per entry; slo.yml's load gates hold each to its own bound.",
            [(_entry_quantile(0.95), "{{name}}")],
            unit="s",
        )
    )
    d.with_panel(
        graph(
            "Journeys: p50 and p99",
            "Checkout to CONFIRMED, and a declined card to CANCELLED.",
            [
                (_entry_quantile(0.5, JOURNEY), "p50 {{name}}"),
                (_entry_quantile(0.99, JOURNEY), "p99 {{name}}"),
            ],
            unit="s",
        )
    )
    d.with_row(row("What the shop answers meanwhile"))
    d.with_panel(
        graph(
            "Shop: 5xx ratio by service",
            "The services' own count of server errors.",
            [(error_ratio(by="service"), "{{service}}")],
            unit="percentunit",
        )
    )
    d.with_panel(
        graph(
            "Shop: p99 by service",
            "The services' own request durations, without the gateway and the network.",
            [(latency(0.99, by="service"), "{{service}}")],
            unit="s",
        )
    )
    return d
