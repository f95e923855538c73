"""Prometheus and promtool for local mode, built from its Go module (Debian's build has no
Consul service discovery; see infra/prometheus/build/README.md). The version is the one
the build module's go.mod requires, so promtool checks rules with the same parser the
server loads them with."""

from __future__ import annotations

import re
from pathlib import Path

from shopctl.builds import Build, BuildLog
from shopctl.gobuild import BIN_DIR, find_go, go_build, go_env, go_job, module_cache
from shopctl.topology import ROOT

BUILD_MODULE = ROOT / "infra" / "prometheus" / "build"
MODULE = "github.com/prometheus/prometheus"
BINARY = BIN_DIR / "prometheus"
PROMTOOL = BIN_DIR / "promtool"


def pinned_version() -> str:
    match = re.search(
        rf"^require {re.escape(MODULE)} (v\S+)$", (BUILD_MODULE / "go.mod").read_text(), re.M
    )
    if not match:
        raise ValueError(f"{BUILD_MODULE / 'go.mod'} does not require {MODULE} on one line")
    return match.group(1)


def release_name(module_version: str) -> str:
    """Prometheus tags its Go module v0.3XX.Y for release 3.XX.Y (v0.307.3 is 3.7.3)."""
    _, minor, patch = module_version.removeprefix("v").split(".", 2)
    return f"{int(minor) // 100}.{int(minor) % 100}.{patch}"


def module_dir() -> Path:
    """The module's source folder in the Go module cache (its web UI is built from it)."""
    return module_cache() / f"{MODULE}@{pinned_version()}"


def prometheus_job() -> Build:
    """Prometheus and promtool in one `go build` (they share almost every package), at low
    priority: the shop answers without them."""
    return go_job(
        "prometheus",
        f"Prometheus {release_name(pinned_version())} and promtool from their Go module",
        {f"{MODULE}/cmd/prometheus": BINARY, f"{MODULE}/cmd/promtool": PROMTOOL},
        BUILD_MODULE,
        monitoring=True,
        first_time="first time: several minutes",
    )


def download_sources(log: BuildLog) -> None:
    """Fetch the module's sources into the module cache (its web UI is built from them)."""
    log.run([str(find_go()), "mod", "download", MODULE], cwd=BUILD_MODULE, env=go_env())


def ensure_promtool() -> Path:
    """promtool, to check the configuration and alerting rules (`promtool check ...`).
    It shares the Go build cache with Prometheus, so it links in seconds after it."""
    return go_build(
        f"{MODULE}/cmd/promtool",
        PROMTOOL,
        BUILD_MODULE,
        title=f"promtool {release_name(pinned_version())} from its Go module",
    )
