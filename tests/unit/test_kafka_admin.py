"""shopctl's questions to Kafka answer within their timeout whatever the broker does, and
whatever librdkafka does: it runs in a child process that may die."""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import Future
from typing import Any

import pytest

from shopctl.kafka_admin import _Children, count_stable

pytestmark = pytest.mark.unit


class SilentAdmin:
    """An admin client whose answers never come: each future stays pending."""

    def describe_consumer_groups(self, names: list[str], **_: Any) -> dict[str, Future[Any]]:
        return {name: Future() for name in names}


def test_a_group_whose_answer_never_comes_counts_zero_instead_of_raising() -> None:
    found = count_stable(SilentAdmin(), ["orders", "payments"], timeout=0.05)  # type: ignore[arg-type]
    assert found == {"orders": 0, "payments": 0}


def test_a_call_that_outlives_its_timeout_gets_its_child_killed_and_a_new_one_answers() -> None:
    children = _Children(count=1, margin=0.5)
    with pytest.raises(TimeoutError):
        children.ask(time.sleep, 30, timeout=0)  # as a librdkafka call that hangs would
    assert children.ask(math.sqrt, 9.0, timeout=10) == 3.0


def test_a_child_that_dies_costs_one_answer_and_the_next_comes_from_a_new_one() -> None:
    children = _Children(count=1)
    assert children.ask(math.sqrt, 16.0, timeout=10) == 4.0
    with pytest.raises(TimeoutError):
        children.ask(os._exit, 134, timeout=10)  # as librdkafka's abort() would
    assert children.ask(math.sqrt, 25.0, timeout=10) == 5.0
