"""`make status`: one row per process with its state, readiness and memory: the PSS of the
process and its children (nginx's workers; a Postgres member's row adds its server and
backends). PSS splits each shared
page among the processes that map it, so the rows add up to what the stack really holds;
RSS would count Postgres's shared buffers once per backend."""

from __future__ import annotations

from pathlib import Path

from shopctl.builds import BUILD_LOGS
from shopctl.clusters import roles
from shopctl.launch import programs_waiting
from shopctl.local import LocalStack
from shopctl.patroni import member_home, postmaster_pid
from shopctl.processes import process_tree
from shopctl.readiness import edge_checks, exporter_checks, infra_checks, instance_checks


def pss_kib(pid: int) -> int:
    """The process's proportional set size; 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_pss_kib(pid: int) -> int:
    return sum(pss_kib(member) for member in process_tree(pid))


def status_table(stack: LocalStack) -> tuple[list[list[str]], int]:
    ready = {
        **infra_checks(stack.settings),
        **instance_checks(stack.topology),
        **edge_checks(stack.settings),
        **exporter_checks(stack.settings),
    }
    role = roles(stack.topology, stack.run)
    rows = []
    total = pss_kib(stack.supervisor.pid() or 0)  # supervisord runs the stack, and is in it
    running = stack.supervisor.processes()
    # Programs a `make up` still running starts once their builds finish.
    waiting = programs_waiting(stack.run).keys() - {info["name"] for info in running}
    # Patroni starts each Postgres server in a session of its own, outside its tree.
    servers = {
        m.name: postmaster_pid(member_home(stack.pg_dir, m))
        for m in stack.topology.postgres_members()
    }
    for info in running:
        pid = info["pid"]
        pss = tree_pss_kib(pid) if pid else 0
        server = servers.get(info["name"])
        pss += tree_pss_kib(server) if server else 0
        total += pss
        rows.append(
            [
                info["name"],
                info["statename"],
                str(pid or "-"),
                "yes" if ready.get(info["name"]) else "no",
                f"{pss / 1024:.0f} MiB" if pss else "-",
                role.get(info["name"], ""),
            ]
        )
    rows += [[name, "BUILDING", "-", "no", "-", ""] for name in sorted(waiting)]
    return rows, total


def print_status(stack: LocalStack) -> int:
    if not stack.supervisor.running():
        print("The local stack is not running (`make up` starts it).")
        return 1
    rows, total = status_table(stack)
    # ROLE: a replicated part's members, leader or follower (shopctl/clusters.py).
    header = ["PROCESS", "STATE", "PID", "READY", "PSS", "ROLE"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    print(f"\nMemory of the whole stack (PSS, supervisord included): {total / 1024:.0f} MiB")
    building = [r[0] for r in rows if r[1] == "BUILDING"]
    if building:
        print(
            f"Still building: {', '.join(building)}; the `make up` that runs starts them when "
            f"built (its progress is in its output, the builds' logs in {BUILD_LOGS}/)"
        )
    not_ready = [r[0] for r in rows if r[3] != "yes"]
    print("All ready." if not not_ready else f"Not ready: {', '.join(not_ready)}")
    return 0 if not not_ready else 1
