"""One experiment under a steady Locust load, measured: what clients saw while the fault
lasted, how long until they saw no more failures and every process was ready again,
whether any acknowledged order was lost, and the invariants afterwards."""

from __future__ import annotations

import csv
import itertools
import json
import signal
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from shopctl.chaos.expect import (
    Expectation,
    describe_failover,
    failover_of,
    judge,
    judge_failover,
    summary,
)
from shopctl.chaos.target import Target, use
from shopctl.load import Run, locust_command, locust_env, profile_with
from shopctl.progress import StackError, say
from shopctl.readiness import wait_for_saga
from shopctl.topology import ROOT, Topology, database_url
from shopctl.verify import check_all

EXPERIMENTS = ROOT / "chaos" / "experiments"
CHAOS_RUNS = ROOT / ".run" / "chaos"
LOAD_USERS = 10
WARMUP_S = 10
# After the rollback, clients keep shopping this long, so that failures that outlast the
# fault (and their end) are seen.
AFTERMATH_S = 20
FOLLOW_DEADLINE_S = 120


def experiments() -> dict[str, dict[str, Any]]:
    """Every experiment file, by name (its file name without .json)."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(EXPERIMENTS.glob("*.json"))}


@dataclass
class Outcome:
    name: str
    title: str
    status: str = "not run"  # Chaos Toolkit's: completed, failed, aborted, interrupted
    deviated: bool = False
    requests: int = 0
    failed: int = 0
    fault_requests: int = 0
    fault_failed: int = 0
    checkouts_failed: int = 0
    slowest_ms: float = 0.0
    recovered_s: float | None = None
    expected: str = ""
    client_failures: str = "none"
    failover: str = "-"  # a failover experiment's figures (shopctl/chaos/failover.py)
    replayed: int = 0  # requests shoppers sent again after a kept-alive connection closed
    acknowledged: int = 0
    lost: list[str] = field(default_factory=list)
    invariants: int = 0
    invariants_held: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def fault_error_ratio(self) -> float:
        return self.fault_failed / self.fault_requests if self.fault_requests else 0.0

    @property
    def clients_saw(self) -> str:
        if not self.replayed:
            return self.client_failures
        return (
            f"{self.client_failures}; {self.replayed} sent again "
            "(a kept-alive connection closed under them, never read)"
        )

    @property
    def passed(self) -> bool:
        return (
            self.status == "completed"
            and not self.deviated
            and not self.lost
            and self.invariants > 0
            and self.invariants_held == self.invariants
            and not self.problems
        )


def _timestamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def fault_window(journal: dict[str, Any]) -> tuple[float, float]:
    """From the method's first action (the fault) to the end of its last (the repair:
    every experiment's method ends by undoing its fault, so that the steady state after
    it is checked on the repaired stack; the rollbacks repeat the repair only should the
    method stop midway)."""
    method = [r for r in journal.get("run", []) if r["activity"]["type"] == "action"]
    if not method:
        raise StackError(f"the experiment ran no action: {journal.get('status')}")
    return _timestamp(method[0]["start"]), _timestamp(method[-1]["end"])


def recovered_after(journal: dict[str, Any]) -> float:
    """When the steady state held again after the fault (its probes wait for it)."""
    after = (journal.get("steady_states") or {}).get("after") or {}
    ends = [_timestamp(p["end"]) for p in after.get("probes", [])]
    return max(ends) if ends else 0.0


def client_view(history_csv: Path, start: float, end: float) -> tuple[int, int, float]:
    """(requests, failures) Locust counted between start and end, and the last moment a
    failure was counted (0 if none), from its once-a-second history."""
    rows = []
    with history_csv.open() as handle:
        for row in csv.DictReader(handle):
            if row["Name"] == "Aggregated":
                counts = int(row["Total Request Count"]), int(row["Total Failure Count"])
                rows.append((float(row["Timestamp"]), *counts))
    before = [r for r in rows if r[0] <= start] or [(start, 0, 0)]
    during = [r for r in rows if r[0] <= end] or before
    requests = during[-1][1] - before[-1][1]
    failures = during[-1][2] - before[-1][2]
    last_failure = 0.0
    for (_, _, earlier), (at, _, now) in itertools.pairwise(rows):
        if now > earlier:
            last_failure = at
    return requests, failures, last_failure


def lost_orders(settings: Any, acknowledged: list[str]) -> list[str]:
    """Acknowledged orders (a 202 reached the client) that the orders database lacks."""
    if not acknowledged:
        return []
    url = database_url("orders", Topology("local", settings).postgres_addresses())
    with psycopg.connect(url, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT id::text FROM orders WHERE id = ANY(%s::uuid[])", (acknowledged,)
        ).fetchall()
    found = {row[0] for row in rows}
    return [order for order in acknowledged if order not in found]


@dataclass(frozen=True)
class RunFigures:
    requests: int
    failed: int
    checkouts_failed: int
    slowest_ms: float  # the slowest HTTP answer (journeys, which wait on purpose, left out)


def run_figures(path: Path) -> RunFigures:
    """The whole load run's figures, from Locust's final stats."""
    total = failed = checkouts = 0
    slowest = 0.0
    with path.open() as handle:
        for row in csv.DictReader(handle):
            if row["Name"] == "Aggregated":
                total, failed = int(row["Request Count"]), int(row["Failure Count"])
                continue
            if row["Type"] != "JOURNEY":
                slowest = max(slowest, float(row["Max Response Time"] or 0))
            if row["Type"] == "POST" and row["Name"] == "/orders":
                checkouts = int(row["Failure Count"])
    return RunFigures(total, failed, checkouts, slowest)


class Load:
    """Locust in the background for the length of one experiment."""

    def __init__(self, target: Target, out: Path) -> None:
        chosen = profile_with("steady", users=LOAD_USERS, spawn_rate=LOAD_USERS, duration_s=1800)
        self.run = Run("chaos", chosen, target.gateway, out)
        self.target = target
        self.orders_file = out / "acknowledged.txt"
        self.failures_file = out / "failures.json"
        self.replays_file = out / "replays.json"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Load:
        self.run.out.mkdir(parents=True, exist_ok=True)
        env = locust_env(self.run, self.target.settings)
        env["LOAD_ORDERS_FILE"] = str(self.orders_file)
        env["LOAD_FAILURES_FILE"] = str(self.failures_file)
        env["LOAD_REPLAYS_FILE"] = str(self.replays_file)
        # A checkout placed as Kafka goes down is confirmed once it is back: late, not
        # failed. Shoppers follow their order long enough to see that.
        env["LOAD_FOLLOW_DEADLINE_S"] = str(FOLLOW_DEADLINE_S)
        command = locust_command(self.run)
        with (self.run.out / "locust.log").open("w") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        return self

    def __exit__(self, *_: object) -> None:
        if self.process is None:
            return
        # SIGTERM: Locust stops its users and writes its figures, then exits.
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    @property
    def history(self) -> Path:
        return self.run.out / "locust_stats_history.csv"

    def failures(self) -> list[dict[str, Any]]:
        if not self.failures_file.exists():
            raise StackError(f"the load run wrote no {self.failures_file.name}; see locust.log")
        return list(json.loads(self.failures_file.read_text()))

    def replays(self) -> list[dict[str, Any]]:
        if not self.replays_file.exists():
            return []
        return list(json.loads(self.replays_file.read_text()))

    def acknowledged(self) -> list[str]:
        if not self.orders_file.exists():
            return []
        return [line for line in self.orders_file.read_text().splitlines() if line]


def run_one(
    target: Target, name: str, out: Path, *, configuration: dict[str, Any] | None = None
) -> Outcome:
    from chaoslib.experiment import run_experiment

    found = experiments()
    if name not in found:
        raise StackError(f"no experiment {name!r}; `make chaos` lists them")
    experiment = found[name]
    if needs_copies(experiment) and target.stack.topology.replicas == 1:
        raise StackError(f"{name} kills a leader among copies, and REPLICAS=1 runs one copy")
    experiment["configuration"] = {**experiment.get("configuration", {}), **(configuration or {})}
    expectation = Expectation.of(experiment)
    outcome = Outcome(name, experiment["title"], expected=expectation.describe())
    use(target)
    target.stack.wait_ready(timeout=120)
    wait_for_saga(target.settings)
    out.mkdir(parents=True, exist_ok=True)
    say(f"{name}: {experiment['title']} (under {LOAD_USERS} shoppers)")
    with Load(target, out / "load") as load:
        time.sleep(WARMUP_S)
        # Roll back whatever happens: a fault left in place would fail every next run.
        runtime = {"runtime": {"rollbacks": {"strategy": "always"}}}
        journal = run_experiment(experiment, settings=runtime)
        (out / "journal.json").write_text(json.dumps(journal, indent=2, default=str))
        outcome.status, outcome.deviated = journal["status"], bool(journal.get("deviated"))
        time.sleep(AFTERMATH_S)
    figures = run_figures(load.run.stats_csv)
    outcome.requests, outcome.failed = figures.requests, figures.failed
    outcome.checkouts_failed, outcome.slowest_ms = figures.checkouts_failed, figures.slowest_ms
    start, end = fault_window(journal)
    outcome.fault_requests, outcome.fault_failed, last_failure = client_view(
        load.history, start, end
    )
    outcome.recovered_s = max(0.0, max(last_failure, recovered_after(journal)) - end)
    failures = load.failures()
    outcome.client_failures = summary(failures)
    outcome.replayed = len(load.replays())
    outcome.problems += judge(expectation, failures, figures.slowest_ms)
    killed, returned = failover_of(journal)
    outcome.failover = describe_failover(killed, returned)
    outcome.problems += judge_failover(expectation, killed, returned)
    acknowledged = load.acknowledged()
    outcome.acknowledged = len(acknowledged)
    outcome.lost = lost_orders(target.settings, acknowledged)
    checks = check_all(target.settings)
    outcome.invariants, outcome.invariants_held = len(checks), sum(c.ok for c in checks)
    outcome.problems += [f"{c.name}: {c.detail}" for c in checks if not c.ok]
    say(
        f"{name}: {outcome.status}{' (deviated)' if outcome.deviated else ''}; "
        f"{outcome.failed} of {outcome.requests} requests failed, "
        f"{outcome.fault_failed} of {outcome.fault_requests} during the fault; "
        f"recovered {outcome.recovered_s:.1f}s after it; lost {len(outcome.lost)} of "
        f"{outcome.acknowledged} acknowledged orders; invariants "
        f"{outcome.invariants_held}/{outcome.invariants}"
    )
    return outcome


def needs_copies(experiment: dict[str, Any]) -> bool:
    """A failover experiment (tagged so) kills a leader among copies."""
    return "failover" in experiment.get("tags", [])


def new_out_dir() -> Path:
    return CHAOS_RUNS / time.strftime("%Y%m%d-%H%M%S")


def run_all(
    target: Target, names: list[str], out: Path, *, configuration: dict[str, Any] | None = None
) -> list[Outcome]:
    """Each experiment in turn; one that breaks is a failed row, and the next still runs.
    A failover experiment is left out when the stack runs one copy of each part."""
    outcomes = []
    if target.stack.topology.replicas == 1:
        skipped = [n for n in names if needs_copies(experiments()[n])]
        if skipped and len(skipped) == len(names):
            raise StackError(f"{', '.join(skipped)}: kills a leader among copies, and "
                             "REPLICAS=1 runs one copy")  # fmt: skip
        if skipped:
            say(f"REPLICAS=1, one copy of each part: skipping {', '.join(skipped)}")
        names = [n for n in names if n not in skipped]
    for name in names:
        try:
            outcomes.append(run_one(target, name, out / name, configuration=configuration))
        except Exception as exc:  # a row for it, then on with the suite
            failed = Outcome(name, experiments()[name]["title"], status="aborted")
            failed.problems.append(f"{type(exc).__name__}: {exc}")
            outcomes.append(failed)
            say(f"{name}: aborted: {exc}")
            target.stack.wait_ready(timeout=180)
    return outcomes


def listing() -> str:
    rows = [f"{'experiment':34} what it does"]
    for name, experiment in experiments().items():
        rows.append(f"{name:34} {experiment['title']}")
    return "\n".join(rows)
