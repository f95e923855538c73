"""Build Go programs into the git-ignored .cache/bin.

Used for every Go tool the project builds from source (compose-check, Consul,
consul-template, Prometheus, Toxiproxy), as jobs that `make up` runs in the background
(shopctl/builds.py). Go keeps its module and build caches where it always does
(`go env GOMODCACHE`, `go env GOCACHE`): like pip's cache they are shared by every
checkout on the machine, so a second clone links the binaries in seconds instead of
compiling Consul and Prometheus again for several minutes.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from shopctl.builds import Build, BuildLog, run_now
from shopctl.progress import StackError
from shopctl.topology import ROOT

GO_FALLBACK = Path("/usr/local/go/bin/go")
BIN_DIR = ROOT / ".cache" / "bin"


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


def _built_name(package: str) -> str:
    """The file name `go build -o <dir>/` gives a main package: its import path's last
    element, or the one before a major-version suffix (`.../v2`)."""
    parts = package.rstrip("/").split("/")
    if len(parts) > 1 and re.fullmatch(r"v\d+", parts[-1]):
        return parts[-2]
    return parts[-1]


def _remove_abandoned_staging(bin_dir: Path) -> None:
    """Staging folders of builds whose process was killed (each name carries its pid)."""
    for folder in bin_dir.glob(".building-*"):
        pid = folder.name.split("-")[1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(folder, ignore_errors=True)


def build_into(outputs: Mapping[str, Path], cwd: Path, log: BuildLog) -> None:
    """Build each main package of `outputs` (import path, or "." for the module at `cwd`)
    into its path, in one `go build`: packages they share are compiled once, and Go
    schedules all of their compiles together."""
    go = find_go()
    bin_dir = next(iter(outputs.values())).parent
    bin_dir.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_staging(bin_dir)
    # Built into a staging folder and moved into place, so an interrupted build never
    # leaves a binary that looks complete (or fresh).
    staging = Path(tempfile.mkdtemp(prefix=f".building-{os.getpid()}-", dir=bin_dir))
    try:
        log.run(
            [str(go), "build", "-trimpath", "-o", f"{staging}/", *outputs],
            cwd=cwd,
            env=go_env(),
        )
        built = list(staging.iterdir())
        for package, output in outputs.items():
            name = built[0].name if len(outputs) == 1 else _built_name(package)
            (staging / name).replace(output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def go_job(
    name: str,
    title: str,
    outputs: Mapping[str, Path],
    cwd: Path,
    *,
    sources: Iterable[Path] | None = None,
    monitoring: bool = False,
    first_time: str = "",
) -> Build:
    """A build job for those of `outputs` (package -> binary) that are older than the
    module's sources (default: the *.go, go.mod and go.sum files in `cwd`) or missing."""
    source_files = list(module_sources(cwd) if sources is None else sources)
    stale = {package: out for package, out in outputs.items() if is_stale(out, source_files)}
    return Build(
        name=name,
        title=title,
        needed=bool(stale),
        run=lambda log: build_into(stale, cwd, log),
        monitoring=monitoring,
        first_time=first_time,
    )


def go_build(
    package: str,
    output: Path,
    cwd: Path,
    *,
    title: str | None = None,
    sources: Iterable[Path] | None = None,
) -> Path:
    """Build `package` (a path like "." or an import path) in the module at `cwd` into
    `output` now, unless `output` is newer than the module's sources (default: the *.go,
    go.mod and go.sum files in `cwd`); its output goes to .cache/builds/<name>.log."""
    job = go_job(output.name, title or output.name, {package: output}, cwd, sources=sources)
    run_now(job)
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
