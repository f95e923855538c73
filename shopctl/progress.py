"""Progress lines for long commands: which step is running and how long each took."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

_started = time.monotonic()


def say(message: str) -> None:
    print(f"[{time.monotonic() - _started:6.1f}s] {message}", file=sys.stderr, flush=True)


@contextmanager
def step(title: str) -> Iterator[None]:
    say(f"{title} ...")
    began = time.monotonic()
    yield
    say(f"{title}: done in {time.monotonic() - began:.1f}s")


class StackError(RuntimeError):
    """A failure to report to the user in one line, without a traceback."""
