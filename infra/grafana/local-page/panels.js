// The dashboard grid (Grafana's 24 columns, rows of 30 px) and each panel's frame: header,
// queries, and its state in the DOM (data-state: loading | data | empty | error).
import { queryInstant, queryRange } from "./prometheus.js";
import { queryStep, builtinVariables, durationSeconds } from "./time.js";
import { TimeSeriesView } from "./timeseries.js";
import { GaugeView, StatView } from "./stat.js";
import { TableView } from "./table.js";

const VIEWS = { timeseries: TimeSeriesView, stat: StatView, gauge: GaugeView, table: TableView };

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A series' display name: legendFormat with {{label}} filled, or Grafana's default. */
export function seriesName(labels, legendFormat, expr) {
  if (legendFormat && legendFormat !== "__auto") {
    return legendFormat.replace(/\{\{\s*([\w.]+)\s*\}\}/g, (_, label) => labels[label] ?? "");
  }
  const { __name__: metric = "", ...rest } = labels;
  const pairs = Object.entries(rest).map(([k, v]) => `${k}="${v}"`);
  if (!metric && !pairs.length) return expr;
  return pairs.length ? `${metric}{${pairs.join(", ")}}` : metric;
}

function toNumber(text) {
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}

/** One target's answer as frames: {refId, labels, name, times, values}. */
function frames(target, data, expr) {
  const base = (labels) => ({ refId: target.refId, labels, name: seriesName(labels, target.legendFormat, expr) });
  if (data.resultType === "matrix") {
    return data.result.map((r) => ({
      ...base(r.metric),
      times: r.values.map(([t]) => t),
      values: r.values.map(([, v]) => toNumber(v)),
    }));
  }
  if (data.resultType === "vector") {
    return data.result.map((r) => ({ ...base(r.metric), times: [r.value[0]], values: [toNumber(r.value[1])] }));
  }
  if (data.resultType === "scalar") {
    return [{ ...base({}), times: [data.result[0]], values: [toNumber(data.result[1])] }];
  }
  return [];
}

class Panel {
  constructor(model, dashboard) {
    this.model = model;
    this.dashboard = dashboard;
    this.generation = 0;
    this.node = element("section", "panel");
    this.node.dataset.panelTitle = model.title ?? "";
    this.node.dataset.panelType = model.type;
    const { x = 0, y = 0, w = 12, h = 8 } = model.gridPos ?? {};
    this.node.style.gridColumn = `${x + 1} / span ${w}`;
    this.node.style.gridRow = `${y - dashboard.top + 1} / span ${h}`;
    const header = element("header", "panel-header");
    header.append(element("h2", "panel-title", dashboard.interpolate(model.title ?? "")));
    if (model.description) {
      const info = element("span", "panel-info", "i");
      info.title = model.description;
      header.append(info);
    }
    for (const link of model.links ?? []) {
      const anchor = element("a", "panel-link", "↗");
      anchor.href = dashboard.interpolate(link.url ?? "#");
      anchor.title = link.title ?? link.url;
      if (link.targetBlank) anchor.target = "_blank";
      header.append(anchor);
    }
    this.spinner = element("span", "panel-spinner");
    header.append(this.spinner);
    this.body = element("div", "panel-body");
    this.message = element("div", "panel-message");
    this.node.append(header, this.body, this.message);
    const View = VIEWS[model.type];
    this.view = View ? new View(this.body, model, dashboard) : null;
    this.setState("loading");
  }

  setState(state, message = "") {
    this.node.dataset.state = state;
    this.message.textContent = message;
    this.message.hidden = !message;
    this.body.hidden = state === "error" || state === "empty";
  }

  /** The targets to run, each with its expression interpolated for this panel's step. */
  queries(range) {
    const width = this.body.clientWidth || this.node.clientWidth || 800;
    const minimum = Math.max(this.dashboard.scrapeSeconds, durationSeconds(this.dashboard.interpolate(this.model.interval ?? "")) ?? 0);
    return (this.model.targets ?? [])
      .filter((t) => !t.hide && t.expr)
      .map((target) => {
        const own = durationSeconds(this.dashboard.interpolate(target.interval ?? "")) ?? 0;
        const step = queryStep(range.to - range.from, width, Math.max(minimum, own));
        const builtins = builtinVariables(range, step, this.dashboard.scrapeSeconds);
        const instant = this.view?.instant(target) ?? false;
        return { target, step, instant, expr: this.dashboard.interpolate(target.expr, builtins) };
      });
  }

  async refresh(range) {
    if (!this.view) {
      this.setState("error", `Panel type "${this.model.type}" is not supported by the local page.`);
      return;
    }
    const generation = ++this.generation;
    this.spinner.classList.add("busy");
    try {
      const queries = this.queries(range);
      const answers = await Promise.all(queries.map(({ expr, step, instant }) => {
        if (instant) return queryInstant(expr, range.to);
        const start = Math.floor(range.from / step) * step;
        return queryRange(expr, start, range.to, step);
      }));
      if (generation !== this.generation) return;
      // A series of NaNs only (a quantile or ratio of nothing) draws nothing: no data.
      const all = answers
        .flatMap((data, i) => frames(queries[i].target, data, queries[i].expr))
        .filter((frame) => frame.values.some((value) => value !== null));
      if (!all.length) {
        this.setState("empty", "No data");
        return;
      }
      this.setState("data");
      const step = queries.find((q) => !q.instant)?.step ?? 0;
      this.view.update(all, { ...range, start: Math.floor(range.from / (step || 1)) * (step || 1), step });
    } catch (error) {
      if (generation !== this.generation) return;
      this.setState("error", error.message);
    } finally {
      if (generation === this.generation) this.spinner.classList.remove("busy");
    }
  }
}

/** Panels grouped under their rows; a collapsed row holds its panels in `row.panels`. */
function sections(panels) {
  const sorted = [...panels].sort((a, b) => (a.gridPos?.y ?? 0) - (b.gridPos?.y ?? 0) || (a.gridPos?.x ?? 0) - (b.gridPos?.x ?? 0));
  const found = [{ row: null, panels: [] }];
  for (const panel of sorted) {
    if (panel.type === "row") found.push({ row: panel, panels: [...(panel.panels ?? [])] });
    else found.at(-1).panels.push(panel);
  }
  return found.filter((s) => s.row || s.panels.length);
}

/** Lay out the dashboard in `container`; returns the panels, whose refresh() runs queries. */
export function renderGrid(container, model, dashboard) {
  const all = [];
  for (const section of sections(model.panels ?? [])) {
    const grid = element("div", "grid");
    const top = section.row ? (section.row.gridPos?.y ?? 0) + 1 : 0;
    const built = () => section.panels.map((p) => new Panel(p, { ...dashboard, top }));
    if (section.row) {
      const heading = element("button", "row-heading", dashboard.interpolate(section.row.title ?? ""));
      heading.type = "button";
      heading.dataset.rowTitle = section.row.title ?? "";
      let collapsed = Boolean(section.row.collapsed);
      let panels = [];
      const show = () => {
        heading.dataset.rowCollapsed = String(collapsed);
        grid.hidden = collapsed;
        if (!collapsed && !panels.length) {
          panels = built();
          grid.append(...panels.map((p) => p.node));
          all.push(...panels);
          panels.forEach((p) => p.refresh(dashboard.range()));
        }
      };
      heading.addEventListener("click", () => {
        collapsed = !collapsed;
        show();
      });
      container.append(heading, grid);
      if (!collapsed) {
        panels = built();
        grid.append(...panels.map((p) => p.node));
        all.push(...panels);
      }
      heading.dataset.rowCollapsed = String(collapsed);
      grid.hidden = collapsed;
    } else {
      const panels = built();
      grid.append(...panels.map((p) => p.node));
      all.push(...panels);
      container.append(grid);
    }
  }
  return all;
}
