"""slo.yml is read into objectives that the dashboards and alerts can rely on, and its
burn-rate rules are generated from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shopctl import slo_rules
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


def test_the_burn_rate_rules_file_is_what_slo_yml_generates() -> None:
    assert slo_rules.OUT.read_text() == slo_rules.rendered(), "run `make generate`"


def _recorded(document: dict[str, Any], record: str) -> dict[tuple[str, str], str]:
    return {
        (rule["labels"]["service"], rule["labels"]["slo"]): rule["expr"]
        for group in document["groups"]
        for rule in group["rules"]
        if rule.get("record") == record
    }


def test_every_objective_and_bucket_of_slo_yml_reaches_the_rules(tmp_path: Path) -> None:
    path = tmp_path / "slo.yml"
    path.write_text(
        "period_days: 28\nservices:\n"
        "  cart: {availability: 0.999, latency_seconds: 0.1, latency_target: 0.95}\n"
        "  orders: {availability: 0.99, latency_seconds: 2.5, latency_target: 0.9}\n"
    )
    document = slo_rules.document(path)
    targets = _recorded(document, "slo:objective:ratio")
    assert targets == {
        ("cart", "availability"): "vector(0.999)",
        ("cart", "latency"): "vector(0.95)",
        ("orders", "availability"): "vector(0.99)",
        ("orders", "latency"): "vector(0.9)",
    }
    slow = _recorded(document, "slo:bad_events:rate5m")
    assert 'le="0.1"' in slow[("cart", "latency")]
    assert 'le="2.5"' in slow[("orders", "latency")]
    assert 'status=~"5.."' in slow[("orders", "availability")]
    summaries = {
        rule["alert"]: rule["annotations"]["summary"]
        for group in document["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    assert "before the 28 days are out" in summaries["LatencyBudgetBurningSlowly"]
