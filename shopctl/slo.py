"""The service level objectives of slo.yml, read once for every consumer (dashboards,
alert rules, load-test gates), so that they never disagree about a target."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from shopctl.topology import ROOT, SERVICES

SLO_FILE = ROOT / "slo.yml"
# Users' requests: Consul's and Prometheus's probes spend no error budget.
NOT_PROBES = 'route!~"/health.*|/metrics"'
# http_request_duration_seconds' buckets (services/kit/kit/metrics.py): a latency SLO
# counts requests under a bucket's bound, so the bound must be one of them.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class Objective:
    service: str
    availability: float
    latency_seconds: float
    latency_target: float

    @property
    def le(self) -> str:
        """The bucket label prometheus_client writes for latency_seconds."""
        return repr(float(self.latency_seconds))


def period_days(path: Path = SLO_FILE) -> int:
    """The rolling period over which each objective's error budget is spent."""
    days = yaml.safe_load(path.read_text())["period_days"]
    if not isinstance(days, int) or days < 1:
        raise ValueError(f"{path}: period_days must be a whole number of days, 1 or more")
    return days


def objectives(path: Path = SLO_FILE) -> list[Objective]:
    document = yaml.safe_load(path.read_text())
    found = []
    for service, values in document["services"].items():
        objective = Objective(service=service, **values)
        if service not in SERVICES:
            raise ValueError(f"{path}: {service} is not a service ({', '.join(SERVICES)})")
        if objective.latency_seconds not in BUCKETS:
            raise ValueError(f"{path}: {service}'s latency_seconds must be one of {BUCKETS}")
        for name in ("availability", "latency_target"):
            if not 0 < getattr(objective, name) < 1:
                raise ValueError(f"{path}: {service}'s {name} must be between 0 and 1")
        found.append(objective)
    return found
