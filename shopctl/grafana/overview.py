"""The overview: is Shopstack serving, is its error budget holding, what is firing, and is
every part of the stack up. The home dashboard in both modes."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from shopctl.grafana.common import (
    GREEN,
    ORANGE,
    RED,
    YELLOW,
    dial,
    graph,
    listing,
    new_dashboard,
    row,
    single,
    steps,
    up_down,
)
from shopctl.grafana.queries import budget_left, error_ratio, latency, or_zero, rate, slow_ratio
from shopctl.slo import objectives

INFRA_JOBS = "postgres|redis|kafka|consul|nginx|prometheus|alertmanager|node"
# Recorded by infra/prometheus/rules/slo.yml (shopctl/slo_rules.py).
BURN_RATE_1H = "slo:errors:ratio_rate1h / on(service, slo) (1 - slo:objective:ratio)"


def build() -> Dashboard:
    d = new_dashboard(
        "shopstack-overview",
        "Shopstack overview",
        "Traffic, errors and latency of every service, instances up, error budget left, "
        "alerts firing, and every part of the stack.",
        "overview",
    )
    d.with_row(row("Now"))
    d.with_panel(
        single(
            "Requests",
            "Requests per second, all services.",
            rate("http_requests_total"),
            unit="reqps",
        )
    )
    d.with_panel(
        single(
            "Errors (5xx)",
            "Share of answers that were server errors, all services (probes left out).",
            error_ratio(),
            unit="percentunit",
            thresholds=steps((None, GREEN), (0.005, YELLOW), (0.05, RED)),
        )
    )
    d.with_panel(
        single(
            "p99 latency",
            "99th percentile of request duration, all services.",
            latency(0.99),
            unit="s",
            thresholds=steps((None, GREEN), (0.5, YELLOW), (1, RED)),
        )
    )
    d.with_panel(
        single(
            "Instances up",
            "Service instances answering their scrape.",
            'sum(up{job="services"})',
            thresholds=steps((None, RED), (8, GREEN)),
        )
    )
    d.with_panel(
        single(
            "Instances down",
            "Service instances not answering their scrape.",
            or_zero('count(up{job="services"} == 0)'),
            thresholds=steps((None, GREEN), (1, RED)),
            background=True,
        )
    )
    d.with_panel(
        single(
            "Alerts firing",
            "Alerts Prometheus is firing now (listed below).",
            or_zero('count(ALERTS{alertstate="firing"})'),
            thresholds=steps((None, GREEN), (1, RED)),
            background=True,
        )
    )
    d.with_row(row("Services"))
    d.with_panel(
        graph(
            "Request rate",
            "Requests per second by service.",
            [(rate("http_requests_total", by="service"), "{{service}}")],
            unit="reqps",
            width=8,
        )
    )
    d.with_panel(
        graph(
            "Error ratio (5xx)",
            "Share of server errors by service.",
            [(error_ratio(by="service"), "{{service}}")],
            unit="percentunit",
            width=8,
        )
    )
    d.with_panel(
        graph(
            "p99 latency",
            "99th percentile duration by service.",
            [(latency(0.99, by="service"), "{{service}}")],
            unit="s",
            width=8,
        )
    )
    d.with_row(row("Error budget left over the range shown (objectives in slo.yml)"))
    d.with_panel(
        dial(
            "Availability budget left",
            "1 - (share of 5xx answers) / (1 - objective), over the range shown: 100 % is "
            "untouched, below 0 the budget is overspent.",
            "",
            thresholds=steps((None, RED), (0.25, ORANGE), (0.5, GREEN)),
            width=12,
            queries=[
                (
                    budget_left(
                        error_ratio(f'service="{o.service}"', window="$__range"),
                        o.availability,
                    ),
                    o.service,
                )
                for o in objectives()
            ],
        )
    )
    d.with_panel(
        dial(
            "Latency budget left",
            "1 - (share of requests slower than the objective's bound) / (1 - target), "
            "over the range shown.",
            "",
            thresholds=steps((None, RED), (0.25, ORANGE), (0.5, GREEN)),
            width=12,
            queries=[
                (budget_left(slow_ratio(o.service, o.le), o.latency_target), o.service)
                for o in objectives()
            ],
        )
    )
    d.with_panel(
        graph(
            "Burn rate over the last hour",
            "How many times faster than the period allows each service spends its error "
            "budget (the series the burn-rate alerts read): 1 spends it exactly in the "
            "period, 14.4 pages (with the last 5 minutes agreeing), 3 opens a ticket.",
            [(BURN_RATE_1H, "{{service}} {{slo}}")],
            thresholds=steps((None, GREEN), (3, ORANGE), (14.4, RED)),
            width=24,
        )
    )
    d.with_row(row("Alerts and the stack's parts"))
    d.with_panel(
        listing(
            "Alerts",
            "Every alert pending or firing, with its severity (runbooks in the README).",
            [
                (
                    or_zero(
                        "sum by (alertname, alertstate, severity, service, instance) (ALERTS)",
                        "alertname",
                        "(none firing)",
                    ),
                    "",
                )
            ],
            hide=("Time", "Value"),
            width=12,
        )
    )
    d.with_panel(
        up_down(
            "Parts up",
            "Each part of the stack, from its exporter's scrape.",
            f'max by (job) (up{{job=~"{INFRA_JOBS}"}})',
            legend="{{job}}",
            width=12,
            height=8,
        )
    )
    d.with_row(row("Machine"))
    d.with_panel(
        graph(
            "CPU busy",
            "Share of the machine's CPU time not idle.",
            [('1 - avg(rate(node_cpu_seconds_total{mode="idle"}[$__rate_interval]))', "busy")],
            unit="percentunit",
            maximum=1,
            width=8,
        )
    )
    d.with_panel(
        graph(
            "Memory used",
            "Memory in use (total less available).",
            [("node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes", "used")],
            unit="bytes",
            width=8,
        )
    )
    d.with_panel(graph("Load", "1-minute load average.", [("node_load1", "load1")], width=8))
    return d
