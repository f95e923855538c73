"""`make bench`: one run, every row measured with the same wrk settings, then the table,
the JSON document, the PNG and the comparison with the run before."""

from __future__ import annotations

import json
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from shopctl import capacity as checkout_capacity
from shopctl.bench import ceilings, gateway, plot, report, wrk
from shopctl.install import ensure_debian_packages
from shopctl.progress import say, step
from shopctl.shoppers import gateway_url
from shopctl.topology import ROOT, Settings

OUT = ROOT / ".run" / "bench"


def commit() -> str:
    """HEAD's short hash, with -dirty when tracked files have changed (as `git describe
    --dirty` says it)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no")
    return git("rev-parse", "--short", "HEAD") + ("-dirty" if dirty else "")


@contextmanager
def _stopped_cleanly_on_sigterm() -> Iterator[None]:
    """SIGTERM (`timeout`, a parent stopping us) unwinds like Ctrl-C, so that the servers
    the run started are stopped on the way out instead of left running."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _measure(
    name: str, url: str, settings: wrk.WrkSettings, script: Path | None = None
) -> wrk.WrkResult:
    with step(f"{name}: {settings.line()} {url}"):
        result = wrk.run(url, settings, script)
    say(
        f"{result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, "
        f"non-2xx {result.non_2xx}, socket errors {result.socket_errors}"
    )
    return result


def _rows(settings: Settings, options: wrk.WrkSettings, folder: Path) -> dict[str, wrk.WrkResult]:
    rows: dict[str, wrk.WrkResult] = {}
    # First, so that a stack that is not up is said at once; tokens live 15 minutes.
    with step(f"Signing in {gateway.SHOPPERS} shoppers for the write"):
        tokens = gateway.prepare(settings)
    try:
        with ceilings.nginx(folder / "a") as url:
            rows["ceiling_a"] = _measure(report.ROWS["ceiling_a"], url, options)
        with ceilings.bare_apps(folder / "b") as ports, ceilings.nginx(folder / "b", ports) as url:
            rows["ceiling_b"] = _measure(report.ROWS["ceiling_b"], url, options)
        base = gateway_url(settings)
        rows["read"] = _measure(report.ROWS["read"], base + gateway.READ_PATH, options)
        script = folder / "write.lua"
        script.write_text(
            wrk.authenticated_script(
                "PUT", gateway.WRITE_PATH, gateway.WRITE_BODY, tokens, options.threads
            )
        )
        rows["write"] = _measure(report.ROWS["write"], base + gateway.WRITE_PATH, options, script)
    finally:
        gateway.empty_carts(settings, tokens)
    return rows


def _checkout(settings: Settings, step_s: float) -> dict[str, Any]:
    best, steps = checkout_capacity.capacity(settings, step_seconds=step_s)
    return {
        "orders_per_s": best,
        "p99_bound_ms": checkout_capacity.P99_BOUND_S * 1000,
        "steps": [
            {
                "rate": s.rate,
                "sent": s.sent,
                "p50_ms": s.quantile(0.5) * 1000,
                "p99_ms": s.quantile(0.99) * 1000,
                "errors": dict(s.errors),
                "late": s.late,
                "no_shopper": s.no_shopper,
                "held": s.held,
            }
            for s in steps
        ],
    }


def bench(
    settings: Settings, *, duration_s: int = 10, checkout: bool = True, step_s: float = 10
) -> int:
    """Run everything once; 0 when every row answered without failures and, if measured,
    some checkout rate held. The goals' PASS or MISS is the result, not the exit status."""
    ensure_debian_packages({"wrk": "/usr/bin/wrk", "nginx": str(ceilings.NGINX)})
    options = wrk.WrkSettings(duration_s=duration_s)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    OUT.mkdir(parents=True, exist_ok=True)
    previous = report.latest_before(OUT, stamp)
    # The reference servers' configuration, pids, temp files and logs, and the write's
    # tokens: gone with the run.
    with (
        _stopped_cleanly_on_sigterm(),
        tempfile.TemporaryDirectory(prefix=f"{stamp}-", dir=OUT) as folder,
    ):
        rows = _rows(settings, options, Path(folder))
    doc = report.document(
        stamp=stamp,
        commit=commit(),
        machine=checkout_capacity.machine(),
        settings={
            "wrk": options.line(),
            "threads": options.threads,
            "connections": options.connections,
            "duration_s": options.duration_s,
            "write_shoppers": gateway.SHOPPERS,
            "checkout": checkout,
            "step_s": step_s if checkout else None,
        },
        rows=rows,
        checkout=_checkout(settings, step_s) if checkout else None,
    )
    result = OUT / f"{stamp}.json"
    result.write_text(json.dumps(doc, indent=2) + "\n")
    picture = plot.draw(doc, OUT / f"{stamp}.png")
    print("\n" + report.table(doc))
    print("\n" + report.comparison(previous, doc))
    print(f"\nResult: {result}\nPlot:   {picture}")
    return 1 if doc["flagged"] or (doc["checkout"] and not doc["checkout"]["orders_per_s"]) else 0
