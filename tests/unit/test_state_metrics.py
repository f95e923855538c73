"""kit.state_metrics: a label set that vanished from the database reads 0, not its last
value (a status whose orders all moved on must not keep showing them)."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge

from kit.state_metrics import Reading, StateGauges

pytestmark = pytest.mark.unit


def test_a_label_set_gone_from_the_rows_is_set_to_zero() -> None:
    registry = CollectorRegistry()
    gauge = Gauge("orders_stored", "test", ["status"], registry=registry)
    reading = Reading(gauge, "SELECT 1")
    gauges = StateGauges(db=Any, readings=[reading])  # type: ignore[arg-type]
    gauges._set(reading, [(("PENDING",), 3), (("CONFIRMED",), 5)])
    gauges._set(reading, [(("CONFIRMED",), 8)])
    assert registry.get_sample_value("orders_stored", {"status": "PENDING"}) == 0
    assert registry.get_sample_value("orders_stored", {"status": "CONFIRMED"}) == 8
