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
from shopctl.patroni import member_home
from shopctl.readiness import EXPORTER_PORTS
from shopctl.supervisor import VENV_BIN, Program
from shopctl.topology import POSTGRES_MEMBERS, ROOT, Topology

# What watches the shop: it starts after the shop answers when its builds take longer.
MONITORING = {"prometheus", "alertmanager", "grafana", *EXPORTER_PORTS}
MONITORING |= {f"postgres-exporter-{n}" for n in range(1, POSTGRES_MEMBERS + 1)}


def runs_as_postgres() -> bool:
    # Postgres refuses to run as root, so a root user hands it to the `postgres` account.
    return os.geteuid() == 0


def consul_programs(topology: Topology, run: Path, bins: Binaries) -> list[Program]:
    """Three Consul servers, a Raft cluster that elects a leader and survives losing any
    one, and the agent (node `shopstack`) everything else talks to: the services register
    with it and it forwards to whichever server leads, so a server's death costs them
    nothing. Each keeps its state under .run/consul/<name>."""
    s = topology.settings
    servers = topology.consul_servers()
    # Started together, a server's first join finds its peers not listening yet; the
    # default wait before the next try (30 s) was most of the first `make up`.
    joins = " ".join(f"-retry-join 127.0.0.1:{c.serf_lan_port}" for c in servers)
    joins += " -retry-interval 1s"
    # Several agents on one host would derive the same node id from it.
    common = (
        "-bind 127.0.0.1 -client 127.0.0.1 -disable-host-node-id -serf-wan-port -1 "
        "-https-port -1 -dns-port -1 -grpc-port -1 -grpc-tls-port -1 -log-level warn "
        f"-hcl '{consul_telemetry_hcl()}' {joins}"
    )

    def program(name: str, node: str, flags: str, priority: int) -> Program:
        return Program(
            name,
            f"{bins.consul} agent -node {node} -data-dir {run / 'consul' / name} {flags} {common}",
            run / "consul",
            priority,
            "infra",
            # Consul's graceful leave; a server keeps its Raft membership across it.
            stop_signal="INT",
            builds=("consul",),
        )

    return [
        *(
            program(
                c.name,
                c.name,
                f"-server -bootstrap-expect {len(servers)} -ui "
                f"-http-port {c.http_port} -server-port {c.rpc_port} "
                f"-serf-lan-port {c.serf_lan_port} "
                # Raft's timing at 2x production's: a lost leader is replaced within a few
                # seconds. At 1x (production's) the servers lost their leader now and then
                # while make test loaded the 2 cores; at 3x writes came back 6-8 s after
                # the leader died (with Patroni's sessions on it), near the 10 s floor;
                # the default, 5x, waits longer still.
                "-hcl 'performance { raft_multiplier = 2 }'",
                4,
            )
            for c in servers
        ),
        program(
            "consul",
            "shopstack",
            f"-http-port {s['CONSUL_HTTP_PORT']} -serf-lan-port {s['CONSUL_SERF_LAN_PORT']}",
            5,
        ),
    ]


def kafka_programs(topology: Topology, run: Path, bins: Binaries) -> list[Program]:
    """One program per Kafka node, each broker and KRaft controller, with its own
    server.properties and data under .run/kafka/<name>, and its JMX exporter agent."""
    java = (
        # The heap as Docker mode's nodes have it: three of them on a small machine. Only
        # the quick JIT (C1): three JVMs compiling with C2 at once took the stack's start
        # from 27 s to 39-58 s on 2 cores, and cost no less CPU per order in the first
        # minutes under load (Kafka 16 ms per order with C1, 17 with C2, at 20 orders/s).
        "-Xms192m -Xmx320m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:TieredStopAtLevel=1 "
        f"-Djava.awt.headless=true -Dlog4j2.configurationFile={ROOT / 'infra/kafka/log4j2.yaml'}"
    )
    return [
        Program(
            node.name,
            f"{bins.java} {java} {kafka_agent_option(bins, node.metrics_port)} "
            f"-cp {bins.kafka_libs}/* kafka.Kafka {run / 'kafka' / node.name}/server.properties",
            run / "kafka" / node.name,
            10,
            "infra",
        )
        for node in topology.kafka_nodes()
    ]


def postgres_programs(topology: Topology, pg_dir: Path, bins: Binaries) -> list[Program]:
    """A Patroni per Postgres member (it starts, promotes and demotes the server). It
    needs Consul's agent to elect a primary, hence the build."""
    return [
        Program(
            member.name,
            f"{bins.patroni} {member_home(pg_dir, member) / 'patroni.yml'}",
            member_home(pg_dir, member),
            10,
            "infra",
            # Patroni stops Postgres (a fast shutdown) before it exits.
            stop_wait=60,
            user="postgres" if runs_as_postgres() else None,
            builds=("consul",),
        )
        for member in topology.postgres_members()
    ]


def local_programs(topology: Topology, run: Path, pg_dir: Path, bins: Binaries) -> list[Program]:
    s = topology.settings
    infra = [
        *consul_programs(topology, run, bins),
        *postgres_programs(topology, pg_dir, bins),
        *(
            Program(
                node.name,
                f"{bins.redis_server} {run / 'redis' / node.name / 'redis.conf'}",
                run / "redis" / node.name,
                10,
                "infra",
            )
            for node in topology.redis_nodes()
        ),
        *kafka_programs(topology, run, bins),
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
    return infra + services + edge + monitoring_programs(bins, topology, run)
