"""The stores and the registry, each from its own exporter: Postgres, Redis, Kafka (the JMX
exporter agent) and Consul (its own Prometheus endpoint)."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models.dashboard import Panel

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

DATABASES = 'datname=~"auth|cart|orders|payments"'


def _up(title: str, expr: str) -> Builder[Panel]:
    return up_down(
        title,
        f"{title} answers its exporter.",
        expr,
    )


def messages_in_by_topic() -> Builder[Panel]:
    """Shown on both the Kafka and the Events dashboards."""
    return graph(
        "Messages into Kafka by topic",
        "Records appended per second, per topic (broker side).",
        [
            (
                'sum by (topic) (rate(kafka_server_brokertopicmetrics_messagesin_total{topic!=""}[$__rate_interval]))',
                "{{topic}}",
            )
        ],
        unit="ops",
    )


def keyspace_hits_and_misses() -> Builder[Panel]:
    """Shown on both the Redis and the Cache dashboards."""
    return graph(
        "Redis keyspace hits and misses",
        "Lookups that found their key in Redis, or not, every client.",
        [
            ("sum(rate(redis_keyspace_hits_total[$__rate_interval]))", "hits"),
            ("sum(rate(redis_keyspace_misses_total[$__rate_interval]))", "misses"),
        ],
        unit="ops",
    )


def postgres() -> Dashboard:
    d = new_dashboard(
        "shopstack-postgres",
        "Postgres",
        "The system of record, one database per service: connections, "
        "transactions, rows, cache hits, locks and size.",
        "postgres",
    )
    d.with_panel(_up("Postgres", "max(pg_up)"))
    d.with_panel(
        single(
            "Connections",
            "Backends connected, all databases.",
            f"sum(pg_stat_activity_count{{{DATABASES}}})",
        )
    )
    d.with_panel(
        single(
            "Commits",
            "Transactions committed per second.",
            f"sum(rate(pg_stat_database_xact_commit{{{DATABASES}}}[$__rate_interval]))",
            unit="ops",
        )
    )
    d.with_panel(
        single(
            "Buffer cache hit ratio",
            "Blocks read from shared buffers rather than disk.",
            f"sum(rate(pg_stat_database_blks_hit{{{DATABASES}}}[$__rate_interval])) / "
            f"(sum(rate(pg_stat_database_blks_hit{{{DATABASES}}}[$__rate_interval])) + "
            f"sum(rate(pg_stat_database_blks_read{{{DATABASES}}}[$__rate_interval])))",
            unit="percentunit",
            thresholds=steps((None, RED), (0.9, YELLOW), (0.99, GREEN)),
            width=8,
        )
    )
    d.with_panel(
        single(
            "Deadlocks (range)",
            "Deadlocks detected in the range shown.",
            f"sum(increase(pg_stat_database_deadlocks{{{DATABASES}}}[$__range]))",
            thresholds=steps((None, GREEN), (1, RED)),
            decimals=0,
        )
    )
    d.with_row(row("By database"))
    d.with_panel(
        graph(
            "Connections",
            "Backends per database.",
            [(f"sum by (datname) (pg_stat_activity_count{{{DATABASES}}})", "{{datname}}")],
        )
    )
    d.with_panel(
        graph(
            "Transactions",
            "Commits and rollbacks per second, per database.",
            [
                (
                    f"sum by (datname) (rate(pg_stat_database_xact_commit{{{DATABASES}}}[$__rate_interval]))",
                    "{{datname}} commit",
                ),
                (
                    f"sum by (datname) (rate(pg_stat_database_xact_rollback{{{DATABASES}}}[$__rate_interval]))",
                    "{{datname}} rollback",
                ),
            ],
            unit="ops",
        )
    )
    d.with_panel(
        graph(
            "Rows written",
            "Rows inserted, updated and deleted per second.",
            [
                (
                    f"sum by (datname) (rate(pg_stat_database_tup_{kind}{{{DATABASES}}}[$__rate_interval]))",
                    f"{{{{datname}}}} {kind}",
                )
                for kind in ("inserted", "updated", "deleted")
            ],
            unit="ops",
        )
    )
    d.with_panel(
        graph(
            "Size",
            "Disk used by each database.",
            [(f"max by (datname) (pg_database_size_bytes{{{DATABASES}}})", "{{datname}}")],
            unit="bytes",
        )
    )
    d.with_panel(
        graph(
            "Locks",
            "Locks held, by mode.",
            [("sum by (mode) (pg_locks_count)", "{{mode}}")],
            width=24,
            height=6,
        )
    )
    return d


# A replica holds a copy of its primary's keys: count them once.
_ON_PRIMARIES = 'and on (instance) redis_instance_info{role="master"}'


def redis() -> Dashboard:
    d = new_dashboard(
        "shopstack-redis",
        "Redis",
        "Carts and the product cache: clients, commands, memory, keys.",
        "redis",
    )
    # Each shard is a primary and a replica: a replica down is not Redis down.
    d.with_panel(
        single(
            "Nodes answering",
            "Share of the Redis nodes (each shard's primary and replica) that answer.",
            "sum(redis_up) / count(redis_up)",
            unit="percentunit",
            thresholds=steps((None, RED), (0.5, YELLOW), (1, GREEN)),
            sparkline=False,
            background=True,
        )
    )
    d.with_panel(single("Clients", "Connected clients.", "sum(redis_connected_clients)"))
    d.with_panel(
        single(
            "Commands",
            "Commands processed per second.",
            "sum(rate(redis_commands_processed_total[$__rate_interval]))",
            unit="ops",
        )
    )
    d.with_panel(
        single("Memory", "Memory Redis uses.", "sum(redis_memory_used_bytes)", unit="bytes")
    )
    d.with_panel(
        single(
            "Keys",
            "Keys held, counted on the primaries.",
            f"sum(redis_db_keys {_ON_PRIMARIES})",
            width=8,
        )
    )
    d.with_panel(
        graph(
            "Commands by name",
            "The busiest commands per second.",
            [("topk(8, sum by (cmd) (rate(redis_commands_total[$__rate_interval])))", "{{cmd}}")],
            unit="ops",
        )
    )
    d.with_panel(keyspace_hits_and_misses())
    d.with_panel(
        graph(
            "Memory by node",
            "Memory each Redis node uses.",
            [("sum by (instance) (redis_memory_used_bytes)", "{{instance}}")],
            unit="bytes",
        )
    )
    d.with_panel(
        graph(
            "Keys by database",
            "Keys per Redis database, counted on the primaries.",
            [(f"sum by (db) (redis_db_keys {_ON_PRIMARIES})", "{{db}}")],
        )
    )
    return d


def kafka() -> Dashboard:
    d = new_dashboard(
        "shopstack-kafka",
        "Kafka",
        "The event log's brokers (KRaft), from the JMX exporter agent: controller, "
        "partitions and their replicas, traffic, request times, JVM.",
        "kafka",
    )
    d.with_panel(
        single(
            "Brokers up",
            "Brokers answering their JMX exporter.",
            'sum(up{job="kafka"})',
            thresholds=steps((None, RED), (1, GREEN)),
        )
    )
    d.with_panel(
        single(
            "Active controller",
            "Brokers acting as controller: exactly 1 is healthy.",
            "sum(kafka_controller_kafkacontroller_activecontrollercount)",
            thresholds=steps((None, RED), (1, GREEN), (2, RED)),
        )
    )
    d.with_panel(
        single(
            "Under-replicated",
            "Partitions with fewer in-sync replicas than replicas.",
            "sum(kafka_server_replicamanager_underreplicatedpartitions)",
            thresholds=steps((None, GREEN), (1, RED)),
            background=True,
        )
    )
    d.with_panel(
        single(
            "Offline partitions",
            "Partitions with no leader.",
            "sum(kafka_controller_kafkacontroller_offlinepartitionscount)",
            thresholds=steps((None, GREEN), (1, RED)),
            background=True,
        )
    )
    d.with_panel(
        single(
            "Partitions",
            "Partitions on the brokers.",
            "sum(kafka_server_replicamanager_partitioncount)",
        )
    )
    d.with_panel(
        single(
            "Leaders",
            "Partitions led by the brokers.",
            "sum(kafka_server_replicamanager_leadercount)",
        )
    )
    d.with_panel(messages_in_by_topic())
    d.with_panel(
        graph(
            "Bytes in and out",
            "Bytes per second written and read, all topics.",
            [
                (
                    'sum(rate(kafka_server_brokertopicmetrics_bytesin_total{topic=""}[$__rate_interval]))',
                    "in",
                ),
                (
                    'sum(rate(kafka_server_brokertopicmetrics_bytesout_total{topic=""}[$__rate_interval]))',
                    "out",
                ),
            ],
            unit="Bps",
        )
    )
    d.with_panel(
        graph(
            "Request time p99",
            "99th percentile of produce and fetch handling; a fetch includes the consumer's long-poll wait for new records (fetch.max.wait.ms).",
            [
                (
                    'max by (request) (kafka_network_requestmetrics_totaltimems{quantile="0.99", request=~"Produce|Fetch|FetchConsumer"})',
                    "{{request}}",
                )
            ],
            unit="ms",
        )
    )
    d.with_panel(
        graph(
            "Log end offset by topic",
            "Records ever appended, per topic.",
            [("sum by (topic) (kafka_log_log_logendoffset)", "{{topic}}")],
        )
    )
    d.with_panel(
        graph(
            "JVM heap",
            "Heap in use by each broker.",
            [('sum by (instance) (jvm_memory_used_bytes{area="heap"})', "{{instance}}")],
            unit="bytes",
            width=24,
            height=6,
        )
    )
    return d


def consul() -> Dashboard:
    d = new_dashboard(
        "shopstack-consul",
        "Consul",
        "Discovery: the servers' health, what the catalog holds, and what each "
        "service sees of the others.",
        "consul",
    )
    d.with_panel(
        single(
            "Servers up",
            "Consul agents answering their metrics endpoint.",
            'sum(up{job="consul"})',
            thresholds=steps((None, RED), (1, GREEN)),
        )
    )
    d.with_panel(
        up_down(
            "Autopilot healthy",
            "Consul's own verdict on its servers.",
            "min(consul_autopilot_healthy)",
        )
    )
    d.with_panel(single("Services", "Services registered.", "max(consul_state_services)"))
    d.with_panel(
        single("Service instances", "Instances registered.", "max(consul_state_service_instances)")
    )
    d.with_panel(
        single("Goroutines", "Goroutines in the agent.", "max(consul_runtime_num_goroutines)")
    )
    d.with_panel(
        single(
            "Memory",
            "Heap allocated by the agent.",
            "max(consul_runtime_alloc_bytes)",
            unit="bytes",
        )
    )
    d.with_panel(
        graph(
            "Instances each caller discovers",
            "Passing instances of each target, as each instance sees them.",
            [
                (
                    "max by (instance_id, target) (discovery_instances)",
                    "{{instance_id}} → {{target}}",
                )
            ],
        )
    )
    d.with_panel(
        graph(
            "Registered instances",
            "Instances in Consul's catalog.",
            [("max(consul_state_service_instances)", "instances")],
        )
    )
    return d
