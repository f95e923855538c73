"""Shopstack's shared service kit."""

from kit.app import create_app
from kit.components import Component
from kit.db import AfterMigrations, Postgres
from kit.errors import DependencyUnavailable, ShopError
from kit.kafka import EventProducer
from kit.redis import Redis
from kit.settings import ServiceSettings

__all__ = [
    "AfterMigrations",
    "Component",
    "DependencyUnavailable",
    "EventProducer",
    "Postgres",
    "Redis",
    "ServiceSettings",
    "ShopError",
    "create_app",
]
