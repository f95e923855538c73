"""`python -m kit.serve`: run the service named by SERVICE_NAME under uvicorn, the same
command in both modes.

SIGTERM first takes the instance out of Consul and keeps serving for a short grace so
that the gateway and other callers stop sending to it; only then does uvicorn stop
accepting, finish in-flight requests (up to SHUTDOWN_GRACE_SECONDS) and run the app's
shutdown, which closes the pools.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
from types import FrameType

import uvicorn
from fastapi import FastAPI

from kit.consul import ServiceRegistration
from kit.settings import ServiceSettings

log = logging.getLogger("kit.serve")


class DeregisteringServer(uvicorn.Server):
    def __init__(
        self, config: uvicorn.Config, registration: ServiceRegistration | None, grace: float
    ) -> None:
        super().__init__(config)
        self.registration = registration
        self.grace = grace
        self._leaving = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM or self.registration is None or self._leaving:
            super().handle_exit(sig, frame)
            return
        self._leaving = True
        # Signal handlers run between bytecodes of the loop's own thread; the work
        # itself is scheduled onto the loop.
        asyncio.get_running_loop().call_soon(
            lambda: asyncio.ensure_future(self._leave_then_exit(sig))
        )

    async def _leave_then_exit(self, sig: int) -> None:
        assert self.registration is not None
        await self.registration.deregister()
        await asyncio.sleep(self.grace)
        log.info("draining in-flight requests")
        super().handle_exit(sig, None)


def main() -> None:
    settings = ServiceSettings()  # type: ignore[call-arg]  # SERVICE_NAME comes from the environment
    app: FastAPI = importlib.import_module(f"{settings.service_name}.main").app
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        server_header=False,
    )
    server = DeregisteringServer(config, app.state.registration, settings.deregister_grace_seconds)
    server.run()


if __name__ == "__main__":
    main()
