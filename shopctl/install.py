"""What local mode needs on the machine, installed only when missing: Debian packages
for Postgres, Redis, nginx, Alertmanager and the Prometheus exporters, Patroni from PyPI,
Apache Kafka's jars and the JMX exporter agent from Maven Central, and Consul,
consul-template, Prometheus, promtool and Toxiproxy built from their Go modules (as
background jobs: shopctl/builds.py). Every step is idempotent and quick when its result
is already there."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from shopctl.builds import Build
from shopctl.consul_build import consul_binaries, consul_job
from shopctl.dashboards import ensure_page_packages, grafana_server
from shopctl.patroni import ensure_patroni
from shopctl.progress import StackError, step
from shopctl.prometheus_build import BINARY as PROMETHEUS_BINARY
from shopctl.prometheus_build import PROMTOOL, prometheus_job
from shopctl.prometheus_build import download_sources as download_prometheus_sources
from shopctl.prometheus_build import module_dir as prometheus_module_dir
from shopctl.prometheus_ui import ui_dir, ui_job
from shopctl.topology import ROOT
from shopctl.toxiproxy import BINARY as TOXIPROXY_BINARY
from shopctl.toxiproxy import toxiproxy_job

CACHE = ROOT / ".cache"

# Debian package -> a file it installs that proves it is there.
DEBIAN_PACKAGES = {
    "postgresql": "/usr/lib/postgresql",
    "redis-server": "/usr/bin/redis-server",
    "nginx": "/usr/sbin/nginx",
    "openjdk-17-jre-headless": "/usr/bin/java",
    "maven": "/usr/bin/mvn",
    # Patroni's virtualenv (shopctl/patroni.py) is made with Debian's Python.
    "python3-venv": "/usr/lib/python3.11/ensurepip",
    # Bookworm's builds are the versions Docker mode's images pin (see .env).
    "prometheus-alertmanager": "/usr/bin/prometheus-alertmanager",
    "prometheus-postgres-exporter": "/usr/bin/prometheus-postgres-exporter",
    "prometheus-redis-exporter": "/usr/bin/prometheus-redis-exporter",
    "prometheus-node-exporter": "/usr/bin/prometheus-node-exporter",
    "prometheus-nginx-exporter": "/usr/bin/prometheus-nginx-exporter",
}


@dataclass(frozen=True)
class Binaries:
    postgres_bin: Path  # the folder with postgres, initdb, pg_ctl, psql
    redis_server: Path
    nginx: Path
    prometheus: Path
    prometheus_ui: Path  # the web UI's static files, built with npm
    java: Path
    kafka_libs: Path
    consul: Path
    consul_template: Path
    alertmanager: Path
    postgres_exporter: Path
    redis_exporter: Path
    node_exporter: Path
    nginx_exporter: Path
    jmx_agent: Path  # the JMX exporter java agent jar, attached to the Kafka broker
    promtool: Path
    toxiproxy: Path
    patroni: Path  # runs each Postgres server (shopctl/patroni.py)


def _root_prefix() -> list[str]:
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo"):
        return ["sudo"]
    raise StackError("installing Debian packages needs root or sudo")


def ensure_debian_packages(packages: dict[str, str] = DEBIAN_PACKAGES) -> None:
    """Install those of `packages` (name -> a file it installs) that are missing."""
    missing = [pkg for pkg, path in packages.items() if not Path(path).exists()]
    if not missing:
        return
    with step(f"Installing Debian packages: {' '.join(missing)}"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        apt = [*_root_prefix(), "apt-get"]
        # Keep the packages' own system services from starting: local mode runs its own
        # copies on its own ports under supervisord.
        policy = Path("/usr/sbin/policy-rc.d")
        added_policy = False
        if os.geteuid() == 0 and not policy.exists():
            policy.write_text("#!/bin/sh\nexit 101\n")
            policy.chmod(0o755)
            added_policy = True
        try:
            subprocess.run([*apt, "update", "-qq"], check=True, env=env)
            subprocess.run(
                [*apt, "install", "-y", "-qq", "--no-install-recommends", *missing],
                check=True,
                env=env,
            )
        finally:
            if added_policy:
                policy.unlink()


def postgres_bin_dir() -> Path:
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name),
    )
    if not versions:
        raise StackError("no PostgreSQL server found under /usr/lib/postgresql")
    return versions[-1].parent


def _maven(*goal: str) -> None:
    """Run a Maven goal over infra/kafka/pom.xml with the project's own local repository."""
    subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(ROOT / "infra" / "kafka" / "pom.xml"),
            f"-Dmaven.repo.local={CACHE / 'm2'}",
            *goal,
        ],
        check=True,
    )


def ensure_kafka_jars(version: str) -> Path:
    libs = CACHE / "kafka" / f"libs-{version}"
    done = libs / ".complete"
    if done.exists():
        return libs
    with step(f"Resolving Apache Kafka {version} jars from Maven Central"):
        _maven(
            f"-Dkafka.version={version}",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={libs}",
            "-DincludeScope=runtime",
        )
        done.touch()
    return libs


def ensure_jmx_agent(version: str) -> Path:
    """The Prometheus JMX exporter's java agent jar, kept out of the broker's class path
    (it bundles its own Prometheus client) and loaded with -javaagent only."""
    jar = CACHE / "kafka" / f"jmx_prometheus_javaagent-{version}.jar"
    if jar.exists():
        return jar
    with step(f"Resolving the JMX exporter agent {version} from Maven Central"):
        _maven(
            "dependency:copy",
            f"-Dartifact=io.prometheus.jmx:jmx_prometheus_javaagent:{version}",
            f"-DoutputDirectory={jar.parent}",
        )
    return jar


def local_builds() -> list[Build]:
    """What local mode builds from source, as jobs not yet started: the shop's (Consul with
    consul-template, Toxiproxy) and monitoring's (Prometheus with promtool, its web UI).
    Each one is needed only while its results are missing or older than their sources."""
    return [
        consul_job(),
        toxiproxy_job(),
        prometheus_job(),
        ui_job(prometheus_module_dir(), fetch_sources=download_prometheus_sources),
    ]


def ensure_all(kafka_version: str, jmx_exporter_version: str, patroni_version: str) -> Binaries:
    """Every program local mode runs: installed now when missing (packages, jars), or where
    the jobs of `local_builds` leave them."""
    ensure_debian_packages()
    consul, consul_template = consul_binaries()
    binaries = Binaries(
        postgres_bin=postgres_bin_dir(),
        redis_server=Path("/usr/bin/redis-server"),
        nginx=Path("/usr/sbin/nginx"),
        prometheus=PROMETHEUS_BINARY,
        prometheus_ui=ui_dir(prometheus_module_dir()) / "static",
        java=Path(shutil.which("java") or "/usr/bin/java"),
        kafka_libs=ensure_kafka_jars(kafka_version),
        consul=consul,
        consul_template=consul_template,
        alertmanager=Path("/usr/bin/prometheus-alertmanager"),
        postgres_exporter=Path("/usr/bin/prometheus-postgres-exporter"),
        redis_exporter=Path("/usr/bin/prometheus-redis-exporter"),
        node_exporter=Path("/usr/bin/prometheus-node-exporter"),
        nginx_exporter=Path("/usr/bin/prometheus-nginx-exporter"),
        jmx_agent=ensure_jmx_agent(jmx_exporter_version),
        promtool=PROMTOOL,
        toxiproxy=TOXIPROXY_BINARY,
        patroni=ensure_patroni(patroni_version),
    )
    if not grafana_server():
        ensure_page_packages()
    return binaries
