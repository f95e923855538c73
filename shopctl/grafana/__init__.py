"""Shopstack's Grafana dashboards, generated with Grafana's foundation SDK into
infra/grafana/dashboards (`make generate`; a unit test keeps the files and the code in
step). Both modes draw these files: Grafana in Docker mode, our page in local mode."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from shopctl.grafana import business, infrastructure, load, overview, platform, services
from shopctl.topology import ROOT, SERVICES

OUT = ROOT / "infra" / "grafana" / "dashboards"

BUILDERS: dict[str, Callable[[], Dashboard]] = {
    "overview": overview.build,
    **{service: functools.partial(services.build, service) for service in SERVICES},
    "gateway": platform.gateway,
    "events": platform.events,
    "cache": platform.cache,
    "postgres": infrastructure.postgres,
    "redis": infrastructure.redis,
    "kafka": infrastructure.kafka,
    "consul": infrastructure.consul,
    "business": business.build,
    "load": load.build,
}


def rendered() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    files = {}
    for name, build in BUILDERS.items():
        model = json.loads(JSONEncoder().encode(build().build()))
        # Ids in grid order, so that links to a panel (?viewPanel=) stay put across edits.
        panels = model["panels"] + [p for r in model["panels"] for p in r.get("panels", [])]
        for number, panel in enumerate(panels, start=1):
            panel["id"] = number
        files[f"shopstack-{name}.json"] = json.dumps(model, indent=2, sort_keys=True) + "\n"
    return files


def write(folder: Path = OUT) -> list[Path]:
    written = []
    for name, text in rendered().items():
        path = folder / name
        path.write_text(text)
        written.append(path)
    return written
