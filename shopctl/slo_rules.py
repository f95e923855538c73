"""The SLO burn-rate alerts, generated from slo.yml into infra/prometheus/rules
(`make generate`; a unit test keeps file and code in step).

Multi-window, multi-burn-rate alerts as the Google SRE workbook sets them out
("Alerting on SLOs"): an alert fires when the error budget is being spent `rate` times
faster than the rate that lasts the whole period, over a long window (so that a blip does
not page) and a short one (so that the alert ends soon after the fault does).

Each service has two SLIs, counted on users' requests only (health probes and /metrics
left out): availability (bad = a 5xx answer) and latency (bad = slower than its
objective's histogram bucket). Both are recorded as rates of bad and of all events over
5 minutes, every 30 s; the longer windows average those rates over the window, which
weighs each moment by its traffic and reads 720 samples where `rate()` over 3 days would
read every scrape of every series.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from shopctl.monitoring import RULES_DIR
from shopctl.slo import NOT_PROBES, SLO_FILE, Objective, objectives, period_days

OUT = RULES_DIR / "slo.yml"
# Windows whose ratio is averaged from the 5-minute rates (5m itself comes from them).
LONG_WINDOWS = ("30m", "1h", "2h", "6h", "1d", "3d")


@dataclass(frozen=True)
class Burn:
    """Fire when both windows spend budget `rate` times faster than the period allows."""

    long: str
    short: str
    rate: float


# The workbook's table: 2 % of a 30-day budget in an hour, 5 % in 6 hours page someone;
# 10 % in a day, 10 % in 3 days open a ticket.
FAST = (Burn("1h", "5m", 14.4), Burn("6h", "30m", 6))
SLOW = (Burn("1d", "2h", 3), Burn("3d", "6h", 1))


def _events(objective: Objective, sli: str) -> tuple[str, str]:
    """(bad events, all events) per second over 5 minutes, for one service's SLI."""
    selector = f'service="{objective.service}", {NOT_PROBES}'
    if sli == "availability":
        total = f"sum(rate(http_requests_total{{{selector}}}[5m]))"
        # No 5xx series at all is no error, not no answer.
        bad = (
            f'sum(rate(http_requests_total{{{selector}, status=~"5.."}}[5m]))\nor on() 0 * {total}'
        )
        return bad, total
    total = f"sum(rate(http_request_duration_seconds_count{{{selector}}}[5m]))"
    fast = f'sum(rate(http_request_duration_seconds_bucket{{{selector}, le="{objective.le}"}}[5m]))'
    return f"{total}\n- {fast}", total


def _target(objective: Objective, sli: str) -> float:
    return objective.availability if sli == "availability" else objective.latency_target


def _event_rules(slo_file: Path) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for objective in objectives(slo_file):
        for sli in ("availability", "latency"):
            labels = {"service": objective.service, "slo": sli}
            bad, total = _events(objective, sli)
            rules += [
                {"record": record, "expr": expr, "labels": labels}
                for record, expr in (
                    ("slo:objective:ratio", f"vector({_target(objective, sli)!r})"),
                    ("slo:bad_events:rate5m", bad),
                    ("slo:events:rate5m", total),
                )
            ]
    return rules


def _ratio_rules() -> list[dict[str, Any]]:
    # An idle service spends no budget: 0 / tiny is 0, where 0 / 0 would be NaN.
    rules = [
        {
            "record": "slo:errors:ratio_rate5m",
            "expr": "slo:bad_events:rate5m\n/ on(service, slo)\nclamp_min(slo:events:rate5m, 1e-9)",
        }
    ]
    for window in LONG_WINDOWS:
        rules.append(
            {
                "record": f"slo:errors:ratio_rate{window}",
                "expr": f"sum_over_time(slo:bad_events:rate5m[{window}])\n/ on(service, slo)\n"
                f"clamp_min(sum_over_time(slo:events:rate5m[{window}]), 1e-9)",
            }
        )
    return rules


def _burning(sli: str, burns: tuple[Burn, ...]) -> str:
    def over(window: str, rate: float) -> str:
        return (
            f'slo:errors:ratio_rate{window}{{slo="{sli}"}}'
            f" > on(service, slo) {rate:g} * (1 - slo:objective:ratio)"
        )

    pairs = [f"(\n  {over(b.long, b.rate)}\n  and\n  {over(b.short, b.rate)}\n)" for b in burns]
    return "\nor\n".join(pairs)


def _alert(
    sli: str, speed: str, burns: tuple[Burn, ...], severity: str, period: int
) -> dict[str, Any]:
    name = f"{sli.title()}BudgetBurning{speed}"
    days = period / min(b.rate for b in burns)
    lasts = (
        f"gone in under {days:.0f} days"
        if days < period
        else f"gone before the {period} days are out"
    )
    return {
        "alert": name,
        "expr": _burning(sli, burns),
        "labels": {"severity": severity},
        "annotations": {
            "summary": f"{{{{ $labels.service }}}} spends its {sli} error budget so fast "
            f"that it will be {lasts}",
            "runbook": f"README.md#{name.lower()}",
        },
    }


def document(slo_file: Path = SLO_FILE) -> dict[str, Any]:
    period = period_days(slo_file)
    return {
        "groups": [
            {"name": "slo-events", "interval": "30s", "rules": _event_rules(slo_file)},
            {"name": "slo-ratios", "interval": "30s", "rules": _ratio_rules()},
            {
                "name": "slo-burn-rate",
                "rules": [
                    _alert(sli, speed, burns, severity, period)
                    for sli in ("availability", "latency")
                    for speed, burns, severity in (
                        ("Fast", FAST, "critical"),
                        ("Slowly", SLOW, "warning"),
                    )
                ],
            },
        ]
    }


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # PromQL over several lines reads as written, not as one escaped string.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)

HEADER = """\
# Generated from slo.yml by shopctl/slo_rules.py (`make generate`): do not edit by hand.
# SLO burn-rate alerts, multi-window and multi-burn-rate; each has a runbook section in
# README.md, and infra/prometheus/rules/tests/slo.test.yml unit-tests them.
"""


def rendered() -> str:
    return HEADER + yaml.dump(document(), Dumper=_Dumper, sort_keys=False, width=100)


def write(path: Path = OUT) -> Path:
    path.write_text(rendered())
    return path
