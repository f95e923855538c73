// One dashboard: its time range, refresh and variables kept in the URL as Grafana keeps
// them (?from=now-15m&to=now&refresh=10s&var-instance=...), the controls, and the grid.
import { renderGrid } from "./panels.js";
import { timeControls, variablePicker } from "./controls.js";
import { durationSeconds, resolveRange } from "./time.js";
import { Variables } from "./variables.js";

// The datasource's scrape interval (timeInterval in provisioning/datasources/prometheus.yml).
const SCRAPE_SECONDS = 5;

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class DashboardPage {
  constructor(model, dashboards, { main, toolbar, crumbs }) {
    this.model = model;
    this.dashboards = dashboards;
    this.main = main;
    this.toolbar = toolbar;
    this.crumbs = crumbs;
    const params = new URLSearchParams(location.search);
    this.time = {
      from: params.get("from") ?? model.time?.from ?? "now-6h",
      to: params.get("to") ?? model.time?.to ?? "now",
    };
    this.every = params.has("refresh") ? params.get("refresh") : model.refresh || "";
    this.variables = new Variables(model.templating?.list, params);
    this.context = {
      scrapeSeconds: SCRAPE_SECONDS,
      timezone: model.timezone,
      sharedCursor: (model.graphTooltip ?? 0) > 0,
      interpolate: (text, builtins = {}) => this.variables.interpolate(text, builtins),
      range: () => resolveRange(this.time),
    };
  }

  async start() {
    document.title = `${this.model.title} - Dashboards - Shopstack`;
    const home = element("a", "", "Dashboards");
    home.href = "/";
    this.crumbs.replaceChildren(home, element("span", "crumb-sep", "›"), element("span", "crumb-title", this.model.title));
    this.renderToolbar();
    this.varBar = element("div", "variables");
    this.grid = element("div", "dashboard");
    this.main.replaceChildren(this.varBar, this.grid);
    await this.loadVariables({});
    this.panels = renderGrid(this.grid, this.model, this.context);
    this.saveUrl();
    this.refresh();
    this.schedule();
  }

  async loadVariables(how) {
    try {
      await this.variables.load(this.context.range(), how);
      this.variableError = "";
    } catch (error) {
      this.variableError = `Variables: ${error.message}`;
    }
    this.renderVariables();
  }

  renderVariables() {
    const pickers = this.variables.list.map((variable) =>
      variablePicker(variable, (values) => this.chooseVariable(variable.model.name, values)));
    const links = this.links();
    this.varBar.replaceChildren(...pickers, ...links);
    if (this.variableError) this.varBar.append(element("span", "variable-error", this.variableError));
  }

  links() {
    const query = () => `?${new URLSearchParams([["from", this.time.from], ["to", this.time.to], ...this.variables.urlParams()])}`;
    const anchors = [];
    for (const link of this.model.links ?? []) {
      if (link.type === "dashboards") {
        const tags = link.tags ?? [];
        for (const other of this.dashboards) {
          if (other.model.uid === this.model.uid) continue;
          if (tags.length && !tags.some((t) => other.model.tags?.includes(t))) continue;
          anchors.push([other.model.title, `/d/${other.model.uid}`, link]);
        }
      } else if (link.url) {
        anchors.push([link.title || link.url, this.context.interpolate(link.url), link]);
      }
    }
    return anchors.map(([title, url, link]) => {
      const anchor = element("a", "dashboard-link", title);
      anchor.href = url + (link.keepTime || link.includeVars ? query() : "");
      if (link.targetBlank) anchor.target = "_blank";
      if (link.tooltip) anchor.title = link.tooltip;
      return anchor;
    });
  }

  renderToolbar() {
    this.toolbar.replaceChildren(timeControls(this.time, this.every, {
      time: async (from) => {
        this.time = { from, to: "now" };
        this.saveUrl();
        await this.loadVariables({ onTimeChange: true });
        this.refresh();
      },
      refresh: () => this.refresh(),
      every: (every) => {
        this.every = every;
        this.saveUrl();
        this.schedule();
      },
    }));
  }

  async chooseVariable(name, values) {
    const index = this.variables.setSelected(name, values);
    await this.loadVariables({ from: index + 1 });
    this.saveUrl();
    this.refresh();
  }

  refresh() {
    const range = this.context.range();
    for (const panel of this.panels) panel.refresh(range);
  }

  schedule() {
    clearInterval(this.timer);
    const seconds = durationSeconds(this.every);
    if (seconds) this.timer = setInterval(() => this.refresh(), seconds * 1000);
  }

  saveUrl() {
    const params = new URLSearchParams([["from", this.time.from], ["to", this.time.to]]);
    if (this.every) params.set("refresh", this.every);
    for (const [key, value] of this.variables.urlParams()) params.append(key, value);
    history.replaceState(null, "", `${location.pathname}?${params}`);
  }
}
