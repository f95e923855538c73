"""The stack the experiments act on, set by the runner before an experiment starts
(Chaos Toolkit calls our actions and probes by module and function name, in-process)."""

from __future__ import annotations

from dataclasses import dataclass

from shopctl.local import LocalStack
from shopctl.topology import Settings


@dataclass
class Target:
    mode: str
    stack: LocalStack

    @property
    def settings(self) -> Settings:
        return self.stack.settings

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.settings['GATEWAY_PORT']}"


_current: Target | None = None


def use(target: Target) -> None:
    global _current
    _current = target


def current() -> Target:
    """The stack set by the runner; else the one `make up` started (so that `chaos run
    chaos/experiments/<name>.json` works on its own, without the load and the report)."""
    global _current
    if _current is None:
        _current = Target("local", LocalStack())
    return _current
