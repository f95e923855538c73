"""A run's result as a JSON document, its verdicts against issue 14's goals, the table a
person reads, and the comparison with the run before.

The document is what is kept (`.run/bench/<UTC time>.json`); the table, the comparison and
the plot are all drawn from it, so an earlier run reads exactly as a new one does.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shopctl.bench.wrk import WrkResult

Document = dict[str, Any]

# The rows wrk measures, in the order they run and are shown.
ROWS = {
    "ceiling_a": "A: nginx return 200",
    "ceiling_b": "B: nginx + 2 bare FastAPI",
    "read": "read: GET /products/oak-desk",
    "write": "write: PUT /cart/items/oak-desk",
}
READ_RATIO_GOAL = 0.70  # the platform's read req/s over B's, at least
WRITE_RATIO_GOAL = 0.50  # its write req/s over B's, at least
READ_P99_RATIO_GOAL = 3.0  # its read p99 over B's, at most
CHECKOUT_GOAL = 100.0  # orders/s with POST-to-CONFIRMED p99 <= 500 ms, at least


@dataclass(frozen=True)
class Goal:
    name: str
    value: float | None
    bound: str  # ">= 0.70", "<= 3"
    verdict: str  # PASS, MISS, FLAGGED (a row it reads had failures) or SKIPPED


def _verdict(value: float, at_least: float | None = None, at_most: float | None = None) -> str:
    held = (at_least is None or value >= at_least) and (at_most is None or value <= at_most)
    return "PASS" if held else "MISS"


def goals(rows: dict[str, WrkResult], checkout_per_s: float | None) -> list[Goal]:
    """Issue 14's goals, judged on this run's rows and checkout capacity (None: skipped)."""
    b = rows["ceiling_b"]

    def ratio(name: str, row: str, figure: str, bound: float, at_least: bool) -> Goal:
        mine, base = getattr(rows[row], figure), getattr(b, figure)
        value = mine / base if base else None
        shown = f"{'>=' if at_least else '<='} {bound:.2f}"
        if value is None or rows[row].failed or b.failed:
            return Goal(name, value, shown, "FLAGGED")
        limits = {"at_least": bound} if at_least else {"at_most": bound}
        return Goal(name, value, shown, _verdict(value, **limits))

    checkout = (
        Goal("checkout orders/s", checkout_per_s, f">= {CHECKOUT_GOAL:g}", "SKIPPED")
        if checkout_per_s is None
        else Goal(
            "checkout orders/s",
            checkout_per_s,
            f">= {CHECKOUT_GOAL:g}",
            _verdict(checkout_per_s, at_least=CHECKOUT_GOAL),
        )
    )
    return [
        ratio("read req/s / B's", "read", "rps", READ_RATIO_GOAL, at_least=True),
        ratio("write req/s / B's", "write", "rps", WRITE_RATIO_GOAL, at_least=True),
        ratio("read p99 / B's", "read", "p99_ms", READ_P99_RATIO_GOAL, at_least=False),
        checkout,
    ]


def flagged(doc: Document) -> list[str]:
    """Why the run's figures cannot be trusted as they stand: any row with failures."""
    return [
        f"{ROWS[key]}: {row['non_2xx']} non-2xx, {row['socket_errors']} socket errors"
        for key, row in doc["rows"].items()
        if row["non_2xx"] or row["socket_errors"]
    ]


def table(doc: Document) -> str:
    lines = [
        f"{doc['settings']['wrk']} on {doc['machine']}",
        f"commit {doc['commit']}, {doc['time']}",
        "",
        f"{'':34}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'sock err':>10}",
    ]
    for key, row in doc["rows"].items():
        lines.append(
            f"{ROWS[key]:34}{row['rps']:10.0f}{row['p50_ms']:9.2f}{row['p99_ms']:9.2f}"
            f"{row['non_2xx']:9}{row['socket_errors']:10}"
        )
    lines += ["", f"{'goal':34}{'value':>10}{'bound':>9}  verdict"]
    for goal in doc["goals"]:
        # Three decimals: 0.696 must not read as the 0.70 it misses.
        value = "-" if goal["value"] is None else f"{goal['value']:.3f}"
        lines.append(f"{goal['name']:34}{value:>10}{goal['bound']:>9}  {goal['verdict']}")
    if doc["checkout"] is not None:
        lines.append(
            f"  (checkout: the highest open-loop rate with POST-to-CONFIRMED p99 <= "
            f"{doc['checkout']['p99_bound_ms']:.0f} ms and no errors)"
        )
    lines += [f"FLAGGED {reason}" for reason in doc["flagged"]]
    return "\n".join(lines)


def figures(doc: Document) -> dict[str, float]:
    """Every figure of a run that another run can be compared on, by name."""
    out: dict[str, float] = {}
    for key, row in doc["rows"].items():
        name = ROWS.get(key, key)
        out[f"{name} req/s"] = row["rps"]
        out[f"{name} p50 ms"] = row["p50_ms"]
        out[f"{name} p99 ms"] = row["p99_ms"]
    for goal in doc["goals"]:
        if goal["value"] is not None:
            out[goal["name"]] = goal["value"]
    return out


def _figure(value: float | None) -> str:
    return f"{value:10.2f}" if value is not None else f"{'-':>10}"


def comparison(previous: Document | None, now: Document) -> str:
    """Each figure the two runs share: previous -> now and the change in %."""
    if previous is None:
        return "Compared with: no earlier result"
    lines = [f"Compared with {previous['time']} (commit {previous['commit']}):"]
    if previous["settings"]["wrk"] != now["settings"]["wrk"]:
        lines.append(
            f"  wrk settings differ: {previous['settings']['wrk']} -> {now['settings']['wrk']}"
        )
    before, after = figures(previous), figures(now)
    for name in {**after, **before}:
        old, value = before.get(name), after.get(name)
        if old is None or value is None:
            change = "not measured in one of the two"
        else:
            change = f"{(value - old) / old * 100:+.1f}%" if old else "n/a"
        lines.append(f"  {name:40}{_figure(old)} -> {_figure(value)}  {change:>8}")
    return "\n".join(lines)


def latest_before(folder: Path, stamp: str) -> Document | None:
    """The latest result in `folder` from before the run stamped `stamp` (stamps sort as
    times do), or None."""
    earlier = sorted(p for p in folder.glob("*.json") if p.stem < stamp)
    return json.loads(earlier[-1].read_text()) if earlier else None


def document(
    *,
    stamp: str,
    commit: str,
    machine: str,
    settings: dict[str, Any],
    rows: dict[str, WrkResult],
    checkout: dict[str, Any] | None,
) -> Document:
    doc: Document = {
        "time": stamp,
        "commit": commit,
        "machine": machine,
        "settings": settings,
        "rows": {key: asdict(row) for key, row in rows.items()},
        "goals": [asdict(g) for g in goals(rows, checkout["orders_per_s"] if checkout else None)],
        "checkout": checkout,
    }
    doc["flagged"] = flagged(doc)
    return doc
