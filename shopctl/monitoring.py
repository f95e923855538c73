"""Local mode's monitoring programs: Alertmanager and one Prometheus exporter per part of
the stack (Postgres, Redis, the machine, nginx), each on loopback on its `.env` port.
Kafka's exporter is a java agent inside the broker (`kafka_agent_option`) and Consul
serves its own metrics, so neither is a program here.

Docker mode runs the same exporters at the same versions (docker-compose.yml); the
collector choices below are shared with it, and tests/unit/test_docker_mode.py checks
that the two agree."""

from __future__ import annotations

from pathlib import Path

from shopctl.install import Binaries
from shopctl.supervisor import Program
from shopctl.topology import ROOT, Topology

ALERTMANAGER_CONFIG = ROOT / "infra" / "alertmanager" / "alertmanager.yml"
JMX_EXPORTER_CONFIG = ROOT / "infra" / "kafka" / "jmx-exporter.yml"
RULES_DIR = ROOT / "infra" / "prometheus" / "rules"

# The machine's figures a dashboard reads (CPU, memory, load, disks, network, pressure).
# Collectors that need privileges (dmi, rapl, hwmon on some kernels), that cover hardware
# a test box lacks (bcache, btrfs, mdadm, nfs, zfs, ...) or that log an error on every
# scrape without it stay off.
NODE_EXPORTER_COLLECTORS = (
    "cpu",
    "diskstats",
    "filefd",
    "filesystem",
    "loadavg",
    "meminfo",
    "netdev",
    "pressure",
    "stat",
    "time",
    "uname",
    "vmstat",
)


def node_exporter_flags() -> list[str]:
    return ["--collector.disable-defaults"] + [
        f"--collector.{name}" for name in NODE_EXPORTER_COLLECTORS
    ]


def postgres_dsn(password: str, host: str, port: int) -> str:
    """One member's statistics. One connection to the `postgres` database is enough for
    every database: pg_stat_database has a row per database of the cluster."""
    return f"postgresql://postgres:{password}@{host}:{port}/postgres?sslmode=disable"


def kafka_agent_option(bins: Binaries, metrics_port: int) -> str:
    """A node's -javaagent: the JMX exporter serving its metrics on loopback."""
    return f"-javaagent:{bins.jmx_agent}=127.0.0.1:{metrics_port}:{JMX_EXPORTER_CONFIG}"


def consul_telemetry_hcl() -> str:
    """Consul keeps Prometheus-format metrics only when told how long to keep them; the
    hostname prefix is dropped so metric names are the same on every node."""
    return 'telemetry { prometheus_retention_time = "60s" disable_hostname = true }'


def monitoring_programs(bins: Binaries, topology: Topology, run: Path) -> list[Program]:
    s = topology.settings
    loopback = "127.0.0.1"
    return [
        Program(
            "alertmanager",
            f"{bins.alertmanager} --config.file={ALERTMANAGER_CONFIG} "
            f"--storage.path={run / 'alertmanager'} "
            f"--web.listen-address={loopback}:{s['ALERTMANAGER_PORT']} "
            # One Alertmanager: no gossip cluster, so no listener on 9094.
            "--cluster.listen-address= --log.level=warn",
            run / "alertmanager",
            90,
            "edge",
        ),
        *(
            Program(
                name,
                f"{bins.postgres_exporter} "
                f"--web.listen-address={loopback}:{port} --log.level=warn "
                # ~250 series of server settings nobody graphs; the statistics matter.
                "--disable-settings-metrics",
                run / "exporters",
                20,
                "infra",
                env={
                    "DATA_SOURCE_NAME": postgres_dsn(s["POSTGRES_PASSWORD"], loopback, member_port)
                },
            )
            for (name, _, port), member_port in zip(
                topology.postgres_exporters(),
                [m.port for m in topology.postgres_members()],
                strict=True,
            )
        ),
        Program(
            "redis-exporter",
            # No node of its own: Prometheus names each node (multi-target, /scrape).
            f"{bins.redis_exporter} -redis.addr= "
            f"-web.listen-address={loopback}:{s['REDIS_EXPORTER_PORT']}",
            run / "exporters",
            20,
            "infra",
        ),
        Program(
            "node-exporter",
            f"{bins.node_exporter} {' '.join(node_exporter_flags())} "
            f"--web.listen-address={loopback}:{s['NODE_EXPORTER_PORT']} --log.level=warn",
            run / "exporters",
            20,
            "infra",
        ),
        Program(
            "nginx-exporter",
            # The exporter gives up at start when stub_status does not answer; the gateway
            # starts last (after the instances), so it keeps trying for a while.
            f"{bins.nginx_exporter} "
            f"-nginx.scrape-uri=http://{loopback}:{s['NGINX_STATUS_PORT']}/stub_status "
            "-nginx.retries=90 -nginx.retry-interval=2s "
            f"-web.listen-address={loopback}:{s['NGINX_EXPORTER_PORT']}",
            run / "exporters",
            95,
            "edge",
            builds=("consul",),  # what it scrapes starts once consul-template is built
        ),
    ]
