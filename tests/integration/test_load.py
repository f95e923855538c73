"""`make load`, short: Locust's journeys through the real gateway pass the SLO gates with no
5xx, the invariants hold afterwards, Prometheus saw the run, and the same figures fail
against a gate nobody can meet."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopctl.load import new_run, profile_with, run_locust, table, verdict_of
from shopctl.local import LocalStack
from shopctl.verify import check_all
from tests.integration.monitoring import prometheus, query

pytestmark = pytest.mark.integration


def test_a_short_load_passes_its_slos_and_leaves_the_invariants_whole(
    stack: LocalStack, tmp_path: Path
) -> None:
    run = new_run(
        stack.settings,
        "smoke",
        profile_with("smoke", users=12, spawn_rate=6, duration_s=25),
    )
    run_locust(run, stack.settings)
    verdict = verdict_of(run)
    print(table(verdict))
    assert verdict.passed, verdict.breaches
    assert verdict.server_errors == 0
    served = {f"{e.method} {e.name}": e for e, _, _ in verdict.rows}
    # Every kind of user ran: shoppers to the saga's end, and the abuser's bad input.
    assert served["JOURNEY checkout → CONFIRMED"].requests > 0
    assert served["GET /products"].requests > served["POST /orders"].requests
    assert any(name.startswith("PUT bad:") for name in served)
    assert (run.out / "report.html").stat().st_size > 10_000

    failed = [c.name for c in check_all(stack.settings, settle_seconds=20) if not c.ok]
    assert failed == []

    # The run registered in Consul while it went, so Prometheus scraped its figures (the
    # series went stale when the run left; the last value of each is kept).
    with prometheus(stack) as client:
        seen = query(client, 'sum(last_over_time(locust_requests_total{job="locust"}[10m]))')
    assert seen and float(seen[0]["value"][1]) > 0

    impossible = tmp_path / "slo.yml"
    impossible.write_text(
        "load:\n  error_ratio: 0\n  server_errors: 0\n  entries:\n    default: {p95: 0, p99: 0}\n"
    )
    strict = verdict_of(run, impossible)
    assert not strict.passed
    assert any("GET /products: p99" in breach for breach in strict.breaches)
