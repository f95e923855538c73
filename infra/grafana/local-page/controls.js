// The dashboard's controls: variable dropdowns (single or multi, with All), the time range
// and auto-refresh pickers, and a refresh button.
import { ALL } from "./variables.js";
import { RANGES, REFRESHES, rangeLabel } from "./time.js";

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function selectedText(variable) {
  if (variable.selected.includes(ALL)) return "All";
  const texts = variable.selected.map((value) => variable.options.find((o) => o.value === value)?.text ?? value);
  return texts.join(" + ") || "None";
}

/** A dropdown of a variable's options; `onChange(values)` when the choice changes. */
export function variablePicker(variable, onChange) {
  const model = variable.model;
  const wrap = element("div", "variable");
  wrap.dataset.variable = model.name;
  if (model.hide === 2) wrap.hidden = true;
  if (model.hide !== 1) wrap.append(element("label", "variable-label", model.label || model.name));
  if (model.type === "textbox") {
    const input = element("input", "variable-input");
    input.value = variable.selected[0] ?? "";
    input.addEventListener("change", () => onChange([input.value]));
    wrap.append(input);
    return wrap;
  }
  const button = element("button", "variable-button", selectedText(variable));
  button.type = "button";
  const menu = element("div", "variable-menu");
  menu.hidden = true;
  let chosen = [...variable.selected];
  const render = () => {
    menu.replaceChildren(...variable.options.map((option) => {
      const item = element("label", "variable-option");
      const box = element("input");
      box.type = model.multi ? "checkbox" : "radio";
      box.name = `var-${model.name}`;
      box.checked = chosen.includes(option.value);
      box.addEventListener("change", () => {
        if (!model.multi) {
          chosen = [option.value];
          close();
          return;
        }
        if (option.value === ALL) chosen = [ALL];
        else {
          chosen = chosen.filter((v) => v !== ALL && v !== option.value);
          if (box.checked) chosen.push(option.value);
          if (!chosen.length) chosen = model.includeAll ? [ALL] : [option.value];
        }
        render();
      });
      item.append(box, option.text);
      return item;
    }));
  };
  const close = () => {
    menu.hidden = true;
    document.removeEventListener("mousedown", outside);
    if (chosen.join("\n") !== variable.selected.join("\n")) onChange(chosen);
  };
  const outside = (event) => {
    if (!wrap.contains(event.target)) close();
  };
  button.addEventListener("click", () => {
    if (!menu.hidden) return close();
    chosen = [...variable.selected];
    render();
    menu.hidden = false;
    document.addEventListener("mousedown", outside);
  });
  wrap.append(button, menu);
  return wrap;
}

function select(className, options, value, onChange) {
  const node = element("select", className);
  for (const [optionValue, text] of options) {
    const option = element("option", "", text);
    option.value = optionValue;
    node.append(option);
  }
  if (!options.some(([v]) => v === value)) {
    const custom = element("option", "", value);
    custom.value = value;
    node.append(custom);
  }
  node.value = value;
  node.addEventListener("change", () => onChange(node.value));
  return node;
}

/** Time range, refresh button and auto-refresh; `on.time(from)`, `on.refresh()`, `on.every(interval)`. */
export function timeControls(time, every, on) {
  const bar = element("div", "time-controls");
  const rangeOptions = RANGES.map(([value, text]) => [value, text]);
  const range = select("time-range", rangeOptions, time.to === "now" ? time.from : "", (from) => on.time(from));
  if (time.to !== "now") range.options[range.options.length - 1].textContent = rangeLabel(time);
  const now = element("button", "refresh-button", "⟳");
  now.type = "button";
  now.title = "Refresh now";
  now.addEventListener("click", () => on.refresh());
  const auto = select("refresh-picker", REFRESHES.map((r) => [r, r || "Off"]), every, (value) => on.every(value));
  auto.title = "Auto refresh";
  bar.append(range, now, auto);
  return bar;
}
