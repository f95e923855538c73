"""Settings every service shares, read from environment variables with the same names in
Docker mode and local mode. A service subclasses `ServiceSettings` for its own fields."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    service_name: str
    instance_id: str = Field(default="", description="Unique per instance, e.g. cart-2.")
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: str = "INFO"

    database_url: str | None = None
    redis_url: str | None = None
    kafka_bootstrap_servers: str | None = None

    db_pool_min_size: int = 1
    db_pool_max_size: int = 10
    # Every call to a dependency is bounded, so a dead dependency costs a fast 503.
    dependency_timeout_seconds: float = 1.0
    # How long SIGTERM waits for in-flight requests before closing connections.
    shutdown_grace_seconds: int = 20

    @property
    def instance(self) -> str:
        return self.instance_id or self.service_name
