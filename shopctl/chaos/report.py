"""The chaos suite's report: one row per experiment, as Markdown and as an HTML page."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, select_autoescape

from shopctl.chaos.run import Outcome

HEADER = (
    "| experiment | requests | failed | error ratio during the fault | checkouts failed "
    "| slowest answer | recovered after | what clients saw | failover | allowed "
    "| acknowledged orders lost | invariants | verdict |"
)
COLUMNS = HEADER.count("|") - 1

PAGE = Environment(autoescape=select_autoescape(default=True)).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shopstack chaos report</title>
<style>
 body { font: 15px/1.5 system-ui, sans-serif; margin: 2rem; color: #1d2127; }
 table { border-collapse: collapse; }
 th, td { padding: .35rem .7rem; border-bottom: 1px solid #d6d9de; text-align: right; }
 th:first-child, td:first-child, .text { text-align: left; }
 .pass { color: #1a7f37; font-weight: 600; } .fail { color: #cf222e; font-weight: 600; }
 .problems { color: #cf222e; font-size: 13px; text-align: left; }
</style></head><body>
<h1>Shopstack chaos report</h1>
<p>{{ passed }} of {{ outcomes | length }} experiments passed, each under a steady load of
simulated shoppers, each ending with the invariants.</p>
<table><thead><tr>{% for h in headers %}
 <th{% if h in ("what clients saw", "failover", "allowed") %} class="text"{% endif %}>{{ h }}</th>
{% endfor %}</tr></thead><tbody>
{% for o in outcomes %}<tr>
 <td>{{ o.title }}</td><td>{{ o.requests }}</td><td>{{ o.failed }}</td>
 <td>{{ "%.1f %%" | format(o.fault_error_ratio * 100) }}</td><td>{{ o.checkouts_failed }}</td>
 <td>{{ "%.1f s" | format(o.slowest_ms / 1000) }}</td>
 <td>{{ recovered(o) }}</td><td class="text">{{ o.clients_saw }}</td>
 <td class="text">{{ o.failover }}</td>
 <td class="text">{{ o.expected }}</td>
 <td>{{ o.lost | length }} of {{ o.acknowledged }}</td>
 <td>{{ o.invariants_held }} / {{ o.invariants }}</td>
 <td class="{{ 'pass' if o.passed else 'fail' }}">{{ 'PASS' if o.passed else 'FAIL' }}</td>
</tr>{% if not o.passed %}<tr>
 <td class="problems" colspan="{{ headers | length }}">{{ why(o) }}</td></tr>{% endif %}
{% endfor %}</tbody></table></body></html>
"""
)


def _recovered(outcome: Outcome) -> str:
    return "-" if outcome.recovered_s is None else f"{outcome.recovered_s:.1f} s"


def why(outcome: Outcome) -> str:
    reasons = []
    if outcome.status != "completed":
        reasons.append(f"the experiment {outcome.status}")
    if outcome.deviated:
        reasons.append("the steady state did not come back")
    if outcome.lost:
        reasons.append(f"lost orders: {', '.join(outcome.lost[:3])}")
    return "; ".join(reasons + outcome.problems) or "-"


def markdown(outcomes: list[Outcome]) -> str:
    lines = [HEADER, "|" + "---|" * COLUMNS]
    for o in outcomes:
        lines.append(
            f"| {o.title} | {o.requests} | {o.failed} | {o.fault_error_ratio:.1%} "
            f"| {o.checkouts_failed} | {o.slowest_ms / 1000:.1f} s | {_recovered(o)} "
            f"| {o.clients_saw} | {o.failover} | {o.expected} "
            f"| {len(o.lost)} of {o.acknowledged} "
            f"| {o.invariants_held}/{o.invariants} | {'PASS' if o.passed else 'FAIL: ' + why(o)} |"
        )
    return "\n".join(lines) + "\n"


def write(outcomes: list[Outcome], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    md, html = out / "report.md", out / "report.html"
    md.write_text("# Shopstack chaos report\n\n" + markdown(outcomes))
    headers = [h.strip() for h in HEADER.strip("|").split("|")]
    html.write_text(
        PAGE.render(
            outcomes=outcomes,
            headers=headers,
            passed=sum(o.passed for o in outcomes),
            recovered=_recovered,
            why=why,
        )
    )
    return md, html
