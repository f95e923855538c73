"""`create_app`: the service defaults every Shopstack service starts with (settings,
JSON logs, request ids, RED metrics, health, problem+json errors, component lifecycle),
so a service's `main.py` only names its routers and its dependencies."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from kit import metrics
from kit.components import Component, Lifecycle
from kit.consul import ConsulAgents, ServiceRegistration
from kit.discovery import ServiceDiscovery
from kit.errors import install_error_handlers
from kit.health import health_router
from kit.logging import configure_logging
from kit.openapi import document_problems
from kit.requests import RequestContextMiddleware
from kit.service_client import ServiceClient
from kit.settings import ServiceSettings
from kit.tokens import TokenVerifier, jwks_from

log = logging.getLogger("kit.app")


def create_app(
    settings: ServiceSettings,
    *,
    routers: Sequence[APIRouter] = (),
    components: Sequence[Component] = (),
    parts: Sequence[Lifecycle] = (),
    calls: Sequence[str] = (),
    authenticate: bool = False,
    verifier: TokenVerifier | None = None,
) -> FastAPI:
    """`components` are this instance's own dependencies (they decide readiness);
    `parts` are the service's own background work (started after the components; more
    can be appended to `app.state.parts` before start-up);
    `calls` names the services it calls, found through Consul. `authenticate` makes the
    `CurrentUser` dependency work, verifying tokens with keys fetched from auth (auth
    itself passes a `verifier` that reads its own keys)."""
    if authenticate and verifier is None and "auth" not in calls:
        calls = [*calls, "auth"]
    configure_logging(
        service=settings.service_name, instance=settings.instance, level=settings.log_level
    )
    # Started after the components in this order, stopped in reverse before them; the
    # Consul registration comes last, so an instance is announced only when all its
    # parts run, and leaves first.
    wiring: list[Lifecycle] = []
    registration: ServiceRegistration | None = None
    client: ServiceClient | None = None
    agents: ConsulAgents | None = None
    if settings.consul_addresses:
        agents = ConsulAgents(settings.consul_addresses)
        if calls:
            discovery = ServiceDiscovery(agents, calls, caller=settings.service_name)
            client = ServiceClient(
                discovery,
                caller=settings.service_name,
                timeout=settings.dependency_timeout_seconds * 2,
            )
            wiring += [discovery, client]
        registration = ServiceRegistration(settings, agents)
    elif calls:
        raise ValueError(f"{settings.service_name} calls {list(calls)} but has no Consul")
    if authenticate and verifier is None:
        if client is None:
            raise ValueError("verifying tokens needs auth's keys, found through Consul")
        verifier = TokenVerifier(
            jwks_from(client),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            refresh_seconds=settings.jwks_refresh_seconds,
        )
    if verifier is not None:
        wiring.insert(0, verifier)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started = [*components, *wiring, *app.state.parts]
        for part in started:
            await part.start()
        await settle(components, verifier, within=settings.startup_ready_wait_seconds)
        # Everything built so far (modules, routes, models, pools) lives as long as the
        # instance: out of the collector's sight, full collections stop walking it.
        gc.freeze()
        if registration:
            await registration.start()
            started.append(registration)
        try:
            yield
        finally:
            # Uvicorn runs this after the server stopped accepting and in-flight requests
            # finished, so nothing still needs the pools being closed here.
            for part in reversed(started):
                await part.stop()
            if agents:
                await agents.close()

    app = FastAPI(
        title=f"shopstack-{settings.service_name}",
        lifespan=lifespan,
        # Our metrics are Prometheus's (kit.metrics); FastAPI's OpenTelemetry hooks would
        # only ask, on every request, whether a provider has been configured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.components = {c.name: c for c in components}
    # The service's own background parts; it may add ones that need `app.state.services`.
    app.state.parts = list(parts)
    app.state.registration = registration
    app.state.services = client
    app.state.verifier = verifier
    app.add_middleware(RequestContextMiddleware, service=settings.service_name)
    install_error_handlers(app)
    health = health_router(
        service=settings.service_name,
        instance=settings.instance,
        components=components,
        timeout=settings.dependency_timeout_seconds + 0.5,
    )
    _route_flat(app, [*routers, health, metrics.router])
    # Any route may meet a dependency that is away.
    app.openapi = document_problems(app, every_route=(503,))  # type: ignore[method-assign]
    return app


def _route_flat(app: FastAPI, routers: Sequence[APIRouter]) -> None:
    """The routers' routes in one flat table, matched in order: the service's own (every
    shopper's request) first, then health and metrics (a few a second), then the docs.
    FastAPI's include_router keeps each router as a branch that matches a request twice
    (once to choose the branch, again inside it) through extra scope bookkeeping: a third of
    a bare health check's CPU. Our routers carry only a prefix, tags and whether they are
    documented, which their routes already hold, so nothing of include_router is lost."""
    own: list[BaseRoute] = []
    for router in routers:
        if router.dependencies or router.responses or router.callbacks:
            raise ValueError(f"router {router.prefix!r}: include it, its routes lack its settings")
        for route in router.routes:
            if not isinstance(route, APIRoute):
                raise ValueError(f"router {router.prefix!r}: {route!r} is not a plain route")
            own.append(route)
    app.router.routes[:] = [*own, *app.router.routes]


async def settle(
    components: Sequence[Component], verifier: TokenVerifier | None, *, within: float
) -> None:
    """Until the critical components answer and tokens can be verified, for at most
    `within`. Uvicorn opens the port only after this: an instance restarted before Consul
    noticed its death, still listed by the gateway, refuses connections meanwhile (and
    nginx tries the next instance) instead of answering 503 before it can serve. Past
    `within` it starts anyway, not ready, and says why in its readiness."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    critical = [c for c in components if c.critical]
    while loop.time() < deadline:
        try:
            for component in critical:
                await asyncio.wait_for(component.check(), max(0.1, deadline - loop.time()))
        except Exception:  # not yet: try again until the deadline
            await asyncio.sleep(0.1)
            continue
        if verifier is None or verifier.loaded:
            return
        await asyncio.sleep(0.05)
    log.warning("starting before every dependency answers", extra={"waited_s": within})
