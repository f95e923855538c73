"""Configuration files rendered from the topology: the gateway, Prometheus and the
per-service databases. Both modes render from the same templates."""

from __future__ import annotations

import getpass
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from shopctl.topology import ROOT, SERVICES, Topology

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


def nginx_conf(topology: Topology, run_dir: Path) -> str:
    local = topology.mode == "local"
    nginx_dir = run_dir / "nginx"
    return templates.get_template("nginx/nginx.conf.j2").render(
        upstreams_file=nginx_dir / "upstreams.conf" if local else DOCKER_GATEWAY["upstreams"],
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


def prometheus_yml(topology: Topology) -> str:
    local = topology.mode == "local"
    port = topology.settings["PROMETHEUS_PORT"]
    return templates.get_template("prometheus/prometheus.yml.j2").render(
        consul_address=topology.consul_address(),
        services=SERVICES,
        self_address=f"127.0.0.1:{port}" if local else "localhost:9090",
    )


def databases_sql() -> str:
    return templates.get_template("postgres/databases.sql.j2").render(services=SERVICES)


def write_docker_configs(topology: Topology, out_dir: Path) -> list[Path]:
    """The files docker-compose.yml mounts, rendered for Docker mode."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        out_dir / "nginx.conf": nginx_conf(topology, out_dir),
        out_dir / "upstreams.ctmpl": upstreams_template(),
        out_dir / "consul-template.hcl": consul_template_hcl(topology, out_dir),
        out_dir / "prometheus.yml": prometheus_yml(topology),
        out_dir / "databases.sql": databases_sql(),
    }
    for path, text in files.items():
        path.write_text(text)
    return list(files)
