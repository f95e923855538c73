"""`/health/live` answers while the process runs; `/health/ready` answers 200 only when
every critical dependency answers, and names each one with its state either way ("up",
"down", or "degraded" for one the service can do without).

Critical dependencies are probed while the request waits: readiness is about them. A
dependency the service can do without is read from its last probe, refreshed in the
background, and waited for only briefly: a broker that hangs must not make the answer
later than Consul's check timeout, or Consul would take a healthy instance out of the
gateway for a dependency it does not need."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from kit.components import Component
from kit.metrics import DEPENDENCY_UP

# How long readiness waits for a fresh probe of a non-critical dependency before it
# answers with the last one; well under Consul's 1 s check timeout.
FRESH_WAIT_SECONDS = 0.25


async def _probe(component: Component, limit_seconds: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(component.check(), limit_seconds)
    except TimeoutError:
        return {"status": "down", "error": f"no answer within {limit_seconds:g}s"}
    except Exception as exc:
        return {"status": "down", "error": f"{type(exc).__name__}: {exc}".strip()}
    return {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


class _LastProbe:
    """A non-critical dependency's latest probe result; at most one probe in flight."""

    def __init__(self, component: Component, limit_seconds: float) -> None:
        self.component = component
        self.limit_seconds = limit_seconds
        self.result: dict[str, Any] = {"status": "down", "error": "not checked yet"}
        self._probing: asyncio.Task[None] | None = None

    async def _refresh(self) -> None:
        self.result = await _probe(self.component, self.limit_seconds)

    async def read(self) -> dict[str, Any]:
        if self._probing is None or self._probing.done():
            self._probing = asyncio.create_task(self._refresh())
        # shield: a reader giving up must not cancel the probe the next reader waits on.
        await asyncio.wait([asyncio.shield(self._probing)], timeout=FRESH_WAIT_SECONDS)
        return dict(self.result)


def health_router(
    *, service: str, instance: str, components: Sequence[Component], timeout: float
) -> APIRouter:
    router = APIRouter(prefix="/health", include_in_schema=False)
    optional = {c.name: _LastProbe(c, timeout) for c in components if not c.critical}

    async def state(component: Component) -> dict[str, Any]:
        if component.critical:
            return await _probe(component, timeout)
        return await optional[component.name].read()

    @router.get("/live")
    async def live() -> dict[str, str]:
        return {"status": "live", "service": service, "instance": instance}

    @router.get("/ready")
    async def ready() -> JSONResponse:
        results = await asyncio.gather(*(state(c) for c in components))
        checks = {}
        ok = True
        for component, result in zip(components, results, strict=True):
            up = result["status"] == "up"
            DEPENDENCY_UP.labels(service, component.name).set(1 if up else 0)
            if not up and not component.critical:
                result["status"] = "degraded"
            ok = ok and (up or not component.critical)
            checks[component.name] = result
        body = {
            "status": "ready" if ok else "unavailable",
            "service": service,
            "instance": instance,
            "checks": checks,
        }
        headers = None if ok else {"Retry-After": "2"}
        return JSONResponse(body, status_code=200 if ok else 503, headers=headers)

    return router
