"""Docker mode: the same stack through `docker compose`, with the gateway, Prometheus
and database configuration rendered from the same topology as local mode."""

from __future__ import annotations

import os
import subprocess

from shopctl.render import write_docker_configs
from shopctl.topology import ROOT, Topology

DOCKER_RUN = ROOT / ".run" / "docker"


def engine_available() -> bool:
    try:
        probe = subprocess.run(["docker", "info"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def compose(*args: str) -> int:
    return subprocess.run(["docker", "compose", *args], cwd=ROOT).returncode


def up() -> int:
    write_docker_configs(Topology.load("docker"), DOCKER_RUN)
    return compose("up", "--detach", "--build", "--wait")


def down() -> int:
    return compose("down")


def status() -> int:
    return compose("ps", "--format", "table {{.Name}}\t{{.State}}\t{{.Health}}")


def logs(service: str | None) -> int:
    os.chdir(ROOT)
    return compose("logs", "--follow", *([service] if service else []))
