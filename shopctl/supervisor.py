"""supervisord as local mode's process manager: the programs it runs, its rendered
configuration, and a client for its XML-RPC interface on the run folder's unix socket."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import xmlrpc.client
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

    def _proxy(self) -> Any:
        transport = SupervisorTransport(None, None, f"unix://{self.socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def start_daemon(self) -> None:
        subprocess.run([str(VENV_BIN / "supervisord"), "-c", str(self.conf)], check=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if self._proxy().supervisor.getState()["statename"] == "RUNNING":
                    return
            except (OSError, xmlrpc.client.Fault):
                pass
            time.sleep(0.2)
        raise StackError(f"supervisord did not start; see {self.run / 'logs/supervisord.log'}")

    def reload(self) -> None:
        """Apply a re-rendered configuration: add, drop or restart changed programs."""
        proxy = self._proxy()
        added, changed, removed = proxy.supervisor.reloadConfig()[0]
        for name in removed + changed:
            proxy.supervisor.stopProcessGroup(name)
            proxy.supervisor.removeProcessGroup(name)
        for name in added + changed:
            proxy.supervisor.addProcessGroup(name)
        for info in proxy.supervisor.getAllProcessInfo():
            if info["statename"] in ("STOPPED", "EXITED", "FATAL"):
                proxy.supervisor.startProcess(info["name"], False)

    def processes(self) -> list[dict[str, Any]]:
        if not self.running():
            return []
        return list(self._proxy().supervisor.getAllProcessInfo())

    def signal(self, name: str, sig: signal.Signals) -> None:
        self._proxy().supervisor.signalProcess(name, sig.name.removeprefix("SIG"))

    def stop(self, name: str) -> None:
        self._proxy().supervisor.stopProcess(name, True)

    def start(self, name: str) -> None:
        self._proxy().supervisor.startProcess(name, True)

    def shutdown(self, timeout: float = 120) -> None:
        """Stop every program (in reverse priority) and then supervisord itself."""
        pid = self.pid()
        if pid is None:
            return
        proxy = self._proxy()
        proxy.supervisor.stopAllProcesses(True)
        proxy.supervisor.shutdown()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
        raise StackError(f"supervisord (pid {pid}) did not exit within {timeout:.0f}s")
