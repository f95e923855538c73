"""The auth service's start-up: the kit's service defaults plus this service's parts."""

from pathlib import Path

from fastapi import FastAPI

from kit import Postgres, Redis, create_app

from auth.config import AuthSettings

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def build_app(settings: AuthSettings) -> FastAPI:
    components = [Postgres(settings, migrations_dir=MIGRATIONS), Redis(settings)]
    return create_app(settings, components=components)


app = build_app(AuthSettings())
