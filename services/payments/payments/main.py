"""The payments service's start-up: the kit's service defaults plus charging orders."""

from pathlib import Path

from fastapi import FastAPI

from kit import EventProducer, Postgres, create_app
from kit.consumer import EventConsumer
from kit.outbox import OutboxRelay
from kit.state_metrics import StateGauges
from payments.charging import Charging
from payments.config import PaymentsSettings
from payments.events import ORDER_EVENTS
from payments.figures import READINGS
from payments.processor import Processor
from payments.routes import router
from payments.service import PaymentService

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def build_app(settings: PaymentsSettings) -> FastAPI:
    db = Postgres(settings, migrations_dir=MIGRATIONS, messaging=True)
    # No request of payments' API waits on Kafka: the broker being away leaves it ready.
    producer = EventProducer(settings, critical=False)
    processor = Processor(settings)
    consumer = EventConsumer(
        db=db,
        producer=producer,
        bootstrap_servers=settings.kafka_bootstrap_servers or "",
        topics=[ORDER_EVENTS],
        group="payments",
        handle=Charging(processor=processor).handle,
        service="payments",
    )
    app = create_app(
        settings,
        routers=[router],
        components=[db, producer],
        parts=[
            processor,
            OutboxRelay(db, producer, service="payments"),
            consumer,
            StateGauges(db, READINGS, interval_seconds=settings.state_metrics_interval_seconds),
        ],
        authenticate=True,
    )
    app.state.payments = PaymentService(db=db)
    return app


app = build_app(PaymentsSettings())
