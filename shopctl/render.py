"""Configuration files rendered from the topology: the gateway, Prometheus and the
per-service databases. Both modes render from the same templates."""

from __future__ import annotations

import getpass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from shopctl.topology import ROOT, SERVICES, Instance, Topology

INFRA = ROOT / "infra"

templates = Environment(
    loader=FileSystemLoader(INFRA),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def _upstreams(topology: Topology) -> dict[str, list[Instance]]:
    return {service: topology.instances(service) for service in SERVICES}


def nginx_conf(topology: Topology, run_dir: Path) -> str:
    local = topology.mode == "local"
    nginx_dir = run_dir / "nginx"
    return templates.get_template("nginx/nginx.conf.j2").render(
        upstreams=_upstreams(topology),
        listen=f"127.0.0.1:{topology.settings['GATEWAY_PORT']}" if local else "8080",
        # nginx drops worker privileges only when started as root; locally we keep the
        # invoking user so workers can write their temp files under the run folder.
        user=getpass.getuser() if local else None,
        foreground=True,
        pid_file=nginx_dir / "nginx.pid" if local else "/tmp/nginx.pid",
        temp_dir=nginx_dir / "tmp" if local else "/tmp",
        error_log=nginx_dir / "error.log" if local else "/dev/stderr",
        access_log=nginx_dir / "access.log" if local else "/dev/stdout",
    )


def prometheus_yml(topology: Topology) -> str:
    local = topology.mode == "local"
    port = topology.settings["PROMETHEUS_PORT"]
    return templates.get_template("prometheus/prometheus.yml.j2").render(
        upstreams=_upstreams(topology),
        self_address=f"127.0.0.1:{port}" if local else "localhost:9090",
    )


def databases_sql() -> str:
    return templates.get_template("postgres/databases.sql.j2").render(services=SERVICES)


def write_docker_configs(topology: Topology, out_dir: Path) -> list[Path]:
    """The files docker-compose.yml mounts, rendered for Docker mode."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        out_dir / "nginx.conf": nginx_conf(topology, out_dir),
        out_dir / "prometheus.yml": prometheus_yml(topology),
        out_dir / "databases.sql": databases_sql(),
    }
    for path, text in files.items():
        path.write_text(text)
    return list(files)
