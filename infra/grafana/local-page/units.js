// Grafana's value formats (fieldConfig.defaults.unit), by the names Grafana gives them.

function fixed(value, decimals) {
  if (decimals !== undefined && decimals !== null) return value.toFixed(decimals);
  const size = Math.abs(value);
  let auto = 0;
  if (size === 0 || size >= 100) auto = 0;
  else if (size >= 10) auto = 1;
  else if (size >= 1) auto = 2;
  else auto = Math.min(8, 2 - Math.floor(Math.log10(size)));
  return String(Number(value.toFixed(auto)));
}

/** Divide by `factor` until under it, and pick that power's suffix. */
function scaled(factor, suffixes, offset = 0) {
  return (value, decimals) => {
    let power = offset;
    let size = value;
    while (Math.abs(size) >= factor && power < suffixes.length - 1) {
      size /= factor;
      power += 1;
    }
    while (Math.abs(size) < 1 && size !== 0 && power > 0) {
      size *= factor;
      power -= 1;
    }
    return fixed(size, decimals) + suffixes[power];
  };
}

const SHORT = ["", " K", " Mil", " Bil", " Tri", " Quadr"];
const COUNT = ["", " K", " M", " B", " T"];
const SI = ["", " k", " M", " G", " T", " P"];

const short = scaled(1000, SHORT);
const count = (suffix) => (v, d) => scaled(1000, COUNT)(v, d) + ` ${suffix}`;
const si = (unit) => {
  const format = scaled(1000, SI.map((prefix) => `${prefix.trim() ? prefix : " "}${unit}`));
  return (v, d) => format(v, d);
};
const iec = (unit, offset = 0) =>
  scaled(1024, ["", "Ki", "Mi", "Gi", "Ti", "Pi"].map((p) => ` ${p}${unit}`), offset);
const decimalBytes = (unit, offset = 0) =>
  scaled(1000, ["", "k", "M", "G", "T", "P"].map((p) => ` ${p}${unit}`), offset);
const currency = (symbol) => (v, d) => symbol + scaled(1000, ["", "K", "M", "B", "T"])(v, d);

// Durations as Grafana writes them: the largest unit under which the value stays >= 1.
const DURATIONS = [[1e-9, "ns"], [1e-6, "µs"], [1e-3, "ms"], [1, "s"], [60, "min"],
  [3600, "hour"], [86400, "day"], [604800, "week"], [31536000, "year"]];
const duration = (secondsPerUnit) => (value, decimals) => {
  const seconds = value * secondsPerUnit;
  const size = Math.abs(seconds);
  let [factor, name] = DURATIONS[0];
  for (const [f, n] of DURATIONS) if (size >= f) [factor, name] = [f, n];
  if (size === 0) [factor, name] = DURATIONS.find(([f]) => f === secondsPerUnit) ?? [1, "s"];
  return `${fixed(seconds / factor, decimals)} ${name}`;
};

function isoDate(ms) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
function fromNow(ms) {
  const seconds = Math.round((Date.now() - ms) / 1000);
  const text = duration(1)(Math.abs(seconds), 0);
  return seconds >= 0 ? `${text} ago` : `in ${text}`;
}

const FORMATS = {
  none: (v, d) => fixed(v, d),
  short,
  percent: (v, d) => `${fixed(v, d)}%`,
  percentunit: (v, d) => `${fixed(v * 100, d)}%`,
  humidity: (v, d) => `${fixed(v, d)}%H`,
  ns: duration(1e-9), µs: duration(1e-6), us: duration(1e-6), ms: duration(1e-3),
  s: duration(1), m: duration(60), h: duration(3600), d: duration(86400),
  bytes: iec("B"), kbytes: iec("B", 1), mbytes: iec("B", 2), gbytes: iec("B", 3),
  decbytes: decimalBytes("B"), deckbytes: decimalBytes("B", 1),
  decmbytes: decimalBytes("B", 2), decgbytes: decimalBytes("B", 3),
  bits: iec("b"), decbits: decimalBytes("b"),
  Bps: decimalBytes("B/s"), binBps: iec("B/s"), bps: decimalBytes("bps"), binbps: iec("bps"),
  KBs: decimalBytes("B/s", 1), MBs: decimalBytes("B/s", 2),
  reqps: count("req/s"), rps: count("rd/s"), wps: count("wr/s"), iops: count("io/s"),
  ops: count("ops/s"), cps: count("c/s"), eps: count("evt/s"), mps: count("msg/s"),
  opm: count("ops/min"), rpm: count("rd/min"), wpm: count("wr/min"), reqpm: count("req/min"),
  hertz: si("Hz"), watt: si("W"), volt: si("V"), amp: si("A"), celsius: (v, d) => `${fixed(v, d)} °C`,
  fahrenheit: (v, d) => `${fixed(v, d)} °F`,
  currencyUSD: currency("$"), currencyEUR: currency("€"), currencyGBP: currency("£"),
  currencyJPY: currency("¥"),
  bool: (v) => (v ? "True" : "False"),
  bool_yes_no: (v) => (v ? "Yes" : "No"),
  bool_on_off: (v) => (v ? "On" : "Off"),
  dateTimeAsIso: (v) => isoDate(v),
  dateTimeFromNow: (v) => fromNow(v),
};

/** A formatter for a unit: number -> text; custom `suffix:`, `prefix:`, `si:` as Grafana. */
export function formatter(unit, decimals, noValue = "No data") {
  const name = unit || "short";
  let format = FORMATS[name];
  if (!format) {
    const [kind, ...rest] = name.split(":");
    const custom = rest.join(":");
    if (kind === "suffix") format = (v, d) => `${fixed(v, d)}${custom}`;
    else if (kind === "prefix") format = (v, d) => `${custom}${fixed(v, d)}`;
    else if (kind === "si") format = si(custom);
    else if (kind === "count") format = count(custom);
    else format = (v, d) => `${fixed(v, d)} ${name}`;
  }
  return (value) => {
    if (value === null || value === undefined || Number.isNaN(value)) return noValue;
    if (!Number.isFinite(value)) return value > 0 ? "+Inf" : "-Inf";
    return format(value, decimals);
  };
}
