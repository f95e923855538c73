"""The payments service's start-up: the kit's service defaults plus this service's parts."""

from pathlib import Path

from fastapi import FastAPI

from kit import Component, EventProducer, Postgres, Redis, create_app
from payments.config import PaymentsSettings

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def build_app(settings: PaymentsSettings) -> FastAPI:
    components: list[Component] = [
        Postgres(settings, migrations_dir=MIGRATIONS),
        Redis(settings),
        EventProducer(settings),
    ]
    # Verifies access tokens locally with auth's published keys (its routes come next).
    return create_app(settings, components=components, authenticate=True)


app = build_app(PaymentsSettings())
