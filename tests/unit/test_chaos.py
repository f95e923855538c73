"""The chaos suite without a stack: its experiment files are valid Chaos Toolkit
experiments that call our own actions and probes, every fault is rolled back, and the
figures of a run are read correctly from Chaos Toolkit's journal and Locust's history."""

from __future__ import annotations

import csv
import inspect
from pathlib import Path
from typing import Any

import pytest
from chaoslib.experiment import ensure_experiment_is_valid

from shopctl.chaos import actions, failover, probes
from shopctl.chaos.expect import (
    Expectation,
    describe_failover,
    failover_of,
    judge,
    judge_failover,
    summary,
)
from shopctl.chaos.report import markdown
from shopctl.chaos.run import (
    Outcome,
    client_view,
    experiments,
    fault_window,
    recovered_after,
    run_figures,
)

pytestmark = pytest.mark.unit

MODULES = {
    "shopctl.chaos.actions": actions,
    "shopctl.chaos.probes": probes,
    "shopctl.chaos.failover": failover,
}
# The list, each as a file.
REQUIRED = {
    "kill-auth-instance", "kill-cart-instance", "kill-orders-instance", "kill-payments-instance",
    "stop-orders", "pause-cart-instance", "kafka-down", "kill-postgres", "stop-redis",
    "kill-consul", "processor-cut-off", "processor-charges-then-times-out",
    "postgres-latency", "kafka-partition", "restart-stack", "kill-consul-leader",
}  # fmt: skip


def _activities(experiment: dict[str, Any]) -> list[dict[str, Any]]:
    hypothesis = experiment["steady-state-hypothesis"]["probes"]
    return [*hypothesis, *experiment["method"], *experiment.get("rollbacks", [])]


def test_every_required_experiment_exists_and_is_valid_for_chaos_toolkit() -> None:
    found = experiments()
    assert found.keys() >= REQUIRED
    for name, experiment in found.items():
        ensure_experiment_is_valid(experiment)
        assert experiment["description"] and experiment["title"], name


def test_experiments_call_our_functions_with_arguments_they_take() -> None:
    for name, experiment in experiments().items():
        for activity in _activities(experiment):
            provider = activity["provider"]
            function = getattr(MODULES[provider["module"]], provider["func"])
            inspect.signature(function).bind(**provider.get("arguments", {}))
            if provider["module"] == "shopctl.chaos.actions":
                assert activity["type"] == "action", name


def test_every_fault_is_held_then_repaired_by_the_method_and_by_a_rollback() -> None:
    undo = {"kill_and_hold": "start", "stop": "start", "pause": "resume", "kill": "start"}
    for name, experiment in experiments().items():
        method = [a["provider"] for a in experiment["method"]]
        rollbacks = [a["provider"] for a in experiment["rollbacks"]]
        funcs = [p["func"] for p in method]
        assert experiment["configuration"]["hold_seconds"] > 0, name
        held = funcs.index("hold")
        faults, repairs = method[:held], method[held + 1 :]
        assert faults and repairs, name
        # The steady state after the method is checked on the repaired stack, and the
        # rollbacks repeat the repair should the method stop midway.
        assert repairs == rollbacks, name
        for fault in faults:
            if fault["func"] == "network_fault":
                assert [r["func"] for r in repairs] == ["heal_network"], name
                continue
            if fault["func"] == "kill_leader":
                assert repairs == [{**fault, "func": "bring_back"}], name
                continue
            if fault["func"] == "stack_down":
                assert [r["func"] for r in repairs] == ["stack_up"], name
                continue
            if fault["func"] == "processor_faults":
                assert {"module": fault["module"], "type": "python", "func": fault["func"]} in [
                    {k: v for k, v in r.items() if k != "arguments"} for r in repairs
                ], name
                assert all(not r.get("arguments") for r in repairs), name
                continue
            assert any(
                r["func"] == undo[fault["func"]]
                and r["arguments"]["targets"] == fault["arguments"]["targets"]
                for r in repairs
            ), f"{name}: nothing repairs {fault}"


def _activity(kind: str, start: str, end: str) -> dict[str, Any]:
    return {"activity": {"type": kind}, "start": start, "end": end}


def test_the_fault_lasts_from_the_first_action_to_the_repair() -> None:
    journal = {
        "run": [
            _activity("action", "2026-12-06T10:00:05", "2026-12-06T10:00:06"),
            _activity("action", "2026-12-06T10:00:06", "2026-12-06T10:00:36"),
            _activity("action", "2026-12-06T10:00:36", "2026-12-06T10:00:38"),
        ],
        # After the steady state was checked: not part of the fault.
        "rollbacks": [_activity("action", "2026-12-06T10:00:51", "2026-12-06T10:00:52")],
        "steady_states": {"after": {"probes": [{"end": "2026-12-06T10:00:50"}]}},
    }
    start, end = fault_window(journal)
    assert end - start == 33
    assert recovered_after(journal) - end == 12


def _history(path: Path, rows: list[tuple[float, int, int]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Timestamp", "Name", "Total Request Count", "Total Failure Count"])
        for at, requests, failures in rows:
            writer.writerow([at, "/products", requests, failures])  # per entry: ignored
            writer.writerow([at, "Aggregated", requests, failures])
    return path


def test_client_view_counts_the_fault_window_and_the_last_failure(tmp_path: Path) -> None:
    history = _history(
        tmp_path / "h.csv",
        [(100, 50, 0), (101, 60, 0), (102, 70, 3), (103, 80, 5), (104, 90, 6), (105, 100, 6)],
    )
    requests, failures, last_failure = client_view(history, start=101, end=103)
    assert (requests, failures, last_failure) == (20, 5, 104)
    assert client_view(history, start=104.5, end=105)[:2] == (10, 0)


def test_a_run_passes_only_when_nothing_was_lost_and_every_invariant_held() -> None:
    good = Outcome("kafka-down", "Kill Kafka", status="completed", invariants=13)
    good.invariants_held = 13
    assert good.passed
    lost = Outcome("kafka-down", "Kill Kafka", status="completed", invariants=13)
    lost.invariants_held, lost.lost = 13, ["0f0e"]
    broken = Outcome("kafka-down", "Kill Kafka", status="completed", invariants=13)
    broken.invariants_held = 12
    deviated = Outcome("kafka-down", "Kill Kafka", status="completed", deviated=True)
    assert not any(o.passed for o in (lost, broken, deviated))
    table = markdown([good, lost])
    assert "| Kill Kafka |" in table and "PASS |" in table and "FAIL: lost orders: 0f0e" in table


def test_run_figures_take_the_slowest_http_answer_and_failed_checkouts(tmp_path: Path) -> None:
    stats = tmp_path / "final_stats.csv"
    with stats.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Type", "Name", "Request Count", "Failure Count", "Max Response Time"])
        writer.writerow(["GET", "/cart", 40, 0, 28000.5])  # held by a paused instance
        writer.writerow(["POST", "/orders", 10, 2, 300])
        writer.writerow(["JOURNEY", "checkout → CONFIRMED", 8, 0, 90000])  # waits on purpose
        writer.writerow(["", "Aggregated", 58, 2, 90000])
    figures = run_figures(stats)
    assert (figures.requests, figures.failed, figures.checkouts_failed) == (58, 2, 2)
    assert figures.slowest_ms == 28000.5


def _failure(
    method: str, name: str, status: int, ms: float, retry_after: str | None = "2"
) -> dict[str, Any]:
    return {"method": method, "name": name, "status": status, "ms": ms, "retry_after": retry_after}


def test_every_experiment_says_what_clients_may_see() -> None:
    said = {name: Expectation.of(e) for name, e in experiments().items()}
    # Losing one instance of anything costs clients nothing; Kafka or the card processor
    # away costs no checkout.
    assert all(said[n].clients == "unaffected" for n in said if n.endswith("-instance"))
    assert said["kill-consul"].clients == "unaffected"
    for name in ("kafka-down", "kafka-partition", "processor-cut-off"):
        assert said[name].checkouts_unaffected, name
    assert all(e.clients != "any" for n, e in said.items() if n != "restart-stack")


def test_a_dependency_loss_allows_only_fast_503s_with_retry_after() -> None:
    allowed = Expectation("fast-503")
    honest = [_failure("GET", "/cart", 503, 40), _failure("POST", "/orders", 503, 1200)]
    assert judge(allowed, honest, slowest_ms=1200) == []
    assert summary(honest) == "2 x 503 with Retry-After (the slowest in 1.2 s)"
    for bad in (
        _failure("GET", "/cart", 503, 40, retry_after=None),
        _failure("GET", "/cart", 503, 30000),
        _failure("POST", "/orders", 502, 40),
        _failure("GET", "/cart", 0, 30000, retry_after=None),
        _failure("JOURNEY", "checkout → CONFIRMED", 0, 120000, retry_after=None),
    ):
        assert judge(allowed, [*honest, bad], slowest_ms=1200), bad
    assert judge(allowed, [], slowest_ms=31000)  # a hang past the gateway's timeout
    no_checkout = Expectation("fast-503", checkouts_unaffected=True)
    assert judge(no_checkout, honest, slowest_ms=1200) == [
        "1 checkouts failed: 1 x 503 with Retry-After (the slowest in 1.2 s)"
    ]
    assert judge(Expectation("unaffected"), honest[:1], slowest_ms=40)
    assert judge(Expectation("any"), [_failure("GET", "/cart", 0, 50, None)], 50) == []


def _failover_journal(resumed: float | None, rejoined: float | None) -> dict[str, Any]:
    kill = {"killed": "consul-1", "writes_resumed_s": resumed, "writes_refused": 11,
            "new_leader": "consul-2"}  # fmt: skip
    following = ["consul-3"] if rejoined is None else ["consul-1", "consul-3"]
    back = {"returned": [{"name": "consul-1", "rejoined_s": rejoined}], "following": following}
    return {"run": [{"output": kill}, {"output": None}, {"output": back}]}


def test_a_failover_within_its_floor_with_the_old_leader_following_passes() -> None:
    said = Expectation.of(experiments()["kill-consul-leader"])
    killed, returned = failover_of(_failover_journal(1.1, 2.3))
    assert judge_failover(said, killed, returned) == []
    assert describe_failover(killed, returned) == (
        "consul-1 killed: writes again after 1.1 s (11 refused), consul-2 leads; "
        "consul-1 back as a follower 2.3 s after its restart"
    )


def test_a_slow_failover_or_an_old_leader_not_following_fails() -> None:
    said = Expectation.of(experiments()["kill-consul-leader"])
    assert said.writes_resume_within_s == 10
    slow = judge_failover(said, *failover_of(_failover_journal(12.5, 2.0)))
    assert slow == ["writes resumed after 12.5 s, not within 10 s"]
    never = judge_failover(said, *failover_of(_failover_journal(None, None)))
    assert never == [
        "writes resumed never, not within 10 s",
        "consul-1 did not rejoin as a follower",
    ]
    # An experiment without the floor is not judged on it.
    assert judge_failover(Expectation(), *failover_of(_failover_journal(None, None))) == []


def test_a_postgres_primary_its_patroni_restarted_counts_as_following_only_if_it_follows() -> None:
    said = Expectation.of(experiments()["kill-postgres-primary"])
    assert said.writes_resume_within_s == 15
    kill = {"killed": "postgres-1", "writes_resumed_s": 4.2, "writes_refused": 30,
            "new_leader": "postgres-2"}  # fmt: skip
    rejoined = {
        "run": [{"output": kill}, {"output": {"returned": [], "following": ["postgres-1"]}}]
    }
    assert judge_failover(said, *failover_of(rejoined)) == []
    assert describe_failover(*failover_of(rejoined)) == (
        "postgres-1 killed: writes again after 4.2 s (30 refused), postgres-2 leads; "
        "postgres-1 back as a follower by itself"
    )
    away = {"run": [{"output": kill}, {"output": {"returned": [], "following": []}}]}
    assert judge_failover(said, *failover_of(away)) == ["postgres-1 did not rejoin as a follower"]


def _redis_failover(shard: list[Any], others: list[Any]) -> dict[str, Any]:
    kill = {"killed": "redis-1", "writes_resumed_s": 5.3, "writes_refused": 96,
            "new_leader": "redis-6",
            "carts": {"shard": {"count": 300, "failed": shard},
                      "others": {"count": 600, "failed": others}}}  # fmt: skip
    back = {"returned": [{"name": "redis-1", "rejoined_s": 0.1}], "following": ["redis-1"]}
    return {"run": [{"output": kill}, {"output": back}]}


def test_a_redis_shard_failover_fails_if_carts_on_the_other_shards_notice() -> None:
    said = Expectation.of(experiments()["kill-redis-primary"])
    fast = [[503, "1", 0.03]] * 12
    quiet = failover_of(_redis_failover(fast, []))
    assert judge_failover(said, *quiet) == []
    assert describe_failover(*quiet) == (
        "redis-1 killed: writes again after 5.3 s (96 refused), redis-6 leads; reads of "
        "carts on the other shards: 0 of 600 failed, on its shard: 12 of 300 failed "
        "(12 x 503 with Retry-After, the slowest in 0.03 s); redis-1 back as a follower "
        "0.1 s after its restart"
    )
    noticed = judge_failover(said, *failover_of(_redis_failover(fast, [[503, "1", 0.02]])))
    assert noticed == [
        "reads of carts on the other shards: 1 of 600 failed (1 x 503 with Retry-After, "
        "the slowest in 0.02 s)"
    ]
    for bad in ([502, None, 0.01], [503, None, 0.01], [503, "1", 4.0], [0, None, 30.0]):
        assert judge_failover(said, *failover_of(_redis_failover([*fast, bad], []))) == [
            "1 reads of carts on its shard failed slowly or not 503"
        ], bad


def test_the_failover_experiments_are_the_ones_that_need_copies() -> None:
    from shopctl.chaos.run import needs_copies

    found = {name for name, e in experiments().items() if needs_copies(e)}
    assert found == {
        "kill-consul-leader",
        "kill-kafka-leader",
        "kill-postgres-primary",
        "kill-redis-primary",
    }
