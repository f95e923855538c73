"""The faults, as Chaos Toolkit actions. A target is a process name as `make status`
lists it (orders-1, kafka-1, postgres-1, redis, consul, ...): a program of local mode's
supervisord, or the compose service of the same name in Docker mode. A network fault names
a link instead: the Toxiproxy proxies between the services and postgres, redis, kafka or
psp (the card processor).

A Postgres member is two parts: Patroni (the program) and the Postgres server it started,
which runs in a session of its own. `kill` crashes the server and Patroni restarts it, or
fails over if it led; `kill_and_hold` takes the whole member down; `pause` freezes the
server (Patroni, alive, sees it hang)."""

from __future__ import annotations

import signal
import subprocess
import time

from shopctl.chaos.target import current
from shopctl.patroni import member_home, postmaster_pid, signal_server
from shopctl.topology import ROOT
from shopctl.toxiproxy import Toxiproxy, proxy_names

# Local mode's Consul agent: Docker mode's instances register with the servers directly.
LOCAL_ONLY = frozenset({"consul"})


def _compose(*args: str) -> None:
    # A program local mode alone runs has no compose service to act on.
    if args[-1] in LOCAL_ONLY:
        return
    subprocess.run(["docker", "compose", *args], cwd=ROOT, check=True, timeout=120)


def _state(name: str) -> str:
    found = [p for p in current().stack.supervisor.processes() if p["name"] == name]
    if not found:
        raise ValueError(f"no process named {name!r}; `make status` lists them")
    return str(found[0]["statename"])


def _here(targets: list[str]) -> list[str]:
    """The targets this stack runs: with REPLICAS=1, local mode has kafka-1, consul-1,
    postgres-1 and redis-1 only, and an experiment that names every copy acts on the one
    there is."""
    if current().mode == "docker":
        return targets
    topology = current().stack.topology
    here = {
        *(n.name for n in topology.kafka_nodes()),
        *(c.name for c in topology.consul_servers()),
        *(m.name for m in topology.postgres_members()),
        *(n.name for n in topology.redis_nodes()),
    }
    parts = ("kafka", "consul", "postgres", "redis")
    absent = {f"{part}-{n}" for part in parts for n in range(2, 7)} - here
    return [name for name in targets if name not in absent]


def _postgres_server(name: str) -> int | None:
    """The pid of the Postgres server a member's Patroni runs; None for other targets."""
    stack = current().stack
    for member in stack.topology.postgres_members():
        if member.name == name:
            pid = postmaster_pid(member_home(stack.pg_dir, member))
            if pid is None:
                raise RuntimeError(f"{name}'s Postgres server is not running")
            return pid
    return None


def kill(targets: list[str]) -> None:
    """SIGKILL: no goodbye, no drain. The supervisor (or Docker's restart policy) starts
    it again by itself; for a Postgres member, its Patroni does."""
    for name in _here(targets):
        if current().mode == "docker":
            _compose("kill", "--signal", "SIGKILL", name)
            continue
        _state(name)
        server = _postgres_server(name)
        if server is not None:
            signal_server(server, signal.SIGKILL)  # the postmaster and every backend
        else:
            current().stack.supervisor.signal(name, signal.SIGKILL)


def kill_and_hold(targets: list[str]) -> None:
    """SIGKILL, and keep it down until `start` (a rollback) brings it back."""
    for name in _here(targets):
        if current().mode == "docker":
            _compose("kill", "--signal", "SIGKILL", name)
            continue
        server = _postgres_server(name)
        current().stack.supervisor.kill_and_keep_down(name)
        if server is not None:
            signal_server(server, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _state(name) != "STOPPED":
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} would not stay down")
            time.sleep(0.05)


def stop(targets: list[str]) -> None:
    """A graceful stop (SIGTERM: deregister, drain in-flight requests, exit)."""
    for name in _here(targets):
        if current().mode == "docker":
            _compose("stop", name)
        elif _state(name) not in ("STOPPED", "EXITED"):
            current().stack.supervisor.stop(name)


def start(targets: list[str]) -> None:
    for name in _here(targets):
        if current().mode == "docker":
            _compose("start", name)
        elif _state(name) not in ("RUNNING", "STARTING"):
            current().stack.supervisor.start(name)


def pause(targets: list[str]) -> None:
    """SIGSTOP: the process holds its sockets and answers nothing, as a hung one does."""
    for name in _here(targets):
        if current().mode == "docker":
            _compose("pause", name)
        else:
            _state(name)
            server = _postgres_server(name)
            if server is not None:
                signal_server(server, signal.SIGSTOP)
            else:
                current().stack.supervisor.signal(name, signal.SIGSTOP)


def resume(targets: list[str]) -> None:
    for name in _here(targets):
        if current().mode == "docker":
            _compose("unpause", name)
        else:
            server = _postgres_server(name)
            if server is not None:
                signal_server(server, signal.SIGCONT)
            else:
                current().stack.supervisor.signal(name, signal.SIGCONT)


def stack_down() -> None:
    """`make down`: every process stopped the graceful way (instances deregister and
    drain), every byte of data kept."""
    if current().mode == "docker":
        _compose("down")
    else:
        current().stack.down()


def stack_up() -> None:
    """`make up` (on a running stack it changes nothing)."""
    if current().mode == "docker":
        from shopctl import docker

        if docker.up() != 0:
            raise RuntimeError("docker compose up failed")
    else:
        current().stack.up()


def hold(seconds: float | str) -> None:
    """Keep the fault in place (the experiment's configuration sets how long)."""
    time.sleep(float(seconds))


def processor_faults(**faults: float) -> None:
    """Set the card processor's faults (its PUT /v1/faults: latency_ms,
    transient_error_rate, charge_then_timeout_rate, hold_seconds); none clears them."""
    import httpx

    url = f"http://127.0.0.1:{current().settings['PSP_PORT']}/v1/faults"
    httpx.put(url, json={k: float(v) for k, v in faults.items()}, timeout=10).raise_for_status()


def _toxiproxy() -> Toxiproxy:
    return Toxiproxy(f"http://127.0.0.1:{current().settings['TOXIPROXY_PORT']}")


def network_fault(
    link: str,
    toxic: str,
    attributes: dict[str, float],
    stream: str = "downstream",
    toxicity: float = 1.0,
) -> None:
    """A Toxiproxy toxic on one link: `latency` (ms, jitter), `bandwidth` (rate in KB/s),
    `timeout` (0: data stops and the connection hangs, as in a partition), `reset_peer`,
    `slow_close`, `slicer` or `limit_data`, on data from the dependency (downstream), to
    it (upstream) or both, for `toxicity` of the connections."""
    streams = ("upstream", "downstream") if stream == "both" else (stream,)
    with _toxiproxy() as proxy:
        for name in proxy_names(current().stack.topology, link):
            for one in streams:
                proxy.add_toxic(name, toxic, attributes, stream=one, toxicity=toxicity)


def heal_network() -> None:
    """Every link open and every toxic removed."""
    with _toxiproxy() as proxy:
        proxy.reset()
