// The timeseries panel: uPlot draws the chart; we give it aligned data, Grafana's colours
// and units, and add a legend table (with calcs) and a hover tooltip in HTML.
import uPlot from "/vendor/uplot/uPlot.esm.js";
import { CALC_NAMES, fieldColor, fieldOptions, reduce, withAlpha } from "./fields.js";
import { formatter } from "./units.js";

const AXIS = { stroke: "#9DA5B8", font: "11px Inter, system-ui, sans-serif", ticks: { stroke: "#2F3440", width: 1, size: 4 }, grid: { stroke: "#2A2E37", width: 1 } };

// Time ticks in 24-hour time as Grafana writes them; uPlot's table: [step, format, ...].
const TIME_TICKS = [
  [86400 * 28, "{MMM}", "\n{YYYY}", null, null, null, null, null, 1],
  [86400, "{MM}/{DD}", "\n{YYYY}", null, null, null, null, null, 1],
  [60, "{HH}:{mm}", null, null, null, null, null, null, 1],
  [1, "{HH}:{mm}:{ss}", null, null, null, null, null, null, 1],
];

/** Room for the longest tick label, as uPlot's own examples size an axis. */
function axisSize(self, values, axisIndex, cycle) {
  const axis = self.axes[axisIndex];
  if (cycle > 1) return axis._size;
  const longest = (values ?? []).reduce((a, v) => (v.length > a.length ? v : a), "");
  self.ctx.font = axis.font[0];
  return Math.ceil(axis.ticks.size + axis.gap + self.ctx.measureText(longest).width / devicePixelRatio) + 4;
}

/** Every frame on one time grid: the query's start + k·step (Prometheus answers exactly there). */
function align(frames, { start, to, step }) {
  const times = [];
  for (let t = start; t <= to + 1e-6; t += step) times.push(Math.round(t * 1000) / 1000);
  const slot = new Map(times.map((t, i) => [t, i]));
  const columns = frames.map((frame) => {
    const column = new Array(times.length).fill(null);
    frame.times.forEach((t, i) => {
      const at = slot.get(Math.round(t * 1000) / 1000);
      if (at !== undefined) column[at] = frame.values[i];
    });
    return column;
  });
  return [times, ...columns];
}

export class TimeSeriesView {
  constructor(body, model, dashboard) {
    this.model = model;
    this.dashboard = dashboard;
    const legend = model.options?.legend ?? {};
    this.legendMode = legend.showLegend === false ? "hidden" : legend.displayMode ?? "list";
    this.calcs = legend.calcs ?? [];
    body.classList.add("timeseries", `legend-${legend.placement ?? "bottom"}`);
    this.chart = document.createElement("div");
    this.chart.className = "chart";
    this.legend = document.createElement("div");
    this.legend.className = `legend legend-${this.legendMode}`;
    this.tooltip = document.createElement("div");
    this.tooltip.className = "tooltip";
    this.tooltip.hidden = true;
    body.append(this.chart, this.legend);
    new ResizeObserver(() => this.resize()).observe(this.chart);
  }

  instant() {
    return false;
  }

  resize() {
    if (this.plot && this.chart.clientWidth) {
      this.plot.setSize({ width: this.chart.clientWidth, height: this.chart.clientHeight });
    }
  }

  update(frames, range) {
    const data = align(frames, range);
    const key = frames.map((f) => f.name).join("\n");
    if (this.plot && key === this.key) {
      this.plot.setData(data);
    } else {
      this.plot?.destroy();
      this.key = key;
      this.fields = frames.map((frame, i) => {
        const options = fieldOptions(this.model.fieldConfig, frame.name, frame.refId);
        const name = options.displayName ? this.dashboard.interpolate(options.displayName) : frame.name;
        return { name, options, color: fieldColor(options, i), format: formatter(options.unit, options.decimals, "-") };
      });
      this.plot = new uPlot(this.options(), data, this.chart);
      this.plot.over.append(this.tooltip);
    }
    this.renderLegend(data);
  }

  options() {
    const defaults = this.model.fieldConfig?.defaults ?? {};
    const custom = defaults.custom ?? {};
    const format = formatter(defaults.unit, defaults.decimals);
    const { min, max } = defaults;
    const utc = this.dashboard.timezone === "utc";
    return {
      width: this.chart.clientWidth || 400,
      height: this.chart.clientHeight || 200,
      legend: { show: false },
      padding: [8, 12, 0, 4],
      cursor: { sync: this.dashboard.sharedCursor ? { key: "dashboard" } : undefined, points: { size: 6 } },
      ...(utc ? { tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC") } : {}),
      scales: {
        x: { time: true },
        y: {
          range: (u, low, high) => {
            // All zeros: uPlot would span 0..100 (10000% for a ratio); show 0..1 as Grafana does.
            const top = high === 0 && (low ?? 0) === 0 ? 1 : (high ?? 1);
            const [a, b] = uPlot.rangeNum(low ?? 0, top, 0.1, true);
            const lower = min ?? (low !== null && low >= 0 ? Math.max(0, a) : a);
            const upper = max ?? b;
            return [lower, upper > lower ? upper : lower + 1];
          },
        },
      },
      axes: [
        { ...AXIS, space: 60, values: TIME_TICKS },
        { ...AXIS, size: axisSize, values: (u, splits) => splits.map(format), label: custom.axisLabel || undefined },
      ],
      series: [
        {},
        ...this.fields.map((field) => {
          const own = field.options.custom ?? custom;
          const bars = own.drawStyle === "bars";
          return {
            label: field.name,
            stroke: field.color,
            width: own.lineWidth ?? 1,
            fill: withAlpha(field.color, (own.fillOpacity ?? (bars ? 80 : 0)) / 100),
            points: { show: own.showPoints === "always" },
            spanGaps: own.spanNulls === true,
            paths: bars ? uPlot.paths.bars({ size: [0.6, 40] }) : undefined,
            value: (u, v) => field.format(v),
          };
        }),
      ],
      hooks: { setCursor: [(u) => this.showTooltip(u)] },
    };
  }

  showTooltip(u) {
    const index = u.cursor.idx;
    const mode = this.model.options?.tooltip?.mode ?? "single";
    if (index === null || index === undefined || mode === "none" || u.cursor.left < 0) {
      this.tooltip.hidden = true;
      return;
    }
    let rows = this.fields.map((field, i) => ({ field, i, value: u.data[i + 1][index] }))
      .filter((r) => r.value !== null && u.series[r.i + 1].show);
    const sort = this.model.options?.tooltip?.sort;
    if (sort === "desc") rows.sort((a, b) => b.value - a.value);
    if (sort === "asc") rows.sort((a, b) => a.value - b.value);
    if (mode === "single") {
      const nearest = u.posToVal(u.cursor.top, "y");
      rows = rows.sort((a, b) => Math.abs(a.value - nearest) - Math.abs(b.value - nearest)).slice(0, 1);
    }
    this.tooltip.replaceChildren();
    const time = document.createElement("div");
    time.className = "tooltip-time";
    time.textContent = new Date(u.data[0][index] * 1000).toLocaleString();
    this.tooltip.append(time);
    for (const { field, value } of rows) {
      const line = document.createElement("div");
      line.innerHTML = `<i style="background:${field.color}"></i><span></span><b></b>`;
      line.querySelector("span").textContent = field.name;
      line.querySelector("b").textContent = field.format(value);
      this.tooltip.append(line);
    }
    this.tooltip.hidden = false;
    const { left, top } = u.cursor;
    const flip = left > u.over.clientWidth / 2;
    this.tooltip.style.left = flip ? "" : `${left + 12}px`;
    this.tooltip.style.right = flip ? `${u.over.clientWidth - left + 12}px` : "";
    this.tooltip.style.top = `${Math.min(top, u.over.clientHeight - this.tooltip.offsetHeight)}px`;
  }

  renderLegend(data) {
    if (this.legendMode === "hidden") {
      this.legend.hidden = true;
      return;
    }
    const table = document.createElement("table");
    if (this.legendMode === "table" && this.calcs.length) {
      const head = table.createTHead().insertRow();
      head.append(document.createElement("th"));
      for (const calc of this.calcs) head.append(Object.assign(document.createElement("th"), { textContent: CALC_NAMES[calc] ?? calc }));
    }
    const rows = table.createTBody();
    this.fields.forEach((field, i) => {
      const row = rows.insertRow();
      const series = this.plot.series[i + 1];
      row.className = series.show ? "" : "off";
      const name = row.insertCell();
      name.innerHTML = `<i style="background:${field.color}"></i>`;
      name.append(field.name);
      for (const calc of this.calcs) {
        const cell = row.insertCell();
        cell.textContent = (this.legendMode === "list" ? `${CALC_NAMES[calc] ?? calc}: ` : "") + field.format(reduce(data[i + 1], calc));
      }
      row.addEventListener("click", () => {
        this.plot.setSeries(i + 1, { show: !series.show });
        row.className = series.show ? "" : "off";
      });
    });
    this.legend.replaceChildren(table);
  }
}
