"""Every part of the stack exports metrics: each scrape job has all its targets up in
Prometheus, each named as a reader expects, with the figures dashboards are built on."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from shopctl.local import LocalStack
from shopctl.render import scrape_jobs
from shopctl.topology import KAFKA_TOPICS, SERVICES
from tests.integration.monitoring import active_targets, prometheus, query, until_no_problems

pytestmark = pytest.mark.integration

JOBS = {"services", "prometheus", "alertmanager", "postgres", "redis"}
JOBS |= {"kafka", "nginx", "consul", "node"}

# PromQL that must select at least one series once the stack is up, per job.
KEY_METRICS = {
    "postgres": ["pg_up == 1", "pg_stat_database_xact_commit", "pg_stat_database_numbackends"],
    "redis": [
        "redis_up == 1",
        "redis_connected_clients",
        "redis_commands_processed_total",
        # Every node is watched, not only the first: the replicas too.
        'redis_instance_info{role="slave"}',
    ],
    "node": [
        "node_cpu_seconds_total",
        "node_memory_MemAvailable_bytes",
        "node_load1",
        "node_filesystem_avail_bytes",
        "node_network_receive_bytes_total",
    ],
    "nginx": ["nginx_up == 1", "nginx_connections_active", "nginx_http_requests_total"],
    "alertmanager": ["alertmanager_alerts", "alertmanager_build_info"],
    "consul": [
        "consul_autopilot_healthy",
        "consul_raft_applied_index",
        "consul_runtime_num_goroutines",
        "consul_state_service_instances",
    ],
    "kafka": [
        'kafka_server_brokertopicmetrics_messagesin_total{topic!=""}',
        "kafka_server_brokertopicmetrics_bytesin_total",
        "kafka_server_brokertopicmetrics_bytesout_total",
        "kafka_server_replicamanager_underreplicatedpartitions",
        "kafka_server_replicamanager_partitioncount",
        "kafka_controller_kafkacontroller_activecontrollercount == 1",
        "kafka_controller_kafkacontroller_offlinepartitionscount",
        'kafka_network_requestmetrics_totaltimems{request="Produce", quantile="0.99"}',
        "jvm_memory_used_bytes",
        "jvm_gc_collection_seconds_count",
    ],
}


@pytest.fixture
def prom(stack: LocalStack) -> Iterator[httpx.Client]:
    with prometheus(stack) as client:
        yield client


def _expected_targets(stack: LocalStack) -> dict[str, set[str]]:
    """Each job's `instance` names: the instances' addresses for the services (found
    through Consul), names for the rest."""
    expected = {job.name: {name for _, name in job.targets} for job in scrape_jobs(stack.topology)}
    expected["services"] = {instance.address for instance in stack.topology.instances()}
    expected["prometheus"] = {"prometheus"}
    return expected


def _target_problems(client: httpx.Client, expected: dict[str, set[str]]) -> list[str]:
    seen: dict[str, set[str]] = {job: set() for job in expected}
    problems = []
    for target in active_targets(client):
        job, instance = target["labels"]["job"], target["labels"]["instance"]
        seen.setdefault(job, set()).add(instance)
        if target["health"] != "up":
            problems.append(f"{job}/{instance} is {target['health']}: {target['lastError']}")
    for job, names in expected.items():
        if seen[job] != names:
            problems.append(f"job {job} has targets {sorted(seen[job])}, wants {sorted(names)}")
    return problems


def test_every_scrape_job_has_all_its_targets_up(stack: LocalStack, prom: httpx.Client) -> None:
    expected = _expected_targets(stack)
    assert expected.keys() == JOBS
    took = until_no_problems(
        lambda: _target_problems(prom, expected), timeout=60, what="every target up"
    )
    print(f"\nall {sum(map(len, expected.values()))} targets up after {took:.1f}s")
    # The same seen through the query API, as alerts and dashboards see it.
    for job, names in expected.items():
        up = {s["metric"]["instance"]: s["value"][1] for s in query(prom, f'up{{job="{job}"}}')}
        assert up == dict.fromkeys(names, "1"), job


@pytest.mark.parametrize("job", sorted(KEY_METRICS))
def test_each_exporter_serves_its_key_metrics(
    stack: LocalStack, prom: httpx.Client, job: str
) -> None:
    expected = _expected_targets(stack)[job]

    def missing() -> list[str]:
        found = []
        for promql in KEY_METRICS[job]:
            instances = {s["metric"].get("instance") for s in query(prom, promql)}
            if not instances & expected:
                found.append(f"{promql} (on {sorted(i for i in instances if i)})")
        return found

    until_no_problems(missing, timeout=60, what=f"the {job} job's key metrics")


def test_postgres_statistics_have_a_series_for_every_service_database(
    prom: httpx.Client,
) -> None:
    def missing() -> list[str]:
        series = query(prom, 'pg_stat_database_xact_commit{job="postgres"}')
        databases = {s["metric"].get("datname") for s in series}
        return [f"no series for database {db}" for db in SERVICES if db not in databases]

    until_no_problems(missing, timeout=60, what="pg_stat_database per database")


def test_kafka_log_end_offsets_cover_every_partition_of_every_topic(prom: httpx.Client) -> None:
    def missing() -> list[str]:
        series = query(prom, 'kafka_log_log_logendoffset{job="kafka"}')
        partitions: dict[str, set[str]] = {}
        for s in series:
            partitions.setdefault(s["metric"]["topic"], set()).add(s["metric"]["partition"])
        return [
            f"{topic} has offsets for partitions {sorted(partitions.get(topic, set()))}"
            for topic, count in KAFKA_TOPICS.items()
            if partitions.get(topic) != {str(p) for p in range(count)}
        ]

    until_no_problems(missing, timeout=60, what="kafka_log_log_logendoffset per partition")


def test_prometheus_sends_alerts_to_alertmanager(prom: httpx.Client) -> None:
    until_no_problems(
        lambda: (
            []
            if query(prom, "prometheus_notifications_alertmanagers_discovered == 1")
            else ["Prometheus has not discovered exactly one Alertmanager"]
        ),
        timeout=30,
        what="Alertmanager discovered",
    )


def test_the_gateway_never_serves_nginx_status(stack: LocalStack, gw: httpx.Client) -> None:
    # The status page answers on its own loopback listener (the exporter reads it) ...
    status = httpx.get(f"http://127.0.0.1:{stack.settings['NGINX_STATUS_PORT']}/stub_status")
    assert status.status_code == 200 and "Active connections" in status.text
    # ... and not on the public port, under any of the usual names.
    for path in ("/stub_status", "/nginx_status", "/status", "/metrics"):
        response = gw.get(path)
        assert response.status_code == 404, path
        assert "Active connections" not in response.text, path
