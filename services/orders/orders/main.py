"""The orders service's start-up: the kit's service defaults plus checkout and its saga."""

from pathlib import Path

from fastapi import FastAPI

from kit import EventProducer, Postgres, create_app
from kit.consumer import EventConsumer
from kit.outbox import OutboxRelay
from kit.state_metrics import StateGauges
from orders.abandoned import AbandonedAttempts
from orders.cart_client import CartClient
from orders.checkout import Checkout
from orders.config import OrdersSettings
from orders.events import PAYMENT_EVENTS
from orders.figures import READINGS
from orders.idempotency import IdempotencyKeys
from orders.routes import router
from orders.saga import PaymentOutcomes, Redrive
from orders.service import OrderService

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def build_app(settings: OrdersSettings) -> FastAPI:
    db = Postgres(settings, migrations_dir=MIGRATIONS, messaging=True)
    # Checkout writes its events to the outbox, so orders are taken while Kafka is away;
    # only the relay and the consumer wait for it.
    producer = EventProducer(settings, critical=False)
    app = create_app(
        settings,
        routers=[router],
        components=[db, producer],
        calls=["cart"],
        authenticate=True,
    )
    cart = CartClient(app.state.services)
    keys = IdempotencyKeys(db, hold_seconds=settings.idempotency_hold_seconds)
    abandoned = AbandonedAttempts(
        db=db, keys=keys, cart=cart, interval_seconds=settings.redrive_interval_seconds
    )
    app.state.orders = OrderService(db=db)
    app.state.checkout = Checkout(db=db, keys=keys, cart=cart, abandoned=abandoned)
    app.state.parts += [
        abandoned,
        OutboxRelay(db, producer, service="orders"),
        EventConsumer(
            db=db,
            producer=producer,
            bootstrap_servers=settings.kafka_bootstrap_servers or "",
            topics=[PAYMENT_EVENTS],
            group="orders",
            handle=PaymentOutcomes(cart=cart).handle,
            service="orders",
        ),
        Redrive(
            db=db,
            timeout_seconds=settings.saga_timeout_seconds,
            interval_seconds=settings.redrive_interval_seconds,
        ),
        StateGauges(db, READINGS, interval_seconds=settings.state_metrics_interval_seconds),
    ]
    return app


app = build_app(OrdersSettings())
