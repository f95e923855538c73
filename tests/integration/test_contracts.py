"""Each service's OpenAPI document against the service itself: Schemathesis with all its
checks generates valid and invalid requests for every operation and finds no status,
header, media type or body that the document does not declare, and no server error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from shopctl.local import LocalStack
from shopctl.topology import SERVICES
from tests.integration.test_auth import bearer, login, new_user

pytestmark = pytest.mark.integration

CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture(scope="module")
def customer(stack: LocalStack) -> dict[str, str]:
    gateway = f"http://127.0.0.1:{stack.settings['GATEWAY_PORT']}"
    with httpx.Client(base_url=gateway, timeout=30) as gw:
        return bearer(login(gw, new_user(gw))["access_token"])


@pytest.mark.parametrize("service", SERVICES)
def test_the_service_answers_only_what_its_openapi_document_declares(
    stack: LocalStack, customer: dict[str, str], service: str
) -> None:
    instance = stack.topology.instances(service)[0]
    st = Path(sys.executable).with_name("st")
    run = subprocess.run(
        [
            str(st),
            "--config-file",
            str(CONFIG),
            "run",
            f"http://{instance.address}/openapi.json",
            "--checks",
            "all",
            "--header",
            f"Authorization: {customer['Authorization']}",
            "--max-examples",
            "20",
            "--seed",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    summary = [line for line in run.stdout.splitlines() if "generated" in line]
    print(f"\n{service}: {summary[-1].strip() if summary else run.stdout[-300:]}")
    assert run.returncode == 0, run.stdout[-6000:]
