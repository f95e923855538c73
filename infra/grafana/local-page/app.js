// Local mode's stand-in for Grafana: the dashboard list at /, each dashboard at /d/<uid>
// (Grafana's own paths), from the same JSON files Grafana is provisioned with.
import { DashboardPage } from "./dashboard.js";

const main = document.getElementById("main");
const toolbar = document.getElementById("toolbar");
const crumbs = document.getElementById("crumbs");

/** Every dashboard file, from nginx's JSON index of the dashboards folder. */
async function loadDashboards() {
  const index = await fetch("/dashboards/").then((r) => r.json());
  const files = index.filter((e) => e.type === "file" && e.name.endsWith(".json"));
  return Promise.all(files.map(async ({ name }) => {
    try {
      const model = await fetch(`/dashboards/${encodeURIComponent(name)}`).then((r) => r.json());
      return { file: name, model };
    } catch (error) {
      return { file: name, error: `${name} is not valid JSON: ${error.message}` };
    }
  }));
}

function note(text, className = "note") {
  const p = document.createElement("p");
  p.className = className;
  p.textContent = text;
  return p;
}

function showList(dashboards) {
  document.title = "Dashboards - Shopstack";
  crumbs.replaceChildren(Object.assign(document.createElement("span"), { className: "crumb-title", textContent: "Dashboards" }));
  const list = document.createElement("ul");
  list.className = "dashboard-list";
  const sorted = [...dashboards].sort((a, b) => (a.model?.title ?? a.file).localeCompare(b.model?.title ?? b.file));
  for (const { file, model, error } of sorted) {
    const item = document.createElement("li");
    if (error) {
      item.append(note(error, "error-text"));
    } else {
      const link = Object.assign(document.createElement("a"), { href: `/d/${model.uid}`, textContent: model.title });
      link.dataset.uid = model.uid;
      const tags = document.createElement("span");
      tags.className = "tags";
      for (const tag of model.tags ?? []) tags.append(Object.assign(document.createElement("span"), { className: "tag", textContent: tag }));
      item.append(link, tags, note(model.description ?? file, "description"));
    }
    list.append(item);
  }
  main.replaceChildren(list);
}

async function start() {
  let dashboards;
  try {
    dashboards = await loadDashboards();
  } catch (error) {
    main.replaceChildren(note(`Cannot list the dashboards: ${error.message}`, "error-text"));
    return;
  }
  const route = /^\/d\/([^/]+)/.exec(location.pathname);
  if (!route) return showList(dashboards);
  const uid = decodeURIComponent(route[1]);
  const found = dashboards.find((d) => d.model?.uid === uid);
  if (!found) {
    main.replaceChildren(note(`No dashboard with uid "${uid}".`, "error-text"));
    return;
  }
  await new DashboardPage(found.model, dashboards, { main, toolbar, crumbs }).start();
}

start();
