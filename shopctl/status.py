"""`make status`: one row per process with its state, readiness and memory (RSS of the
process and its children, e.g. Postgres's backends or nginx's workers)."""

from __future__ import annotations

from pathlib import Path

from shopctl.local import LocalStack
from shopctl.readiness import edge_checks, exporter_checks, infra_checks, instance_checks


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


def tree_rss_kib(pid: int) -> int:
    total = 0
    for member in process_tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def status_table(stack: LocalStack) -> tuple[list[list[str]], int]:
    ready = {
        **infra_checks(stack.settings),
        **instance_checks(stack.topology),
        **edge_checks(stack.settings),
        **exporter_checks(stack.settings),
    }
    rows = []
    total = 0
    for info in stack.supervisor.processes():
        pid = info["pid"]
        rss = tree_rss_kib(pid) if pid else 0
        total += rss
        rows.append(
            [
                info["name"],
                info["statename"],
                str(pid or "-"),
                "yes" if ready.get(info["name"]) else "no",
                f"{rss / 1024:.0f} MiB" if rss else "-",
            ]
        )
    return rows, total


def print_status(stack: LocalStack) -> int:
    if not stack.supervisor.running():
        print("The local stack is not running (`make up` starts it).")
        return 1
    rows, total = status_table(stack)
    header = ["PROCESS", "STATE", "PID", "READY", "RSS"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    print(f"\nTotal RSS of the stack: {total / 1024:.0f} MiB")
    not_ready = [r[0] for r in rows if r[3] != "yes"]
    print("All ready." if not not_ready else f"Not ready: {', '.join(not_ready)}")
    return 0 if not not_ready else 1
