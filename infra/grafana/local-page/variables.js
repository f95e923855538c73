// Dashboard template variables (`templating.list`) and Grafana's interpolation of them
// into PromQL: $var, ${var}, ${var:format}, [[var]], multi values as regex alternation.
import { labelValues, queryInstant } from "./prometheus.js";

export const ALL = "$__all";

// Grafana's escaping for the Prometheus datasource: a value inside a regex matcher in a
// double-quoted PromQL string needs its regex metacharacters escaped twice.
function regexEscape(value) {
  return value.replace(/\\/g, "\\\\\\\\").replace(/[$^*{}[\]'+?.()|]/g, "\\\\$&");
}
function plainEscape(value) {
  return value.replace(/\\/g, "\\\\").replace(/'/g, "\\\\'");
}

function splitCustom(query) {
  return (String(query ?? "").match(/(?:\\,|[^,])+/g) ?? [])
    .map((part) => part.trim().replace(/\\,/g, ","))
    .filter(Boolean)
    .map((part) => {
      const [text, value] = part.split(/\s+:\s+/);
      return { text, value: value ?? text };
    });
}

function applyRegex(values, regex) {
  if (!regex) return values.map((value) => ({ text: value, value }));
  const body = /^\/(.*)\/([gimsuy]*)$/.exec(regex);
  const pattern = body ? new RegExp(body[1], body[2]) : new RegExp(regex);
  const options = [];
  for (const value of values) {
    const match = pattern.exec(value);
    if (!match) continue;
    const groups = match.groups ?? {};
    const picked = groups.value ?? match[1] ?? value;
    options.push({ text: groups.text ?? picked, value: picked });
  }
  return options;
}

function sortOptions(options, sort) {
  const byText = (a, b) => a.text.localeCompare(b.text);
  const byNumber = (a, b) => (parseFloat(a.text) || 0) - (parseFloat(b.text) || 0);
  const byTextLower = (a, b) => a.text.toLowerCase().localeCompare(b.text.toLowerCase());
  const orders = { 1: byText, 2: byText, 3: byNumber, 4: byNumber, 5: byTextLower, 6: byTextLower };
  if (!orders[sort]) return options;
  const sorted = [...options].sort(orders[sort]);
  return sort % 2 === 0 ? sorted.reverse() : sorted;
}

function queryText(variable) {
  const query = variable.query;
  return typeof query === "object" && query !== null ? query.query ?? "" : query ?? "";
}

function asArray(value) {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

export class Variables {
  constructor(list, params) {
    this.list = (list ?? []).map((model) => ({ model, options: [], selected: [] }));
    this.fromUrl = new Map();
    for (const { model } of this.list) {
      const values = params.getAll(`var-${model.name}`);
      if (values.length) this.fromUrl.set(model.name, values);
    }
  }

  byName(name) {
    return this.list.find((v) => v.model.name === name);
  }

  /** Load the options of every variable in order (later ones may use earlier ones); with
   * `onTimeChange`, only those Grafana refreshes on a time range change (refresh: 2). */
  async load(range, { from = 0, onTimeChange = false } = {}) {
    for (const variable of this.list.slice(from)) {
      if (onTimeChange && variable.model.refresh !== 2) continue;
      variable.options = await this.options(variable, range);
      this.select(variable, this.fromUrl.get(variable.model.name) ?? asArray(variable.model.current?.value));
      this.fromUrl.delete(variable.model.name);
    }
  }

  async options(variable, range) {
    const model = variable.model;
    let options;
    if (model.type === "query") {
      options = await this.queryOptions(queryText(model), model.regex, range);
      options = sortOptions(options, model.sort);
    } else if (model.type === "custom" || model.type === "interval") {
      options = splitCustom(model.query);
    } else if (model.type === "constant" || model.type === "textbox") {
      const value = this.fromUrl.get(model.name)?.[0] ?? queryText(model);
      options = [{ text: value, value }];
    } else {
      options = (model.options ?? []).map((o) => ({ text: String(o.text), value: String(o.value) }));
    }
    if (model.includeAll && model.type !== "constant") options.unshift({ text: "All", value: ALL });
    return options;
  }

  async queryOptions(query, regex, range) {
    const text = this.interpolate(query, {});
    const labels = /^label_values\(\s*(?:(.+?)\s*,\s*)?([a-zA-Z_]\w*)\s*\)$/.exec(text.trim());
    if (labels) {
      const values = await labelValues(labels[2], labels[1], range);
      return applyRegex(values, regex);
    }
    const result = /^query_result\((.+)\)$/.exec(text.trim());
    if (result) {
      const data = await queryInstant(result[1], range.to);
      const lines = (data.result ?? []).map((r) => {
        const labelText = Object.entries(r.metric).map(([k, v]) => `${k}="${v}"`).join(", ");
        return `${r.metric.__name__ ?? ""}{${labelText}} ${r.value[1]} ${r.value[0] * 1000}`;
      });
      return applyRegex(lines, regex);
    }
    throw new Error(`variable query "${query}" is not label_values(...) or query_result(...)`);
  }

  /** Keep the wanted values that are still options; otherwise Grafana's default. */
  select(variable, wanted) {
    const values = new Set(variable.options.map((o) => o.value));
    let kept = wanted.filter((value) => values.has(value));
    if (!variable.model.multi) kept = kept.slice(0, 1);
    if (!kept.length && variable.options.length) kept = [variable.options[0].value];
    variable.selected = kept;
  }

  setSelected(name, values) {
    const variable = this.byName(name);
    this.select(variable, values);
    return this.list.indexOf(variable);
  }

  /** What a variable stands for: its selected values, All expanded. */
  resolve(variable) {
    if (variable.selected.includes(ALL)) {
      const allValue = variable.model.allValue;
      if (allValue !== undefined && allValue !== null && allValue !== "") {
        return { raw: allValue, values: [allValue] };
      }
      return { values: variable.options.filter((o) => o.value !== ALL).map((o) => o.value) };
    }
    return { values: variable.selected };
  }

  format(variable, format) {
    const { raw, values } = this.resolve(variable);
    const model = variable.model;
    if (format === "raw" || format === "text") return raw ?? values.join(",");
    if (format === "csv") return values.join(",");
    if (format === "pipe") return values.join("|");
    if (format === "json") return JSON.stringify(values);
    if (raw !== undefined) return raw;
    if (format === "regex") return values.length > 1 ? `(${values.map(regexEscape).join("|")})` : regexEscape(values[0] ?? "");
    if (!model.multi && !model.includeAll) return plainEscape(values[0] ?? "");
    const escaped = values.map(regexEscape);
    return escaped.length === 1 ? escaped[0] : `(${escaped.join("|")})`;
  }

  interpolate(text, builtins) {
    return String(text ?? "").replace(
      /\$(\w+)|\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)(?::(\w+))?\]\]/g,
      (whole, plain, braced, bracedFormat, bracketed, bracketedFormat) => {
        const name = plain ?? braced ?? bracketed;
        if (name in builtins) return builtins[name];
        const variable = this.byName(name);
        return variable ? this.format(variable, bracedFormat ?? bracketedFormat) : whole;
      },
    );
  }

  /** The URL parameters Grafana keeps them in: var-name=value, repeated for multi. */
  urlParams() {
    return this.list
      .filter((v) => v.model.type !== "constant")
      .flatMap((v) => v.selected.map((value) => [`var-${v.model.name}`, value]));
  }
}
