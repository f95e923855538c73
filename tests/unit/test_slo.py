"""slo.yml is read into objectives that the dashboards and alerts can rely on."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopctl.slo import objectives
from shopctl.topology import SERVICES

pytestmark = pytest.mark.unit


def test_every_service_has_an_objective_on_a_histogram_bucket() -> None:
    found = {o.service: o for o in objectives()}
    assert sorted(found) == sorted(SERVICES)
    assert found["cart"].le == "0.25" and found["auth"].le == "1.0"


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ("availability: 1.2, latency_seconds: 0.5, latency_target: 0.99", "availability"),
        ("availability: 0.99, latency_seconds: 0.3, latency_target: 0.99", "latency_seconds"),
    ],
)
def test_a_bad_objective_is_refused_with_what_to_fix(
    tmp_path: Path, values: str, complaint: str
) -> None:
    path = tmp_path / "slo.yml"
    path.write_text(f"period_days: 30\nservices:\n  cart: {{{values}}}\n")
    with pytest.raises(ValueError, match=complaint):
        objectives(path)
