"""The stand-in card processor, run as the stack runs it (uvicorn, its own SQLite ledger)
but as a process of its own: test tokens, idempotency keys that replay, refunds, and
faults, with its ledger as the judge of double charges. Its own process, so that the
charges these tests make for no order never reach the stack's ledger, which `make verify`
holds to account."""

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def psp_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    ledger = tmp_path_factory.mktemp("psp") / "ledger.sqlite3"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "psp.app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env={**os.environ, "PSP_LEDGER": str(ledger)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the processor did not start"
            time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture
def psp(psp_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=psp_url) as client:
        yield client
        client.put("/v1/faults", json={})  # leave no fault behind


def charge(reference: str, token: str = "tok_visa", amount: int = 1250) -> dict[str, object]:
    return {"amount_cents": amount, "currency": "EUR", "token": token, "reference": reference}


def test_tokens_decide_and_keys_replay(psp: httpx.Client) -> None:
    order = str(uuid.uuid4())
    first = psp.post("/v1/charges", json=charge(order), headers={"Idempotency-Key": order})
    assert first.status_code == 201 and first.json()["status"] == "captured"
    again = psp.post("/v1/charges", json=charge(order), headers={"Idempotency-Key": order})
    assert (again.status_code, again.json()) == (201, first.json())
    other_body = psp.post(
        "/v1/charges", json=charge(order, amount=999), headers={"Idempotency-Key": order}
    )
    assert other_body.status_code == 422
    assert len(psp.get("/v1/charges", params={"reference": order}).json()) == 1

    declined_ref = str(uuid.uuid4())
    declined = psp.post(
        "/v1/charges",
        json=charge(declined_ref, "tok_declined"),
        headers={"Idempotency-Key": declined_ref},
    )
    assert declined.status_code == 402 and declined.json()["decline_code"] == "card_declined"
    assert psp.get("/v1/charges", params={"reference": declined_ref}).json() == []
    assert psp.post("/v1/charges", json=charge(order)).status_code == 400  # no key
    assert (
        psp.post(
            "/v1/charges", json=charge(order, "tok_stolen"), headers={"Idempotency-Key": "k-x"}
        ).status_code
        == 400
    )


def test_twenty_concurrent_requests_with_one_key_capture_once(psp: httpx.Client) -> None:
    psp.put("/v1/faults", json={"latency_ms": 200})
    order = str(uuid.uuid4())

    async def storm() -> list[int]:
        async with httpx.AsyncClient(base_url=str(psp.base_url), timeout=10) as client:
            responses = await asyncio.gather(
                *(
                    client.post(
                        "/v1/charges", json=charge(order), headers={"Idempotency-Key": order}
                    )
                    for _ in range(20)
                )
            )
        return [r.status_code for r in responses]

    codes = asyncio.run(storm())
    assert codes.count(201) >= 1 and set(codes) <= {201, 409}
    assert len(psp.get("/v1/charges", params={"reference": order}).json()) == 1


def test_charge_then_timeout_leaves_one_capture_for_a_patient_retry(psp: httpx.Client) -> None:
    psp.put("/v1/faults", json={"charge_then_timeout_rate": 1.0, "hold_seconds": 5})
    order = str(uuid.uuid4())
    with pytest.raises(httpx.ReadTimeout):
        psp.post("/v1/charges", json=charge(order), headers={"Idempotency-Key": order}, timeout=0.5)
    # The money moved although the caller never heard so; the same key tells it.
    assert len(psp.get("/v1/charges", params={"reference": order}).json()) == 1
    psp.put("/v1/faults", json={})
    retry = psp.post("/v1/charges", json=charge(order), headers={"Idempotency-Key": order})
    assert retry.status_code == 201
    assert len(psp.get("/v1/charges", params={"reference": order}).json()) == 1
    assert order not in psp.get("/v1/ledger").json()["references_charged_more_than_once"]


def test_transient_errors_record_nothing(psp: httpx.Client) -> None:
    psp.put("/v1/faults", json={"transient_error_rate": 1.0})
    order = str(uuid.uuid4())
    failed = psp.post("/v1/charges", json=charge(order), headers={"Idempotency-Key": order})
    assert failed.status_code == 503
    assert psp.get("/v1/charges", params={"reference": order}).json() == []
    psp.put("/v1/faults", json={})
    assert (
        psp.post("/v1/charges", json=charge(order), headers={"Idempotency-Key": order}).status_code
        == 201
    )


def test_the_ledger_names_double_charges(psp: httpx.Client) -> None:
    order = str(uuid.uuid4())
    for key in ("first-attempt", "careless-second-attempt"):  # two keys: two captures
        psp.post("/v1/charges", json=charge(order), headers={"Idempotency-Key": f"{key}-{order}"})
    assert psp.get("/v1/ledger").json()["references_charged_more_than_once"][order] == 2


def test_a_capture_is_refunded_once_in_full(psp: httpx.Client) -> None:
    order = str(uuid.uuid4())
    captured = psp.post("/v1/charges", json=charge(order), headers={"Idempotency-Key": order})
    charge_id = captured.json()["id"]
    key = {"Idempotency-Key": f"refund-{order}"}
    refund = psp.post("/v1/refunds", json={"charge_id": charge_id}, headers=key)
    assert refund.status_code == 201 and refund.json()["amount_cents"] == 1250
    assert psp.post("/v1/refunds", json={"charge_id": charge_id}, headers=key).json() == (
        refund.json()
    )  # the same key replays
    again = psp.post(
        "/v1/refunds", json={"charge_id": charge_id}, headers={"Idempotency-Key": "other"}
    )
    assert again.status_code == 409
    [capture] = psp.get("/v1/charges", params={"reference": order}).json()
    assert capture["refunded_cents"] == capture["amount_cents"] == 1250
    unknown = psp.post(
        "/v1/refunds", json={"charge_id": "ch_nope"}, headers={"Idempotency-Key": "k-nope"}
    )
    assert unknown.status_code == 404
    assert psp.post("/v1/refunds", json={"charge_id": charge_id}).status_code == 400  # no key
