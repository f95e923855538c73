"""A run's picture, drawn from its JSON document: req/s of the four wrk rows against the
ratio goals (left), and each checkout step's offered rate against its p99 POST-to-CONFIRMED
with the bound (right)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display, and no GUI toolkit to import

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from shopctl.bench.report import (
    CHECKOUT_GOAL,
    READ_RATIO_GOAL,
    ROWS,
    WRITE_RATIO_GOAL,
    Document,
)

HELD, MISSED, FLAGGED = "#2e7d32", "#c62828", "#ef6c00"
BAR_COLOURS = {
    "ceiling_a": "#90a4ae",
    "ceiling_b": "#546e7a",
    "read": "#1e88e5",
    "write": "#8e24aa",
}


def _throughput(ax: Axes, doc: Document) -> None:
    keys = list(doc["rows"])
    rps = [doc["rows"][k]["rps"] for k in keys]
    colours = [
        FLAGGED if doc["rows"][k]["non_2xx"] or doc["rows"][k]["socket_errors"] else BAR_COLOURS[k]
        for k in keys
    ]
    bars = ax.bar(range(len(keys)), rps, color=colours)
    p99s = [doc["rows"][k]["p99_ms"] for k in keys]
    labels = [f"{v:,.0f} req/s\np99 {p:.0f} ms" for v, p in zip(rps, p99s, strict=True)]
    clear = {"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1}
    ax.bar_label(bars, labels=labels, padding=3, fontsize=8, bbox=clear)
    names = [
        ROWS[k].replace(": ", ":\n", 1) + ("\nFLAGGED: failures" if c == FLAGGED else "")
        for k, c in zip(keys, colours, strict=True)
    ]
    ax.set_xticks(range(len(keys)), names, fontsize=8)
    b = doc["rows"]["ceiling_b"]["rps"]
    goals = ((READ_RATIO_GOAL, "--", "read"), (WRITE_RATIO_GOAL, ":", "write"))
    for share, style, row in goals:
        ax.axhline(
            share * b,
            color="black",
            linestyle=style,
            linewidth=1,
            label=f"{row} goal: {share:.2f} x B = {share * b:,.0f} req/s",
        )
    # Ceiling A is often ten times the rest: a log scale keeps every bar readable, and
    # ratios read as equal distances.
    ax.set_yscale("log")
    ax.set_ylim(max(1.0, min(rps) / 3), max(rps) * 3)
    ax.set_ylabel("requests per second (log scale)")
    ax.set_title(f"Throughput ({doc['settings']['wrk']})")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(axis="y", which="both", alpha=0.3)


def _checkout(ax: Axes, doc: Document) -> None:
    ax.set_title("Checkout: offered rate vs p99 POST-to-CONFIRMED")
    ax.set_xlabel("offered checkouts per second (open loop)")
    ax.set_ylabel("p99 POST-to-CONFIRMED (ms)")
    checkout = doc["checkout"]
    if not checkout or not checkout["steps"]:
        ax.text(0.5, 0.5, "checkout not measured (CHECKOUT=0)", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    steps = sorted(checkout["steps"], key=lambda s: s["rate"])
    rates = [s["rate"] for s in steps]
    p99s = [s["p99_ms"] for s in steps]
    ax.plot(rates, p99s, color="grey", linewidth=1, zorder=1)
    ax.scatter(rates, p99s, c=[HELD if s["held"] else MISSED for s in steps], zorder=2)
    ax.axhline(checkout["p99_bound_ms"], color=MISSED, linestyle="--", linewidth=1)
    ax.annotate(
        f"bound {checkout['p99_bound_ms']:.0f} ms",
        (rates[0], checkout["p99_bound_ms"]),
        xytext=(0, 3),
        textcoords="offset points",
        fontsize=8,
    )
    best = checkout["orders_per_s"]
    ax.axvline(
        best,
        color=HELD,
        linestyle=":",
        linewidth=1,
        label=f"highest rate held: {best:g}/s (goal >= {CHECKOUT_GOAL:g}/s)",
    )
    ax.scatter([], [], c=HELD, label="step held")
    ax.scatter([], [], c=MISSED, label="step missed (p99 over the bound, or errors)")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_ylim(0, max([*p99s, checkout["p99_bound_ms"]]) * 1.15)
    ax.grid(alpha=0.3)


def draw(doc: Document, path: Path) -> Path:
    figure, (left, right) = plt.subplots(1, 2, figsize=(14, 6))
    try:
        _throughput(left, doc)
        _checkout(right, doc)
        figure.suptitle(f"make bench, {doc['time']}, commit {doc['commit']}")
        figure.text(0.5, 0.01, doc["machine"], ha="center", fontsize=8, color="grey")
        figure.tight_layout(rect=(0, 0.03, 1, 1))
        figure.savefig(path, dpi=100)
    finally:
        plt.close(figure)
    return path
