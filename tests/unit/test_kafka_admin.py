"""shopctl's questions to Kafka answer within their timeout whatever the broker does, and
whatever librdkafka does: it runs in a child process that may die."""

from __future__ import annotations

import math
import os
from concurrent.futures import Future
from typing import Any

import pytest

from shopctl.kafka_admin import _Children, admin_client, count_stable

pytestmark = pytest.mark.unit


class SilentAdmin:
    """An admin client whose answers never come: each future stays pending."""

    def describe_consumer_groups(self, names: list[str], **_: Any) -> dict[str, Future[Any]]:
        return {name: Future() for name in names}


def test_a_group_whose_answer_never_comes_counts_zero_instead_of_raising() -> None:
    found = count_stable(SilentAdmin(), ["orders", "payments"], timeout=0.05)  # type: ignore[arg-type]
    assert found == {"orders": 0, "payments": 0}


def test_each_address_has_one_client_for_the_life_of_the_process() -> None:
    # A client made per call and let go with answers pending crashed the process.
    first = admin_client("127.0.0.1:1")
    assert admin_client("127.0.0.1:1") is first
    assert admin_client("127.0.0.1:2") is not first


def test_a_child_that_dies_costs_one_answer_and_the_next_comes_from_a_new_one() -> None:
    children = _Children()
    assert children.ask(math.sqrt, 16.0, timeout=10) == 4.0
    with pytest.raises(TimeoutError):
        children.ask(os._exit, 134, timeout=10)  # as librdkafka's abort() would
    assert children.ask(math.sqrt, 25.0, timeout=10) == 5.0
