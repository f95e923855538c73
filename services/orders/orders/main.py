"""The orders service's start-up: the kit's service defaults plus checkout and its saga."""

from pathlib import Path

from fastapi import FastAPI

from kit import EventProducer, Postgres, Redis, create_app
from kit.consumer import EventConsumer
from kit.outbox import OutboxRelay
from orders.checkout import Checkout
from orders.config import OrdersSettings
from orders.events import PAYMENT_EVENTS
from orders.idempotency import IdempotencyKeys
from orders.routes import router
from orders.saga import PaymentOutcomes, Redrive
from orders.service import OrderService

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def build_app(settings: OrdersSettings) -> FastAPI:
    db = Postgres(settings, migrations_dir=MIGRATIONS, messaging=True)
    producer = EventProducer(settings)
    app = create_app(
        settings,
        routers=[router],
        components=[db, Redis(settings), producer],
        calls=["cart"],
        authenticate=True,
    )
    services = app.state.services
    outcomes = PaymentOutcomes(services=services)
    app.state.orders = OrderService(db=db)
    app.state.checkout = Checkout(
        db=db,
        keys=IdempotencyKeys(db, hold_seconds=settings.idempotency_hold_seconds),
        services=services,
    )
    app.state.parts += [
        OutboxRelay(db, producer, service="orders"),
        EventConsumer(
            db=db,
            producer=producer,
            bootstrap_servers=settings.kafka_bootstrap_servers or "",
            topics=[PAYMENT_EVENTS],
            group="orders",
            handle=outcomes.handle,
            service="orders",
        ),
        Redrive(
            db=db,
            timeout_seconds=settings.saga_timeout_seconds,
            interval_seconds=settings.redrive_interval_seconds,
        ),
    ]
    return app


app = build_app(OrdersSettings())
