"""supervisord as local mode's process manager: the programs it runs, its rendered
configuration, and a client for its XML-RPC interface on the run folder's unix socket."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import SupervisorTransport

from shopctl.progress import StackError
from shopctl.render import templates

VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Program:
    name: str
    command: str
    directory: Path
    priority: int
    kind: str  # "infra", "service" or "edge"
    stop_signal: str = "TERM"
    stop_wait: int = 30
    user: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    # The build jobs (shopctl/builds.py) whose results it runs: it starts once they are done.
    builds: tuple[str, ...] = ()

    @property
    def environment(self) -> str:
        # supervisord's syntax: KEY="value",... with % doubled (it interpolates %(x)s).
        return ",".join(f'{k}="{v.replace("%", "%%")}"' for k, v in self.env.items())


def render_config(run: Path, programs: list[Program]) -> str:
    return templates.get_template("supervisor/supervisord.conf.j2").render(
        run=run, programs=programs, root=os.geteuid() == 0
    )


class Supervisor:
    def __init__(self, run: Path) -> None:
        self.run = run
        self.conf = run / "supervisord.conf"
        self.pid_file = run / "supervisord.pid"
        self.socket = run / "supervisor.sock"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text())
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        return pid

    def running(self) -> bool:
        return self.pid() is not None

    @contextmanager
    def _rpc(self) -> Iterator[Any]:
        transport = SupervisorTransport(None, None, f"unix://{self.socket}")
        try:
            yield xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor
        finally:
            transport.close()

    def start_daemon(self) -> None:
        subprocess.run([str(VENV_BIN / "supervisord"), "-c", str(self.conf)], check=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with self._rpc() as rpc:
                    if rpc.getState()["statename"] == "RUNNING":
                        return
            except (OSError, xmlrpc.client.Fault):
                pass
            time.sleep(0.2)
        raise StackError(f"supervisord did not start; see {self.run / 'logs/supervisord.log'}")

    def reload(self) -> None:
        """Apply a re-rendered configuration: add, drop or restart changed programs."""
        with self._rpc() as rpc:
            added, changed, removed = rpc.reloadConfig()[0]
            for name in removed + changed:
                rpc.stopProcessGroup(name)
                rpc.removeProcessGroup(name)
            for name in added + changed:
                rpc.addProcessGroup(name)
            for info in rpc.getAllProcessInfo():
                if info["statename"] in ("STOPPED", "EXITED", "FATAL"):
                    rpc.startProcess(info["name"], False)

    def processes(self) -> list[dict[str, Any]]:
        if not self.running():
            return []
        with self._rpc() as rpc:
            return list(rpc.getAllProcessInfo())

    def signal(self, name: str, sig: signal.Signals) -> None:
        with self._rpc() as rpc:
            rpc.signalProcess(name, sig.name.removeprefix("SIG"))

    def stop(self, name: str) -> None:
        with self._rpc() as rpc:
            rpc.stopProcess(name, True)

    def kill_and_keep_down(self, name: str) -> None:
        """SIGKILL a program without supervisord starting it again. Killing first and
        stopping after races the restart: the stop signal would reach a fresh copy half
        started (a Consul server that then lingers, calling elections). So the group is
        frozen, marked stopping while it cannot act on the stop signal, and killed."""
        with self._rpc() as rpc:
            pid = int(rpc.getProcessInfo(name)["pid"])
            if not pid:
                raise StackError(f"{name} is not running")
            os.killpg(pid, signal.SIGSTOP)  # from here it is dead to its peers
            try:
                rpc.stopProcess(name, False)
            finally:
                os.killpg(pid, signal.SIGKILL)

    def start(self, name: str) -> None:
        with self._rpc() as rpc:
            rpc.startProcess(name, True)

    def shutdown(self, timeout: float = 120) -> None:
        """Stop every program (in reverse priority) and then supervisord itself."""
        pid = self.pid()
        if pid is None:
            return
        with self._rpc() as rpc:
            rpc.stopAllProcesses(True)
            rpc.shutdown()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
        raise StackError(f"supervisord (pid {pid}) did not exit within {timeout:.0f}s")
