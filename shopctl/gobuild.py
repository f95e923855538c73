"""Build Go programs into the git-ignored .cache/bin.

Used for every Go tool the project builds from source (compose-check, Consul,
consul-template, Prometheus). Go keeps its module and build caches where it always does
(`go env GOMODCACHE`, `go env GOCACHE`): like pip's cache they are shared by every
checkout on the machine, so a second clone links the binaries in seconds instead of
compiling Consul and Prometheus again for several minutes.
"""

from __future__ import annotations

import functools
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
ERROR_TAIL_LINES = 20


def find_go() -> Path:
    found = shutil.which("go")
    if found:
        return Path(found)
    if GO_FALLBACK.exists():
        return GO_FALLBACK
    raise StackError(f"go not found on PATH nor at {GO_FALLBACK}")


def go_env() -> dict[str, str]:
    # Writable module files, so that a user can delete the cache without `go clean`.
    return {**os.environ, "GOFLAGS": "-modcacherw"}


@functools.cache
def module_cache() -> Path:
    """Where Go keeps downloaded modules (their sources, e.g. Prometheus's web UI)."""
    found = subprocess.run(
        [str(find_go()), "env", "GOMODCACHE"], capture_output=True, text=True, check=True
    )
    return Path(found.stdout.strip())


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


def go_mod_directives(go_mod: Path) -> dict[str, list[list[str]]]:
    """Each directive of a go.mod (module, require, replace, exclude, ...) -> its entries,
    each split into tokens, from single-line and block forms alike; comments dropped."""
    found: dict[str, list[list[str]]] = {}
    block: str | None = None
    for raw in go_mod.read_text().splitlines():
        line = raw.split("//", 1)[0].strip()
        if not line:
            continue
        if block is not None:
            if line == ")":
                block = None
            else:
                found[block].append(line.split())
            continue
        verb, _, rest = line.partition(" ")
        if rest.strip() == "(":
            block = verb
            found.setdefault(verb, [])
        else:
            found.setdefault(verb, []).append(rest.split())
    return found


def required_versions(go_mod: Path) -> dict[str, str]:
    """Module path -> version of every `require` in a go.mod."""
    return {entry[0]: entry[1] for entry in go_mod_directives(go_mod).get("require", [])}
