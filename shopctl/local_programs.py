"""The programs local mode runs under supervisord: the infrastructure, every service
instance, the gateway and Prometheus (shopctl/monitoring.py adds Alertmanager and the
exporters), each naming the build jobs whose results it runs (shopctl/launch.py starts it
once they are done)."""

from __future__ import annotations

import os
from pathlib import Path

from shopctl import dashboards
from shopctl.install import Binaries
from shopctl.monitoring import consul_telemetry_hcl, kafka_agent_option, monitoring_programs
from shopctl.readiness import EXPORTER_PORTS
from shopctl.supervisor import VENV_BIN, Program
from shopctl.topology import ROOT, Topology

# What watches the shop: it starts after the shop answers when its builds take longer.
MONITORING = {"prometheus", "alertmanager", "grafana", *EXPORTER_PORTS}


def runs_as_postgres() -> bool:
    # Postgres refuses to run as root, so a root user hands it to the `postgres` account.
    return os.geteuid() == 0


def local_programs(topology: Topology, run: Path, pg_dir: Path, bins: Binaries) -> list[Program]:
    s = topology.settings
    java_opts = (
        "-Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true "
        f"-Dlog4j2.configurationFile={ROOT / 'infra/kafka/log4j2.yaml'} "
        f"{kafka_agent_option(bins, s)}"
    )
    infra = [
        Program(
            "consul",
            # A single in-memory server agent (Consul's -dev mode) on loopback, with
            # DNS and gRPC off; restarting it forgets every registration, which the
            # instances notice and repair by registering again.
            f"{bins.consul} agent -dev -node shopstack -bind 127.0.0.1 -client 127.0.0.1 "
            f"-http-port {s['CONSUL_HTTP_PORT']} -server-port {s['CONSUL_SERVER_PORT']} "
            f"-serf-lan-port {s['CONSUL_SERF_LAN_PORT']} "
            f"-serf-wan-port {s['CONSUL_SERF_WAN_PORT']} "
            "-https-port -1 -dns-port -1 -grpc-port -1 -grpc-tls-port -1 -log-level warn "
            f"-hcl '{consul_telemetry_hcl()}'",
            run,
            5,
            "infra",
            stop_signal="INT",  # Consul's graceful leave
            builds=("consul",),
        ),
        Program(
            "postgres",
            f"{bins.postgres_bin / 'postgres'} -D {pg_dir / 'data'}",
            pg_dir,
            10,
            "infra",
            stop_signal="INT",
            user="postgres" if runs_as_postgres() else None,
        ),
        Program(
            "redis",
            f"{bins.redis_server} {run / 'redis/redis.conf'}",
            run / "redis",
            10,
            "infra",
        ),
        Program(
            "kafka",
            f"{bins.java} {java_opts} -cp {bins.kafka_libs}/* kafka.Kafka "
            f"{run / 'kafka/server.properties'}",
            run / "kafka",
            10,
            "infra",
        ),
    ]
    infra.append(
        Program(
            "toxiproxy",
            # Started before the services: their every connection passes through it.
            f"{bins.toxiproxy} -host 127.0.0.1 -port {s['TOXIPROXY_PORT']} "
            f"-config {run / 'toxiproxy/proxies.json'}",
            run / "toxiproxy",
            5,
            "infra",
            # One scheduler thread: every chunk it forwards passes through a chain of
            # goroutines, and handing them across threads nearly doubled its CPU per
            # round trip (measured: ~180 µs with two, ~100 µs with one).
            env={"GOMAXPROCS": "1"},
            builds=("toxiproxy",),
        )
    )
    infra.append(
        Program(
            "psp",
            f"{VENV_BIN / 'python'} -m uvicorn psp.app:app --host 127.0.0.1 "
            f"--port {s['PSP_PORT']} --log-level warning",
            run / "psp",
            15,
            "infra",
            env={"PSP_LEDGER": str(run / "psp" / "ledger.sqlite3")},
        )
    )
    services = [
        Program(
            instance.id,
            f"{VENV_BIN / 'python'} -m kit.serve",
            ROOT,
            50,
            "service",
            stop_wait=int(s.values.get("SHUTDOWN_GRACE_SECONDS", "20")) + 5,
            env=topology.instance_env(instance),
            # Each registers in Consul and reaches every dependency through Toxiproxy.
            builds=("consul", "toxiproxy"),
        )
        for instance in topology.instances()
    ]
    edge = [
        Program(
            "prometheus",
            f"{bins.prometheus} --config.file={run / 'prometheus/prometheus.yml'} "
            f"--storage.tsdb.path={run / 'prometheus/data'} "
            # The slowest burn-rate alert reads 3 days (infra/prometheus/rules/slo.yml).
            f"--storage.tsdb.retention.time=3d "
            f"--web.listen-address=127.0.0.1:{s['PROMETHEUS_PORT']}",
            run / "prometheus",
            90,
            "edge",
            # It reads its web UI's files per request: they appear when their build ends.
            builds=("prometheus",),
        ),
        Program(
            "gateway",
            # consul-template renders the upstreams and runs nginx as its child.
            f"{bins.consul_template} -config {run / 'nginx/consul-template.hcl'}",
            run / "nginx",
            90,
            "edge",
            stop_signal="QUIT",  # passed on to nginx: its graceful shutdown
            builds=("consul",),  # consul-template is built with Consul
        ),
    ]
    grafana = dashboards.grafana_server()
    if grafana:
        # Not run on the development machines (none has Grafana): when one is on PATH
        # it serves the dashboards on GRAFANA_PORT instead of the gateway's page.
        edge.append(
            Program(
                "grafana",
                f"{grafana} --homepath {dashboards.grafana_homepath(grafana)}",
                run / "grafana",
                95,
                "edge",
                env=dashboards.grafana_env(s, run),
            )
        )
    return infra + services + edge + monitoring_programs(bins, s, run)
