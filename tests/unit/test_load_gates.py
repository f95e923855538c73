"""The load test's verdict: Locust's stats file held against slo.yml's load gates."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from shopctl.load import (
    Run,
    docker_locust_command,
    locust_command,
    locust_env,
    new_run,
    profile_with,
)
from shopctl.load_gates import Entry, LoadGates, judge, load_gates, read_stats
from shopctl.topology import Settings

pytestmark = pytest.mark.unit

HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
    "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
    "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
)


def stats_file(tmp_path: Path, *rows: tuple[str, str, int, int, int, int]) -> Path:
    """Rows of (type, name, requests, failures, p95 ms, p99 ms), plus their Aggregated."""
    lines = [HEADER]
    for kind, name, count, failed, p95, p99 in rows:
        lines.append(
            f"{kind},{name},{count},{failed},10,12,1,{p99},100,5.0,0.0,"
            f"10,12,14,16,20,{p95},{p99},{p99},{p99},{p99},{p99}"
        )
    count = sum(r[2] for r in rows)
    failed = sum(r[3] for r in rows)
    p95, p99 = max(r[4] for r in rows), max(r[5] for r in rows)
    lines.append(
        f",Aggregated,{count},{failed},10,12,1,{p99},100,5.0,0.0,"
        f"10,12,14,16,20,{p95},{p99},{p99},{p99},{p99},{p99}"
    )
    path = tmp_path / "locust_stats.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def gates_file(tmp_path: Path, entries: str, error_ratio: float = 0.01) -> Path:
    path = tmp_path / "slo.yml"
    path.write_text(
        f"load:\n  error_ratio: {error_ratio}\n  server_errors: 0\n  entries:\n{entries}"
    )
    return path


LENIENT = "    default: {p95: 300, p99: 600}\n    JOURNEY checkout: {p95: 900, p99: 2000}\n"


def test_a_run_within_every_gate_passes(tmp_path: Path) -> None:
    entries, total = read_stats(
        stats_file(
            tmp_path,
            ("GET", "/products", 900, 0, 40, 90),
            ("JOURNEY", "checkout", 100, 0, 800, 1500),
        )
    )
    verdict = judge(entries, total, 0, load_gates(gates_file(tmp_path, LENIENT)))
    assert verdict.passed, verdict.breaches
    assert verdict.total.requests == 1000


def test_an_impossible_gate_fails_and_names_the_entry(tmp_path: Path) -> None:
    entries, total = read_stats(stats_file(tmp_path, ("GET", "/products", 900, 0, 40, 90)))
    impossible = gates_file(tmp_path, "    default: {p95: 0, p99: 0}\n")
    verdict = judge(entries, total, 0, load_gates(impossible))
    assert not verdict.passed
    assert verdict.breaches == [
        "GET /products: p95 40 ms > 0 ms",
        "GET /products: p99 90 ms > 0 ms",
    ]


def test_an_entry_slower_than_its_own_gate_fails_though_the_default_would_pass(
    tmp_path: Path,
) -> None:
    entries, total = read_stats(stats_file(tmp_path, ("JOURNEY", "checkout", 100, 0, 800, 2500)))
    verdict = judge(entries, total, 0, load_gates(gates_file(tmp_path, LENIENT)))
    assert verdict.breaches == ["JOURNEY checkout: p99 2500 ms > 2000 ms"]


def test_too_many_failures_or_any_5xx_fails(tmp_path: Path) -> None:
    gates = load_gates(gates_file(tmp_path, LENIENT, error_ratio=0.01))
    entries, total = read_stats(stats_file(tmp_path, ("GET", "/products", 100, 2, 40, 90)))
    assert judge(entries, total, 0, gates).breaches == ["failed share 2.0000% > 1.0000%"]
    entries, total = read_stats(stats_file(tmp_path, ("GET", "/products", 1000, 1, 40, 90)))
    assert judge(entries, total, 0, gates).passed
    assert judge(entries, total, 1, gates).breaches == ["1 5xx answers > 0"]


def test_a_run_that_sent_nothing_fails(tmp_path: Path) -> None:
    empty = Entry("", "Aggregated", 0, 0, 0, 0, 0)
    gates = LoadGates(0.0, 0, load_gates(gates_file(tmp_path, LENIENT)).default, {})
    assert judge([], empty, 0, gates).breaches == ["no request was sent"]


@pytest.mark.parametrize(
    ("entries", "complaint"),
    [
        ("    GET /x: {p95: 1, p99: 2}\n", "needs a `default` gate"),
        ("    default: {p95: 500, p99: 100}\n", "p95 <= p99"),
        ("    default: {p95: 1}\n", r"must be \{p95: ms, p99: ms\}"),
    ],
)
def test_a_bad_gate_is_refused_with_what_to_fix(
    tmp_path: Path, entries: str, complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        load_gates(gates_file(tmp_path, entries))


def test_slo_yml_gates_the_checkout_journey() -> None:
    gates = load_gates()
    assert gates.server_errors == 0
    confirmed = gates.gate("JOURNEY checkout → CONFIRMED")
    assert confirmed != gates.default
    assert confirmed.p99_ms >= confirmed.p95_ms


def _run(tmp_path: Path, mode: str) -> Run:
    settings = Settings.load()
    chosen = profile_with("smoke", users=3, spawn_rate=None, duration_s=10)
    return replace(new_run(settings, "smoke", chosen, mode), out=tmp_path / "20261206-smoke")


def test_docker_mode_runs_the_compose_service_with_the_runs_folder_under_its_mount(
    tmp_path: Path,
) -> None:
    run = _run(tmp_path, "docker")
    command = docker_locust_command(run)
    service = command.index("locust")
    assert command[:6] == ["docker", "compose", "--profile", "load", "run", "--rm"]
    env = dict(command[i + 1].split("=", 1) for i in range(service) if command[i] == "--env")
    inside = f"/load/{run.out.name}"
    assert env["LOAD_FINAL_STATS"] == f"{inside}/{run.stats_csv.name}"
    assert env["LOAD_STATUS_FILE"] == f"{inside}/{run.status_file.name}"
    args = command[service + 1 :]
    assert args[args.index("--csv") + 1] == f"{inside}/locust"
    assert args[args.index("--html") + 1] == f"{inside}/report.html"
    # Inside the gateway's network namespace nginx listens on its container port.
    assert args[args.index("--host") + 1] == "http://127.0.0.1:8080"
    ui = docker_locust_command(run, ui=True)
    assert ui[ui.index("--web-host") + 1] == "0.0.0.0"
    assert "--headless" not in ui


def test_local_mode_runs_the_venvs_locust_through_the_published_gateway(tmp_path: Path) -> None:
    run = _run(tmp_path, "local")
    command = locust_command(run)
    assert Path(command[0]).name == "locust"
    assert command[command.index("--locustfile") + 1].endswith("loadtest/locustfile.py")
    port = Settings.load()["GATEWAY_PORT"]
    assert command[command.index("--host") + 1] == f"http://127.0.0.1:{port}"
    assert command[command.index("--csv") + 1] == f"{run.out}/locust"
    assert locust_env(run, Settings.load())["LOAD_FINAL_STATS"] == str(run.stats_csv)
