"""Local mode: the whole stack as supervised processes on this machine, with the same
real parts as Docker mode (Postgres, Redis, Apache Kafka, nginx, Prometheus) and every
file it writes under the git-ignored run folder `.run/`."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

from shopctl import redis_cluster, render
from shopctl.builds import BUILD_LOGS, BuildJobs
from shopctl.install import Binaries, ensure_all, local_builds
from shopctl.launch import HeldBack, Launcher
from shopctl.local_programs import MONITORING, local_programs, runs_as_postgres
from shopctl.patroni import member_home, postmaster_pid, signal_server
from shopctl.ports import check_ports_distinct, check_ports_free, wait_ports_closed
from shopctl.progress import StackError, say, step
from shopctl.readiness import wait_until
from shopctl.supervisor import Program, Supervisor, render_config
from shopctl.topology import KAFKA_MIN_INSYNC, KAFKA_TOPICS, ROOT, Topology
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


def _cluster_id_of(meta: Path) -> str:
    for line in meta.read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "cluster.id":
            return value.strip()
    raise StackError(f"{meta} names no cluster.id; `make clean` starts Kafka afresh")


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
        if link.exists() or link.is_symlink() or not runs_as_postgres():
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
        return local_programs(self.topology, self.run, self.pg_dir, bins)

    # -- preparing the run folder --------------------------------------------

    def _write(self, path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def _render_configs(self, programs: list[Program], bins: Binaries) -> None:
        run, t = self.run, render.templates
        (run / "logs").mkdir(parents=True, exist_ok=True)
        folders = ("redis", "kafka", "prometheus/data", "nginx/tmp", "psp", "consul")
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
        for redis_node in self.topology.redis_nodes():
            home = run / "redis" / redis_node.name
            (home / "data").mkdir(parents=True, exist_ok=True)
            self._write(
                home / "redis.conf", render.redis_conf(self.topology, redis_node, home / "data")
            )
        nodes = self.topology.kafka_nodes()
        voters = ",".join(f"{n.index}@127.0.0.1:{n.controller_port}" for n in nodes)
        for node in nodes:
            self._write(
                run / "kafka" / node.name / "server.properties",
                t.get_template("kafka/server.properties.j2").render(
                    node=node,
                    voters=voters,
                    replicas=len(nodes),
                    min_insync=min(KAFKA_MIN_INSYNC, len(nodes)),
                    data_dir=run / "kafka" / node.name / "data",
                ),
            )
        self._write(run / "toxiproxy/proxies.json", proxies_json(self.topology))

    def _write_supervisor_config(self, programs: list[Program]) -> None:
        self._write(self.run / "supervisord.conf", render_config(self.run, programs))

    def _prepare_postgres(self, bins: Binaries) -> None:
        """Each member's folder and Patroni configuration. Patroni makes the rest: the
        first member to take Consul's initialize key runs initdb, the other copies it
        with pg_basebackup and follows."""
        owner = runs_as_postgres()
        self.pg_dir.mkdir(parents=True, exist_ok=True)
        if owner:
            shutil.chown(self.pg_dir, "postgres", "postgres")
        for member in self.topology.postgres_members():
            home = member_home(self.pg_dir, member)
            for folder in (home, home / "socket", home / "log"):
                folder.mkdir(exist_ok=True)
                if owner:
                    shutil.chown(folder, "postgres", "postgres")
            config = home / "patroni.yml"
            config.write_text(render.patroni_yml(self.topology, member, home, bins.postgres_bin))
            config.chmod(0o600)  # it holds the superuser's password
            if owner:
                shutil.chown(config, "postgres", "postgres")

    def _format_kafka(self, bins: Binaries) -> None:
        """Each node's KRaft storage, all with one cluster id: a node formatted before
        (its meta.properties) gives its id to any node formatted now."""
        nodes = [self.run / "kafka" / node.name for node in self.topology.kafka_nodes()]
        formatted = [n for n in nodes if (n / "data" / "meta.properties").exists()]
        if len(formatted) == len(nodes):
            return
        cluster_id = (
            _cluster_id_of(formatted[0] / "data" / "meta.properties")
            if formatted
            else new_cluster_id()
        )
        with step("Formatting Kafka's KRaft storage"):
            for node in nodes:
                if node in formatted:
                    continue
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
                        str(node / "server.properties"),
                    ],
                    check=True,
                    stdout=subprocess.DEVNULL,
                )

    # -- provisioning once the infrastructure answers -------------------------

    def psql(self, bins: Binaries, sql: str) -> None:
        subprocess.run(
            [
                str(bins.postgres_bin / "psql"),
                "-d",
                self.topology.postgres_admin_url(),
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

    def _provision(self, bins: Binaries, launcher: Launcher) -> None:
        from kit.kafka import ensure_topics
        from shopctl.readiness import postgres_primary

        redis_nodes = self.topology.redis_nodes()
        nodes = [n.name for n in redis_nodes] + [n.name for n in self.topology.kafka_nodes()]

        def storage() -> dict[str, bool]:
            checks = self.infra_ready()
            return {
                "postgres": postgres_primary(self.topology),
                **{name: checks[name] for name in nodes},
            }

        # Through the launcher: Patroni keeps its leader lock in Consul, so on a first
        # `make up` Postgres starts only once Consul is built, and the wait counts from then.
        names = set(nodes) | {m.name for m in self.topology.postgres_members()}
        parts = [p for p in launcher.programs if p.name in names]
        with step("Waiting for Postgres, Redis and Kafka"):
            launcher.wait_for(parts, storage, what="Postgres, Redis and Kafka", timeout=120)
        if not redis_cluster.formed(redis_nodes):
            with step("Forming the Redis Cluster"):
                redis_cluster.create(redis_nodes)
        wait_until(
            lambda: {"redis cluster": redis_cluster.complete(redis_nodes)},
            timeout=60,
            what="the Redis Cluster serving every slot, each primary with its replica",
        )
        with step("Creating service databases and Kafka topics"):
            self.psql(bins, render.databases_sql())
            created = ensure_topics(
                self.topology.kafka_bootstrap(),
                KAFKA_TOPICS,
                replication_factor=len(self.topology.kafka_nodes()),
            )
            if created:
                say(f"created topics: {', '.join(created)}")

    # -- the commands ---------------------------------------------------------

    def _check_replicas(self) -> None:
        """Kafka's and Consul's data keep the quorum they were formatted with: a stack that
        ran with other REPLICAS must be cleaned before it runs with these."""
        marker = self.run / "replicas"
        wanted = str(self.topology.replicas)
        if marker.exists() and marker.read_text().strip() != wanted:
            raise StackError(
                f"this stack's data is for REPLICAS={marker.read_text().strip()}, not "
                f"{wanted}: `make clean` first (it deletes the data), or keep the same REPLICAS"
            )
        self.run.mkdir(parents=True, exist_ok=True)
        marker.write_text(wanted + "\n")

    def up(self) -> None:
        """Start the stack. What must be built from source builds in the background while
        the rest starts; each part starts once what it runs is built, and `up` says
        "Shopstack is up" as soon as the shop answers, then waits for monitoring."""
        # A running stack holds its own ports; only a fresh start can probe them.
        check_ports_distinct(self.topology)
        self._check_replicas()
        if not self.supervisor.running():
            check_ports_free(self.topology)
        jobs = BuildJobs(local_builds())
        jobs.start()  # before the packages and jars: the builds take longest
        try:
            bins = ensure_all(
                self.settings["KAFKA_VERSION"],
                self.settings["JMX_EXPORTER_VERSION"],
                self.settings["PATRONI_VERSION"],
            )
            if not any(build.needed for build in jobs.builds.values()):
                say("All local-mode software is present.")
            programs = self.programs(bins)
            launcher = Launcher(
                programs,
                jobs,
                self.supervisor,
                self._write_supervisor_config,
                self.run,
                already_running={p["name"] for p in self.supervisor.processes()},
            )
            try:
                self._start(bins, programs, launcher)
            finally:
                launcher.close()
        finally:
            jobs.stop()

    def _start(self, bins: Binaries, programs: list[Program], launcher: Launcher) -> None:
        jobs = launcher.jobs
        with step("Preparing the run folder"):
            self._render_configs(programs, bins)
            self._prepare_postgres(bins)
            self._format_kafka(bins)
        with step("Starting processes under supervisord"):
            launcher.launch_ready()
        self._provision(bins, launcher)
        shop_is_up = f"Shopstack is up: gateway http://127.0.0.1:{self.settings['GATEWAY_PORT']}"
        problems = []
        try:
            with step("Waiting for the shop: Consul, Toxiproxy, every instance and the gateway"):
                shop = [p for p in programs if p.name not in MONITORING]
                launcher.wait_for(shop, self.shop_ready, what="the shop", timeout=180)
        except HeldBack as error:
            problems.append(f"the shop is not up: {error}")
            say(problems[-1])
        announced = not problems and bool(jobs.running())
        if announced:
            waiting = [p.name for p in launcher.waiting()]
            say(shop_is_up)
            say(
                f"The shop answers now. Still building: {', '.join(jobs.running())}"
                + (f", then starting {', '.join(waiting)}" if waiting else "")
                + "; this command goes on until then, with progress here (logs: "
                f"{BUILD_LOGS.relative_to(ROOT)}/). Ctrl-C stops those builds, not the shop; "
                "`make up` picks them up again."
            )
        try:
            with step("Waiting for monitoring: Prometheus, Alertmanager and the dashboards"):
                monitoring = [p for p in programs if p.name in MONITORING]
                check = self._monitoring_ready(launcher)
                launcher.wait_for(monitoring, check, what="monitoring", timeout=180)
        except HeldBack as error:
            problems.append(f"monitoring is not up: {error}")
            say(problems[-1])
        if jobs.running():  # a build no program waits for (Prometheus's web UI)
            with step(f"Waiting for the last builds: {', '.join(jobs.running())}"):
                jobs.wait()
        # Failed builds that held nothing back: the web UI's, or one redone for a program
        # that kept running.
        held = {b for p in launcher.blocked() for b in launcher.failed_builds(p)}
        problems += [
            f"{name} did not build (see above, or {jobs.log_path(name)})"
            for name in jobs.builds
            if jobs.failure(name) and name not in held
        ]
        if problems:
            raise StackError("; ".join(problems) + "; fix what failed and run `make up` again")
        if announced:
            say(
                "Monitoring is up too: Prometheus "
                f"http://127.0.0.1:{self.settings['PROMETHEUS_PORT']}, `make dashboards`"
            )
        else:
            say(shop_is_up)

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
            self._stop_orphaned_postgres()
            wait_ports_closed(self.topology, timeout=15)

    def _stop_orphaned_postgres(self) -> None:
        """A Postgres server whose Patroni was killed outlives it (Patroni starts it in a
        session of its own, so a new Patroni can take it over): with no Patroni left, it
        gets a fast shutdown, by the pid in its own postmaster.pid."""
        for member in self.topology.postgres_members():
            pid = postmaster_pid(member_home(self.pg_dir, member))
            if pid is None:
                continue
            signal_server(pid, signal.SIGINT)
            deadline = time.monotonic() + 30
            while postmaster_pid(member_home(self.pg_dir, member)) == pid:
                if time.monotonic() > deadline:
                    signal_server(pid, signal.SIGKILL)
                    break
                time.sleep(0.1)

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

    def shop_ready(self) -> dict[str, bool]:
        """What the shop needs answers, and the gateway routes to every instance."""
        from shopctl.readiness import gateway_check, instance_checks

        self._raise_if_fatal()
        return {
            **self.infra_ready(),
            **instance_checks(self.topology, upstreams=self.run / "nginx" / "upstreams.conf"),
            **gateway_check(self.settings),
        }

    def _monitoring_ready(self, launcher: Launcher) -> Callable[[], dict[str, bool]]:
        from shopctl.readiness import monitoring_checks

        def check() -> dict[str, bool]:
            self._raise_if_fatal()
            found = monitoring_checks(self.settings)
            if "grafana" not in launcher.launched and "gateway" not in launcher.launched:
                del found["grafana"]  # the dashboards page is the gateway's, which did not start
            return found

        return check

    def all_ready(self) -> dict[str, bool]:
        from shopctl.readiness import monitoring_checks

        return {**self.shop_ready(), **monitoring_checks(self.settings)}
