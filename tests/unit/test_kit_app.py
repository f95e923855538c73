import asyncio
import json
import logging
import time

import pytest
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from pydantic import BaseModel, Field

from kit import DependencyUnavailable, ServiceSettings, ShopError, create_app
from kit.app import settle
from kit.logging import JsonFormatter, request_id_var
from tests.unit.kit_fakes import FakeComponent

pytestmark = pytest.mark.unit


class OutOfStock(ShopError):
    status = 409
    type = "out-of-stock"
    title = "Out of stock"


class Line(BaseModel):
    quantity: int = Field(ge=1, le=99)


router = APIRouter()


@router.get("/things/{thing_id}")
async def read_thing(thing_id: int) -> dict[str, int]:
    return {"id": thing_id}


@router.post("/lines")
async def add_line(line: Line) -> dict[str, int]:
    return {"quantity": line.quantity}


@router.get("/sold-out")
async def sold_out() -> None:
    raise OutOfStock("product p1 has 0 left", product_ids=["p1"])


@router.get("/db-down")
async def db_down() -> None:
    try:
        raise ConnectionError("connection refused by 10.0.0.5:5432")
    except ConnectionError as exc:
        raise DependencyUnavailable("postgres") from exc


@router.get("/bug")
async def bug() -> None:
    raise RuntimeError("secret internals")


def make_client(*components: FakeComponent) -> TestClient:
    settings = ServiceSettings(service_name="unit", instance_id="unit-1")
    app = create_app(settings, routers=[router], components=components)
    return TestClient(app, raise_server_exceptions=False)


def test_validation_error_is_problem_json_naming_the_field() -> None:
    with make_client() as client:
        response = client.post("/lines", json={"quantity": 0})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith("/validation-error")
    assert "body.quantity" in body["detail"]
    assert body["errors"][0]["location"] == ["body", "quantity"]


def test_domain_error_keeps_its_status_type_and_extensions() -> None:
    with make_client() as client:
        body = client.get("/sold-out").json()
    assert body["status"] == 409
    assert body["type"].endswith("/out-of-stock")
    assert body["product_ids"] == ["p1"]
    assert body["instance"] == "/sold-out"


def test_dependency_outage_is_503_with_retry_after_and_its_cause_logged(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with make_client() as client:
        response = client.get("/db-down")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert response.json()["dependency"] == "postgres"
    assert "10.0.0.5" not in response.text
    # The service's JSON log, as the operator reads it.
    lines = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line]
    (logged,) = [line for line in lines if line["message"] == "dependency unavailable"]
    assert (logged["level"], logged["dependency"]) == ("warning", "postgres")
    assert "connection refused by 10.0.0.5:5432" in logged["cause"]


def test_unexpected_error_is_500_without_internals() -> None:
    with make_client() as client:
        response = client.get("/bug")
    assert response.status_code == 500
    assert "secret" not in response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_unknown_route_is_problem_json_404() -> None:
    with make_client() as client:
        response = client.get("/nowhere")
    assert response.status_code == 404
    assert response.json()["type"].endswith("/not-found")


def test_request_id_is_echoed_or_minted() -> None:
    with make_client() as client:
        given = client.get("/health/live", headers={"X-Request-ID": "abc-123"})
        minted = client.get("/health/live")
        hostile = client.get("/health/live", headers={"X-Request-ID": "a b\x7f<script>"})
    assert given.headers["x-request-id"] == "abc-123"
    assert len(minted.headers["x-request-id"]) == 32
    assert hostile.headers["x-request-id"] != "a b\x7f<script>"


def _requests(route: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "http_requests_total",
        {"service": "unit", "method": "GET", "route": route, "status": status},
    )
    return value or 0.0


def test_metrics_label_the_route_template_never_the_raw_path() -> None:
    before = _requests("/things/{thing_id}", "200")
    with make_client() as client:
        client.get("/things/41")
        client.get("/things/42")
        client.get("/no/such/path")
        exposition = client.get("/metrics").text
    assert _requests("/things/{thing_id}", "200") == before + 2
    assert "/things/41" not in exposition
    assert _requests("<unmatched>", "404") >= 1


def test_a_made_up_method_is_counted_as_other_not_as_a_label_of_its_own() -> None:
    def count(method: str) -> float:
        labels = {"service": "unit", "method": method, "route": "<unmatched>", "status": "404"}
        return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0

    before = count("OTHER")
    with make_client() as client:
        client.request("BREW", "/no/such/path")
        client.request("FROB", "/no/such/path")
    assert count("OTHER") == before + 2
    assert count("BREW") == 0.0


def test_routes_are_one_flat_table_the_services_own_first() -> None:
    prefixed = APIRouter(prefix="/shelves", tags=["shelves"])

    @prefixed.get("/{shelf_id}")
    async def shelf(shelf_id: int) -> dict[str, int]:
        return {"shelf": shelf_id}

    settings = ServiceSettings(service_name="unit", instance_id="unit-1")
    app = create_app(settings, routers=[router, prefixed])
    paths = [getattr(route, "path", None) for route in app.router.routes]
    # No nested branch (include_router's), matched twice per request: every entry is a route.
    assert None not in paths
    assert paths.index("/shelves/{shelf_id}") < paths.index("/health/live")
    assert paths.index("/metrics") < paths.index("/openapi.json")
    with TestClient(app) as client:
        assert client.get("/shelves/7").json() == {"shelf": 7}
        assert client.delete("/shelves/7").status_code == 405
        assert "/shelves/{shelf_id}" in client.get("/openapi.json").json()["paths"]


def test_a_router_with_settings_of_its_own_is_refused() -> None:
    guarded = APIRouter(dependencies=[Depends(lambda: None)])

    @guarded.get("/guarded")
    async def hidden() -> None:
        return None

    settings = ServiceSettings(service_name="unit", instance_id="unit-1")
    with pytest.raises(ValueError, match="include it"):
        create_app(settings, routers=[guarded])


def test_ready_names_each_dependency_and_fails_when_one_is_down() -> None:
    with make_client(FakeComponent("postgres", healthy=False), FakeComponent("redis")) as client:
        response = client.get("/health/ready")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["postgres"]["status"] == "down"
    assert "refused" in checks["postgres"]["error"]
    assert checks["redis"]["status"] == "up"


def test_a_non_critical_dependency_down_is_degraded_but_ready() -> None:
    with make_client(
        FakeComponent("postgres"), FakeComponent("redis", healthy=False, critical=False)
    ) as client:
        response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["redis"]["status"] == "degraded"


def test_ready_is_200_when_every_dependency_answers() -> None:
    with make_client(FakeComponent("postgres"), FakeComponent("redis")) as client:
        response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


def test_a_hanging_dependency_makes_ready_fail_fast() -> None:
    with make_client(FakeComponent("kafka", hangs=True)) as client:
        response = client.get("/health/ready")
    assert response.status_code == 503
    assert "no answer within" in response.json()["checks"]["kafka"]["error"]


def test_a_hanging_optional_dependency_never_makes_ready_late() -> None:
    # Consul gives /health/ready 1 s (consul_check_timeout) before it drops the instance.
    with make_client(
        FakeComponent("postgres"), FakeComponent("kafka", hangs=True, critical=False)
    ) as client:
        for _ in range(3):
            started = time.perf_counter()
            response = client.get("/health/ready")
            assert time.perf_counter() - started < 1.0
            assert response.status_code == 200
            assert response.json()["checks"]["kafka"]["status"] == "degraded"


def test_an_optional_dependency_is_read_fresh_once_it_answers() -> None:
    kafka = FakeComponent("kafka", healthy=False, critical=False)
    with make_client(kafka) as client:
        first = client.get("/health/ready").json()["checks"]["kafka"]
        kafka.healthy = True
        second = client.get("/health/ready").json()["checks"]["kafka"]
    assert first["status"] == "degraded"
    assert "refused" in first["error"]
    assert second["status"] == "up"


def test_components_start_with_the_app_and_stop_in_reverse() -> None:
    first, second = FakeComponent("a"), FakeComponent("b")
    order: list[str] = []
    first.events, second.events = order, order
    with make_client(first, second):
        assert order == ["start", "start"]
    assert order == ["start", "start", "stop", "stop"]


def test_json_log_lines_carry_request_id_and_extras() -> None:
    formatter = JsonFormatter("cart", "cart-2")
    record = logging.makeLogRecord({"msg": "hello", "levelname": "INFO", "route": "/cart"})
    token = request_id_var.set("rid-1")
    try:
        line = json.loads(formatter.format(record))
    finally:
        request_id_var.reset(token)
    assert line["message"] == "hello"
    assert line["request_id"] == "rid-1"
    assert line["instance"] == "cart-2"
    assert line["route"] == "/cart"


class _Keys:
    def __init__(self) -> None:
        self.loaded = False


def test_start_up_waits_for_critical_dependencies_then_keys_but_not_for_ever() -> None:
    async def scenario() -> tuple[float, float, float]:
        loop = asyncio.get_running_loop()
        db = FakeComponent("postgres", healthy=False)
        cache = FakeComponent("redis", healthy=False, critical=False)
        keys = _Keys()
        loop.call_later(0.3, setattr, db, "healthy", True)
        loop.call_later(0.6, setattr, keys, "loaded", True)
        started = loop.time()
        await settle([db, cache], keys, within=5)  # type: ignore[arg-type]
        ready_after = loop.time() - started
        started = loop.time()
        await settle([FakeComponent("postgres", hangs=True)], None, within=0.5)
        hung_after = loop.time() - started
        started = loop.time()
        await settle([FakeComponent("postgres")], None, within=5)
        return ready_after, hung_after, loop.time() - started

    ready_after, hung_after, at_once = asyncio.run(scenario())
    # Ready once Postgres answers and the keys are in, whatever a non-critical part says.
    assert 0.6 <= ready_after < 1.5
    # A dependency that hangs costs the start-up `within`, no more.
    assert 0.5 <= hung_after < 1.0
    assert at_once < 0.1
