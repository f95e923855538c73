"""The cart service's start-up: the kit's service defaults plus this service's parts."""

from pathlib import Path

from fastapi import FastAPI

from kit import Postgres, Redis, create_app

from cart.config import CartSettings

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def build_app(settings: CartSettings) -> FastAPI:
    components = [Postgres(settings, migrations_dir=MIGRATIONS), Redis(settings)]
    return create_app(settings, components=components)


app = build_app(CartSettings())
