// Time ranges as Grafana writes them in URLs (`from=now-15m&to=now`, or epoch ms), and the
// step and built-in interval variables Grafana derives from a range and a panel's width.

const SECONDS = { s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };

export const RANGES = [
  ["now-5m", "Last 5 minutes"],
  ["now-15m", "Last 15 minutes"],
  ["now-1h", "Last 1 hour"],
  ["now-6h", "Last 6 hours"],
  ["now-24h", "Last 24 hours"],
];
export const REFRESHES = ["", "5s", "10s", "30s", "1m"];

// Grafana's roundInterval steps, in seconds.
const NICE_STEPS = [1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600,
  7200, 10800, 21600, 43200, 86400];

export function durationSeconds(text) {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)$/.exec(String(text ?? "").trim());
  if (!match) return null;
  return match[2] === "ms" ? Number(match[1]) / 1000 : Number(match[1]) * SECONDS[match[2]];
}

/** "5m" for 300, "90s" for 90: the largest unit that divides exactly, as PromQL takes it. */
export function formatDuration(seconds) {
  const whole = Math.max(1, Math.round(seconds));
  for (const unit of ["d", "h", "m"]) {
    if (whole % SECONDS[unit] === 0) return `${whole / SECONDS[unit]}${unit}`;
  }
  return `${whole}s`;
}

function parseTime(text, nowMs) {
  if (text === "now") return nowMs;
  const relative = /^now-(\S+)$/.exec(text);
  if (relative && durationSeconds(relative[1]) !== null) {
    return nowMs - durationSeconds(relative[1]) * 1000;
  }
  if (/^\d+$/.test(text)) return Number(text);
  const parsed = Date.parse(text);
  if (!Number.isNaN(parsed)) return parsed;
  throw new Error(`cannot read the time "${text}"`);
}

/** A range in epoch seconds, resolved against the clock now. */
export function resolveRange({ from, to }) {
  const now = Date.now();
  return { from: parseTime(from, now) / 1000, to: parseTime(to, now) / 1000 };
}

export function rangeLabel({ from, to }) {
  const known = RANGES.find(([value]) => value === from);
  if (known && to === "now") return known[1];
  return `${from} to ${to}`;
}

/** Grafana's query interval: range / max data points (the panel's width in px), rounded
 * up to a nice step, never under the minimum (the scrape interval, or the panel's own). */
export function queryStep(rangeSeconds, widthPx, minSeconds) {
  const raw = rangeSeconds / Math.max(100, widthPx);
  const nice = NICE_STEPS.find((step) => step >= raw) ?? NICE_STEPS.at(-1);
  return Math.max(nice, minSeconds);
}

/** $__interval, $__rate_interval, $__range and friends for one query. */
export function builtinVariables(range, step, scrapeSeconds) {
  const rangeSeconds = Math.round(range.to - range.from);
  return {
    __interval: formatDuration(step),
    __interval_ms: String(Math.round(step * 1000)),
    // Grafana's rule: at least four scrapes, and at least one step plus one scrape.
    __rate_interval: formatDuration(Math.max(4 * scrapeSeconds, step + scrapeSeconds)),
    __range: formatDuration(rangeSeconds),
    __range_s: String(rangeSeconds),
    __range_ms: String(rangeSeconds * 1000),
  };
}
