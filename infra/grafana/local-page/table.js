// The table panel: instant queries as rows of labels and values. Several targets are
// joined on their labels ("Value #A", "Value #B"), as Grafana's merge does. Simple
// transformations (organize, filterFieldsByName, sortBy, merge) are honoured; others are
// left out and the table shows labels and values.
import { fieldOptions, mapValue, thresholdColor } from "./fields.js";
import { formatter } from "./units.js";

function columnsAndRows(frames) {
  const refIds = [...new Set(frames.map((f) => f.refId))];
  const valueName = (refId) => (refIds.length > 1 ? `Value #${refId}` : "Value");
  const labels = [...new Set(frames.flatMap((f) => Object.keys(f.labels)))].sort((a, b) =>
    a === "__name__" ? -1 : b === "__name__" ? 1 : a.localeCompare(b));
  const rows = new Map();
  for (const frame of frames) {
    const { __name__: _, ...identity } = frame.labels;
    const key = JSON.stringify(Object.entries(identity).sort());
    const row = rows.get(key) ?? { ...frame.labels };
    row[valueName(frame.refId)] = frame.values.filter((v) => v !== null).at(-1) ?? null;
    rows.set(key, row);
  }
  return { columns: [...labels, ...refIds.map(valueName)], rows: [...rows.values()] };
}

function transform(table, transformations) {
  let { columns, rows } = table;
  const renames = {};
  for (const { id, options = {}, disabled } of transformations ?? []) {
    if (disabled) continue;
    if (id === "organize") {
      columns = columns.filter((c) => !options.excludeByName?.[c]);
      const order = options.indexByName ?? {};
      columns.sort((a, b) => (order[a] ?? 1e6) - (order[b] ?? 1e6));
      Object.assign(renames, options.renameByName ?? {});
    } else if (id === "filterFieldsByName") {
      const names = options.include?.names;
      const pattern = options.include?.pattern ? new RegExp(options.include.pattern) : null;
      columns = columns.filter((c) => (names ? names.includes(c) : true) && (pattern ? pattern.test(c) : true));
    } else if (id === "sortBy") {
      const [{ field, desc } = {}] = options.sort ?? [];
      if (field) rows = [...rows].sort((a, b) => compare(a[field], b[field]) * (desc ? -1 : 1));
    }
  }
  return { columns, rows, renames };
}

function compare(a, b) {
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a ?? "").localeCompare(String(b ?? ""), undefined, { numeric: true });
}

export class TableView {
  constructor(body, model) {
    this.body = body;
    this.model = model;
    body.classList.add("table-body");
    const [initial] = model.options?.sortBy ?? [];
    this.sort = initial ? { column: initial.displayName, desc: Boolean(initial.desc) } : null;
  }

  instant(target) {
    return Boolean(target.instant) || target.format === "table" || !target.range;
  }

  update(frames) {
    this.frames = frames;
    const { columns, rows, renames } = transform(columnsAndRows(frames), this.model.transformations);
    const shown = (column) => renames[column] || column;
    if (this.sort) {
      const column = columns.find((c) => shown(c) === this.sort.column);
      if (column) rows.sort((a, b) => compare(a[column], b[column]) * (this.sort.desc ? -1 : 1));
    }
    const table = document.createElement("table");
    const head = table.createTHead().insertRow();
    const cellFormats = columns.map((column) => {
      const options = fieldOptions(this.model.fieldConfig, [column, shown(column)], null);
      return { options, format: formatter(options.unit, options.decimals) };
    });
    for (const column of columns) {
      const th = document.createElement("th");
      th.textContent = shown(column);
      if (this.sort?.column === shown(column)) th.dataset.sort = this.sort.desc ? "desc" : "asc";
      th.addEventListener("click", () => {
        const desc = this.sort?.column === shown(column) ? !this.sort.desc : false;
        this.sort = { column: shown(column), desc };
        this.update(this.frames);
      });
      head.append(th);
    }
    const body = table.createTBody();
    for (const row of rows) {
      const tr = body.insertRow();
      columns.forEach((column, i) => {
        const td = tr.insertCell();
        const value = row[column];
        if (typeof value === "number" || value === null) {
          const { options, format } = cellFormats[i];
          const mapped = mapValue(options.mappings, value);
          td.textContent = value === null && !(column in row) ? "" : mapped?.text ?? format(value);
          td.className = "number";
          const mode = options.custom?.cellOptions?.type ?? options.custom?.displayMode;
          const colour = mapped?.color
            ?? thresholdColor(options.thresholds, value ?? 0, options.min ?? 0, options.max ?? 100);
          if (mapped?.color && !mode) td.style.color = colour;
          if (mode === "color-text") td.style.color = colour;
          if (mode === "color-background" || mode === "color-background-solid") {
            td.style.background = colour;
            td.classList.add("filled");
          }
        } else {
          td.textContent = value ?? "";
        }
      });
    }
    this.body.replaceChildren(table);
  }
}
