"""Local mode: the whole stack as supervised processes on this machine, with the same
real parts as Docker mode (Postgres, Redis, Apache Kafka, nginx, Prometheus) and every
file it writes under the git-ignored run folder `.run/`."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import uuid
from functools import cached_property
from pathlib import Path

from shopctl import dashboards, render
from shopctl.install import Binaries, ensure_all
from shopctl.monitoring import consul_telemetry_hcl, kafka_agent_option, monitoring_programs
from shopctl.ports import check_ports_distinct, check_ports_free, wait_ports_closed
from shopctl.progress import StackError, say, step
from shopctl.readiness import wait_until
from shopctl.supervisor import VENV_BIN, Program, Supervisor, render_config
from shopctl.topology import KAFKA_TOPICS, ROOT, Topology
from shopctl.toxiproxy import proxies_json

RUN = ROOT / ".run"


def new_cluster_id() -> str:
    """A KRaft cluster id as Kafka's own `random-uuid` makes one: urlsafe base64 of a
    random UUID, never starting with "-", which the storage tool's parser would take for
    an option (one fresh stack in 64 failed to format before)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _runs_as_postgres() -> bool:
    # Postgres refuses to run as root, so a root user hands it to the `postgres` account.
    return os.geteuid() == 0


class LocalStack:
    def __init__(self, topology: Topology | None = None, run: Path = RUN) -> None:
        self.topology = topology or Topology.load("local")
        self.settings = self.topology.settings
        self.run = run
        self.supervisor = Supervisor(run)

    # -- layout ---------------------------------------------------------------

    @cached_property
    def pg_dir(self) -> Path:
        """Postgres's folder (data, config, socket). It lives in the run folder when the
        `postgres` account can reach it; a checkout under a private folder (mode 0700, as
        `mktemp -d` makes) gets one under /var/lib/shopstack instead, linked from the run
        folder, because Postgres must read all of it as `postgres`."""
        link = self.run / "postgres"
        if link.exists() or link.is_symlink() or not _runs_as_postgres():
            return link.resolve()
        self.run.mkdir(parents=True, exist_ok=True)
        probe = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(self.run)])
        if probe.returncode == 0:
            return link
        digest = hashlib.sha256(str(self.run).encode()).hexdigest()[:12]
        outside = Path("/var/lib/shopstack") / digest / "postgres"
        outside.mkdir(parents=True, exist_ok=True)
        shutil.chown(outside, "postgres", "postgres")
        link.symlink_to(outside)
        say(f"Postgres's folder is {outside} (the checkout is private to root)")
        return outside

    # -- programs -------------------------------------------------------------

    def programs(self, bins: Binaries) -> list[Program]:
        run, s = self.run, self.settings
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
            ),
            Program(
                "postgres",
                f"{bins.postgres_bin / 'postgres'} -D {self.pg_dir / 'data'}",
                self.pg_dir,
                10,
                "infra",
                stop_signal="INT",
                user="postgres" if _runs_as_postgres() else None,
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
                env=self.topology.instance_env(instance),
            )
            for instance in self.topology.instances()
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
            ),
            Program(
                "gateway",
                # consul-template renders the upstreams and runs nginx as its child.
                f"{bins.consul_template} -config {run / 'nginx/consul-template.hcl'}",
                run / "nginx",
                90,
                "edge",
                stop_signal="QUIT",  # passed on to nginx: its graceful shutdown
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

    # -- preparing the run folder --------------------------------------------

    def _write(self, path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def _render_configs(self, programs: list[Program], bins: Binaries) -> None:
        run, s, t = self.run, self.settings, render.templates
        (run / "logs").mkdir(parents=True, exist_ok=True)
        folders = ("redis/data", "kafka/data", "prometheus/data", "nginx/tmp", "psp")
        for folder in (*folders, "alertmanager", "exporters"):
            (run / folder).mkdir(parents=True, exist_ok=True)
        page = not any(p.name == "grafana" for p in programs)
        if not page:
            (run / "grafana").mkdir(exist_ok=True)
        self._write(
            run / "nginx/nginx.conf",
            render.nginx_conf(self.topology, run, dashboards_page=page),
        )
        self._write(run / "nginx/upstreams.ctmpl", render.upstreams_template())
        self._write(
            run / "nginx/consul-template.hcl",
            render.consul_template_hcl(self.topology, run, nginx=bins.nginx),
        )
        self._write(run / "prometheus/prometheus.yml", render.prometheus_yml(self.topology))
        # Prometheus, built without embedded assets, serves its UI from ./web/ui/static
        # when its working directory is named "prometheus".
        ui_link = run / "prometheus/web/ui/static"
        ui_link.parent.mkdir(parents=True, exist_ok=True)
        if ui_link.is_symlink() and ui_link.resolve() != bins.prometheus_ui.resolve():
            ui_link.unlink()
        if not ui_link.is_symlink():
            ui_link.symlink_to(bins.prometheus_ui)
        self._write(
            run / "redis/redis.conf",
            t.get_template("redis/redis.conf.j2").render(
                port=s["REDIS_PORT"], data_dir=run / "redis/data"
            ),
        )
        self._write(
            run / "kafka/server.properties",
            t.get_template("kafka/server.properties.j2").render(
                port=s["KAFKA_PORT"],
                controller_port=s["KAFKA_CONTROLLER_PORT"],
                proxied_port=s["KAFKA_PROXIED_PORT"],
                proxy_port=s["KAFKA_PROXY_PORT"],
                data_dir=run / "kafka/data",
            ),
        )
        self._write(run / "toxiproxy/proxies.json", proxies_json(self.topology))
        self._write(run / "supervisord.conf", render_config(run, programs))

    def _init_postgres(self, bins: Binaries) -> None:
        self.pg_dir.mkdir(parents=True, exist_ok=True)
        if _runs_as_postgres():
            shutil.chown(self.pg_dir, "postgres", "postgres")
        socket_dir = self.pg_dir / "socket"
        socket_dir.mkdir(exist_ok=True)
        data = self.pg_dir / "data"
        conf = render.templates.get_template("postgres/postgresql.conf.j2").render(
            port=self.settings["POSTGRES_PORT"], socket_dir=socket_dir
        )
        self._write(self.pg_dir / "shopstack.conf", conf)
        as_pg = ["runuser", "-u", "postgres", "--"] if _runs_as_postgres() else []
        if _runs_as_postgres():
            shutil.chown(socket_dir, "postgres", "postgres")
            shutil.chown(self.pg_dir / "shopstack.conf", "postgres", "postgres")
        if (data / "PG_VERSION").exists():
            return
        with step("Creating the Postgres cluster"):
            # initdb reads the superuser password from a file only its own user can read.
            pwfile = self.pg_dir / "initdb-password"
            pwfile.write_text(self.settings["POSTGRES_PASSWORD"] + "\n")
            pwfile.chmod(0o600)
            if _runs_as_postgres():
                shutil.chown(pwfile, "postgres", "postgres")
            subprocess.run(
                [
                    *as_pg,
                    str(bins.postgres_bin / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    f"--pwfile={pwfile}",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                cwd=self.pg_dir,  # the postgres account may not enter the caller's folder
            )
            pwfile.unlink()
            with (data / "postgresql.conf").open("a") as f:
                f.write(f"\ninclude '{self.pg_dir / 'shopstack.conf'}'\n")

    def _format_kafka(self, bins: Binaries) -> None:
        data = self.run / "kafka/data"
        if (data / "meta.properties").exists():
            return
        with step("Formatting Kafka's KRaft storage"):
            cluster_id = new_cluster_id()
            subprocess.run(
                [
                    str(bins.java),
                    "-Xmx256m",
                    f"-Dlog4j2.configurationFile={ROOT / 'infra/kafka/log4j2.yaml'}",
                    "-cp",
                    f"{bins.kafka_libs}/*",
                    "kafka.tools.StorageTool",
                    "format",
                    "--cluster-id",
                    cluster_id,
                    "-c",
                    str(self.run / "kafka/server.properties"),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )

    # -- provisioning once the infrastructure answers -------------------------

    def psql(self, bins: Binaries, sql: str) -> None:
        subprocess.run(
            [
                str(bins.postgres_bin / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                self.settings["POSTGRES_PORT"],
                "-U",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-f",
                "-",
            ],
            input=sql,
            text=True,
            check=True,
            env={**os.environ, "PGPASSWORD": self.settings["POSTGRES_PASSWORD"]},
        )

    def _provision(self, bins: Binaries) -> None:
        from kit.kafka import ensure_topics

        with step("Waiting for Consul, Postgres, Redis and Kafka"):
            wait_until(self.infra_ready, timeout=120, what="Consul, Postgres, Redis and Kafka")
        with step("Creating service databases and Kafka topics"):
            self.psql(bins, render.databases_sql())
            created = ensure_topics(f"127.0.0.1:{self.settings['KAFKA_PORT']}", KAFKA_TOPICS)
            if created:
                say(f"created topics: {', '.join(created)}")

    # -- the commands ---------------------------------------------------------

    def up(self) -> None:
        bins = ensure_all(self.settings["KAFKA_VERSION"], self.settings["JMX_EXPORTER_VERSION"])
        programs = self.programs(bins)
        already = self.supervisor.running()
        # A running stack holds its own ports; only a fresh start can probe them.
        check_ports_distinct(self.topology)
        if not already:
            check_ports_free(self.topology)
        with step("Preparing the run folder"):
            self._render_configs(programs, bins)
            self._init_postgres(bins)
            self._format_kafka(bins)
        with step("Starting processes under supervisord"):
            if already:
                self.supervisor.reload()
            else:
                self.supervisor.start_daemon()
        self._provision(bins)
        with step("Waiting for every instance, the gateway, Prometheus and Alertmanager"):
            self.wait_ready(timeout=180)

    def clean(self) -> None:
        """Stop the stack and delete its data (a relocated Postgres folder included)."""
        self.down()
        link = self.run / "postgres"
        if link.is_symlink():
            shutil.rmtree(link.resolve(), ignore_errors=True)
        shutil.rmtree(self.run, ignore_errors=True)
        say(f"Deleted {self.run}")

    def down(self) -> None:
        if not self.supervisor.running():
            say("The local stack is not running.")
            return
        with step("Stopping every process"):
            self.supervisor.shutdown()
            wait_ports_closed(self.topology, timeout=15)

    # -- readiness ------------------------------------------------------------

    def wait_ready(self, timeout: float = 60) -> None:
        """Until every process answers and the gateway routes to every instance."""
        wait_until(self.all_ready, timeout=timeout, what="the whole stack")

    def _raise_if_fatal(self) -> None:
        fatal = [p["name"] for p in self.supervisor.processes() if p["statename"] == "FATAL"]
        if fatal:
            raise StackError(
                f"gave up restarting {', '.join(fatal)}; see .run/logs/<name>.log "
                "(a port taken by another program is the usual cause)"
            )

    def infra_ready(self) -> dict[str, bool]:
        from shopctl.readiness import infra_checks

        return infra_checks(self.settings)

    def all_ready(self) -> dict[str, bool]:
        from shopctl.readiness import edge_checks, instance_checks

        self._raise_if_fatal()
        return {
            **self.infra_ready(),
            **instance_checks(self.topology, upstreams=self.run / "nginx" / "upstreams.conf"),
            **edge_checks(self.settings),
        }
