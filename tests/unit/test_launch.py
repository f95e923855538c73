"""`make up`'s order (shopctl/launch.py): each program starts once the builds it runs are
done, a failed build holds back only what runs its result, and a machine that has built
everything starts the whole stack at once. Real build jobs on threads, a fake supervisord."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from shopctl.builds import Build, BuildJobs, BuildLog
from shopctl.consul_build import consul_job
from shopctl.install import Binaries
from shopctl.launch import HeldBack, Launcher, programs_waiting
from shopctl.local_programs import MONITORING, local_programs
from shopctl.progress import StackError
from shopctl.prometheus_build import module_dir, prometheus_job
from shopctl.prometheus_ui import ui_job
from shopctl.supervisor import Program
from shopctl.topology import Topology
from shopctl.toxiproxy import toxiproxy_job

pytestmark = pytest.mark.unit


class FakeSupervisor:
    """Records what a real one would run: each configuration written, each start/reload."""

    def __init__(self) -> None:
        self.up = False
        self.configs: list[list[str]] = []
        self.calls: list[str] = []

    def running(self) -> bool:
        return self.up

    def start_daemon(self) -> None:
        self.up = True
        self.calls.append("start")

    def reload(self) -> None:
        self.calls.append("reload")

    def write_config(self, programs: list[Program]) -> None:
        self.configs.append([p.name for p in programs])


def _program(name: str, *builds: str) -> Program:
    return Program(name, f"run {name}", Path("/"), 10, "infra", builds=builds)


PROGRAMS = [
    _program("postgres"),
    _program("consul", "consul"),
    _program("toxiproxy", "toxiproxy"),
    _program("auth-1", "consul", "toxiproxy"),
    _program("gateway", "consul"),
    _program("prometheus", "prometheus"),
    _program("alertmanager"),
]


class Gates:
    """Build jobs that finish (or fail, with a compiler's complaint in their log) when
    the test opens their gate."""

    def __init__(self, tmp_path: Path, names: list[str], failing: tuple[str, ...] = ()) -> None:
        self.events = {name: threading.Event() for name in names}
        self.jobs = BuildJobs(
            [Build(name, name.title(), True, self._run(name, name in failing)) for name in names],
            log_dir=tmp_path / "logs",
        )

    def _run(self, name: str, fails: bool) -> Callable[[BuildLog], None]:
        def run(log: BuildLog) -> None:
            assert self.events[name].wait(10)
            if fails:
                log.run(["sh", "-c", "echo 'cmd/x.go:9: undefined: y' >&2; exit 2"], cwd=Path("/"))

        return run

    def finish(self, name: str) -> None:
        self.events[name].set()
        deadline = time.monotonic() + 10
        while self.jobs.succeeded(name) is False and self.jobs.failure(name) is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)


def _launcher(tmp_path: Path, jobs: BuildJobs, supervisor: FakeSupervisor) -> Launcher:
    return Launcher(
        PROGRAMS, jobs, supervisor, supervisor.write_config, tmp_path, poll_seconds=0.01
    )


def test_each_program_starts_once_its_builds_are_done(tmp_path: Path) -> None:
    gates = Gates(tmp_path, ["consul", "toxiproxy", "prometheus"])
    supervisor = FakeSupervisor()
    launcher = _launcher(tmp_path, gates.jobs, supervisor)
    gates.jobs.start()

    launcher.launch_ready()
    assert supervisor.configs == [["postgres", "alertmanager"]]
    assert supervisor.calls == ["start"]
    assert programs_waiting(tmp_path) == {
        "consul": ["consul"],
        "toxiproxy": ["toxiproxy"],
        "auth-1": ["consul", "toxiproxy"],
        "gateway": ["consul"],
        "prometheus": ["prometheus"],
    }

    gates.finish("consul")
    launcher.launch_ready()
    # The instance also needs Toxiproxy: it waits; the gateway does not.
    assert supervisor.configs[-1] == ["postgres", "consul", "gateway", "alertmanager"]
    gates.finish("toxiproxy")
    launcher.launch_ready()
    assert supervisor.configs[-1] == [
        "postgres",
        "consul",
        "toxiproxy",
        "auth-1",
        "gateway",
        "alertmanager",
    ]
    assert supervisor.calls == ["start", "reload", "reload"]
    assert launcher.launch_ready() == []  # nothing new: no reload
    assert supervisor.calls == ["start", "reload", "reload"]

    gates.finish("prometheus")
    launcher.launch_ready()
    assert supervisor.configs[-1] == [p.name for p in PROGRAMS]
    assert programs_waiting(tmp_path) == {}


def test_the_shop_is_waited_for_while_monitoring_still_builds(tmp_path: Path) -> None:
    gates = Gates(tmp_path, ["consul", "toxiproxy", "prometheus"])
    supervisor = FakeSupervisor()
    launcher = _launcher(tmp_path, gates.jobs, supervisor)
    gates.jobs.start()
    checked: list[set[str]] = []

    def shop_ready() -> dict[str, bool]:
        checked.append(set(launcher.launched))
        return {name: name in launcher.launched for name in ("consul", "auth-1", "gateway")}

    threading.Timer(0.05, gates.finish, ["consul"]).start()
    threading.Timer(0.1, gates.finish, ["toxiproxy"]).start()
    shop = [p for p in PROGRAMS if p.name not in {"prometheus", "alertmanager"}]
    launcher.wait_for(shop, shop_ready, what="the shop", timeout=5)
    # Readiness is only asked once every shop program runs; Prometheus still waits.
    assert checked and all({"consul", "toxiproxy", "auth-1"} <= seen for seen in checked)
    assert "prometheus" not in launcher.launched
    gates.finish("prometheus")
    gates.jobs.wait(5)


def test_a_failed_build_holds_back_only_what_runs_its_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gates = Gates(tmp_path, ["consul", "toxiproxy", "prometheus"], failing=("consul",))
    supervisor = FakeSupervisor()
    launcher = _launcher(tmp_path, gates.jobs, supervisor)
    gates.jobs.start()
    launcher.launch_ready()
    for name in ("consul", "toxiproxy", "prometheus"):
        gates.finish(name)

    shop = [p for p in PROGRAMS if p.name not in {"prometheus", "alertmanager"}]
    with pytest.raises(HeldBack) as held:
        launcher.wait_for(shop, lambda: {"toxiproxy": True}, what="the shop", timeout=5)
    assert str(held.value).startswith("consul, auth-1, gateway did not start")
    assert str(tmp_path / "logs" / "consul.log") in str(held.value)
    assert set(launcher.launched) == {"postgres", "toxiproxy", "prometheus", "alertmanager"}
    assert "undefined: y" in capsys.readouterr().err  # the log's tail, when it failed

    # Monitoring does not need the failed build: waiting for it passes.
    monitoring = [p for p in PROGRAMS if p.name in {"prometheus", "alertmanager"}]
    launcher.wait_for(monitoring, lambda: {"prometheus": True}, what="monitoring", timeout=5)


def test_everything_starts_at_once_when_nothing_needs_building(tmp_path: Path) -> None:
    def must_not_run(log: BuildLog) -> None:
        raise AssertionError("built although its results are there")

    jobs = BuildJobs(
        [Build(n, n, False, must_not_run) for n in ("consul", "toxiproxy", "prometheus")],
        log_dir=tmp_path / "logs",
    )
    supervisor = FakeSupervisor()
    launcher = _launcher(tmp_path, jobs, supervisor)
    jobs.start()
    launcher.wait_for(PROGRAMS, lambda: {"gateway": True}, what="the stack", timeout=5)
    assert supervisor.configs == [[p.name for p in PROGRAMS]]
    assert supervisor.calls == ["start"]
    assert not (tmp_path / "logs").exists()
    assert programs_waiting(tmp_path) == {}


def test_a_running_stack_keeps_what_runs_while_its_build_is_redone(tmp_path: Path) -> None:
    gates = Gates(tmp_path, ["consul", "toxiproxy", "prometheus"], failing=("toxiproxy",))
    supervisor = FakeSupervisor()
    supervisor.up = True
    running = [p.name for p in PROGRAMS if p.name != "prometheus"]
    launcher = Launcher(
        PROGRAMS,
        gates.jobs,
        supervisor,
        supervisor.write_config,
        tmp_path,
        already_running=running,
        poll_seconds=0.01,
    )
    gates.jobs.start()
    launcher.launch_ready()
    assert supervisor.configs == [running]  # nothing that runs is dropped from it
    assert supervisor.calls == ["reload"]
    for name in ("consul", "toxiproxy", "prometheus"):
        gates.finish(name)
    # Toxiproxy's rebuild failed: the one that runs keeps running, and so does the rest.
    launcher.wait_for(PROGRAMS, lambda: {"toxiproxy": True}, what="the stack", timeout=5)
    assert supervisor.configs[-1] == [p.name for p in PROGRAMS]


def test_a_stack_stopped_meanwhile_is_not_started_again(tmp_path: Path) -> None:
    gates = Gates(tmp_path, ["consul", "toxiproxy", "prometheus"])
    supervisor = FakeSupervisor()
    launcher = _launcher(tmp_path, gates.jobs, supervisor)
    gates.jobs.start()
    launcher.launch_ready()
    supervisor.up = False  # `make down` in another terminal
    gates.finish("toxiproxy")
    with pytest.raises(StackError, match="no longer running"):
        launcher.launch_ready()
    assert supervisor.calls == ["start"]
    for name in ("consul", "prometheus"):
        gates.finish(name)


def test_status_ignores_the_waiting_list_of_a_make_up_that_is_gone(tmp_path: Path) -> None:
    (tmp_path / "waiting-for-builds.json").write_text(
        json.dumps({"pid": os.getpid(), "programs": {"prometheus": ["prometheus"]}})
    )
    assert programs_waiting(tmp_path) == {"prometheus": ["prometheus"]}
    (tmp_path / "waiting-for-builds.json").write_text(
        json.dumps({"pid": 2**22 + 1, "programs": {"prometheus": ["prometheus"]}})
    )
    assert programs_waiting(tmp_path) == {}


def test_local_mode_programs_wait_for_the_builds_they_run(tmp_path: Path) -> None:
    bins = Binaries(**{name: tmp_path / name for name in Binaries.__dataclass_fields__})
    topology = Topology.load("local")
    programs = local_programs(topology, tmp_path / "run", tmp_path / "postgres", bins)
    builds = {p.name: set(p.builds) for p in programs}
    instances = [i.id for i in topology.instances()]
    assert instances and all(builds[i] == {"consul", "toxiproxy"} for i in instances)
    assert builds["consul"] == {"consul"}
    assert builds["toxiproxy"] == {"toxiproxy"}
    assert builds["gateway"] == {"consul"}  # consul-template comes with Consul's build
    assert builds["prometheus"] == {"prometheus"}
    kafka = [node.name for node in topology.kafka_nodes()]
    redis = [node.name for node in topology.redis_nodes()]
    for name in (*redis, *kafka, "psp", "alertmanager", "postgres-exporter-1"):
        assert builds[name] == set(), name
    # Patroni elects the primary through Consul's agent.
    assert all(builds[m.name] == {"consul"} for m in topology.postgres_members())
    # Every build a program names is one that local mode runs, and monitoring's run last.
    jobs = [consul_job(), toxiproxy_job(), prometheus_job(), ui_job(module_dir())]
    assert set().union(*builds.values()) <= {job.name for job in jobs}
    assert [job.monitoring for job in jobs] == [False, False, True, True]
    shop = {n for n in builds if n not in MONITORING}
    assert not {b for n in shop for b in builds[n]} & {j.name for j in jobs if j.monitoring}
