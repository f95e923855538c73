"""Issue 4's promises, on the real stack: instances come and go through Consul, and the
gateway, Prometheus and callers follow without failing a request."""

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest

from kit.consul import ConsulAgents
from kit.discovery import ServiceDiscovery
from kit.service_client import ServiceClient
from shopctl.chaos import failover
from shopctl.chaos.target import Target, use
from shopctl.clusters import Consul, Postgres
from shopctl.local import LocalStack
from shopctl.patroni import member_home, postmaster_pid

pytestmark = pytest.mark.integration


def consul_url(stack: LocalStack) -> str:
    return f"http://127.0.0.1:{stack.settings['CONSUL_HTTP_PORT']}"


def passing_ids(stack: LocalStack, service: str) -> set[str]:
    answer = _passing(stack, service)
    return set() if answer is None else answer


def _passing(stack: LocalStack, service: str) -> set[str] | None:
    """The passing instances, or None when Consul gives no answer (down, or its servers
    between leaders: a 500 "No cluster leader")."""
    try:
        found = httpx.get(f"{consul_url(stack)}/v1/health/service/{service}?passing", timeout=1)
    except httpx.HTTPError:
        return None
    if found.status_code != 200:
        return None
    return {e["Service"]["ID"] for e in found.json()}


def upstreams(stack: LocalStack) -> str:
    return (stack.run / "nginx" / "upstreams.conf").read_text()


def wait_for(predicate: Callable[[], bool], timeout: float) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout}s")
        time.sleep(0.05)
    return time.monotonic() - started


class SteadyLoad:
    """GETs through the gateway, as fast as one client goes, counting failures (5xx or
    no answer). The cart service answers them itself (a problem+json 404).

    When nginx reloads, its old workers close their idle keep-alive connections; a GET
    sent on one at that instant is never read (the client sees the connection closed or
    reset). Like browsers, and as HTTP allows for
    idempotent requests closed before any response (RFC 9112, 9.3.1), the client sends it
    again once on a new connection; those are counted in `resent`, not hidden."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sent = 0
        self.resent = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set():
                try:
                    try:
                        response = client.get(self.url)
                    except (httpx.RemoteProtocolError, httpx.ReadError):
                        # Closed (or reset) by an old nginx worker before any answer.
                        self.resent += 1
                        response = client.get(self.url)
                    if response.status_code >= 500:
                        self.failures.append(f"{response.status_code} {response.text[:80]}")
                    else:
                        assert response.headers["content-type"] == "application/problem+json"
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                self.sent += 1

    @contextmanager
    def running(self) -> Iterator["SteadyLoad"]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(10)


def cart_load(stack: LocalStack) -> SteadyLoad:
    return SteadyLoad(f"http://127.0.0.1:{stack.settings['GATEWAY_PORT']}/cart/steady-load")


def test_every_instance_registers_with_a_readiness_check(stack: LocalStack) -> None:
    for service in ("auth", "cart", "orders", "payments"):
        wait_for(lambda s=service: passing_ids(stack, s) == {f"{s}-1", f"{s}-2"}, 15)
    entries = httpx.get(f"{consul_url(stack)}/v1/health/service/orders").json()
    check = next(c for c in entries[0]["Checks"] if c["ServiceID"])
    assert check["Type"] == "http"
    assert check["Interval"] == "2s" and check["Timeout"] == "1s"
    assert entries[0]["Service"]["Meta"]["version"]


def test_kill_9_costs_no_request_and_the_instance_comes_back(stack: LocalStack) -> None:
    victim = stack.topology.instances("cart")[0]
    with cart_load(stack).running() as load:
        time.sleep(1)
        pid = next(p["pid"] for p in stack.supervisor.processes() if p["name"] == victim.id)
        os.kill(pid, signal.SIGKILL)
        # Keep it down (supervisord would restart it) to watch it leave.
        stack.supervisor.stop(victim.id)
        left_consul = wait_for(lambda: victim.id not in passing_ids(stack, "cart"), 5)
        left_gateway = wait_for(lambda: victim.address not in upstreams(stack), 5)
        time.sleep(1)
        stack.supervisor.start(victim.id)
        back_consul = wait_for(lambda: victim.id in passing_ids(stack, "cart"), 5)
        back_gateway = wait_for(lambda: victim.address in upstreams(stack), 5)
        time.sleep(1)
    print(
        f"\nkill -9 {victim.id}: out of Consul in {left_consul:.2f}s, out of the gateway in "
        f"{left_gateway:.2f}s; restarted: back in Consul in {back_consul:.2f}s, in the "
        f"gateway in {back_gateway:.2f}s; {load.sent} requests, {len(load.failures)} failed, "
        f"{load.resent} resent after a keep-alive close"
    )
    assert load.sent > 50
    assert load.failures == []
    assert load.resent <= 4  # at most a couple per nginx reload


def test_sigterm_deregisters_before_exit_and_costs_no_request(stack: LocalStack) -> None:
    victim = stack.topology.instances("cart")[1]
    pid = next(p["pid"] for p in stack.supervisor.processes() if p["name"] == victim.id)
    seen: dict[str, float] = {}

    def watch() -> None:
        while "exited" not in seen:
            now = time.monotonic()
            passing = _passing(stack, "cart")
            if "deregistered" not in seen and passing is not None and victim.id not in passing:
                seen["deregistered"] = now
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                seen["exited"] = now
            time.sleep(0.02)

    with cart_load(stack).running() as load:
        time.sleep(1)
        watcher = threading.Thread(target=watch)
        watcher.start()
        started = time.monotonic()
        stack.supervisor.stop(victim.id)  # SIGTERM, then waits for the exit
        watcher.join(30)
        stack.supervisor.start(victim.id)
        wait_for(lambda: victim.id in passing_ids(stack, "cart"), 10)
        wait_for(lambda: victim.address in upstreams(stack), 5)
        time.sleep(1)
    print(
        f"\nSIGTERM {victim.id}: deregistered after {seen['deregistered'] - started:.2f}s, "
        f"exited after {seen['exited'] - started:.2f}s; {load.sent} requests, "
        f"{len(load.failures)} failed, {load.resent} resent after a keep-alive close"
    )
    assert seen["deregistered"] < seen["exited"]
    assert load.failures == []
    assert load.resent <= 4


async def test_callers_keep_their_instances_while_consul_is_down(stack: LocalStack) -> None:
    agents = ConsulAgents([f"127.0.0.1:{stack.settings['CONSUL_HTTP_PORT']}"])
    discovery = ServiceDiscovery(agents, ["cart"], caller="it")
    client = ServiceClient(discovery, caller="it")
    await discovery.start()
    try:
        await discovery.wait_known("cart", within=10)
        assert len(discovery.endpoints("cart")) == 2
        pid = next(p["pid"] for p in stack.supervisor.processes() if p["name"] == "consul")
        os.kill(pid, signal.SIGKILL)
        stack.supervisor.stop("consul")
        await asyncio.sleep(1.5)
        served = set()
        for _ in range(10):
            response = await client.request("cart", "GET", "/health/live")
            assert response.status_code == 200
            served.add(response.json()["instance"])
        assert served == {"cart-1", "cart-2"}  # both, from the last known set
        # The gateway keeps its last upstreams too.
        gateway = f"http://127.0.0.1:{stack.settings['GATEWAY_PORT']}/cart/x"
        async with httpx.AsyncClient() as http:
            assert (await http.get(gateway)).status_code == 404

        fewest = [len(discovery.endpoints("cart"))]

        async def count_known() -> None:
            while True:
                fewest[0] = min(fewest[0], len(discovery.endpoints("cart")))
                await asyncio.sleep(0.02)

        counting = asyncio.create_task(count_known())
        started = time.monotonic()
        stack.supervisor.start("consul")  # it rejoins the servers and syncs its instances
        everyone = {i.id for i in stack.topology.instances()}

        def all_back() -> bool:
            return (
                set().union(
                    *(passing_ids(stack, s) for s in ("auth", "cart", "orders", "payments"))
                )
                == everyone
            )

        await asyncio.to_thread(wait_for, all_back, 10)
        await asyncio.to_thread(stack.wait_ready)
        counting.cancel()
        # Consul's first answers are empty; callers keep what they knew over them.
        assert fewest[0] >= 1, "callers were left with no cart instance"
        print(
            f"\nConsul restarted: all 8 instances registered again in "
            f"{time.monotonic() - started:.2f}s"
        )
    finally:
        await discovery.stop()
        await client.stop()
        await agents.close()


@pytest.mark.parametrize(
    ("service", "path", "expected"),
    [("orders", "/orders", 401), ("auth", "/auth/login", 422)],
)
def test_a_post_safe_to_repeat_is_answered_by_another_instance_when_one_just_died(
    stack: LocalStack, service: str, path: str, expected: int
) -> None:
    """nginx sends a POST on to the next instance only where repeating it is safe: POST
    /orders (its Idempotency-Key fences every attempt) and logins. The instance is frozen
    so that the requests reach it, then killed under them: each must still get an
    instance's own answer (no token, or no password: a 4xx problem), never the gateway's
    503 for an instance that died mid-request."""
    victim = stack.topology.instances(service)[0]
    gateway = f"http://127.0.0.1:{stack.settings['GATEWAY_PORT']}"
    wait_for(lambda: victim.address in upstreams(stack), 10)
    pid = next(p["pid"] for p in stack.supervisor.processes() if p["name"] == victim.id)

    def send(n: int) -> httpx.Response:
        headers = {"Idempotency-Key": f"died-under-it-{n}"}
        return httpx.post(f"{gateway}{path}", json={}, headers=headers, timeout=10)

    os.kill(pid, signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(4) as pool:
            sent = [pool.submit(send, n) for n in range(4)]
            time.sleep(0.5)  # every request is now with an instance; some with the frozen one
            os.kill(pid, signal.SIGKILL)
            answers = [future.result() for future in sent]
    finally:
        # Its successor opens its port once ready: wait for it, not for the registration
        # Consul may still hold from the killed process.
        stack.wait_ready(timeout=30)
    assert [a.status_code for a in answers] == [expected] * 4, [a.text for a in answers]
    assert all(a.headers["content-type"] == "application/problem+json" for a in answers)


def _postgres_server(stack: LocalStack, member: str | None) -> int | None:
    """The pid of `member`'s Postgres server: a demotion restarts it."""
    (found,) = [m for m in stack.topology.postgres_members() if m.name == member]
    return postmaster_pid(member_home(stack.pg_dir, found))


def test_consul_takes_writes_soon_after_its_leader_dies_and_the_old_leader_follows(
    stack: LocalStack,
) -> None:
    use(Target("local", stack))
    consul = Consul(stack.topology)
    before = consul.leader()
    postgres = Postgres(stack.topology)
    postgres.prepare()
    primary = _postgres_server(stack, postgres.leader())
    assert before is not None and sorted(consul.followers()) == sorted(
        m for m in consul.members() if m != before
    )
    killed = failover.kill_leader("consul", within_seconds=30)
    try:
        assert killed["killed"] == before
        assert killed["writes_resumed_s"] is not None and killed["writes_resumed_s"] < 10
        assert killed["new_leader"] not in (None, before)
        # The services never noticed: they talk to the agent, which follows the new leader.
        assert {i.id for i in stack.topology.instances()} <= set().union(
            *(passing_ids(stack, s) for s in ("auth", "cart", "orders", "payments"))
        )
        # Nor did Postgres: its Patronis elect through Consul, and the primary went on
        # (failsafe mode) rather than restart read-only.
        wait_for(postgres.write, 10)
        assert _postgres_server(stack, postgres.leader()) == primary
    finally:
        back = failover.bring_back("consul", within_seconds=30)
    assert back["returned"] == [{"name": before, "rejoined_s": back["returned"][0]["rejoined_s"]}]
    assert back["returned"][0]["rejoined_s"] is not None
    assert before in consul.followers()
    print(
        f"\nConsul leader {before} killed: writes again after {killed['writes_resumed_s']:.1f}s; "
        f"back as a follower {back['returned'][0]['rejoined_s']:.1f}s after its restart"
    )
