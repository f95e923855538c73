"""The parts between the services: the gateway, the event pipeline, the product cache."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from shopctl.grafana.common import (
    GREEN,
    RED,
    YELLOW,
    graph,
    new_dashboard,
    row,
    single,
    steps,
    up_down,
)
from shopctl.grafana.infrastructure import keyspace_hits_and_misses, messages_in_by_topic
from shopctl.grafana.queries import or_zero, rate
from shopctl.slo import NOT_PROBES


def gateway() -> Dashboard:
    d = new_dashboard(
        "shopstack-gateway",
        "Gateway",
        "nginx in front of every service: connections and requests (stub_status through "
        "the nginx exporter), and the instances behind each route.",
        "gateway",
    )
    d.with_row(row("nginx"))
    d.with_panel(
        up_down(
            "nginx",
            "The gateway's status page answers.",
            "max(nginx_up)",
        )
    )
    d.with_panel(
        single(
            "Requests",
            "Requests per second through nginx.",
            "sum(rate(nginx_http_requests_total[$__rate_interval]))",
            unit="reqps",
        )
    )
    d.with_panel(
        single(
            "Active connections", "Client connections open now.", "sum(nginx_connections_active)"
        )
    )
    d.with_panel(
        single(
            "Instances behind it",
            "Service instances up, which nginx routes to through Consul.",
            'sum(up{job="services"})',
            thresholds=steps((None, RED), (8, GREEN)),
            width=12,
        )
    )
    d.with_panel(
        graph(
            "Requests",
            "Requests per second nginx handled.",
            [("sum(rate(nginx_http_requests_total[$__rate_interval]))", "requests")],
            unit="reqps",
        )
    )
    d.with_panel(
        graph(
            "Connections",
            "Connections by state: reading a request, writing an answer, idle keep-alive.",
            [
                (f"sum(nginx_connections_{state})", state)
                for state in ("reading", "writing", "waiting")
            ],
            stacked=True,
        )
    )
    d.with_row(row("Behind the gateway"))
    d.with_panel(
        graph(
            "Requests reaching each service",
            "What the services answered, users' traffic only (probes left out).",
            [(rate("http_requests_total", NOT_PROBES, "service"), "{{service}}")],
            unit="reqps",
        )
    )
    d.with_panel(
        graph(
            "Instances up per service",
            "Instances answering their scrape, by service.",
            [('sum by (service) (up{job="services"})', "{{service}}")],
        )
    )
    return d


def events() -> Dashboard:
    d = new_dashboard(
        "shopstack-events",
        "Events",
        "The event log: what the outboxes publish, what the consumers handle, how far "
        "behind they are, and the dead letters.",
        "events",
    )
    d.with_row(row("Now"))
    d.with_panel(
        single(
            "Published",
            "Outbox rows published to Kafka per second.",
            rate("outbox_published_total"),
            unit="ops",
            width=6,
        )
    )
    d.with_panel(
        single(
            "Consumed",
            "Events handled per second, all groups.",
            rate("consumer_events_total"),
            unit="ops",
            width=6,
        )
    )
    d.with_panel(
        single(
            "Lag",
            "Records behind, all groups and partitions.",
            "sum(max by (group, topic, partition) (consumer_lag))",
            thresholds=steps((None, GREEN), (50, YELLOW), (500, RED)),
            width=6,
        )
    )
    d.with_panel(
        single(
            "Dead letters (range)",
            "Events sent to a .dlq topic in the range shown; `make replay-dlq` sends them back.",
            'sum(increase(consumer_events_total{outcome="dead_lettered"}[$__range]))',
            thresholds=steps((None, GREEN), (1, RED)),
            background=True,
            decimals=0,
            width=6,
        )
    )
    d.with_row(row("Produce and consume"))
    d.with_panel(messages_in_by_topic())
    d.with_panel(
        graph(
            "Consumed by group and outcome",
            "Events each consumer group saw: handled, duplicate (absorbed by the inbox), dead-lettered.",
            [(rate("consumer_events_total", "", "group, outcome"), "{{group}} {{outcome}}")],
            unit="ops",
        )
    )
    d.with_panel(
        graph(
            "Consumer lag per partition",
            "Records behind the end of each partition.",
            [
                (
                    "max by (group, topic, partition) (consumer_lag)",
                    "{{group}} {{topic}}/{{partition}}",
                )
            ],
        )
    )
    d.with_panel(
        graph(
            "Dead-lettered",
            "Events sent to a dead-letter topic, per group.",
            [
                (
                    'sum by (group) (increase(consumer_events_total{outcome="dead_lettered"}[$__rate_interval]))',
                    "{{group}}",
                )
            ],
            series=("dead_lettered",),
        )
    )
    d.with_row(row("Outboxes"))
    d.with_panel(
        graph(
            "Outbox backlog",
            "Rows not yet published, by service.",
            [("max by (service) (outbox_backlog)", "{{service}}")],
            width=8,
        )
    )
    d.with_panel(
        graph(
            "Oldest unsent row",
            "Age of the oldest row waiting for the relay.",
            [("max by (service) (outbox_oldest_unsent_age_seconds)", "{{service}}")],
            unit="s",
            width=8,
        )
    )
    d.with_panel(
        graph(
            "Published",
            "Rows published per second, by service.",
            [(rate("outbox_published_total", "", "service"), "{{service}}")],
            unit="ops",
            width=8,
        )
    )
    return d


def cache() -> Dashboard:
    d = new_dashboard(
        "shopstack-cache",
        "Cache",
        "Cart's product cache in Redis: hit ratio and lookups by result, and what Redis "
        "does for it.",
        "cache",
    )
    hits = rate("cache_requests_total", 'result="hit"')
    total = rate("cache_requests_total")
    d.with_panel(
        single(
            "Hit ratio",
            "Share of product lookups answered from Redis.",
            f"({hits} or {total} * 0) / {total}",
            unit="percentunit",
            thresholds=steps((None, RED), (0.5, YELLOW), (0.8, GREEN)),
            width=8,
        )
    )
    d.with_panel(single("Lookups", "Product cache lookups per second.", total, unit="ops", width=8))
    d.with_panel(
        single(
            "Errors",
            "Lookups that failed on Redis (answered from Postgres instead).",
            or_zero(rate("cache_requests_total", 'result="error"')),
            unit="ops",
            thresholds=steps((None, GREEN), (0.001, RED)),
            width=8,
        )
    )
    d.with_panel(
        graph(
            "Lookups by result",
            "Hits, misses and errors per second.",
            [(rate("cache_requests_total", "", "result"), "{{result}}")],
            unit="ops",
            stacked=True,
            series=("hit", "miss", "error"),
        )
    )
    d.with_panel(keyspace_hits_and_misses())
    return d
