"""Postgres as a primary and a synchronous streaming replica, each server run by its own
Patroni, which elects the primary through Consul and promotes the replica when the
primary is lost (https://patroni.readthedocs.io). The services' libpq URL names every
member with target_session_attrs=read-write, so they follow a failover by themselves.

Patroni runs as the `postgres` account (it runs Postgres), from a virtualenv of its own
that account can read: the project's may sit in a folder private to root, and be made
from a Python there too (pyenv's, under /root), so Patroni's is made from Debian's."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

from shopctl.processes import process_tree
from shopctl.progress import step
from shopctl.topology import ROOT, PostgresMember

# Debian's Python (package python3-venv), which every account may run.
SYSTEM_PYTHON = Path("/usr/bin/python3")


def _postgres_can_enter(folder: Path) -> bool:
    if os.geteuid() != 0:
        return True  # everything runs as the caller
    return (
        subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(folder)]).returncode
        == 0
    )


def patroni_home(version: str) -> Path:
    """Patroni's virtualenv: in the project's cache when the `postgres` account can reach
    it, else in /var/lib/shopstack, where one is kept per version for every checkout."""
    cache = ROOT / ".cache"
    cache.mkdir(exist_ok=True)
    if _postgres_can_enter(cache):
        return cache / f"patroni-{version}"
    return Path("/var/lib/shopstack") / f"patroni-{version}"


def ensure_patroni(version: str) -> Path:
    """The `patroni` program, installed from PyPI when missing."""
    home = patroni_home(version)
    program = home / "bin" / "patroni"
    done = home / ".complete"
    if done.exists():
        return program
    with step(f"Installing Patroni {version} from PyPI"):
        home.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", "--clear", str(home)], check=True)
        subprocess.run(
            [
                str(home / "bin" / "pip"),
                "install",
                "--quiet",
                "--disable-pip-version-check",
                f"patroni[consul,psycopg3]=={version}",
            ],
            check=True,
        )
        done.touch()
    return program


def member_home(pg_dir: Path, member: PostgresMember) -> Path:
    """A member's folder: data, socket, log, Patroni's configuration."""
    return pg_dir / member.name


def postmaster_pid(home: Path) -> int | None:
    """The running server's pid. Patroni starts Postgres in a session of its own, so the
    server outlives a Patroni that is killed (and a new Patroni takes it over). A pid
    file left by a server that died may name a pid since reused: the process must be a
    postgres of this member's data folder."""
    data = home / "data"
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError, IndexError):
        return None
    ours = command[0].endswith(b"/postgres") and str(data).encode() in b" ".join(command)
    return pid if ours else None


def signal_server(pid: int, sig: int) -> None:
    """Signal a Postgres server and every process it started. Not by process group:
    each backend calls setsid() at birth (so that the postmaster can signal it and its
    own children apart), so killing the postmaster's group left busy backends alive,
    holding the shared memory, and the server could not start again."""
    for member in process_tree(pid):
        with contextlib.suppress(ProcessLookupError):  # gone meanwhile
            os.kill(member, sig)
