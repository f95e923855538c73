"""`make capacity`, short: open-loop checkouts at two low rates are confirmed within the
bound, measured from each POST to the saga's confirmation."""

from __future__ import annotations

import pytest

from shopctl.capacity import P99_BOUND_S, capacity
from shopctl.local import LocalStack

pytestmark = pytest.mark.integration


def test_low_open_loop_rates_are_held_and_measured(stack: LocalStack) -> None:
    best, steps = capacity(stack.settings, step_seconds=5, rates=(2, 4), shoppers=20)
    assert [s.rate for s in steps] == [2, 4]
    for s in steps:
        assert s.errors == {} and s.no_shopper == 0
        assert len(s.latencies_s) == s.sent == int(s.rate * 5)
        # Each is a real round trip through the saga, not a stand-in figure.
        assert 0.01 < s.quantile(0.5) <= s.quantile(0.99) <= P99_BOUND_S
    assert best == 4
