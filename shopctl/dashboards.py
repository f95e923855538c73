"""Grafana dashboards in both modes. Docker mode provisions infra/grafana/dashboards into a
real Grafana; local mode runs `grafana-server` when one is on PATH, and otherwise serves
our own page (infra/grafana/local-page) that renders the same JSON files from Prometheus,
with uPlot (installed by npm into the cache) drawing the charts. Either way the dashboards
sit at http://127.0.0.1:GRAFANA_PORT/d/<uid>, so `make dashboards` prints one set of URLs."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from shopctl.progress import StackError, step
from shopctl.topology import ROOT, Settings

GRAFANA = ROOT / "infra" / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
PROVISIONING = GRAFANA / "provisioning"
PAGE = GRAFANA / "local-page"
NPM_CACHE = ROOT / ".cache" / "dashboards-page"
COMPLETE = ".complete"


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    path: Path


def dashboards(folder: Path = DASHBOARDS) -> list[Dashboard]:
    found = []
    for path in sorted(folder.glob("*.json")):
        model = json.loads(path.read_text())
        found.append(Dashboard(uid=model["uid"], title=model.get("title", model["uid"]), path=path))
    return found


def url(settings: Settings, uid: str) -> str:
    return f"http://127.0.0.1:{settings['GRAFANA_PORT']}/d/{uid}"


def print_urls(settings: Settings, mode: str) -> int:
    """Each dashboard's title and URL; opens the first in a browser when there is a display."""
    found = dashboards()
    if not found:
        raise StackError(f"no dashboard files in {DASHBOARDS}")
    shown_by = "Grafana" if mode == "docker" or grafana_server() else "the local dashboards page"
    print(f"Dashboards ({mode} mode, served by {shown_by}):")
    width = max(len(d.title) for d in found)
    for dashboard in found:
        print(f"  {dashboard.title.ljust(width)}  {url(settings, dashboard.uid)}")
    opener = shutil.which("xdg-open")
    if opener and (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        subprocess.Popen(
            [opener, url(settings, found[0].uid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    return 0


# -- local mode: grafana-server, or our page --------------------------------------


def grafana_server() -> Path | None:
    """A Grafana on PATH, which local mode then runs instead of the page."""
    found = shutil.which("grafana-server")
    return Path(found) if found else None


def grafana_homepath(server: Path) -> Path:
    """Grafana's static files: Debian's package keeps them in /usr/share/grafana, a
    release tarball beside its bin/ folder."""
    resolved = server.resolve()
    for candidate in (resolved.parent.parent, Path("/usr/share/grafana")):
        if (candidate / "conf" / "defaults.ini").is_file():
            return candidate
    raise StackError(f"found {server} but not Grafana's home (conf/defaults.ini) beside it")


def grafana_env(settings: Settings, run: Path) -> dict[str, str]:
    """Grafana's settings as GF_* variables, with the provisioning files Docker mode uses.
    Not exercised on the development machines, which have no Grafana."""
    return {
        "SHOPSTACK_PROMETHEUS_URL": f"http://127.0.0.1:{settings['PROMETHEUS_PORT']}",
        "SHOPSTACK_DASHBOARDS_DIR": str(DASHBOARDS),
        "GF_PATHS_PROVISIONING": str(PROVISIONING),
        "GF_PATHS_DATA": str(run / "grafana" / "data"),
        "GF_PATHS_LOGS": str(run / "grafana" / "logs"),
        "GF_SERVER_HTTP_ADDR": "127.0.0.1",
        "GF_SERVER_HTTP_PORT": settings["GRAFANA_PORT"],
        "GF_AUTH_ANONYMOUS_ENABLED": "true",
        "GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer",
        "GF_ANALYTICS_REPORTING_ENABLED": "false",
        "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
    }


def _lock_digest() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((PAGE / name).read_bytes())
    return digest.hexdigest()


def ensure_page_packages() -> Path:
    """Install the page's npm packages (uPlot) into the cache unless the same lock file is
    already installed there; returns uPlot's `dist` folder, which the gateway serves."""
    uplot = NPM_CACHE / "node_modules" / "uplot" / "dist"
    marker = NPM_CACHE / COMPLETE
    digest = _lock_digest()
    if marker.is_file() and marker.read_text().strip() == digest and uplot.is_dir():
        return uplot
    with step("Installing the dashboards page's npm packages (uPlot)"):
        NPM_CACHE.mkdir(parents=True, exist_ok=True)
        marker.unlink(missing_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(PAGE / name, NPM_CACHE / name)
        try:
            done = subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund"],
                cwd=NPM_CACHE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        except FileNotFoundError as error:
            raise StackError("npm not found: install Node.js 20+ with npm") from error
        if done.returncode != 0:
            raise StackError(f"`npm ci` failed in {NPM_CACHE}:\n{done.stdout[-3000:]}")
        if not (uplot / "uPlot.esm.js").is_file():
            raise StackError(f"npm finished but left no {uplot / 'uPlot.esm.js'}")
        marker.write_text(digest + "\n")
    return uplot
