// Field options (fieldConfig.defaults with overrides), Grafana's colours and thresholds,
// and the reducers (options.reduceOptions.calcs, legend calcs).

const SHADES = {
  red: ["#FFA6B0", "#FF7383", "#F2495C", "#E02F44", "#C4162A"],
  orange: ["#FFCB7D", "#FFB357", "#FF9830", "#FF780A", "#FA6400"],
  yellow: ["#FFF899", "#FFEE52", "#FADE2A", "#F2CC0C", "#E0B400"],
  green: ["#C8F2C2", "#96D98D", "#73BF69", "#56A64B", "#37872D"],
  blue: ["#C0D8FF", "#8AB8FF", "#5794F2", "#3274D9", "#1F60C4"],
  purple: ["#DEB6F2", "#CA95E5", "#B877D9", "#A352CC", "#8F3BB8"],
};
const NAMED = { text: "#CCCCDC", transparent: "transparent", white: "#FFFFFF", black: "#000000" };
for (const [hue, [superLight, light, base, semiDark, dark]] of Object.entries(SHADES)) {
  Object.assign(NAMED, {
    [hue]: base, [`super-light-${hue}`]: superLight, [`light-${hue}`]: light,
    [`semi-dark-${hue}`]: semiDark, [`dark-${hue}`]: dark,
  });
}

// Grafana's "palette-classic", in its order.
export const PALETTE = ["#73BF69", "#F2CC0C", "#8AB8FF", "#FF780A", "#F2495C", "#5794F2",
  "#B877D9", "#705DA0", "#37872D", "#FADE2A", "#447EBC", "#C15C17", "#890F02", "#0A437C",
  "#6D1F62", "#584477", "#B7DBAB", "#F4D598", "#70DBED", "#F9BA8F", "#F29191", "#82B5D8"];

export function color(name) {
  if (!name) return NAMED.text;
  return NAMED[name] ?? NAMED[String(name).toLowerCase()] ?? name;
}

/** The colour with `alpha` (0..1) as an rgba() string, for fills. */
export function withAlpha(hex, alpha) {
  const match = /^#([0-9a-f]{6})$/i.exec(hex);
  if (!match) return hex;
  const n = parseInt(match[1], 16);
  return `rgba(${n >> 16}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

/** The step colour of a value: the last step whose value it reaches (null = from -Inf). */
export function thresholdColor(thresholds, value, min = 0, max = 100) {
  const steps = thresholds?.steps ?? [{ color: "green", value: null }];
  const compared = thresholds?.mode === "percentage" ? ((value - min) / (max - min || 1)) * 100 : value;
  let picked = steps[0]?.color;
  for (const step of steps) {
    if (step.value === null || step.value === undefined || compared >= step.value) picked = step.color;
  }
  return color(picked);
}

/** The colour of field `index` (a series) under its colour mode. */
export function fieldColor(options, index, value) {
  const mode = options.color?.mode ?? "palette-classic";
  if (mode === "fixed" || mode === "shades") return color(options.color.fixedColor);
  if (mode === "thresholds" && value !== undefined) return thresholdColor(options.thresholds, value, options.min ?? 0, options.max ?? 100);
  return PALETTE[index % PALETTE.length];
}

function matches(matcher, names, refId) {
  if (matcher?.id === "byName") return names.includes(matcher.options);
  if (matcher?.id === "byRegexp") return names.some((name) => new RegExp(matcher.options).test(name));
  if (matcher?.id === "byFrameRefID") return matcher.options === refId;
  return false;
}

/** fieldConfig.defaults, with the overrides that match this field (by any of its names:
 * its own, and the one a transformation gave it) applied in order. */
export function fieldOptions(fieldConfig, names, refId) {
  const options = structuredClone(fieldConfig?.defaults ?? {});
  const all = [names].flat();
  for (const override of fieldConfig?.overrides ?? []) {
    if (!matches(override.matcher, all, refId)) continue;
    for (const { id, value } of override.properties ?? []) {
      const path = id.split(".");
      let target = options;
      for (const key of path.slice(0, -1)) target = target[key] ??= {};
      target[path.at(-1)] = value;
    }
  }
  return options;
}

const REDUCERS = {
  lastNotNull: (v) => v.filter((x) => x !== null).at(-1) ?? null,
  last: (v) => v.at(-1) ?? null,
  firstNotNull: (v) => v.find((x) => x !== null) ?? null,
  first: (v) => v[0] ?? null,
  mean: (v) => {
    const n = v.filter((x) => x !== null);
    return n.length ? n.reduce((a, b) => a + b, 0) / n.length : null;
  },
  max: (v) => (v.some((x) => x !== null) ? Math.max(...v.filter((x) => x !== null)) : null),
  min: (v) => (v.some((x) => x !== null) ? Math.min(...v.filter((x) => x !== null)) : null),
  sum: (v) => v.filter((x) => x !== null).reduce((a, b) => a + b, 0),
  count: (v) => v.length,
  delta: (v) => {
    const n = v.filter((x) => x !== null);
    return n.length ? n.at(-1) - n[0] : null;
  },
};
REDUCERS.range = (v) => (REDUCERS.max(v) ?? 0) - (REDUCERS.min(v) ?? 0);
REDUCERS.diff = REDUCERS.delta;

export const CALC_NAMES = {
  lastNotNull: "Last *", last: "Last", firstNotNull: "First *", first: "First", mean: "Mean",
  max: "Max", min: "Min", sum: "Total", count: "Count", delta: "Delta", range: "Range", diff: "Difference",
};

export function reduce(values, calc) {
  return (REDUCERS[calc] ?? REDUCERS.lastNotNull)(values);
}

/** Grafana's value mappings (fieldConfig.defaults.mappings): the first that matches gives
 * the text and colour shown in place of the number; null when none matches. */
export function mapValue(mappings, value) {
  if (value === null || value === undefined) return null;
  for (const mapping of mappings ?? []) {
    const options = mapping.options ?? {};
    let result;
    if (mapping.type === "value") result = options[String(value)];
    else if (mapping.type === "range") {
      const above = options.from === null || options.from === undefined || value >= options.from;
      const below = options.to === null || options.to === undefined || value <= options.to;
      if (above && below) result = options.result;
    }
    if (result) return { text: result.text, color: result.color ? color(result.color) : undefined };
  }
  return null;
}
