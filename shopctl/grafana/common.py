"""The panel kinds every Shopstack dashboard is made of, on Grafana's foundation SDK. Each
dashboard module composes these, so units, colours, legends and the datasource are the
same everywhere, and the local dashboards page only has to draw what these produce."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.builders import gauge, prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as models
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

# The uid infra/grafana/provisioning/datasources/prometheus.yml gives the datasource.
DATASOURCE = models.DataSourceRef(type_val="prometheus", uid="prometheus")
TAG = "shopstack"

GREEN, YELLOW, ORANGE, RED, BLUE = "green", "#EAB839", "orange", "red", "blue"

# Colours by meaning, so that "failed" is red on every dashboard.
OUTCOME_COLOURS = {
    "confirmed": GREEN,
    "succeeded": GREEN,
    "handled": GREEN,
    "hit": GREEN,
    "CONFIRMED": GREEN,
    "CAPTURED": GREEN,
    "cancelled": ORANGE,
    "refunded": ORANGE,
    "duplicate": BLUE,
    "miss": YELLOW,
    "PENDING": YELLOW,
    "CANCELLED": ORANGE,
    "REFUNDED": ORANGE,
    "failed": RED,
    "FAILED": RED,
    "error": RED,
    "dead_lettered": RED,
}

Query = tuple[str, str]  # (PromQL, legend)


def target(expr: str, legend: str = "__auto", *, ref: str = "A", instant: bool = False) -> Any:
    query = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref)
    query.datasource(DATASOURCE)
    if instant:
        query.instant().format(PromQueryFormat.TABLE)
    else:
        query.range()
    return query


def steps(*pairs: tuple[float | None, str]) -> Any:
    return (
        builders.ThresholdsConfig()
        .mode(models.ThresholdsMode.ABSOLUTE)
        .steps([models.Threshold(value=value, color=colour) for value, colour in pairs])
    )


def _targets(panel: Any, queries: Sequence[Query], *, instant: bool = False) -> Any:
    for i, (expr, legend) in enumerate(queries):
        panel.with_target(target(expr, legend, ref=chr(ord("A") + i), instant=instant))
    return panel


def _colour_by_name(panel: Any, names: Sequence[str]) -> Any:
    for name in names:
        if name in OUTCOME_COLOURS:
            panel.override_by_name(
                name,
                [
                    models.DynamicConfigValue(
                        id_val="color",
                        value={"mode": "fixed", "fixedColor": OUTCOME_COLOURS[name]},
                    )
                ],
            )
    return panel


def framed(panel: Any, title: str, description: str, unit: str, width: int, height: int) -> Any:
    """What every panel has: its title, what it shows, the datasource, unit and size."""
    return (
        panel.title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
    )


def graph(
    title: str,
    description: str,
    queries: Sequence[Query],
    *,
    unit: str = "short",
    width: int = 12,
    height: int = 8,
    stacked: bool = False,
    minimum: float | None = 0,
    maximum: float | None = None,
    thresholds: Any | None = None,
    series: Sequence[str] = (),
) -> Builder[models.Panel]:
    """A time series; `series` names legends that take their colour by meaning."""
    panel = (
        framed(timeseries.Panel(), title, description, unit, width, height)
        .line_width(1)
        .fill_opacity(25 if stacked else 10)
        .show_points(common.VisibilityMode.NEVER)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI))
    )
    if stacked:
        panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    if minimum is not None:
        panel.min(minimum)
    if maximum is not None:
        panel.max(maximum)
    if thresholds is not None:
        panel.thresholds(thresholds).thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.LINE)
        )
    _colour_by_name(panel, series)
    panel_with_targets: Builder[models.Panel] = _targets(panel, queries)
    return panel_with_targets


def single(
    title: str,
    description: str,
    expr: str,
    *,
    unit: str = "short",
    thresholds: Any | None = None,
    width: int = 4,
    height: int = 4,
    legend: str = "__auto",
    mappings: Sequence[Any] = (),
    decimals: int | None = None,
    sparkline: bool = True,
    background: bool = False,
) -> Builder[models.Panel]:
    """A stat: the last value of each series, coloured by its thresholds."""
    panel = (
        framed(stat.Panel(), title, description, unit, width, height)
        .thresholds(thresholds if thresholds is not None else steps((None, GREEN)))
        .color_scheme(builders.FieldColor().mode(models.FieldColorModeId.THRESHOLDS))
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .graph_mode(common.BigValueGraphMode.AREA if sparkline else common.BigValueGraphMode.NONE)
        .color_mode(
            common.BigValueColorMode.BACKGROUND if background else common.BigValueColorMode.VALUE
        )
        .text_mode(common.BigValueTextMode.AUTO)
        .orientation(common.VizOrientation.AUTO)
    )
    if mappings:
        panel.mappings(list(mappings))
    if decimals is not None:
        panel.decimals(decimals)
    stat_panel: Builder[models.Panel] = panel.with_target(target(expr, legend))
    return stat_panel


def up_down(
    title: str,
    description: str,
    expr: str,
    *,
    legend: str = "__auto",
    width: int = 4,
    height: int = 4,
) -> Builder[models.Panel]:
    """A stat per series of a 0/1 expression, green UP or red DOWN."""
    return single(
        title,
        description,
        expr,
        legend=legend,
        mappings=[UP_DOWN],
        thresholds=steps((None, RED), (1, GREEN)),
        background=True,
        sparkline=False,
        width=width,
        height=height,
    )


def dial(
    title: str,
    description: str,
    expr: str,
    *,
    unit: str = "percentunit",
    minimum: float = 0,
    maximum: float = 1,
    thresholds: Any,
    width: int = 4,
    height: int = 6,
    legend: str = "__auto",
    decimals: int | None = None,
    queries: Sequence[Query] = (),
) -> Builder[models.Panel]:
    """A gauge of `expr`, or of several `queries` side by side."""
    panel = (
        framed(gauge.Panel(), title, description, unit, width, height)
        .min(minimum)
        .max(maximum)
        .thresholds(thresholds)
        .show_threshold_markers(True)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    if decimals is not None:
        panel.decimals(decimals)
    dial_panel: Builder[models.Panel] = _targets(panel, queries or [(expr, legend)])
    return dial_panel


def listing(
    title: str,
    description: str,
    queries: Sequence[Query],
    *,
    hide: Sequence[str] = ("Time", "__name__", "job"),
    rename: dict[str, str] | None = None,
    unit: str = "short",
    width: int = 12,
    height: int = 8,
    mappings: Sequence[Any] = (),
    thresholds: Any | None = None,
) -> Builder[models.Panel]:
    """A table of instant values, one row per label set."""
    panel = framed(table.Panel(), title, description, unit, width, height).with_transformation(
        models.DataTransformerConfig(
            id_val="organize",
            options={
                "excludeByName": {name: True for name in hide},
                "renameByName": rename or {},
            },
        )
    )
    if mappings:
        panel.mappings(list(mappings))
    if thresholds is not None:
        panel.thresholds(thresholds)
    listed: Builder[models.Panel] = _targets(panel, queries, instant=True)
    return listed


def value_texts(texts: dict[str, tuple[str, str]]) -> Any:
    """Value mappings: number (as text) -> (display text, colour)."""
    return models.ValueMap(
        options={
            value: models.ValueMappingResult(text=text, color=colour, index=i)
            for i, (value, (text, colour)) in enumerate(texts.items())
        }
    )


UP_DOWN = value_texts({"0": ("DOWN", RED), "1": ("UP", GREEN)})


def row(title: str) -> builders.Row:
    return builders.Row(title)


def variable(name: str, label: str, query: str, *, include_all: bool = True) -> Any:
    return (
        builders.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(models.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(include_all)
        .all_value(".*")
        .current(models.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def new_dashboard(uid: str, title: str, description: str, *tags: str) -> builders.Dashboard:
    """A dashboard with what they all share: the tag that links them, the last 15 minutes
    refreshed every 10 s, a shared crosshair, and a menu of the other dashboards."""
    return (
        builders.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG, *tags])
        .timezone("browser")
        .readonly()
        .tooltip(models.DashboardCursorSync.CROSSHAIR)
        .time("now-15m", "now")
        .refresh("10s")
        .timepicker(
            builders.TimePicker().refresh_intervals(["5s", "10s", "30s", "1m", "5m", "15m"])
        )
        .link(
            builders.DashboardLink("Shopstack")
            .type(models.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .keep_time(True)
            .include_vars(False)
        )
    )
