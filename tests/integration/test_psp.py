"""The stand-in card processor, as the stack runs it: test tokens, idempotency keys that
replay, and faults, with its own ledger as the judge of double charges."""

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest

from shopctl.local import LocalStack

pytestmark = pytest.mark.integration


@pytest.fixture
def psp(stack: LocalStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{stack.settings['PSP_PORT']}") as client:
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


def test_twenty_concurrent_requests_with_one_key_capture_once(
    stack: LocalStack, psp: httpx.Client
) -> None:
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
