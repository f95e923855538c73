"""Background builds (shopctl/builds.py) and Go builds as jobs (shopctl/gobuild.py), with
real threads and processes but fake tools: `sh` and `python` in place of go and npm."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from shopctl import gobuild
from shopctl.builds import Build, BuildJobs, BuildLog, run_now
from shopctl.progress import StackError

pytestmark = pytest.mark.unit

# A stand-in for `go build -trimpath -o <dir>/ pkg...`: logs its arguments and writes one
# file per package, named as go names a main package's binary.
FAKE_GO = """#!/bin/sh
echo "go $*" >> "$GO_CALLS"
shift 3  # build -trimpath -o
out="$1"; shift
for pkg in "$@"; do
  name=$(basename "$pkg"); case "$name" in v[0-9]*) name=$(basename "$(dirname "$pkg")");; esac
  echo "binary of $pkg" > "$out$name"
done
"""


def _shell(log: BuildLog, script: str, cwd: Path) -> None:
    log.run(["sh", "-c", script], cwd=cwd)


def _wait(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_builds_run_at_once_in_the_background_each_with_its_own_log(tmp_path: Path) -> None:
    gate = threading.Event()

    def slow(log: BuildLog) -> None:
        _shell(log, "echo compiling consul", tmp_path)
        assert gate.wait(10)

    jobs = BuildJobs(
        [
            Build("consul", "Consul", needed=True, run=slow),
            Build("toxiproxy", "Toxiproxy", True, lambda log: _shell(log, "echo tp", tmp_path)),
        ],
        log_dir=tmp_path / "logs",
    )
    jobs.start()
    _wait(lambda: jobs.succeeded("toxiproxy"))
    assert not jobs.succeeded("consul")  # still running: start() did not wait for it
    assert jobs.running() == ["consul"]
    gate.set()
    jobs.wait(10)
    assert jobs.succeeded("consul")
    assert "compiling consul" in (tmp_path / "logs" / "consul.log").read_text()
    assert "tp" in (tmp_path / "logs" / "toxiproxy.log").read_text()


def test_a_build_that_is_not_needed_never_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def must_not_run(log: BuildLog) -> None:
        raise AssertionError("built although its results are there")

    jobs = BuildJobs([Build("consul", "Consul", False, must_not_run)], log_dir=tmp_path)
    jobs.start()
    assert jobs.succeeded("consul")
    assert jobs.running() == []
    assert list(tmp_path.iterdir()) == []  # no log, no thread
    assert "Building" not in capsys.readouterr().err
    run_now(Build("consul", "Consul", False, must_not_run), log_dir=tmp_path)


def test_a_failed_build_is_reported_with_its_log_tail_and_others_go_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    failing = "echo 'compiling...'; echo 'main.go:3:2: undefined: consul.Agent' >&2; exit 1"
    jobs = BuildJobs(
        [
            Build("consul", "Consul", True, lambda log: _shell(log, failing, tmp_path)),
            Build("prometheus", "Prometheus", True, lambda log: _shell(log, "true", tmp_path)),
        ],
        log_dir=tmp_path / "logs",
    )
    jobs.start()
    jobs.wait(10)
    failure = jobs.failure("consul")
    assert failure is not None
    assert "failed (exit 1)" in failure
    assert failure.endswith("compiling...\nmain.go:3:2: undefined: consul.Agent")
    assert jobs.succeeded("prometheus") and jobs.failure("prometheus") is None
    err = capsys.readouterr().err
    assert "FAILED after" in err and "undefined: consul.Agent" in err
    assert "Built Prometheus" in err


def test_run_now_raises_with_the_log_tail(tmp_path: Path) -> None:
    build = Build("npm", "the UI", True, lambda log: _shell(log, "echo boom; exit 3", tmp_path))
    with pytest.raises(StackError, match=r"exit 3\).*npm.log:\n.*\nboom$"):
        run_now(build, log_dir=tmp_path)


SHOW_PRIORITY = """
import os, pathlib, time
time.sleep(0.2)  # the parent lowers the session's priority right after starting it
print("niceness", os.nice(0))
group = pathlib.Path("/proc/self/autogroup")  # present when the kernel shares CPU by session
print(group.read_text().split()[-1] if group.exists() else "no autogroup", "session niceness")
"""


def test_monitoring_builds_run_at_low_priority(tmp_path: Path) -> None:
    def show(log: BuildLog) -> None:
        log.run([sys.executable, "-c", SHOW_PRIORITY], cwd=tmp_path)

    jobs = BuildJobs(
        [
            Build("consul", "Consul", True, show),
            Build("prometheus", "Prometheus", True, show, monitoring=True),
        ],
        log_dir=tmp_path,
    )
    jobs.start()
    jobs.wait(10)
    ours = os.nice(0)
    shop, monitoring = ((tmp_path / f"{n}.log").read_text() for n in ("consul", "prometheus"))
    assert f"niceness {ours}\n" in shop
    assert f"niceness {min(ours + 10, 19)}\n" in monitoring
    if Path("/proc/self/autogroup").exists():
        assert "0 session niceness" in shop
        assert "10 session niceness" in monitoring


def test_progress_names_what_is_still_building(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gate = threading.Event()

    def slow(log: BuildLog) -> None:
        assert gate.wait(10)

    jobs = BuildJobs(
        [Build("prometheus", "Prometheus", True, slow, monitoring=True)],
        log_dir=tmp_path,
        progress_every=0.05,
    )
    jobs.start()
    _wait(lambda: "still building: prometheus (" in capsys.readouterr().err)
    gate.set()
    jobs.wait(10)


def test_stop_ends_the_running_tool_and_its_children(tmp_path: Path) -> None:
    # The tool starts a child, as go starts compilers and npm starts node.
    script = f"sleep 60 & echo $! > {tmp_path}/child; wait"
    build = Build("consul", "Consul", True, lambda log: _shell(log, script, tmp_path))
    jobs = BuildJobs([build], log_dir=tmp_path)
    jobs.start()
    _wait(lambda: (tmp_path / "child").exists() and (tmp_path / "child").read_text().strip())
    began = time.monotonic()
    jobs.stop()
    assert time.monotonic() - began < 10
    assert jobs.failure("consul") is not None
    child = int((tmp_path / "child").read_text())
    _wait(lambda: not Path(f"/proc/{child}").exists() or "Z" in _state(child))


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]
    except (OSError, IndexError):
        return "Z"


# -- Go builds as jobs ---------------------------------------------------------------


@pytest.fixture
def fake_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake `go` on PATH; returns the file its calls are logged to."""
    bin_dir = tmp_path / "gobin"
    bin_dir.mkdir()
    (bin_dir / "go").write_text(FAKE_GO)
    (bin_dir / "go").chmod(0o755)
    calls = tmp_path / "go-calls"
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("GO_CALLS", str(calls))
    return calls


def _module(tmp_path: Path) -> tuple[Path, Path]:
    module = tmp_path / "module"
    module.mkdir()
    (module / "go.mod").write_text("module example.local/x\n")
    return module, module / "go.mod"


def test_binaries_newer_than_their_sources_are_not_built_again(tmp_path: Path) -> None:
    module, go_mod = _module(tmp_path)
    out = tmp_path / "bin"
    out.mkdir()
    for name in ("consul", "consul-template"):
        (out / name).write_text("built")
    outputs = {"example.com/consul": out / "consul", "example.com/consul-template": out / "ct"}
    (out / "ct").write_text("built")
    assert not gobuild.go_job("consul", "Consul", outputs, module, sources=[go_mod]).needed

    later = time.time() + 5
    os.utime(go_mod, (later, later))  # the pins changed
    assert gobuild.go_job("consul", "Consul", outputs, module, sources=[go_mod]).needed


def test_one_go_build_makes_every_stale_binary_and_moves_each_into_place(
    tmp_path: Path, fake_go: Path
) -> None:
    module, go_mod = _module(tmp_path)
    out = tmp_path / "bin"
    out.mkdir()
    (out / "promtool").write_text("old")
    os.utime(out / "promtool", (0, 0))  # older than go.mod: stale
    outputs = {
        "github.com/prometheus/prometheus/cmd/prometheus": out / "prometheus",
        "github.com/prometheus/prometheus/cmd/promtool": out / "promtool",
        "github.com/Shopify/toxiproxy/v2": out / "toxiproxy-server",
    }
    job = gobuild.go_job("prometheus", "Prometheus", outputs, module, sources=[go_mod])
    run_now(job, log_dir=tmp_path / "logs")
    calls = fake_go.read_text().splitlines()
    assert len(calls) == 1  # one `go build`: shared packages compile once
    assert calls[0].startswith("go build -trimpath -o ")
    assert (
        out / "promtool"
    ).read_text() == "binary of github.com/prometheus/prometheus/cmd/promtool\n"
    assert (out / "toxiproxy-server").read_text() == "binary of github.com/Shopify/toxiproxy/v2\n"
    assert sorted(p.name for p in out.iterdir()) == ["prometheus", "promtool", "toxiproxy-server"]
    assert not gobuild.go_job("prometheus", "P", outputs, module, sources=[go_mod]).needed


def test_only_the_stale_binary_is_built(tmp_path: Path, fake_go: Path) -> None:
    module, go_mod = _module(tmp_path)
    out = tmp_path / "bin"
    out.mkdir()
    (out / "consul").write_text("fresh")
    outputs = {"example.com/consul": out / "consul", "example.com/consul-template": out / "ct"}
    run_now(gobuild.go_job("consul", "C", outputs, module, sources=[go_mod]), tmp_path / "logs")
    assert fake_go.read_text().split()[-1] == "example.com/consul-template"
    assert (out / "consul").read_text() == "fresh"
    assert (out / "ct").read_text() == "binary of example.com/consul-template\n"
