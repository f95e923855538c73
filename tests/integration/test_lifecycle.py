import os
import time

import pytest

from shopctl.local import LocalStack
from shopctl.patroni import member_home, postmaster_pid
from shopctl.ports import listening, stack_ports
from shopctl.processes import process_tree
from shopctl.status import status_table

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_status_lists_every_process_ready_with_memory(stack: LocalStack) -> None:
    rows, total_kib = status_table(stack)
    names = {row[0] for row in rows}
    assert names == {
        "consul",
        *(server.name for server in stack.topology.consul_servers()),
        "psp",
        "toxiproxy",
        *(member.name for member in stack.topology.postgres_members()),
        *(node.name for node in stack.topology.redis_nodes()),
        *(node.name for node in stack.topology.kafka_nodes()),
        "gateway",
        "prometheus",
        "alertmanager",
        *(f"{part}-exporter" for part in ("redis", "node", "nginx")),
        *(name for name, _, _ in stack.topology.postgres_exporters()),
        *(i.id for i in stack.topology.instances()),
    }
    assert all(row[1] == "RUNNING" and row[3] == "yes" for row in rows), rows
    assert total_kib > 0
    # Consul's three servers: one leads, the other two follow it.
    consul_roles = sorted(row[5] for row in rows if row[0].startswith("consul-"))
    assert consul_roles == ["follower", "follower", "leader"]
    # Postgres: a primary and its synchronous replica.
    members = {m.name for m in stack.topology.postgres_members()}
    postgres_roles = sorted(row[5] for row in rows if row[0] in members)
    assert postgres_roles == ["follower", "leader"]
    # Redis: three primaries sharing the slots, each with a replica; the keys in between.
    redis_roles = [
        row[5] for row in rows if row[0].startswith("redis-") and "exporter" not in row[0]
    ]
    primaries = [r for r in redis_roles if r.startswith("primary, ")]
    assert len(primaries) == 3 and sum(int(r.split()[1]) for r in primaries) == 16384
    assert len([r for r in redis_roles if r.startswith("replica of redis-")]) == 3


def test_down_leaves_nothing_and_up_again_is_quick(stack: LocalStack) -> None:
    supervisord = stack.supervisor.pid()
    assert supervisord is not None
    # Patroni starts each Postgres server in a session of its own, outside the tree.
    servers = [
        postmaster_pid(member_home(stack.pg_dir, m)) for m in stack.topology.postgres_members()
    ]
    assert all(servers), servers
    processes = process_tree(supervisord) + [p for s in servers for p in process_tree(s)]
    assert len(processes) > 15  # supervisord, 15 programs and their children

    stack.down()
    assert not [pid for pid in processes if _alive(pid)]
    assert not [f"{port} ({var})" for port, var in stack_ports(stack.topology) if listening(port)]

    started = time.monotonic()
    stack.up()
    elapsed = time.monotonic() - started
    print(f"second up: all ready in {elapsed:.1f}s")
    assert all(row[3] == "yes" for row in status_table(stack)[0])
