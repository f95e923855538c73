"""Build Go programs into .cache/bin, with module and build caches kept in .cache/go.

Used for every Go tool the project builds from source (compose-check, Consul,
consul-template), so that all of them share one module cache and one build cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from contextlib import nullcontext
from pathlib import Path

from shopctl.progress import StackError, step
from shopctl.topology import ROOT

GO_FALLBACK = Path("/usr/local/go/bin/go")
BIN_DIR = ROOT / ".cache" / "bin"
GO_CACHE = ROOT / ".cache" / "go"
ERROR_TAIL_LINES = 20


def find_go() -> Path:
    found = shutil.which("go")
    if found:
        return Path(found)
    if GO_FALLBACK.exists():
        return GO_FALLBACK
    raise StackError(f"go not found on PATH nor at {GO_FALLBACK}")


def go_env() -> dict[str, str]:
    """The environment for go commands: modules and build cache stay in the git-ignored
    .cache, writable so that deleting .cache needs no `go clean`."""
    return {
        **os.environ,
        "GOMODCACHE": str(GO_CACHE / "mod"),
        "GOCACHE": str(GO_CACHE / "build"),
        "GOFLAGS": "-modcacherw",
    }


def module_sources(module_dir: Path) -> list[Path]:
    """The files whose change makes a binary built in module_dir stale."""
    return [p for p in module_dir.iterdir() if p.suffix in {".go", ".mod", ".sum"}]


def is_stale(binary: Path, sources: Iterable[Path]) -> bool:
    if not binary.exists():
        return True
    built = binary.stat().st_mtime
    return any(source.stat().st_mtime > built for source in sources)


def go_build(
    package: str,
    output: Path,
    cwd: Path,
    *,
    title: str | None = None,
    sources: Iterable[Path] | None = None,
) -> Path:
    """Build `package` (a path like "." or an import path) in the module at `cwd` into
    `output`, unless `output` is newer than the module's sources (default: the *.go,
    go.mod and go.sum files in `cwd`). `title`, when given, is shown as a progress step."""
    if not is_stale(output, module_sources(cwd) if sources is None else sources):
        return output
    go = find_go()
    output.parent.mkdir(parents=True, exist_ok=True)
    # Build into a temporary name so an interrupted build never leaves a binary that
    # looks complete (or fresh); the name is per process so parallel builds don't collide.
    partial = output.with_name(f".{output.name}.{os.getpid()}.partial")
    try:
        with step(title) if title else nullcontext():
            result = subprocess.run(
                [str(go), "build", "-trimpath", "-o", str(partial), package],
                cwd=cwd,
                capture_output=True,
                text=True,
                check=False,
                env=go_env(),
            )
            if result.returncode != 0:
                tail = "\n".join(result.stderr.strip().splitlines()[-ERROR_TAIL_LINES:])
                raise StackError(f"go build {package} (in {cwd}) failed:\n{tail}")
            partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
    return output
