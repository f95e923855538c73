"""The capacity run's judgement of a step, and of the rate it reports."""

from __future__ import annotations

import pytest

from shopctl.capacity import Step, highest_held

pytestmark = pytest.mark.unit


def step(rate: float, latencies_ms: list[float], **faults: int) -> Step:
    s = Step(rate, 10, sent=len(latencies_ms), latencies_s=[ms / 1000 for ms in latencies_ms])
    for what, count in faults.items():
        if what in ("late", "no_shopper"):
            setattr(s, what, count)
        else:
            s.errors[what] = count
    return s


def test_a_step_holds_only_with_its_p99_in_bound_and_nothing_failed() -> None:
    fast = [100.0] * 99 + [450.0]
    assert step(10, fast).held
    assert not step(10, [100.0] * 98 + [600.0, 600.0]).held  # p99 600 ms
    assert not step(10, fast, **{"POST /orders 503": 1}).held
    assert not step(10, fast, no_shopper=1).held
    assert step(10, fast, late=1).held  # 1 % late is the generator's jitter
    assert not step(10, fast, late=2).held
    assert not step(10, []).held  # nothing confirmed: nothing shown


def test_the_rate_reported_is_the_highest_held_below_every_miss() -> None:
    ok, slow = [100.0] * 100, [900.0] * 100
    steps = [step(10, ok), step(20, ok), step(40, slow), step(30, slow), step(25, ok)]
    assert highest_held(steps) == 25
    # A step that held above one that missed was luck, not capacity.
    assert highest_held([step(10, ok), step(20, slow), step(30, ok)]) == 10
    assert highest_held([step(2, slow)]) == 0
