"""Starting the stack's programs under supervisord as the builds they run finish.

Every program names the build jobs whose results it runs (`Program.builds`): Postgres,
Redis, Kafka, the card processor, Alertmanager and the exporters name none and start at
once; Consul waits for the Consul build, Toxiproxy for its own, the instances for both
(they register in Consul and reach everything through Toxiproxy), the gateway for Consul's
(consul-template is built with it), Prometheus for its build and its web UI's. Each time a
build finishes, supervisord's configuration is written again with the programs that can
run and reloaded, which starts the new ones and leaves the running ones alone. A build
that fails holds back only the programs that name it.

While programs wait, `<run>/waiting-for-builds.json` says which, for `make status`."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Protocol

from shopctl.builds import BuildJobs
from shopctl.progress import StackError, say
from shopctl.supervisor import Program

WAITING_FILE = "waiting-for-builds.json"


class HeldBack(StackError):
    """Programs that were waited for will not start: a build they run failed."""


class ProcessManager(Protocol):
    """What the launcher needs of supervisord (shopctl.supervisor.Supervisor)."""

    def running(self) -> bool: ...
    def start_daemon(self) -> None: ...
    def reload(self) -> None: ...


def _names(programs: list[Program]) -> str:
    """`auth-1, auth-2, cart-1` as `auth-1..2, cart-1`, so a line stays readable."""
    shown: list[str] = []
    for program in programs:
        base, _, number = program.name.rpartition("-")
        if number.isdigit() and shown and shown[-1].startswith(f"{base}-"):
            shown[-1] = f"{shown[-1].split('..')[0]}..{number}"
        else:
            shown.append(program.name)
    return ", ".join(shown)


class Launcher:
    def __init__(
        self,
        programs: list[Program],
        jobs: BuildJobs,
        supervisor: ProcessManager,
        write_config: Callable[[list[Program]], None],
        run: Path,
        *,
        already_running: Collection[str] = (),
        poll_seconds: float = 0.5,
    ) -> None:
        self.programs = programs
        # On a stack that runs, what runs stays: a build it waits for (its module's pins
        # changed) does not stop it, as `make up` never restarts a program it leaves alone.
        self.already_running = set(already_running)
        self.jobs = jobs
        self.supervisor = supervisor
        self.write_config = write_config
        self.waiting_file = run / WAITING_FILE
        self.poll_seconds = poll_seconds
        self.launched: list[str] = []
        self._supervisor_started = False

    # -- which programs can run -------------------------------------------------

    def failed_builds(self, program: Program) -> list[str]:
        return [b for b in program.builds if self.jobs.failure(b) is not None]

    def blocked(self) -> list[Program]:
        """Programs that will not start this time: a build they run failed."""
        return [p for p in self.programs if p.name not in self.launched and self.failed_builds(p)]

    def _can_run(self, program: Program) -> bool:
        return program.name in self.already_running or all(
            self.jobs.succeeded(b) for b in program.builds
        )

    def waiting(self) -> list[Program]:
        """Programs not started yet whose builds are still running."""
        return [
            p
            for p in self.programs
            if p.name not in self.launched and not self.failed_builds(p) and not self._can_run(p)
        ]

    def launch_ready(self) -> list[Program]:
        """Start the programs whose builds are all done; the first call starts supervisord
        (or reloads one that runs already) even when some programs must wait."""
        ready = [p for p in self.programs if p.name not in self.launched and self._can_run(p)]
        if not ready and self._supervisor_started:
            return []
        if self._supervisor_started and not self.supervisor.running():
            raise StackError(
                "supervisord is no longer running (`make down`?): not starting "
                f"{_names(ready)} on a stack that was stopped"
            )
        self.launched += [p.name for p in ready]
        self.write_config([p for p in self.programs if p.name in self.launched])
        if self.supervisor.running():
            self.supervisor.reload()
        else:
            self.supervisor.start_daemon()
        first = not self._supervisor_started
        self._supervisor_started = True
        self._write_waiting()
        if not first:
            say(f"Starting {_names(ready)}: their builds are done")
        elif waiting := self.waiting():
            say(f"Started {_names(ready)}; waiting for builds: {_names(waiting)}")
        return ready

    def _held_back_report(self, held: list[Program]) -> str:
        failed = sorted({b for p in held for b in self.failed_builds(p)})
        logs = ", ".join(str(self.jobs.log_path(b)) for b in failed)
        return (
            f"{_names(held)} did not start: the build of {', '.join(failed)} failed "
            f"(its log's last lines are above; all of it in {logs})"
        )

    def _write_waiting(self) -> None:
        waiting = {p.name: list(p.builds) for p in self.waiting()}
        if not waiting:
            self.waiting_file.unlink(missing_ok=True)
            return
        self.waiting_file.write_text(json.dumps({"pid": os.getpid(), "programs": waiting}))

    def close(self) -> None:
        self.waiting_file.unlink(missing_ok=True)

    # -- waiting ----------------------------------------------------------------

    def wait_for(
        self,
        parts: list[Program],
        check: Callable[[], dict[str, bool]],
        *,
        what: str,
        timeout: float,
    ) -> None:
        """Start programs as their builds finish until every one of `parts` runs and
        `check` passes; then raise HeldBack if a failed build kept some of `parts` from
        starting (the others run). `timeout` counts from the start of the last of them."""
        names = {p.name for p in parts}
        deadline: float | None = None
        shown: list[str] = []
        while True:
            self.launch_ready()
            held = [p for p in self.blocked() if p.name in names]
            if not any(p.name in names for p in self.waiting()):
                deadline = deadline or time.monotonic() + timeout
                skip = {p.name for p in held}
                not_ready = [n for n, ok in check().items() if not ok and n not in skip]
                if not not_ready:
                    if held:
                        raise HeldBack(self._held_back_report(held))
                    return
                if time.monotonic() > deadline:
                    raise StackError(
                        f"{what} not ready after {timeout:.0f}s; still waiting for: "
                        f"{', '.join(not_ready)} (see .run/logs/<name>.log, or `make logs`)"
                    )
                if not_ready != shown:
                    say(f"waiting for: {', '.join(not_ready)}")
                    shown = not_ready
            time.sleep(self.poll_seconds)


def programs_waiting(run: Path) -> dict[str, list[str]]:
    """Program -> the builds it waits for, while a `make up` that wrote them still runs."""
    try:
        found = json.loads((run / WAITING_FILE).read_text())
        os.kill(int(found["pid"]), 0)
        programs = found["programs"]
    except (ProcessLookupError, FileNotFoundError, ValueError, KeyError, TypeError):
        return {}
    return {str(name): list(builds) for name, builds in programs.items()}
