"""Processes by their family: what a program started (Postgres's backends, nginx's
workers), for memory counts and for faults that must reach every one of them."""

from __future__ import annotations

from pathlib import Path


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def process_tree(pid: int) -> list[int]:
    """The process and all its descendants (Postgres's backends, nginx's workers, ...)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(_children(current))
    return found
