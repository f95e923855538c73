"""A kit app with one slow route, to watch SIGTERM drain an in-flight request."""

import asyncio

from fastapi import APIRouter

from kit import ServiceSettings, create_app

router = APIRouter()


@router.get("/slow")
async def slow(seconds: float = 2.0) -> dict[str, float]:
    await asyncio.sleep(seconds)
    return {"slept": seconds}


app = create_app(ServiceSettings(service_name="slow"), routers=[router])
