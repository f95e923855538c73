"""Configuration files rendered from the topology: the gateway, Prometheus and the
per-service databases. Both modes render from the same templates."""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from shopctl.topology import (
    CONSUL_SERVERS,
    ROOT,
    SERVICES,
    PostgresMember,
    RedisNode,
    Topology,
)
from shopctl.toxiproxy import proxies_json

INFRA = ROOT / "infra"

templates = Environment(
    loader=FileSystemLoader(INFRA),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


# Where the gateway's files sit inside Docker mode's gateway container.
DOCKER_GATEWAY = {
    "nginx_conf": "/etc/nginx/nginx.conf",
    "upstreams": "/etc/nginx/upstreams.conf",
    "template": "/etc/consul-template/upstreams.ctmpl",
}


def nginx_conf(topology: Topology, run_dir: Path, *, dashboards_page: bool = False) -> str:
    """The gateway; with `dashboards_page` (local mode without Grafana) also the server of
    the page that renders the dashboards, on GRAFANA_PORT."""
    local = topology.mode == "local"
    nginx_dir = run_dir / "nginx"
    return templates.get_template("nginx/nginx.conf.j2").render(
        upstreams_file=nginx_dir / "upstreams.conf" if local else DOCKER_GATEWAY["upstreams"],
        listen=f"127.0.0.1:{topology.settings['GATEWAY_PORT']}" if local else "8080",
        # Docker mode's exporter shares the gateway's network namespace, so loopback there too.
        status_listen=f"127.0.0.1:{topology.settings['NGINX_STATUS_PORT']}"
        if local
        else "127.0.0.1:8081",
        # nginx drops worker privileges only when started as root; locally we keep the
        # invoking user so workers can write their temp files under the run folder.
        user=getpass.getuser() if local else None,
        foreground=True,
        pid_file=nginx_dir / "nginx.pid" if local else "/tmp/nginx.pid",
        temp_dir=nginx_dir / "tmp" if local else "/tmp",
        error_log=nginx_dir / "error.log" if local else "/dev/stderr",
        access_log=nginx_dir / "access.log" if local else "/dev/stdout",
        dashboards_page=_dashboards_page(topology) if dashboards_page else None,
    )


def _dashboards_page(topology: Topology) -> dict[str, str]:
    from shopctl import dashboards

    return {
        "listen": f"127.0.0.1:{topology.settings['GRAFANA_PORT']}",
        "page_dir": str(dashboards.PAGE),
        "uplot_dir": str(dashboards.NPM_CACHE / "node_modules" / "uplot" / "dist"),
        "dashboards_dir": str(dashboards.DASHBOARDS),
        "prometheus": f"127.0.0.1:{topology.settings['PROMETHEUS_PORT']}",
    }


def upstreams_template() -> str:
    return templates.get_template("nginx/upstreams.ctmpl.j2").render(services=SERVICES)


def consul_template_hcl(topology: Topology, run_dir: Path, nginx: Path | None = None) -> str:
    """consul-template's configuration: the gateway's upstreams, and nginx as its child."""
    if topology.mode == "local":
        nginx_dir = run_dir / "nginx"
        files = {
            "template_file": nginx_dir / "upstreams.ctmpl",
            "upstreams_file": nginx_dir / "upstreams.conf",
        }
        command = [str(nginx or "nginx"), "-c", str(nginx_dir / "nginx.conf"), "-p", str(nginx_dir)]
        command += ["-e", str(nginx_dir / "error.log")]
    else:
        files = {
            "template_file": Path(DOCKER_GATEWAY["template"]),
            "upstreams_file": Path(DOCKER_GATEWAY["upstreams"]),
        }
        command = ["nginx", "-c", DOCKER_GATEWAY["nginx_conf"]]
    return templates.get_template("nginx/consul-template.hcl.j2").render(
        consul_address=topology.consul_address(), nginx_command=command, **files
    )


# Docker mode's rules folder, mounted from infra/prometheus/rules.
DOCKER_RULES_DIR = "/etc/prometheus/rules"


@dataclass(frozen=True)
class ScrapeJob:
    name: str
    targets: list[tuple[str, str]]  # (address, the `instance` label it gets)
    metrics_path: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    # A multi-target exporter: each target is the thing to watch, passed to the
    # exporter as `?target=`, and the scrape goes to this address.
    exporter: str | None = None


def scrape_jobs(topology: Topology) -> list[ScrapeJob]:
    """The static scrape jobs besides the services and Prometheus itself. Locally each
    exporter is on loopback on its `.env` port; in Docker mode on its container's port."""
    s = topology.settings
    local = topology.mode == "local"

    def at(port_var: str, host: str, port: int) -> str:
        return f"127.0.0.1:{s[port_var]}" if local else f"{host}:{port}"

    # The servers, in both modes (local mode's agent only forwards to them).
    consul = (
        [(f"127.0.0.1:{c.http_port}", c.name) for c in topology.consul_servers()]
        if local
        else [(f"consul-{n}:8500", f"consul-{n}") for n in range(1, CONSUL_SERVERS + 1)]
    )
    return [
        ScrapeJob(
            "alertmanager", [(at("ALERTMANAGER_PORT", "alertmanager", 9093), "alertmanager")]
        ),
        # An exporter per member, labelled with the member it watches.
        ScrapeJob(
            "postgres",
            [
                (f"127.0.0.1:{port}" if local else f"{name}:{port}", member)
                for name, member, port in topology.postgres_exporters()
            ],
        ),
        # One exporter, asked for each node in turn, labelled with the node.
        ScrapeJob(
            "redis",
            [(f"redis://{n.host}:{n.port}", n.name) for n in topology.redis_nodes()],
            "/scrape",
            exporter=at("REDIS_EXPORTER_PORT", "redis-exporter", 9121),
        ),
        ScrapeJob(
            "kafka",
            [(f"{n.host}:{n.metrics_port}", n.name) for n in topology.kafka_nodes()],
        ),
        # Docker mode's nginx exporter lives in the gateway's network namespace.
        ScrapeJob("nginx", [(at("NGINX_EXPORTER_PORT", "gateway", 9113), "gateway")]),
        ScrapeJob("consul", consul, "/v1/agent/metrics", {"format": "prometheus"}),
        ScrapeJob("node", [(at("NODE_EXPORTER_PORT", "node-exporter", 9100), "node")]),
    ]


def prometheus_yml(topology: Topology) -> str:
    local = topology.mode == "local"
    s = topology.settings
    return templates.get_template("prometheus/prometheus.yml.j2").render(
        consul_address=topology.consul_address(),
        services=SERVICES,
        self_address=f"127.0.0.1:{s['PROMETHEUS_PORT']}" if local else "localhost:9090",
        alertmanager_address=f"127.0.0.1:{s['ALERTMANAGER_PORT']}"
        if local
        else "alertmanager:9093",
        rules_dir=INFRA / "prometheus" / "rules" if local else DOCKER_RULES_DIR,
        jobs=scrape_jobs(topology),
    )


def databases_sql() -> str:
    return templates.get_template("postgres/databases.sql.j2").render(services=SERVICES)


# Patroni's cluster name, and the Consul service it registers (tagged primary or replica).
PATRONI_SCOPE = "postgres"
# Inside Docker mode's Postgres containers (infra/postgres/Dockerfile).
DOCKER_PATRONI_HOME = Path("/var/lib/postgresql/shopstack")


def patroni_yml(
    topology: Topology, member: PostgresMember, home: Path, bin_dir: Path | None = None
) -> str:
    """A member's Patroni configuration; `home` holds its data (and locally its socket)."""
    local = topology.mode == "local"
    return templates.get_template("postgres/patroni.yml.j2").render(
        scope=PATRONI_SCOPE,
        member=member,
        home=home,
        bin_dir=bin_dir,
        socket_dir=home / "socket" if local else "/var/run/postgresql",
        listen_host="127.0.0.1" if local else "0.0.0.0",
        consul=topology.consul_address(),
        password=topology.settings["POSTGRES_PASSWORD"],
        network="127.0.0.1/32" if local else "0.0.0.0/0",
    )


def redis_conf(topology: Topology, node: RedisNode, data_dir: Path) -> str:
    local = topology.mode == "local"
    return templates.get_template("redis/redis.conf.j2").render(
        bind="127.0.0.1" if local else "0.0.0.0",
        port=node.port,
        bus_port=node.bus_port,
        data_dir=data_dir,
        announce_ip=node.host if local else None,
        announce_host=None if local else node.host,
    )


def write_docker_configs(topology: Topology, out_dir: Path) -> list[Path]:
    """The files docker-compose.yml mounts, rendered for Docker mode."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        out_dir / "nginx.conf": nginx_conf(topology, out_dir),
        out_dir / "upstreams.ctmpl": upstreams_template(),
        out_dir / "consul-template.hcl": consul_template_hcl(topology, out_dir),
        out_dir / "prometheus.yml": prometheus_yml(topology),
        out_dir / "databases.sql": databases_sql(),
        out_dir / "toxiproxy.json": proxies_json(topology),
        **{
            out_dir / node.name / "redis.conf": redis_conf(topology, node, Path("/data"))
            for node in topology.redis_nodes()
        },
        **{
            out_dir / member.name / "patroni.yml": patroni_yml(
                topology, member, DOCKER_PATRONI_HOME
            )
            for member in topology.postgres_members()
        },
    }
    for path, text in files.items():
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    return list(files)
