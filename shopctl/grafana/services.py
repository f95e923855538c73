"""One dashboard per service, its instances picked with `$instance`: RED by route and
instance, each instance's health and dependencies, its calls to other services, and what
that service alone does (the cache and stock, the saga, payments)."""

from __future__ import annotations

from collections.abc import Callable

from grafana_foundation_sdk.builders.dashboard import Dashboard

from shopctl.grafana.common import (
    GREEN,
    RED,
    UP_DOWN,
    YELLOW,
    graph,
    listing,
    new_dashboard,
    row,
    up_down,
    value_texts,
    variable,
)
from shopctl.grafana.queries import error_ratio, join, latency, rate

BREAKER = value_texts({"0": ("closed", GREEN), "1": ("half-open", YELLOW), "2": ("open", RED)})
# Whom each service calls through discovery (services/*/main.py `calls=`).
CALLS = {"orders": ["cart"]}


def _red(d: Dashboard, sel: str) -> None:
    d.with_row(row("Requests"))
    d.with_panel(
        graph(
            "Request rate by route",
            "Requests per second by method and route template.",
            [(rate("http_requests_total", sel, "method, route"), "{{method}} {{route}}")],
            unit="reqps",
        )
    )
    d.with_panel(
        graph(
            "Answers by status",
            "Requests per second by HTTP status.",
            [(rate("http_requests_total", sel, "status"), "{{status}}")],
            unit="reqps",
            stacked=True,
        )
    )
    d.with_panel(
        graph(
            "Error ratio by instance",
            "Share of server errors (5xx) per instance, probes left out.",
            [(error_ratio(sel, "instance_id"), "{{instance_id}}")],
            unit="percentunit",
            width=8,
        )
    )
    d.with_panel(
        graph(
            "Latency",
            "Request duration percentiles, selected instances.",
            [(latency(q, sel), f"p{round(q * 100)}") for q in (0.5, 0.95, 0.99)],
            unit="s",
            width=8,
        )
    )
    d.with_panel(
        graph(
            "p99 latency by route",
            "99th percentile duration per route template.",
            [(latency(0.99, sel, "route"), "{{route}}")],
            unit="s",
            width=8,
        )
    )


def _instances(d: Dashboard, sel: str) -> None:
    d.with_row(row("Instances"))
    d.with_panel(
        up_down(
            "Up",
            "Each instance's scrape: DOWN when it does not answer.",
            f'up{{job="services", {sel}}}',
            legend="{{instance_id}}",
            width=6,
            height=6,
        )
    )
    d.with_panel(
        listing(
            "Dependencies",
            "What each instance's readiness found of each dependency, last check.",
            [(f"max by (instance_id, dependency) (dependency_up{{{sel}}})", "")],
            rename={"Value": "state", "instance_id": "instance"},
            mappings=[UP_DOWN],
            width=6,
            height=6,
        )
    )
    d.with_panel(
        graph(
            "In progress",
            "Requests being handled right now, per instance.",
            [(f"sum by (instance_id) (http_requests_in_progress{{{sel}}})", "{{instance_id}}")],
            width=4,
            height=6,
        )
    )
    d.with_panel(
        graph(
            "Memory (RSS)",
            "Resident memory of each instance's process.",
            [(f"process_resident_memory_bytes{{{sel}}}", "{{instance_id}}")],
            unit="bytes",
            width=4,
            height=6,
        )
    )
    d.with_panel(
        graph(
            "CPU",
            "CPU seconds per second used by each instance.",
            [(f"rate(process_cpu_seconds_total{{{sel}}}[$__rate_interval])", "{{instance_id}}")],
            unit="percentunit",
            width=4,
            height=6,
        )
    )


def _calls(d: Dashboard, sel: str) -> None:
    d.with_row(row("Calls to other services"))
    d.with_panel(
        graph(
            "Calls by outcome",
            "Attempts to call another service, by target and outcome.",
            [
                (
                    rate("service_client_requests_total", sel, "target, outcome"),
                    "{{target}} {{outcome}}",
                )
            ],
            unit="ops",
            width=8,
        )
    )
    d.with_panel(
        graph(
            "Retries on another instance",
            "Calls tried again on another instance of the target.",
            [
                (
                    f"{rate('service_client_retries_total', sel, 'target')} or "
                    f"{rate('service_client_requests_total', sel, 'target')} * 0",
                    "{{target}}",
                )
            ],
            unit="ops",
            width=8,
        )
    )
    d.with_panel(
        listing(
            "Breakers and discovered instances",
            "Each target instance's circuit breaker as each caller sees it.",
            [
                (
                    f"max by (instance_id, target, target_instance) (circuit_breaker_state{{{sel}}})",
                    "",
                )
            ],
            rename={"Value": "breaker", "instance_id": "caller"},
            mappings=[BREAKER],
            width=8,
        )
    )
    d.with_panel(
        graph(
            "Instances discovered",
            "Passing instances of each target known to each instance (from Consul).",
            [
                (
                    f"max by (instance_id, target) (discovery_instances{{{sel}}})",
                    "{{instance_id}} → {{target}}",
                )
            ],
            width=24,
            height=6,
        )
    )


def _cart(d: Dashboard, sel: str) -> None:
    d.with_row(row("Product cache and stock"))
    d.with_panel(
        graph(
            "Cache lookups by result",
            "Product cache lookups in Redis: hit, miss or error.",
            [(rate("cache_requests_total", sel, "result"), "{{result}}")],
            unit="ops",
            stacked=True,
            series=("hit", "miss", "error"),
        )
    )
    d.with_panel(
        graph(
            "Stock units",
            "Units of all products: remaining, reserved and sold (from cart's database).",
            [("max by (state) (stock_units)", "{{state}}")],
        )
    )


def _orders(d: Dashboard, sel: str) -> None:
    d.with_row(row("Checkout saga"))
    d.with_panel(
        graph(
            "Orders closed by outcome",
            "Orders confirmed or cancelled per minute.",
            [
                (
                    "sum by (outcome) (rate(saga_outcomes_total[$__rate_interval])) * 60",
                    "{{outcome}}",
                )
            ],
            unit="opm",
            series=("confirmed", "cancelled"),
            width=8,
        )
    )
    d.with_panel(
        graph(
            "POST to CONFIRMED or CANCELLED",
            "Time from an order's creation to its terminal status, percentiles.",
            [
                (
                    f"histogram_quantile({q}, sum by (le) (rate(order_completion_seconds_bucket[$__rate_interval])))",
                    f"p{round(q * 100)}",
                )
                for q in (0.5, 0.99)
            ],
            unit="s",
            width=8,
        )
    )
    d.with_panel(
        graph(
            "Outbox",
            "Rows waiting for the relay, and the age of the oldest.",
            [
                ('max(outbox_backlog{service="orders"})', "backlog"),
                ('max(outbox_oldest_unsent_age_seconds{service="orders"})', "oldest (s)"),
            ],
            width=8,
        )
    )


def _payments(d: Dashboard, sel: str) -> None:
    d.with_row(row("Payments"))
    d.with_panel(
        graph(
            "Payments by outcome",
            "Charges per minute: succeeded, failed (declined) or refunded.",
            [("sum by (outcome) (rate(payments_total[$__rate_interval])) * 60", "{{outcome}}")],
            unit="opm",
            series=("succeeded", "failed", "refunded"),
        )
    )
    d.with_panel(
        graph(
            "Payments stored by status",
            "Rows in payments' database by status.",
            [("max by (status) (payments_stored)", "{{status}}")],
        )
    )


OWN: dict[str, Callable[[Dashboard, str], None]] = {
    "cart": _cart,
    "orders": _orders,
    "payments": _payments,
}


def build(service: str) -> Dashboard:
    d = new_dashboard(
        f"shopstack-{service}",
        f"Service: {service}",
        f"{service}'s instances: rate, errors and duration by route, health, dependencies"
        + (", calls to other services" if service in CALLS else "")
        + ".",
        "service",
    )
    d.with_variable(
        variable(
            "instance",
            "Instance",
            f'label_values(up{{job="services", service="{service}"}}, instance_id)',
        )
    )
    sel = join(f'service="{service}"', 'instance_id=~"$instance"')
    _red(d, sel)
    _instances(d, sel)
    if service in CALLS:
        _calls(d, sel)
    if service in OWN:
        OWN[service](d, sel)
    return d
