"""shopctl's questions to Kafka answer within their timeout whatever the broker does."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import pytest

from shopctl.kafka_admin import stable_members

pytestmark = pytest.mark.unit


class SilentAdmin:
    """An admin client whose answers never come: each future stays pending."""

    def describe_consumer_groups(self, names: list[str], **_: Any) -> dict[str, Future[Any]]:
        return {name: Future() for name in names}


def test_a_group_whose_answer_never_comes_counts_zero_instead_of_raising() -> None:
    found = stable_members(SilentAdmin(), ["orders", "payments"], timeout=0.05)  # type: ignore[arg-type]
    assert found == {"orders": 0, "payments": 0}
