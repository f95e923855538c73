"""`create_app`: the service defaults every Shopstack service starts with (settings,
JSON logs, request ids, RED metrics, health, problem+json errors, component lifecycle),
so a service's `main.py` only names its routers and its dependencies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from kit import metrics
from kit.components import Component
from kit.errors import install_error_handlers
from kit.health import health_router
from kit.logging import configure_logging
from kit.requests import RequestContextMiddleware
from kit.settings import ServiceSettings


def create_app(
    settings: ServiceSettings,
    *,
    routers: Sequence[APIRouter] = (),
    components: Sequence[Component] = (),
) -> FastAPI:
    configure_logging(
        service=settings.service_name, instance=settings.instance, level=settings.log_level
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for component in components:
            await component.start()
        try:
            yield
        finally:
            # Uvicorn runs this after the server stopped accepting and in-flight requests
            # finished, so nothing still needs the pools being closed here.
            for component in reversed(components):
                await component.stop()

    app = FastAPI(title=f"shopstack-{settings.service_name}", lifespan=lifespan)
    app.state.settings = settings
    app.state.components = {c.name: c for c in components}
    app.add_middleware(RequestContextMiddleware, service=settings.service_name)
    install_error_handlers(app)
    app.include_router(
        health_router(
            service=settings.service_name,
            instance=settings.instance,
            components=components,
            timeout=settings.dependency_timeout_seconds + 0.5,
        )
    )
    app.include_router(metrics.router)
    for router in routers:
        app.include_router(router)
    return app
