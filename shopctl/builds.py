"""What local mode builds from source (Consul and consul-template, Toxiproxy, Prometheus and
its web UI), run as background jobs so that `make up` can start each part of the stack as
soon as what it runs is built, instead of building everything before starting anything.

Each job runs in a thread of its own; the tools it runs write to its own log file,
`.cache/builds/<job>.log`, and a failure is reported with that log's last lines. Jobs for
monitoring run under `nice`, so the builds the shop needs get the cores first and the
monitoring builds use what they leave (module downloads, single-threaded links). A job
whose results are already there is not run at all: a second `make up` builds nothing."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from shopctl.progress import StackError, say, step
from shopctl.topology import ROOT

BUILD_LOGS = ROOT / ".cache" / "builds"
# Monitoring's builds yield the CPU to the shop's (nice 10 weighs about a tenth of nice 0).
LOW_PRIORITY = 10
TAIL_LINES = 20
PROGRESS_EVERY_S = 30.0


class BuildFailed(StackError):
    """A tool a build runs exited non-zero, or could not be run."""


def _lower_session_priority(pid: int, niceness: int) -> None:
    """With the kernel's autogroup scheduling on (Debian's default), CPU time is shared
    fairly between sessions first, and a process's own nice value weighs only within its
    session; a build runs in a session of its own, so its session's nice is what yields
    to the shop's builds. Without autogroup the file is absent and `nice` does it."""
    with suppress(OSError):
        Path(f"/proc/{pid}/autogroup").write_text(str(niceness))


class BuildLog:
    """A build's log file, and the tools the build runs with their output appended to it."""

    def __init__(self, path: Path, niceness: int = 0) -> None:
        self.path = path
        self.niceness = niceness
        self._running: subprocess.Popen[bytes] | None = None
        self._stopped = False
        # Held while a tool starts: `stop` either sees the process or is seen by `run`.
        # Without it, a stop between the start and the assignment found nothing to end,
        # and the build ran on unseen.
        self._starting = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")

    def run(self, command: list[str], *, cwd: Path, env: Mapping[str, str] | None = None) -> None:
        shown = shlex.join(command)
        prefix = ["nice", "-n", str(self.niceness)] if self.niceness else []
        with self.path.open("a") as out:
            out.write(f"$ {shown}  (in {cwd})\n")
            out.flush()
            with self._starting:
                if self._stopped:
                    raise BuildFailed("stopped")
                try:
                    # A process group of its own, so that stopping the build ends the
                    # compilers and node processes the tool started, not only the tool.
                    self._running = subprocess.Popen(
                        [*prefix, *command],
                        cwd=cwd,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                except FileNotFoundError as error:
                    raise BuildFailed(f"{command[0]} not found") from error
            if self.niceness:
                _lower_session_priority(self._running.pid, self.niceness)
            code = self._running.wait()
            self._running = None
        if code != 0:
            raise BuildFailed(f"`{shown}` failed (exit {code}) in {cwd}")

    def stop(self) -> None:
        """End the tool running now, and refuse to run any other."""
        with self._starting:
            self._stopped = True
            running = self._running
        if running is not None:
            with suppress(ProcessLookupError):
                os.killpg(running.pid, signal.SIGTERM)

    def tail(self, lines: int = TAIL_LINES) -> str:
        try:
            return "\n".join(self.path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def report(self, error: BaseException) -> str:
        return f"{error}; the last lines of {self.path}:\n{self.tail()}"


@dataclass(frozen=True)
class Build:
    """One job: `run` builds what `title` names, writing its tools' output to the log it is
    given; `needed` is False when every result is present and newer than its sources."""

    name: str
    title: str
    needed: bool
    run: Callable[[BuildLog], None]
    monitoring: bool = False
    first_time: str = ""  # how long it takes on a fresh machine, for the progress line


def run_now(build: Build, log_dir: Path | None = None) -> None:
    """Run a build in the foreground, if needed (for the tests and tools that want one)."""
    if not build.needed:
        return
    log = BuildLog((log_dir or BUILD_LOGS) / f"{build.name}.log")
    with step(f"Building {build.title}"):
        try:
            build.run(log)
        except StackError as error:
            raise StackError(f"building {build.title}: {log.report(error)}") from error


def _duration(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{seconds:.0f}s"


class BuildJobs:
    """The builds of one `make up`, each in a thread of its own once `start` is called."""

    def __init__(
        self,
        builds: Iterable[Build],
        log_dir: Path = BUILD_LOGS,
        progress_every: float = PROGRESS_EVERY_S,
    ) -> None:
        self.builds = {build.name: build for build in builds}
        self.log_dir = log_dir
        self.progress_every = progress_every
        self._lock = threading.Lock()
        self._started: dict[str, float] = {}
        self._logs: dict[str, BuildLog] = {}
        self._done: set[str] = set()
        self._failed: dict[str, str] = {}
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # -- state ----------------------------------------------------------------

    def succeeded(self, name: str) -> bool:
        """Its results are there: it was not needed, or it finished without error."""
        with self._lock:
            return not self.builds[name].needed or name in self._done

    def failure(self, name: str) -> str | None:
        """What went wrong, with its log's last lines, if the build failed."""
        with self._lock:
            return self._failed.get(name)

    def running(self) -> list[str]:
        with self._lock:
            return [
                name
                for name, build in self.builds.items()
                if build.needed and name not in self._done and name not in self._failed
            ]

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    # -- running --------------------------------------------------------------

    def start(self) -> None:
        """Start every needed build at once, the shop's first in the listing."""
        needed = sorted((b for b in self.builds.values() if b.needed), key=lambda b: b.monitoring)
        if not needed:
            return
        say(f"Building in the background, each with its log in {self.log_dir}/<name>.log:")
        for build in needed:
            notes = [n for n in (build.first_time, "low priority" if build.monitoring else "") if n]
            say(f"  {build.name}: {build.title}" + (f" ({', '.join(notes)})" if notes else ""))
            log = BuildLog(self.log_path(build.name), LOW_PRIORITY if build.monitoring else 0)
            with self._lock:
                self._logs[build.name] = log
                self._started[build.name] = time.monotonic()
            thread = threading.Thread(
                target=self._work, args=(build, log), name=f"build-{build.name}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        ticker = threading.Thread(target=self._tick, name="build-progress", daemon=True)
        self._threads.append(ticker)
        ticker.start()

    def _work(self, build: Build, log: BuildLog) -> None:
        try:
            build.run(log)
        except Exception as error:  # any failure is the build's, reported with its log
            report = log.report(error)
            with self._lock:
                self._failed[build.name] = report
                took = time.monotonic() - self._started[build.name]
            if not self._stopping.is_set():
                say(f"FAILED after {_duration(took)}: building {build.title}: {report}")
            return
        with self._lock:
            self._done.add(build.name)
            took = time.monotonic() - self._started[build.name]
        say(f"Built {build.title} in {_duration(took)}")

    def _tick(self) -> None:
        while not self._stopping.wait(self.progress_every):
            running = self.running()
            if not running:
                return
            now = time.monotonic()
            with self._lock:
                shown = [
                    f"{name} ({_duration(now - self._started[name])}"
                    + (", low priority)" if self.builds[name].monitoring else ")")
                    for name in running
                ]
            say(f"still building: {', '.join(shown)}")

    def stop(self) -> None:
        """End the builds still running (on Ctrl-C or an error) and wait for their threads."""
        self._stopping.set()
        with self._lock:
            logs = [self._logs[name] for name in self._logs if name not in self._done]
        for log in logs:
            log.stop()
        for thread in self._threads:
            thread.join(timeout=30)

    def wait(self, timeout: float | None = None) -> None:
        """Until every build has finished (for tests; `make up` polls instead)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if thread.name != "build-progress":
                thread.join(left)
