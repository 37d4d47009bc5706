// Small DOM helpers shared by the pages: elements, level and band badges, dialogs, messages.
import { t } from "./i18n.js";

/** An element with attributes (on* are listeners) and children (strings become text). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value == null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

// Display bands of a 0–100 score; alerts come from the rules, these only colour the map.
export const BAND_COLOURS = { good: "#2166ac", watch: "#e0a526", poor: "#c0392b", insufficient: "#b8b8b8", none: "#dddddd" };
export const LEVEL_COLOURS = { blue: "#1f6fb4", yellow: "#d4a600", orange: "#e06c00", red: "#c0392b" };
export const LEVEL_ORDER = ["red", "orange", "yellow", "blue"];
const LEVEL_SHAPES = { blue: "●", yellow: "◆", orange: "▲", red: "■" };

/** The display band of a figure: good, watch, poor, insufficient (below the minimum sample) or none. */
export function bandOf(figure) {
  if (!figure || figure.sample_size === 0 || figure.score == null) return figure && figure.insufficient ? "insufficient" : "none";
  if (figure.insufficient) return "insufficient";
  if (figure.score >= 80) return "good";
  if (figure.score >= 60) return "watch";
  return "poor";
}

/** A band badge: colour and its name, so it reads without colour. */
export function bandBadge(band) {
  return h("span", { class: `badge band-${band}`, dataset: { band } }, t(`bands.${band}`));
}

/** A warning-level badge: colour, a shape and the level's name. */
export function levelBadge(level) {
  return h("span", { class: `badge level-${level}`, dataset: { level } }, `${LEVEL_SHAPES[level] || ""} ${t(`levels.${level}`)}`);
}

/** A modal dialog with a form; resolves with the form's values, or null when cancelled. */
export function askDialog(title, fields, { confirm = t("confirm") } = {}) {
  return new Promise((resolve) => {
    const inputs = fields.map((field) => {
      const id = `dlg-${field.name}`;
      let input;
      if (field.options) {
        input = h("select", { id, name: field.name }, field.options.map(([value, label]) => h("option", { value, selected: value === field.value }, label)));
      } else if (field.multiline) {
        input = h("textarea", { id, name: field.name, rows: 3, required: field.required }, field.value || "");
      } else {
        input = h("input", { id, name: field.name, type: field.type || "text", value: field.value ?? "", required: field.required });
      }
      return h("div", { class: "field" }, h("label", { for: id }, field.label), input);
    });
    const form = h("form", { method: "dialog" }, h("h2", {}, title), inputs,
      h("div", { class: "buttons" },
        h("button", { type: "button", value: "cancel", class: "secondary", onclick: () => dialog.close("cancel") }, t("cancel")),
        h("button", { type: "submit", value: "ok" }, confirm)));
    const dialog = h("dialog", { "aria-label": title }, form);
    dialog.addEventListener("close", () => {
      const values = Object.fromEntries(new FormData(form).entries());
      dialog.remove();
      resolve(dialog.returnValue === "ok" ? values : null);
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      dialog.close("ok");
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** A short message at the bottom of the screen, read out by screen readers. */
export function notify(text, kind = "info") {
  const region = document.getElementById("messages");
  const message = h("div", { class: `message ${kind}` }, text);
  region.append(message);
  setTimeout(() => message.remove(), 3500);
}

/** A table from column headers and rows of cells. */
export function table(headers, rows, attributes = {}) {
  return h("div", { class: "table-wrap" },
    h("table", attributes,
      h("thead", {}, h("tr", {}, headers.map((header) => h("th", { scope: "col" }, header)))),
      h("tbody", {}, rows)));
}

/** A labelled select. */
export function select(id, label, options, value, onchange) {
  return h("label", { class: "inline", for: id }, label,
    h("select", { id, onchange: (event) => onchange(event.target.value) },
      options.map(([optionValue, text]) => h("option", { value: optionValue, selected: optionValue === value }, text))));
}
