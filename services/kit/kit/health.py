"""`/health/live` answers while the process runs; `/health/ready` answers 200 only when
every critical dependency answers, and names each one with its state either way ("up",
"down", or "degraded" for one the service can do without)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from kit.components import Component
from kit.metrics import DEPENDENCY_UP


async def _probe(component: Component, limit_seconds: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(component.check(), limit_seconds)
    except TimeoutError:
        return {"status": "down", "error": f"no answer within {limit_seconds:g}s"}
    except Exception as exc:
        return {"status": "down", "error": f"{type(exc).__name__}: {exc}".strip()}
    return {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def health_router(
    *, service: str, instance: str, components: Sequence[Component], timeout: float
) -> APIRouter:
    router = APIRouter(prefix="/health", include_in_schema=False)

    @router.get("/live")
    async def live() -> dict[str, str]:
        return {"status": "live", "service": service, "instance": instance}

    @router.get("/ready")
    async def ready() -> JSONResponse:
        results = await asyncio.gather(*(_probe(c, timeout) for c in components))
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
