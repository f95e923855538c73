"""Prometheus's web UI for local mode. Our Prometheus is built from its Go module without the
`builtinassets` tag, so it serves the UI from `./web/ui/static` when its working directory
is named `prometheus`; the module ships only the UI's sources, so we build them with npm.

Like `web/ui/build_ui.sh`, minus the old React app: `npm ci` in the npm workspace, build the
workspace modules the UI imports (lezer-promql, then codemirror-promql), build mantine-ui and
move its `dist` to `static/mantine-ui`.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from shopctl.builds import Build, BuildLog, run_now
from shopctl.progress import StackError
from shopctl.topology import ROOT

UI_CACHE = ROOT / ".cache" / "prometheus-ui"
COMPLETE = ".complete"
# build_ui.sh's buildOrder, then the current UI; the old react-app is left out.
WORKSPACES = ("lezer-promql", "codemirror-promql", "mantine-ui")


def module_version(module_dir: Path) -> str:
    """`.../prometheus@v0.307.3` -> `v0.307.3`, as the Go module cache names the folder."""
    _, at, version = module_dir.name.partition("@")
    if not at or not version:
        raise ValueError(f"{module_dir} is not a Go module cache folder (name@version)")
    return version


def ui_dir(module_dir: Path) -> Path:
    """Where the built UI for this module version lives: `<this>/static` and a marker."""
    return UI_CACHE / module_version(module_dir)


def npm_commands() -> list[list[str]]:
    commands = [["npm", "ci", "--no-audit", "--no-fund"]]
    commands += [["npm", "run", "build", "-w", f"@prometheus-io/{w}"] for w in WORKSPACES]
    return commands


def _make_writable(tree: Path) -> None:
    """The Go module cache is read-only, and copies keep its modes."""
    for folder, _, files in os.walk(tree):
        for path in [Path(folder), *(Path(folder) / name for name in files)]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def build_ui(module_dir: Path, log: BuildLog) -> None:
    """Build the web UI of the Prometheus module in `module_dir` into `ui_dir(module_dir)`."""
    dest = ui_dir(module_dir)
    source = module_dir / "web" / "ui"
    if not (source / "package.json").is_file():
        raise StackError(f"{source} has no package.json: not Prometheus's web UI sources")
    UI_CACHE.mkdir(parents=True, exist_ok=True)
    # Leftovers of an interrupted build: a destination without its marker, or a staging
    # folder that a killed process could not remove.
    shutil.rmtree(dest, ignore_errors=True)
    for stale in UI_CACHE.glob(f".{dest.name}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    if shutil.which("npm") is None:
        raise StackError("npm not found: install Node.js 20+ with npm")
    with tempfile.TemporaryDirectory(prefix=f".{dest.name}-", dir=UI_CACHE) as staging:
        work = Path(staging) / "src"
        shutil.copytree(source, work, ignore=shutil.ignore_patterns("react-app", "node_modules"))
        _make_writable(work)
        for command in npm_commands():
            log.run(command, cwd=work)
        built = work / "mantine-ui" / "dist"
        if not (built / "index.html").is_file():
            raise StackError(f"npm finished but left no {built / 'index.html'}")
        out = Path(staging) / "out"
        (out / "static").mkdir(parents=True)
        built.rename(out / "static" / "mantine-ui")
        (out / COMPLETE).write_text(f"{module_dir}\n")
        out.rename(dest)


def ui_job(module_dir: Path, fetch_sources: Callable[[BuildLog], None] | None = None) -> Build:
    """The web UI's build, at low priority (the shop answers without it); `fetch_sources`
    first, when the module's sources are not in the module cache yet."""

    def run(log: BuildLog) -> None:
        if fetch_sources is not None and not module_dir.is_dir():
            fetch_sources(log)
        build_ui(module_dir, log)

    return Build(
        name="prometheus-ui",
        title="Prometheus's web UI with npm",
        needed=not (ui_dir(module_dir) / COMPLETE).is_file(),
        run=run,
        monitoring=True,
        first_time="first time: a minute or more",
    )


def ensure_prometheus_ui(module_dir: Path) -> Path:
    """Build the web UI of the Prometheus module in `module_dir` now unless already built,
    and return its `static` folder (to appear as `web/ui/static` under Prometheus's cwd)."""
    run_now(ui_job(module_dir))
    return ui_dir(module_dir) / "static"
