"""The web UI build's bookkeeping, with a fake `npm` on PATH (the real build is slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopctl import builds, prometheus_ui
from shopctl.progress import StackError
from shopctl.prometheus_build import module_dir

pytestmark = pytest.mark.unit

# Logs each call; `run build -w .../mantine-ui` leaves a dist like vite's; FAIL_AT fails one.
FAKE_NPM = """#!/bin/sh
echo "$*" >> "$NPM_LOG"
case "$*" in *"$FAIL_AT"*) echo "line one"; echo "npm error: boom"; exit 3;; esac
case "$*" in *mantine-ui*) mkdir -p mantine-ui/dist; echo '<html>' > mantine-ui/dist/index.html;;
esac
"""


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A fake module folder and npm; returns (module folder, npm's call log)."""
    module = tmp_path / "mod" / "prometheus@v0.307.3"
    (module / "web" / "ui" / "mantine-ui").mkdir(parents=True)
    (module / "web" / "ui" / "package.json").write_text("{}")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "npm").write_text(FAKE_NPM)
    (bin_dir / "npm").chmod(0o755)
    log = tmp_path / "npm.log"
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("NPM_LOG", str(log))
    monkeypatch.setenv("FAIL_AT", "no such command")
    monkeypatch.setattr(prometheus_ui, "UI_CACHE", tmp_path / "cache")
    monkeypatch.setattr(builds, "BUILD_LOGS", tmp_path / "logs")
    return module, log


def test_built_ui_is_kept_per_module_version() -> None:
    version = module_dir().name.partition("@")[2]
    assert prometheus_ui.ui_dir(module_dir()) == prometheus_ui.UI_CACHE / version
    assert prometheus_ui.UI_CACHE.parts[-2:] == (".cache", "prometheus-ui")
    with pytest.raises(ValueError):
        prometheus_ui.ui_dir(Path("/somewhere/prometheus"))


def test_builds_once_and_again_only_without_the_marker(fake: tuple[Path, Path]) -> None:
    module, log = fake
    static = prometheus_ui.ensure_prometheus_ui(module)
    cache = prometheus_ui.UI_CACHE
    assert static == cache / "v0.307.3" / "static"
    assert (static / "mantine-ui" / "index.html").read_text() == "<html>\n"
    calls = log.read_text().splitlines()
    assert calls[0] == "ci --no-audit --no-fund"
    assert calls[-1] == "run build -w @prometheus-io/mantine-ui"
    assert sorted(p.name for p in cache.iterdir()) == ["v0.307.3"]  # staging removed
    assert not (module / "web" / "ui" / "node_modules").exists()  # built in a copy

    assert prometheus_ui.ensure_prometheus_ui(module) == static
    assert log.read_text().splitlines() == calls  # marker present: npm not run

    (static.parent / ".complete").unlink()
    prometheus_ui.ensure_prometheus_ui(module)
    assert len(log.read_text().splitlines()) == 2 * len(calls)


def test_npm_failure_reports_its_output_and_leaves_nothing(
    fake: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    module, _ = fake
    monkeypatch.setenv("FAIL_AT", "codemirror-promql")
    tail = r"exit 3\).*prometheus-ui.log:\n(.*\n)*line one\nnpm error: boom"
    with pytest.raises(StackError, match=tail):
        prometheus_ui.ensure_prometheus_ui(module)
    assert list(prometheus_ui.UI_CACHE.iterdir()) == []
