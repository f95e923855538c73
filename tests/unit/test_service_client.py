from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from prometheus_client import REGISTRY

from kit import DependencyUnavailable
from kit.discovery import Endpoint
from kit.http import Answer, Failed, Refused
from kit.service_client import ServiceClient

pytestmark = pytest.mark.unit

A = Endpoint("cart-1", "10.0.0.1", 8000)
B = Endpoint("cart-2", "10.0.0.2", 8000)


class FixedEndpoints:
    def __init__(self, *endpoints: Endpoint) -> None:
        self.known = endpoints

    def endpoints(self, target: str) -> tuple[Endpoint, ...]:
        return self.known


class Backend:
    """Per-host behaviour in place of the HTTP client: 'ok', 'refuse', '500' or
    'timeout', as kit.http reports them."""

    def __init__(self, **behaviour: str) -> None:
        self.behaviour = behaviour
        self.hits: list[str] = []

    async def __call__(
        self, method: str, url: str, headers: Mapping[str, str] | None, json: Any
    ) -> Answer:
        host = urlsplit(url).hostname or ""
        self.hits.append(host)
        mode = self.behaviour[host]
        if mode == "refuse":
            raise Refused("connection refused")
        if mode == "timeout":
            raise Failed("timed out")
        if mode == "500":
            return Answer(500, {}, b"")
        return Answer(200, {}, orjson.dumps({"served_by": host}))


def client_for(backend: Backend, *endpoints: Endpoint, **kwargs: int) -> ServiceClient:
    return ServiceClient(
        FixedEndpoints(*endpoints),
        caller="unit",
        send=backend,
        **kwargs,  # type: ignore[arg-type]
    )


def retries() -> float:
    return (
        REGISTRY.get_sample_value(
            "service_client_retries_total", {"service": "unit", "target": "cart"}
        )
        or 0.0
    )


@pytest.mark.parametrize("failure", ["refuse", "500", "timeout"])
async def test_safe_call_moves_to_another_instance(failure: str) -> None:
    backend = Backend(**{"10.0.0.1": failure, "10.0.0.2": "ok"})
    client = client_for(backend, A, B)
    before = retries()
    for _ in range(6):
        response = await client.request("cart", "GET", "/products/p1")
        assert response.json() == {"served_by": "10.0.0.2"}
    # Round-robin sends every other call to the failing instance first; each of those
    # was retried once, on the healthy one.
    assert backend.hits.count("10.0.0.1") == 3
    assert retries() - before == 3


async def test_unsafe_call_is_not_repeated_after_it_may_have_been_processed() -> None:
    backend = Backend(**{"10.0.0.1": "500", "10.0.0.2": "500"})
    client = client_for(backend, A, B)
    with pytest.raises(DependencyUnavailable):
        await client.request("cart", "POST", "/internal/reservations", json={})
    assert len(backend.hits) == 1


async def test_unsafe_call_is_retried_when_the_connection_was_refused() -> None:
    backend = Backend(**{"10.0.0.1": "refuse", "10.0.0.2": "ok"})
    client = client_for(backend, A, B)
    for _ in range(4):
        response = await client.request("cart", "POST", "/internal/reservations", json={})
        assert response.status_code == 200


async def test_a_caller_can_declare_a_post_idempotent() -> None:
    backend = Backend(**{"10.0.0.1": "timeout", "10.0.0.2": "ok"})
    client = client_for(backend, A, B)
    for _ in range(4):
        response = await client.request("cart", "POST", "/x", idempotent=True)
        assert response.status_code == 200


async def test_breaker_opens_and_the_instance_is_skipped() -> None:
    backend = Backend(**{"10.0.0.1": "500", "10.0.0.2": "ok"})
    client = client_for(backend, A, B, breaker_failures=2)
    for _ in range(20):
        await client.request("cart", "GET", "/x")
    assert client.breaker(A).opened
    hits_on_a = backend.hits.count("10.0.0.1")
    for _ in range(10):
        await client.request("cart", "GET", "/x")
    assert backend.hits.count("10.0.0.1") == hits_on_a
    state = REGISTRY.get_sample_value(
        "circuit_breaker_state", {"service": "unit", "target": "cart", "target_instance": "cart-1"}
    )
    assert state == 2


async def test_no_instance_at_all_is_a_503() -> None:
    client = client_for(Backend(), *())
    with pytest.raises(DependencyUnavailable) as caught:
        await client.request("cart", "GET", "/x")
    assert caught.value.status == 503


async def test_every_instance_failing_is_a_503_after_bounded_attempts() -> None:
    backend = Backend(**{"10.0.0.1": "refuse", "10.0.0.2": "refuse"})
    client = client_for(backend, A, B, attempts=3)
    with pytest.raises(DependencyUnavailable):
        await client.request("cart", "GET", "/x")
    assert len(backend.hits) == 3
