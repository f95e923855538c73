"""The orders service's start-up: the kit's service defaults plus this service's parts."""

from pathlib import Path

from fastapi import FastAPI

from kit import Component, EventProducer, Postgres, Redis, create_app
from orders.config import OrdersSettings

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def build_app(settings: OrdersSettings) -> FastAPI:
    components: list[Component] = [
        Postgres(settings, migrations_dir=MIGRATIONS),
        Redis(settings),
        EventProducer(settings),
    ]
    return create_app(settings, components=components)


app = build_app(OrdersSettings())
