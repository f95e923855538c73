"""The load test's verdict: Locust's figures for a whole run held against the gates in
slo.yml's `load` section (per-entry p95 and p99, the failed share, 5xx answers).

A Locust entry is a route as the gateway sees it ("/products/{id}") or a journey ("POST
/orders → CONFIRMED", from the POST to the saga's end). An entry slo.yml does not name is
held to its `default` gate, so a journey added to the locustfile is gated from its first
run."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from shopctl.slo import SLO_FILE


@dataclass(frozen=True)
class Gate:
    p95_ms: float
    p99_ms: float


@dataclass(frozen=True)
class LoadGates:
    error_ratio: float  # failed requests over all requests, at most
    server_errors: int  # 5xx answers, at most
    default: Gate
    entries: dict[str, Gate]

    def gate(self, entry: str) -> Gate:
        return self.entries.get(entry, self.default)


def _gate(path: Path, name: str, values: Any) -> Gate:
    if not isinstance(values, dict) or set(values) != {"p95", "p99"}:
        raise ValueError(f"{path}: load gate {name!r} must be {{p95: ms, p99: ms}}")
    gate = Gate(p95_ms=float(values["p95"]), p99_ms=float(values["p99"]))
    if not 0 <= gate.p95_ms <= gate.p99_ms:
        raise ValueError(f"{path}: load gate {name!r} needs 0 <= p95 <= p99")
    return gate


def load_gates(path: Path = SLO_FILE) -> LoadGates:
    section = yaml.safe_load(path.read_text()).get("load")
    if not isinstance(section, dict):
        raise ValueError(f"{path}: no `load` section with the load test's gates")
    entries = dict(section.get("entries") or {})
    if "default" not in entries:
        raise ValueError(f"{path}: load.entries needs a `default` gate")
    ratio = float(section["error_ratio"])
    if not 0 <= ratio < 1:
        raise ValueError(f"{path}: load.error_ratio must be from 0 up to (not including) 1")
    gates = {name: _gate(path, name, values) for name, values in entries.items()}
    return LoadGates(
        error_ratio=ratio,
        server_errors=int(section["server_errors"]),
        default=gates.pop("default"),
        entries=gates,
    )


@dataclass(frozen=True)
class Entry:
    """One row of Locust's `<prefix>_stats.csv`."""

    method: str
    name: str
    requests: int
    failures: int
    median_ms: float
    p95_ms: float
    p99_ms: float


def read_stats(stats_csv: Path) -> tuple[list[Entry], Entry]:
    """(every entry, the Aggregated row) of a run."""
    rows = []
    with stats_csv.open(newline="") as handle:
        for row in csv.DictReader(handle):

            def ms(column: str, row: dict[str, str] = row) -> float:
                # Locust writes "N/A" for a percentile of an entry with no requests.
                return float(row[column]) if row[column] not in ("", "N/A") else 0.0

            rows.append(
                Entry(
                    method=row["Type"],
                    name=row["Name"],
                    requests=int(row["Request Count"]),
                    failures=int(row["Failure Count"]),
                    median_ms=ms("Median Response Time"),
                    p95_ms=ms("95%"),
                    p99_ms=ms("99%"),
                )
            )
    total = [r for r in rows if r.name == "Aggregated"]
    if len(total) != 1:
        raise ValueError(f"{stats_csv} has no Aggregated row: not Locust's stats file")
    return [r for r in rows if r.name != "Aggregated"], total[0]


@dataclass(frozen=True)
class Verdict:
    passed: bool
    breaches: list[str]
    rows: list[tuple[Entry, Gate, list[str]]]
    total: Entry
    server_errors: int

    @property
    def error_ratio(self) -> float:
        return self.total.failures / self.total.requests if self.total.requests else 0.0


def judge(entries: list[Entry], total: Entry, server_errors: int, gates: LoadGates) -> Verdict:
    breaches: list[str] = []
    rows = []
    for entry in entries:
        gate = gates.gate(f"{entry.method} {entry.name}")
        missed = [
            f"{label} {value:.0f} ms > {bound:.0f} ms"
            for label, value, bound in (
                ("p95", entry.p95_ms, gate.p95_ms),
                ("p99", entry.p99_ms, gate.p99_ms),
            )
            if value > bound
        ]
        breaches += [f"{entry.method} {entry.name}: {m}" for m in missed]
        rows.append((entry, gate, missed))
    if total.requests == 0:
        breaches.append("no request was sent")
    ratio = total.failures / total.requests if total.requests else 0.0
    if ratio > gates.error_ratio:
        breaches.append(f"failed share {ratio:.4%} > {gates.error_ratio:.4%}")
    if server_errors > gates.server_errors:
        breaches.append(f"{server_errors} 5xx answers > {gates.server_errors}")
    return Verdict(not breaches, breaches, rows, total, server_errors)


def read_status_classes(path: Path) -> dict[str, int]:
    """Answers by status class ("2xx", "4xx", "5xx", "none") that the locustfile wrote."""
    counts = json.loads(path.read_text())
    return {str(k): int(v) for k, v in counts.items()}
