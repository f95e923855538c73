"""ASGI middleware around every request: the `X-Request-ID` (taken or minted, echoed
back), the RED metrics and one JSON access-log line.

It is plain ASGI rather than BaseHTTPMiddleware so that it sees the matched route in the
scope after routing and adds no task switch per request. It runs on every request, so it
keeps its per-request work small: metric children are looked up once per label set, and
the access line goes straight to the log's buffer (kit.logging).
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kit.logging import access_log, request_id_var
from kit.metrics import DURATION, IN_PROGRESS, REQUESTS, UNMATCHED_ROUTE

# A caller's id is echoed only if it is a sane token; anything else is replaced.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# The method is the client's word: any other is counted as OTHER, so that made-up methods
# cannot grow the metrics' label sets (and the cache of their children) without bound.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service
        self.in_progress = IN_PROGRESS.labels(service)
        # prometheus_client's labels() takes a lock and builds a key on every call.
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._timers: dict[tuple[str, str], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        echoed = (b"x-request-id", request_id.encode())
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        self.in_progress.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.in_progress.dec()
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            method = scope["method"]
            self._count(method if method in _METHODS else "OTHER", route, status, elapsed)
            access = access_log()
            if access is not None:
                access.write(
                    request_id,
                    {
                        "method": method,
                        "route": route,
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
            request_id_var.reset(token)

    def _count(self, method: str, route: str, status: int, elapsed: float) -> None:
        counter = self._counters.get((method, route, status))
        if counter is None:
            counter = REQUESTS.labels(self.service, method, route, str(status))
            self._counters[(method, route, status)] = counter
        counter.inc()
        timer = self._timers.get((method, route))
        if timer is None:
            timer = DURATION.labels(self.service, method, route)
            self._timers[(method, route)] = timer
        timer.observe(elapsed)


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
