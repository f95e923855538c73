"""HashiCorp Consul and consul-template for local mode, built from their Go modules.

The versions live in one place, the build module infra/consul/go.mod (see its README for
why Consul's submodules are pinned there by hand); the constants below are read from it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from shopctl.builds import Build, run_now
from shopctl.gobuild import BIN_DIR, go_job, required_versions
from shopctl.topology import ROOT

BUILD_MODULE = ROOT / "infra" / "consul"
GO_MOD = BUILD_MODULE / "go.mod"
CONSUL_MODULE = "github.com/hashicorp/consul"
CONSUL_TEMPLATE_MODULE = "github.com/hashicorp/consul-template"


PINNED = required_versions(GO_MOD)
CONSUL_VERSION = PINNED[CONSUL_MODULE]
CONSUL_TEMPLATE_VERSION = PINNED[CONSUL_TEMPLATE_MODULE]
# Consul's own submodules (api, sdk, proto-public, envoyextensions, troubleshoot).
CONSUL_SUBMODULE_VERSIONS = {
    module: version for module, version in PINNED.items() if module.startswith(CONSUL_MODULE + "/")
}
CONSUL_BINARY = BIN_DIR / "consul"
CONSUL_TEMPLATE_BINARY = BIN_DIR / "consul-template"


def _on_path(name: str) -> Path | None:
    """An installed `name`, unless what PATH finds is our own build (which may be stale)."""
    found = shutil.which(name)
    if found is None or Path(found).resolve().parent == BIN_DIR.resolve():
        return None
    return Path(found)


def consul_binaries() -> tuple[Path, Path]:
    """Paths of `consul` and `consul-template`: the ones on PATH if any, else those that
    `consul_job` builds into .cache/bin."""
    return (
        _on_path(CONSUL_BINARY.name) or CONSUL_BINARY,
        _on_path(CONSUL_TEMPLATE_BINARY.name) or CONSUL_TEMPLATE_BINARY,
    )


def consul_job() -> Build:
    """Build those of consul and consul-template that are not on PATH, again whenever
    infra/consul's go.mod or go.sum is newer than the binary. One `go build` makes both:
    the packages they share (gRPC, protobuf, HashiCorp's libraries) compile once."""
    consul, consul_template = consul_binaries()
    wanted = {CONSUL_MODULE: consul, CONSUL_TEMPLATE_MODULE: consul_template}
    return go_job(
        "consul",
        f"Consul {CONSUL_VERSION.removeprefix('v')} and consul-template "
        f"{CONSUL_TEMPLATE_VERSION.removeprefix('v')} from their Go modules",
        {module: path for module, path in wanted.items() if path.parent == BIN_DIR},
        BUILD_MODULE,
        sources=[GO_MOD, BUILD_MODULE / "go.sum"],
        first_time="first time: 5-8 min on 2 cores",
    )


def ensure_consul_binaries() -> tuple[Path, Path]:
    """`consul_binaries`, built now if needed."""
    run_now(consul_job())
    return consul_binaries()
