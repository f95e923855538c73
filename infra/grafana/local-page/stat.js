// Stat and gauge panels: each series reduced to one value (options.reduceOptions.calcs),
// formatted in its unit and coloured by its thresholds. A stat's sparkline is uPlot's.
import uPlot from "/vendor/uplot/uPlot.esm.js";
import { fieldColor, fieldOptions, mapValue, reduce, thresholdColor, withAlpha } from "./fields.js";
import { formatter } from "./units.js";

function isInstant(target) {
  return Boolean(target.instant) && !target.range;
}

/** One value per frame: {name, value, options, color, text, frame}. */
function reduced(model, frames, dashboard) {
  const calc = model.options?.reduceOptions?.calcs?.[0] ?? "lastNotNull";
  return frames.map((frame, i) => {
    const options = fieldOptions(model.fieldConfig, frame.name, frame.refId);
    const value = reduce(frame.values, calc);
    const colorMode = options.color?.mode ?? "thresholds";
    const color = colorMode === "thresholds" || !options.color
      ? thresholdColor(options.thresholds, value, options.min ?? 0, options.max ?? 100)
      : fieldColor(options, i, value);
    const name = options.displayName ? dashboard.interpolate(options.displayName) : frame.name;
    const text = formatter(options.unit, options.decimals, options.noValue)(value);
    const mapped = mapValue(options.mappings, value);
    return { name, value, options, frame, color: mapped?.color ?? color, text: mapped?.text ?? text };
  });
}

class SingleValueView {
  constructor(body, model, dashboard) {
    this.body = body;
    this.model = model;
    this.dashboard = dashboard;
    body.classList.add("single");
  }

  instant(target) {
    return isInstant(target);
  }

  update(frames) {
    const values = reduced(this.model, frames, this.dashboard);
    const wide = this.body.clientWidth > this.body.clientHeight * 1.5;
    this.body.classList.toggle("across", values.length > 1 && wide);
    this.body.replaceChildren(...values.map((v) => this.item(v, values.length > 1)));
  }
}

export class StatView extends SingleValueView {
  item(v, named) {
    const options = this.model.options ?? {};
    const item = document.createElement("div");
    item.className = "stat";
    const colorMode = options.colorMode ?? "value";
    if (colorMode === "background" || colorMode === "background_solid") {
      item.style.background = colorMode === "background"
        ? `linear-gradient(120deg, ${withAlpha(v.color, 0.75)}, ${v.color})`
        : v.color;
      item.classList.add("filled");
    }
    const textMode = options.textMode ?? "auto";
    if ((textMode === "auto" && named) || textMode === "value_and_name" || textMode === "name") {
      item.append(Object.assign(document.createElement("div"), { className: "stat-name", textContent: v.name }));
    }
    if (textMode !== "name" && textMode !== "none") {
      const value = Object.assign(document.createElement("div"), { className: "stat-value", textContent: v.text });
      if (colorMode === "value") value.style.color = v.color;
      item.append(value);
    }
    if ((options.graphMode ?? "area") === "area" && v.frame.times.length > 1) item.append(this.sparkline(v));
    return item;
  }

  sparkline(v) {
    const box = document.createElement("div");
    box.className = "sparkline";
    const lineColor = this.model.options?.colorMode === "background" ? "rgba(255,255,255,0.6)" : v.color;
    requestAnimationFrame(() => {
      if (!box.isConnected || !box.clientWidth) return;
      new uPlot({
        width: box.clientWidth,
        height: box.clientHeight,
        legend: { show: false },
        cursor: { show: false },
        padding: [2, 0, 0, 0],
        axes: [{ show: false }, { show: false }],
        scales: { x: { time: false }, y: { range: (u, lo, hi) => [Math.min(0, lo ?? 0), (hi ?? 1) || 1] } },
        series: [{}, { stroke: lineColor, width: 1, fill: withAlpha(v.color, 0.18), points: { show: false } }],
      }, [v.frame.times, v.frame.values], box);
    });
    return box;
  }
}

export class GaugeView extends SingleValueView {
  item(v, named) {
    const unit = v.options.unit;
    const min = v.options.min ?? 0;
    const steps = (v.options.thresholds?.steps ?? []).map((s) => s.value).filter((x) => x !== null && x !== undefined);
    const fallbackMax = unit === "percentunit" ? 1 : unit === "percent" ? 100 : Math.max(100, ...steps, v.value ?? 0);
    const max = v.options.max ?? fallbackMax;
    const share = v.value === null ? 0 : Math.min(1, Math.max(0, (v.value - min) / (max - min || 1)));
    const item = document.createElement("div");
    item.className = "gauge";
    item.innerHTML = `<div class="gauge-name"></div><div class="gauge-value"></div>
      <div class="gauge-track"><div class="gauge-fill"></div></div>
      <div class="gauge-marks"></div><div class="gauge-scale"><span></span><span></span></div>`;
    item.querySelector(".gauge-name").textContent = named ? v.name : "";
    const value = item.querySelector(".gauge-value");
    value.textContent = v.text;
    value.style.color = v.color;
    const fill = item.querySelector(".gauge-fill");
    fill.style.width = `${share * 100}%`;
    fill.style.background = v.color;
    if (this.model.options?.showThresholdMarkers !== false) this.marks(item.querySelector(".gauge-marks"), v.options, min, max);
    const format = formatter(unit, v.options.decimals);
    const [low, high] = item.querySelectorAll(".gauge-scale span");
    low.textContent = format(min);
    high.textContent = format(max);
    return item;
  }

  /** The threshold bands under the bar, as Grafana's threshold markers. */
  marks(strip, options, min, max) {
    const steps = options.thresholds?.steps ?? [];
    const percentage = options.thresholds?.mode === "percentage";
    const at = (value) => (value === null || value === undefined ? 0 : percentage ? value / 100 : (value - min) / (max - min || 1));
    steps.forEach((step, i) => {
      const from = Math.max(0, Math.min(1, at(step.value)));
      const to = i + 1 < steps.length ? Math.max(0, Math.min(1, at(steps[i + 1].value))) : 1;
      if (to <= from) return;
      const band = document.createElement("i");
      band.style.left = `${from * 100}%`;
      band.style.width = `${(to - from) * 100}%`;
      band.style.background = thresholdColor({ steps: [step] }, 0);
      strip.append(band);
    });
  }
}
