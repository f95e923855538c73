"""The Consul build module (infra/consul) pins what Consul's own go.mod only gets from its
source tree, and shopctl reads the pinned versions from it."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from shopctl.consul_build import (
    CONSUL_MODULE,
    CONSUL_SUBMODULE_VERSIONS,
    CONSUL_TEMPLATE_VERSION,
    CONSUL_VERSION,
    GO_MOD,
    ensure_consul_binaries,
)
from shopctl.gobuild import go_mod_directives, module_cache, required_versions

SEMVER = re.compile(r"v(\d+)\.(\d+)\.(\d+)")
# Where `go mod download` leaves Consul's go.mod for the pinned version.
CONSUL_GO_MOD = (
    module_cache() / "cache" / "download" / CONSUL_MODULE / "@v" / f"{CONSUL_VERSION}.mod"
)


def _semver(version: str) -> tuple[int, ...]:
    match = SEMVER.fullmatch(version)
    assert match, f"{version} is not a plain release version"
    return tuple(int(part) for part in match.groups())


@pytest.mark.unit
def test_consul_is_pinned_at_a_1_22_release() -> None:
    assert _semver(CONSUL_VERSION)[:2] == (1, 22)


@pytest.mark.unit
def test_version_constants_are_plain_release_versions() -> None:
    _semver(CONSUL_TEMPLATE_VERSION)
    assert set(CONSUL_SUBMODULE_VERSIONS) == {
        f"{CONSUL_MODULE}/{name}"
        for name in ("api", "sdk", "proto-public", "envoyextensions", "troubleshoot")
    }
    for version in CONSUL_SUBMODULE_VERSIONS.values():
        _semver(version)


@pytest.mark.unit
def test_go_mod_parser_reads_single_line_and_block_forms(tmp_path: Path) -> None:
    go_mod = tmp_path / "go.mod"
    go_mod.write_text(
        "module example.local/x\n\ngo 1.25\n\n"
        "require example.com/a v1.2.3\n"
        "require (\n\texample.com/b v0.1.0 // indirect\n\n\t// a comment\n)\n"
        "replace example.com/c => ./c\n"
        "exclude (\n\texample.com/d v1.1.5 // broken\n)\n"
    )
    assert required_versions(go_mod) == {"example.com/a": "v1.2.3", "example.com/b": "v0.1.0"}
    directives = go_mod_directives(go_mod)
    assert directives["module"] == [["example.local/x"]]
    assert directives["replace"] == [["example.com/c", "=>", "./c"]]
    assert directives["exclude"] == [["example.com/d", "v1.1.5"]]


@pytest.mark.unit
def test_every_submodule_consul_replaces_is_pinned_at_least_at_its_requirement() -> None:
    if not CONSUL_GO_MOD.exists():
        pytest.skip(f"Consul's go.mod is not in the module cache ({CONSUL_GO_MOD})")
    consul = go_mod_directives(CONSUL_GO_MOD)
    replaced = {entry[0] for entry in consul["replace"] if entry[0].startswith(CONSUL_MODULE)}
    assert replaced, "Consul's go.mod no longer replaces its submodules; revisit infra/consul"
    assert replaced <= CONSUL_SUBMODULE_VERSIONS.keys()
    wanted = required_versions(CONSUL_GO_MOD)
    for module in replaced:
        assert _semver(CONSUL_SUBMODULE_VERSIONS[module]) >= _semver(wanted[module]), module


@pytest.mark.unit
def test_consuls_excludes_are_copied() -> None:
    if not CONSUL_GO_MOD.exists():
        pytest.skip(f"Consul's go.mod is not in the module cache ({CONSUL_GO_MOD})")
    ours = go_mod_directives(GO_MOD).get("exclude", [])
    assert go_mod_directives(CONSUL_GO_MOD).get("exclude", []) == ours


@pytest.mark.unit
def test_binaries_on_path_are_used_without_building(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("consul", "consul-template"):
        tool = tmp_path / name
        tool.write_text("#!/bin/sh\n")
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert ensure_consul_binaries() == (tmp_path / "consul", tmp_path / "consul-template")
