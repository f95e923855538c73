"""Redis settings: REDIS_URL for one Redis, REDIS_CLUSTER_NODES (and REDIS_ADDRESS_MAP)
for a Redis Cluster; what is wrong is named with the setting and the entry."""

import pytest
from pydantic import ValidationError

from kit import ServiceSettings

pytestmark = pytest.mark.unit


def settings(**values: object) -> ServiceSettings:
    return ServiceSettings(service_name="unit", **values)  # type: ignore[arg-type]


def test_cluster_nodes_and_address_map_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_CLUSTER_NODES", "Redis-1:6379, 10.0.0.2:6380,[::1]:6381,")
    monkeypatch.setenv(
        "REDIS_ADDRESS_MAP", "redis-1:6379=127.0.0.1:27001 , REDIS-2:6379=proxy:27002"
    )
    read = ServiceSettings(service_name="unit")
    assert read.redis_startup_nodes == [("redis-1", 6379), ("10.0.0.2", 6380), ("::1", 6381)]
    assert read.redis_address_remap == {
        ("redis-1", 6379): ("127.0.0.1", 27001),
        ("redis-2", 6379): ("proxy", 27002),
    }


@pytest.mark.parametrize(
    ("nodes", "says"),
    [
        ("redis-1", "'redis-1' is not host:port"),
        ("redis-1:", "'redis-1:' is not host:port"),
        (":6379", "':6379' is not host:port"),
        ("redis-1:0", "'redis-1:0' is not host:port"),
        ("redis-1:65536", "'redis-1:65536' is not host:port"),
        ("redis-1:http", "'redis-1:http' is not host:port"),
        ("redis-1:6379;redis-2:6379", "is not host:port"),
        ("::1:6379", "write the IPv6 address in '::1:6379' in brackets"),
        (" , ", "' , ' names no node"),
    ],
)
def test_a_wrong_cluster_node_is_named(nodes: str, says: str) -> None:
    with pytest.raises(ValidationError, match="REDIS_CLUSTER_NODES") as raised:
        settings(redis_cluster_nodes=nodes)
    assert says in str(raised.value)


@pytest.mark.parametrize(
    ("mapping", "says"),
    [
        ("redis-1:6379", "'redis-1:6379' is not host:port=host:port"),
        ("redis-1:6379=", "'' is not host:port"),
        ("redis-1:6379=proxy", "'proxy' is not host:port"),
        ("redis-1:6379=proxy:1,Redis-1:6379=proxy:2", "'Redis-1:6379' is mapped twice"),
    ],
)
def test_a_wrong_address_map_entry_is_named(mapping: str, says: str) -> None:
    with pytest.raises(ValidationError, match="REDIS_ADDRESS_MAP") as raised:
        settings(redis_cluster_nodes="redis-1:6379", redis_address_map=mapping)
    assert says in str(raised.value)


def test_an_address_map_without_a_cluster_is_refused() -> None:
    # Most likely REDIS_CLUSTER_NODES misspelt: the instance would quietly use REDIS_URL.
    with pytest.raises(ValidationError, match="REDIS_ADDRESS_MAP is set but REDIS_CLUSTER"):
        settings(redis_url="redis://127.0.0.1:16379/0", redis_address_map="a:1=b:2")
