"""Every status a route can answer, in the service's OpenAPI document, so that a generated
client or a contract fuzzer meets nothing undocumented. Routes list their refusals with
`problems(...)`; `create_app` adds what any route of a service can answer (503 while a
dependency is away) and rewrites every 4xx and 5xx to the one problem+json schema and
media type that the kit's error handlers really send."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict

from kit.errors import PROBLEM_JSON

_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}
_HEADERS = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    429: _RETRY_AFTER,
    503: _RETRY_AFTER,
}


class Problem(BaseModel):
    """RFC 9457 problem details; each kind of problem may add its own members."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            **({"headers": _HEADERS[status]} if status in _HEADERS else {}),
        }
        for status in statuses
    }


def _as_problems(schema: dict[str, Any]) -> dict[str, Any]:
    ref = {"$ref": "#/components/schemas/Problem"}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for code, response in operation.get("responses", {}).items():
                if code[0] in "45":
                    response["content"] = {PROBLEM_JSON: {"schema": ref}}
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    # FastAPI's own shape for 422, which the kit's handler never sends.
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    return schema


def document_problems(app: FastAPI, *, every_route: tuple[int, ...]) -> Callable[[], Any]:
    """An `app.openapi` that declares `every_route`'s statuses on each operation and the
    problem+json shape on every error response."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    # A body that is not even JSON (or not UTF-8) is refused before
                    # validation, with Starlette's 400.
                    unparsable = (400,) if "requestBody" in operation else ()
                    for code, response in problems(*every_route, *unparsable).items():
                        operation.setdefault("responses", {}).setdefault(str(code), response)
            app.openapi_schema = _as_problems(schema)
        return app.openapi_schema

    return openapi
