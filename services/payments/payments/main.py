"""The payments service's start-up: the kit's service defaults plus charging orders."""

from pathlib import Path

import httpx
from fastapi import FastAPI

from kit import EventProducer, Postgres, Redis, create_app
from kit.consumer import EventConsumer
from kit.outbox import OutboxRelay
from payments.charging import Charging
from payments.config import PaymentsSettings
from payments.events import ORDER_EVENTS
from payments.routes import router

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


class ProcessorClient:
    """The HTTP client to the card processor, closed with the app."""

    def __init__(self, settings: PaymentsSettings) -> None:
        self.http = httpx.AsyncClient(
            base_url=settings.psp_url, timeout=settings.psp_timeout_seconds
        )

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.http.aclose()


def build_app(settings: PaymentsSettings) -> FastAPI:
    db = Postgres(settings, migrations_dir=MIGRATIONS, messaging=True)
    producer = EventProducer(settings)
    psp = ProcessorClient(settings)
    consumer = EventConsumer(
        db=db,
        producer=producer,
        bootstrap_servers=settings.kafka_bootstrap_servers or "",
        topics=[ORDER_EVENTS],
        group="payments",
        handle=Charging(psp=psp.http).handle,
        service="payments",
    )
    app = create_app(
        settings,
        routers=[router],
        components=[db, Redis(settings), producer],
        parts=[psp, OutboxRelay(db, producer, service="payments"), consumer],
        authenticate=True,
    )
    app.state.db = db
    return app


app = build_app(PaymentsSettings())
