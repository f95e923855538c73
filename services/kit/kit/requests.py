"""ASGI middleware around every request: the `X-Request-ID` (taken or minted, echoed
back), the RED metrics and one JSON access-log line.

It is plain ASGI rather than BaseHTTPMiddleware so that it sees the matched route in the
scope after routing and adds no task switch per request.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit.logging import request_id_var
from kit.metrics import DURATION, IN_PROGRESS, REQUESTS, UNMATCHED_ROUTE

log = logging.getLogger("kit.access")

# A caller's id is echoed only if it is a sane token; anything else is replaced.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        IN_PROGRESS.labels(self.service).inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            IN_PROGRESS.labels(self.service).dec()
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            method = scope["method"]
            REQUESTS.labels(self.service, method, route, str(status)).inc()
            DURATION.labels(self.service, method, route).observe(elapsed)
            log.info(
                "request",
                extra={
                    "method": method,
                    "route": route,
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            request_id_var.reset(token)


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _VALID_REQUEST_ID.match(candidate) else None
    return None


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE
