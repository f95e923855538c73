"""One real local stack for the integration tests: every port shifted by +10000 (or by
TEST_PORT_SHIFT) and its own run folder, so it never touches a stack the developer has
running. Started once per session, on fresh data, and stopped (by its own supervisord) at
the end."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from shopctl.local import LocalStack
from shopctl.ports import INFRA_PORT_VARS, LOAD_PORT_VARS
from shopctl.topology import (
    CONSUL_SERVER_PORT_VARS,
    ROOT,
    SERVICES,
    Settings,
    Topology,
    read_env_file,
)

# TEST_PORT_SHIFT moves a second checkout's test stack out of the way of the first.
PORT_SHIFT = int(os.environ.get("TEST_PORT_SHIFT", "10000"))


def shifted_topology() -> Topology:
    values = read_env_file()
    shifted = [*INFRA_PORT_VARS, *LOAD_PORT_VARS, *CONSUL_SERVER_PORT_VARS]
    for var in [*shifted, *(f"{s.upper()}_PORT" for s in SERVICES)]:
        values[var] = str(int(values[var]) + PORT_SHIFT)
    return Topology("local", Settings(values))


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    local = LocalStack(shifted_topology(), run=ROOT / ".run" / "test-stack")
    # A run that was interrupted may have left its stack behind, and every run starts from
    # empty data: `make verify` holds the whole state to account, so it must be this run's.
    local.clean()
    local.up()
    yield local
    local.down()


@pytest.fixture
def gw(stack: LocalStack) -> Iterator[httpx.Client]:
    """A client of the stack's gateway, as a shopper's."""
    with httpx.Client(
        base_url=f"http://127.0.0.1:{stack.settings['GATEWAY_PORT']}", timeout=30
    ) as client:
        yield client


@pytest.fixture
def psp(stack: LocalStack) -> Iterator[httpx.Client]:
    """The stack's card processor; any fault a test sets is cleared after it."""
    with httpx.Client(base_url=f"http://127.0.0.1:{stack.settings['PSP_PORT']}") as client:
        yield client
        client.put("/v1/faults", json={})


@pytest.fixture(autouse=True)
def fresh_login_budget(stack: LocalStack) -> None:
    """Every test starts with a fresh per-address login and sign-up budget: all of them
    log in and sign up from 127.0.0.1, where a real deployment's clients come from many
    addresses. The limits' own tests exceed them within one test."""
    import redis

    for node in stack.topology.redis_nodes():  # each primary's keys (a replica's refuse)
        with redis.Redis(host=node.host, port=node.port, socket_timeout=2) as client:
            try:
                for pattern in ("auth:login:address:*", "auth:signup:address:*"):
                    for key in client.scan_iter(pattern):
                        client.delete(key)
            except redis.RedisError:
                pass  # a replica, or a test that stopped Redis restores it itself
