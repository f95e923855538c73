"""The cart service's start-up: the kit's service defaults plus this service's parts."""

from pathlib import Path

from fastapi import FastAPI

from cart.config import CartSettings
from kit import Component, Postgres, Redis, create_app

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def build_app(settings: CartSettings) -> FastAPI:
    components: list[Component] = [Postgres(settings, migrations_dir=MIGRATIONS), Redis(settings)]
    # Verifies access tokens locally with auth's published keys (its routes come next).
    return create_app(settings, components=components, authenticate=True)


app = build_app(CartSettings())
