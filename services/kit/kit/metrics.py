"""RED metrics for every route, labelled by the route template (never the raw path,
which would give every id its own series), and the `/metrics` endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests handled, by route template and status.",
    ["service", "method", "route", "status"],
)
DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to handle an HTTP request, by route template.",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
IN_PROGRESS = Gauge(
    "http_requests_in_progress",
    "HTTP requests being handled right now.",
    ["service"],
)
DEPENDENCY_UP = Gauge(
    "dependency_up",
    "1 when the last readiness check of a dependency passed, else 0.",
    ["service", "dependency"],
)

UNMATCHED_ROUTE = "<unmatched>"

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
