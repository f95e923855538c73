"""Settings every service shares, read from environment variables with the same names in
Docker mode and local mode. A service subclasses `ServiceSettings` for its own fields."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kit.addresses import Address, parse_address_map, parse_addresses


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    service_name: str
    instance_id: str = Field(default="", description="Unique per instance, e.g. cart-2.")
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: str = "INFO"

    database_url: str | None = None
    # One Redis (the small machine's mode), or a Redis Cluster: some of its nodes,
    # comma-separated host:port, from which the client finds the rest. When the cluster
    # is named it is used, whatever REDIS_URL says.
    redis_url: str | None = None
    redis_cluster_nodes: str = ""
    # The address a cluster node announces = the address to connect to instead (its
    # proxy), comma-separated: `redis-1:6379=127.0.0.1:27001,...`. Every connection to a
    # node goes to its mapped address, whether the node was found at start, from the
    # cluster's slot map, or in a MOVED redirect (a replica promoted later).
    redis_address_map: str = ""
    kafka_bootstrap_servers: str | None = None

    # Consul agents' HTTP addresses, comma-separated (host:port); the first that answers
    # is used. Empty: the instance neither registers nor discovers (unit tests, tools).
    consul_http_addrs: str = ""
    # The address other instances reach this one at (its container name in Docker mode).
    service_address: str = ""
    service_version: str = "0.1.0"
    consul_check_interval: str = "2s"
    consul_check_timeout: str = "1s"
    # Consul's reaper runs about every 30 s, so one minute is its practical minimum.
    consul_deregister_critical_after: str = "1m"
    # After deregistering on SIGTERM, keep serving this long so the gateway and callers
    # see the instance leave before it stops accepting connections.
    deregister_grace_seconds: float = 1.5

    # Proxies whose X-Forwarded-For gives the client's address (uvicorn's setting).
    forwarded_allow_ips: str = "127.0.0.1"

    # Who issues access tokens and for whom; every service checks both.
    jwt_issuer: str = "https://shopstack.dev/auth"
    jwt_audience: str = "shopstack"
    # How often the token verifier fetches auth's published keys again, so a key auth
    # withdrew stops verifying here too.
    jwks_refresh_seconds: float = 300.0
    # How often an instance reads its business figures from its database for /metrics
    # (kit.state_metrics): one small query per figure per round.
    state_metrics_interval_seconds: float = 5.0

    db_pool_min_size: int = 1
    db_pool_max_size: int = 10
    # Server-side limits on every session, so that a process paused or wedged inside a
    # transaction cannot hold its locks for good: waiting for a lock fails after
    # `db_lock_timeout_ms`, a statement after `db_statement_timeout_ms`, and a session
    # idle inside a transaction is ended after `db_idle_in_transaction_timeout_ms` (longer
    # than any outside call made inside a transaction, such as the card processor's).
    db_lock_timeout_ms: int = 2000
    db_statement_timeout_ms: int = 5000
    db_idle_in_transaction_timeout_ms: int = 10000
    # Every call to a dependency is bounded, so a dead dependency costs a fast 503.
    dependency_timeout_seconds: float = 1.0
    # How long SIGTERM waits for in-flight requests before closing connections.
    shutdown_grace_seconds: int = 20
    # At start-up, how long the instance waits for its critical dependencies (and auth's
    # signing keys) before it opens its port anyway (kit.app.settle).
    startup_ready_wait_seconds: float = 5.0

    @field_validator("redis_cluster_nodes")
    @classmethod
    def _cluster_nodes_parses(cls, value: str) -> str:
        if value.strip() and not parse_addresses(value, setting="REDIS_CLUSTER_NODES"):
            raise ValueError(f"REDIS_CLUSTER_NODES: {value!r} names no node")
        return value

    @field_validator("redis_address_map")
    @classmethod
    def _address_map_parses(cls, value: str) -> str:
        parse_address_map(value, setting="REDIS_ADDRESS_MAP")
        return value

    @model_validator(mode="after")
    def _address_map_needs_a_cluster(self) -> ServiceSettings:
        # A map with no cluster to apply it to is most likely a cluster setting whose
        # name was mistyped: the instance would quietly use REDIS_URL instead.
        if self.redis_address_map.strip() and not self.redis_cluster_nodes.strip():
            raise ValueError("REDIS_ADDRESS_MAP is set but REDIS_CLUSTER_NODES is not")
        return self

    @property
    def redis_startup_nodes(self) -> list[Address]:
        return parse_addresses(self.redis_cluster_nodes, setting="REDIS_CLUSTER_NODES")

    @property
    def redis_address_remap(self) -> dict[Address, Address]:
        return parse_address_map(self.redis_address_map, setting="REDIS_ADDRESS_MAP")

    @property
    def instance(self) -> str:
        return self.instance_id or self.service_name

    @property
    def advertised_address(self) -> str:
        return self.service_address or self.http_host

    @property
    def consul_addresses(self) -> list[str]:
        return [a.strip() for a in self.consul_http_addrs.split(",") if a.strip()]
