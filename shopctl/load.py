"""`make load`: Locust (loadtest/locustfile.py) headless through the gateway for one
profile, then the verdict against slo.yml's load gates, then `make verify`. The exit
status follows both. Locust's HTML report, its CSVs and a summary are kept under
.run/load/<time>-<profile>/; `make load-ui` opens Locust's web UI instead."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from shopctl.load_gates import (
    Verdict,
    judge,
    load_gates,
    read_stats,
    read_status_classes,
)
from shopctl.progress import StackError, say
from shopctl.readiness import wait_for_saga
from shopctl.slo import SLO_FILE
from shopctl.topology import ROOT, Settings

LOCUSTFILE = ROOT / "loadtest" / "locustfile.py"
LOAD_RUNS = ROOT / ".run" / "load"
# After the run time, users get this long to finish the journey in hand (a checkout being
# followed to its end) before Locust stops them.
STOP_TIMEOUT_S = 15
# Docker mode: where the compose service `locust` mounts LOAD_RUNS, and the port of its web
# UI in the gateway's network namespace (published there as LOCUST_WEB_PORT).
DOCKER_LOAD_DIR = "/load"
DOCKER_WEB_PORT = "8089"
GATEWAY_CONTAINER_PORT = "8080"


@dataclass(frozen=True)
class Profile:
    users: int
    spawn_rate: float
    duration_s: int
    max_requests: int
    what: str


PROFILES = {
    "smoke": Profile(20, 5, 60, 30_000, "a minute of everyday traffic"),
    "steady": Profile(40, 5, 600, 400_000, "ten minutes at a steady crowd"),
    "spike": Profile(20, 5, 180, 150_000, "a steady crowd, then three times as many at once"),
    "soak": Profile(30, 5, 3600, 2_000_000, "an hour, for leaks and slow drift"),
}


@dataclass(frozen=True)
class Run:
    profile: str
    settings: Profile
    host: str
    out: Path

    @property
    def stats_csv(self) -> Path:
        return self.out / "final_stats.csv"

    @property
    def status_file(self) -> Path:
        return self.out / "answers.json"


def profile_with(
    name: str, *, users: int | None, spawn_rate: float | None, duration_s: int | None
) -> Profile:
    if name not in PROFILES:
        raise StackError(f"PROFILE={name} is not a profile; use one of {', '.join(PROFILES)}")
    chosen = PROFILES[name]
    changes = {
        key: value
        for key, value in (("users", users), ("spawn_rate", spawn_rate), ("duration_s", duration_s))
        if value is not None
    }
    for key, value in changes.items():
        if value <= 0:
            raise StackError(f"{key.upper()} must be above 0 (got {value})")
    return replace(chosen, **changes)  # type: ignore[arg-type]


def run_vars(run: Run, out: str) -> dict[str, str]:
    """What the locustfile reads of this run; `out` is the run's folder as Locust sees it."""
    return {
        "LOAD_PROFILE": run.profile,
        "LOAD_USERS": str(run.settings.users),
        "LOAD_SPAWN_RATE": str(run.settings.spawn_rate),
        "LOAD_DURATION_S": str(run.settings.duration_s),
        "LOAD_MAX_REQUESTS": str(run.settings.max_requests),
        "LOAD_STATUS_FILE": f"{out}/{run.status_file.name}",
        "LOAD_FINAL_STATS": f"{out}/{run.stats_csv.name}",
    }


def locust_env(run: Run, settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        **run_vars(run, str(run.out)),
        "LOCUST_METRICS_PORT": settings["LOCUST_METRICS_PORT"],
        "CONSUL_HTTP_ADDR": f"127.0.0.1:{settings['CONSUL_HTTP_PORT']}",
        "ADMIN_EMAIL": settings["ADMIN_EMAIL"],
        "ADMIN_PASSWORD": settings["ADMIN_PASSWORD"],
    }


def locust_args(run: Run, out: str, *, ui_port: str = "", web_host: str = "127.0.0.1") -> list[str]:
    """Locust's arguments after `--locustfile FILE`."""
    command = [
        "--host",
        run.host,
        "--users",
        str(run.settings.users),
        "--spawn-rate",
        str(run.settings.spawn_rate),
    ]
    if ui_port:
        return [*command, "--web-host", web_host, "--web-port", ui_port, "--autostart"]
    return [
        *command,
        "--headless",
        "--run-time",
        f"{run.settings.duration_s}s",
        "--stop-timeout",
        str(STOP_TIMEOUT_S),
        "--csv",
        f"{out}/locust",
        "--html",
        f"{out}/report.html",
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]


def locust_command(run: Run, *, ui_port: str = "") -> list[str]:
    locust = [str(Path(sys.executable).parent / "locust"), "--locustfile", str(LOCUSTFILE)]
    return [*locust, *locust_args(run, str(run.out), ui_port=ui_port)]


def docker_locust_command(run: Run, *, ui: bool = False) -> list[str]:
    """The compose service `locust` (its image's entrypoint names the locustfile), with
    the run's folder at /load/<name> and files owned by the user running shopctl."""
    out = f"{DOCKER_LOAD_DIR}/{run.out.name}"
    command = ["docker", "compose", "--profile", "load", "run", "--rm"]
    command += ["--user", f"{os.getuid()}:{os.getgid()}"]
    for key, value in run_vars(run, out).items():
        command += ["--env", f"{key}={value}"]
    ui_args = {"ui_port": DOCKER_WEB_PORT, "web_host": "0.0.0.0"} if ui else {}
    return [*command, "locust", *locust_args(run, out, **ui_args)]


def run_locust(run: Run, settings: Settings, mode: str = "local") -> None:
    if mode == "local":
        wait_for_saga(settings)
    run.out.mkdir(parents=True, exist_ok=True)
    budget = run.settings.duration_s + STOP_TIMEOUT_S + 120
    say(
        f"Locust: {run.profile} ({run.settings.what}): {run.settings.users} users, "
        f"{run.settings.duration_s}s, at most {run.settings.max_requests} requests -> {run.host}"
    )
    with (run.out / "locust.log").open("w") as log:
        try:
            subprocess.run(
                locust_command(run) if mode == "local" else docker_locust_command(run),
                env=locust_env(run, settings),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=budget,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise StackError(f"Locust ran past {budget}s; see {run.out / 'locust.log'}") from exc
    if not run.stats_csv.exists():
        raise StackError(f"Locust wrote no figures; see {run.out / 'locust.log'}")


def verdict_of(run: Run, slo_file: Path = SLO_FILE) -> Verdict:
    entries, total = read_stats(run.stats_csv)
    answers = read_status_classes(run.status_file) if run.status_file.exists() else {}
    return judge(entries, total, answers.get("5xx", 0), load_gates(slo_file))


def table(verdict: Verdict) -> str:
    lines = [
        f"{'entry':52} {'requests':>8} {'failed':>6} {'median':>7} {'p95 / gate':>15} "
        f"{'p99 / gate':>15}",
    ]
    for entry, gate, missed in sorted(verdict.rows, key=lambda r: -r[0].requests):
        mark = "  MISSED" if missed else ""
        lines.append(
            f"{(entry.method + ' ' + entry.name)[:52]:52} {entry.requests:8} {entry.failures:6} "
            f"{entry.median_ms:6.0f}ms {entry.p95_ms:6.0f} / {gate.p95_ms:5.0f}ms "
            f"{entry.p99_ms:6.0f} / {gate.p99_ms:5.0f}ms{mark}"
        )
    lines.append(
        f"{'all':52} {verdict.total.requests:8} {verdict.total.failures:6} "
        f"failed share {verdict.error_ratio:.3%}, 5xx answers {verdict.server_errors}"
    )
    lines.append(f"\nLoad SLOs: {'PASS' if verdict.passed else 'FAIL'}")
    lines += [f"  missed: {breach}" for breach in verdict.breaches]
    return "\n".join(lines)


def new_run(settings: Settings, profile: str, chosen: Profile, mode: str = "local") -> Run:
    out = LOAD_RUNS / f"{time.strftime('%Y%m%d-%H%M%S')}-{profile}"
    # In Docker mode Locust shares the gateway's network namespace: nginx is on its port.
    port = settings["GATEWAY_PORT"] if mode == "local" else GATEWAY_CONTAINER_PORT
    return Run(profile, chosen, f"http://127.0.0.1:{port}", out)


def load(
    settings: Settings,
    profile: str,
    *,
    users: int | None = None,
    spawn_rate: float | None = None,
    duration_s: int | None = None,
    ui: bool = False,
    verify: bool = True,
    mode: str = "local",
) -> int:
    run = new_run(
        settings,
        profile,
        profile_with(profile, users=users, spawn_rate=spawn_rate, duration_s=duration_s),
        mode,
    )
    if ui:
        run.out.mkdir(parents=True, exist_ok=True)
        port = settings["LOCUST_WEB_PORT"]
        say(f"Locust's web UI: http://127.0.0.1:{port} (Ctrl-C ends it)")
        if mode == "local":
            command = locust_command(run, ui_port=port)
        else:
            command = docker_locust_command(run, ui=True)
        env = locust_env(run, settings)
        return subprocess.run(command, env=env, cwd=ROOT, check=False).returncode
    run_locust(run, settings, mode)
    verdict = verdict_of(run)
    summary = table(verdict)
    (run.out / "summary.txt").write_text(summary + "\n")
    print(summary)
    print(f"\nReport: {run.out / 'report.html'}")
    if not verify:
        return 0 if verdict.passed else 1
    if mode == "docker":
        say("make verify reads local mode's stack; in Docker mode the verdict is the load's only")
        return 0 if verdict.passed else 1
    from shopctl.verify import report

    print("\nmake verify:")
    invariants = report(settings)
    return 0 if verdict.passed and invariants == 0 else 1
