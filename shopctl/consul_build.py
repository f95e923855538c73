"""HashiCorp Consul and consul-template for local mode, built from their Go modules.

The versions live in one place, the build module infra/consul/go.mod (see its README for
why Consul's submodules are pinned there by hand); the constants below are read from it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from shopctl.gobuild import BIN_DIR, go_build, required_versions
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


def _build(module: str, version: str, name: str, binary: Path, first_time: str) -> Path:
    installed = _on_path(binary.name)
    if installed is not None:
        return installed
    title = f"Building {name} {version.removeprefix('v')} from its Go module ({first_time})"
    return go_build(
        module,
        binary,
        BUILD_MODULE,
        title=title,
        sources=[GO_MOD, BUILD_MODULE / "go.sum"],
    )


def ensure_consul_binaries() -> tuple[Path, Path]:
    """Paths of `consul` and `consul-template`: the ones on PATH if any, else built into
    .cache/bin from infra/consul (again whenever its go.mod or go.sum is newer)."""
    consul = _build(
        CONSUL_MODULE,
        CONSUL_VERSION,
        "Consul",
        CONSUL_BINARY,
        "first time: several minutes",
    )
    consul_template = _build(
        CONSUL_TEMPLATE_MODULE,
        CONSUL_TEMPLATE_VERSION,
        "consul-template",
        CONSUL_TEMPLATE_BINARY,
        "first time: a minute or two",
    )
    return consul, consul_template
