"""The orders service's start-up: the kit's service defaults plus this service's parts."""

from pathlib import Path

from fastapi import FastAPI

from kit import EventProducer, Postgres, Redis, create_app
from orders.config import OrdersSettings
from orders.routes import router
from orders.service import OrderService

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def build_app(settings: OrdersSettings) -> FastAPI:
    db = Postgres(settings, migrations_dir=MIGRATIONS)
    app = create_app(
        settings,
        routers=[router],
        components=[db, Redis(settings), EventProducer(settings)],
        authenticate=True,
    )
    app.state.orders = OrderService(db=db)
    return app


app = build_app(OrdersSettings())
