"""The auth service's start-up: the kit's service defaults plus accounts and tokens."""

from pathlib import Path

from fastapi import FastAPI

from auth.config import AuthSettings
from auth.passwords import Passwords
from auth.ratelimit import LoginLimiter
from auth.routes import internal, router
from auth.service import AuthService
from kit import AfterMigrations, Postgres, Redis, create_app
from kit.tokens import TokenVerifier

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def build_app(settings: AuthSettings) -> FastAPI:
    db = Postgres(settings, migrations_dir=MIGRATIONS)
    redis = Redis(settings)
    auth = AuthService(
        db=db,
        limiter=LoginLimiter(redis.client, settings),
        passwords=Passwords(settings),
        settings=settings,
    )
    # Auth verifies its own tokens with the keys in its own database.
    verifier = TokenVerifier(
        auth.jwks,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        refresh_seconds=settings.jwks_refresh_seconds,
    )
    app = create_app(
        settings,
        routers=[router, internal],
        components=[db, redis],
        parts=[AfterMigrations(db, auth.bootstrap, name="signing key and admin")],
        verifier=verifier,
    )
    app.state.auth = auth
    return app


app = build_app(AuthSettings())
