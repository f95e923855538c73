"""One error shape for the whole platform: RFC 9457 `application/problem+json`.

    ShopError                      domain errors; subclasses set status and a stable type
    ├── DependencyUnavailable      503 + Retry-After: a database, cache or broker is down
    └── (each service's errors)
    TransientFailure               not an answer: an outside system gave no final word, so
                                   the same work is tried again later (never dead-lettered)

Starlette's HTTPException (404 for unknown routes, 405, ...) and request validation
errors are rendered in the same shape; anything else becomes a 500 without a trace.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

PROBLEM_BASE = "https://shopstack.dev/problems/"
PROBLEM_JSON = "application/problem+json"

log = logging.getLogger("kit.errors")


class ShopError(Exception):
    status: ClassVar[int] = 400
    type: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad Request"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions

    def headers(self) -> dict[str, str]:
        return {}


class DependencyUnavailable(ShopError):
    status = 503
    type = "dependency-unavailable"
    title = "Service Unavailable"

    def __init__(self, dependency: str, retry_after_seconds: int = 2) -> None:
        super().__init__(f"{dependency} is not answering; try again shortly.")
        self.retry_after_seconds = retry_after_seconds
        self.extensions = {"dependency": dependency}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class TransientFailure(Exception):
    """Raised by a consumer's handler when the outcome is unknown or a dependency is briefly
    away; the event is retried with backoff instead of being dead-lettered."""


def problem(
    *,
    status: int,
    type_: str,
    title: str,
    detail: str,
    instance: str,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body = {
        "type": PROBLEM_BASE + type_,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extensions,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


async def _shop_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ShopError)
    if isinstance(exc, DependencyUnavailable):
        # The client is told only which dependency; what it raised is for the operator.
        log.warning(
            "dependency unavailable",
            extra={"dependency": exc.extensions["dependency"], "cause": repr(exc.__cause__)},
        )
    return problem(
        status=exc.status,
        type_=exc.type,
        title=exc.title,
        detail=exc.detail,
        instance=request.url.path,
        headers=exc.headers(),
        **exc.extensions,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"location": list(err["loc"]), "message": err["msg"], "type": err["type"]}
        for err in exc.errors()
    ]
    fields = ", ".join(".".join(str(p) for p in err["location"]) for err in errors)
    return problem(
        status=422,
        type_="validation-error",
        title="Unprocessable Content",
        detail=f"The request is not valid; fix these fields: {fields}.",
        instance=request.url.path,
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return problem(
        status=exc.status_code,
        type_=slug,
        title=_reason(exc.status_code),
        detail=str(exc.detail),
        instance=request.url.path,
        headers=headers,
    )


def _allowed_methods(request: Request) -> str:
    """Every method the path answers: Starlette names only the first route that matched
    the path, and GET /orders and POST /orders are two routes."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return ", ".join(sorted(methods))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", extra={"path": request.url.path})
    return problem(
        status=500,
        type_="internal-error",
        title="Internal Server Error",
        detail="Something went wrong on our side; the request id identifies it in the logs.",
        instance=request.url.path,
    )


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ShopError, _shop_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
