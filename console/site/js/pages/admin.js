// Admin: index system with AHP pairwise entry and its consistency ratio as you type; rules with "try against
// history"; silences; responsibilities; channels with test-send; risks and their playbooks.
import { ApiError, api, listAll, orNull } from "../api.js";
import { ahp, parseJudgement, reciprocal } from "../ahp.js";
import { chart } from "../charts.js";
import { dateTime, number, t } from "../i18n.js";
import { LEVEL_COLOURS, h, levelBadge, notify, table } from "../ui.js";
import { ruleLines, series, trendOption } from "../trend.js";
import { indicatorOptions } from "./map.js";

export const live = false;
const TABS = ["index", "rules", "silences", "responsibilities", "channels", "risks"];
const LEVELS = ["blue", "yellow", "orange", "red"];

/** The page's data for the chosen tab. */
export async function load({ params }) {
  const tab = TABS.includes(params.tab) ? params.tab : "index";
  const data = { tab, group: params.group || "top" };
  if (tab === "index") data.indexSystem = await orNull(api("/index-systems/current"));
  if (tab === "rules") [data.rules, data.indexSystem] = await Promise.all([listAll("/rules", {}, 500), orNull(api("/index-systems/current"))]);
  if (tab === "silences") data.silences = await listAll("/silences", {}, 500);
  if (tab === "responsibilities") data.responsibilities = await listAll("/responsibilities", {}, 500);
  if (tab === "channels") data.channels = await listAll("/channels", {}, 500);
  if (tab === "risks") data.risks = await listAll("/risks", {}, 500);
  return data;
}

async function call(promise, refresh) {
  try {
    const result = await promise;
    notify(t("saved"));
    refresh?.();
    return result;
  } catch (error) {
    notify(error instanceof ApiError && error.status === 403 ? t("forbidden") : t("error", { detail: error.message }), "error");
    return null;
  }
}

function formValues(form) {
  return Object.fromEntries(new FormData(form).entries());
}

function field(name, label, input) {
  return h("div", { class: "field" }, h("label", { for: `f-${name}` }, label), input);
}

function input(name, attributes = {}) {
  return h("input", { id: `f-${name}`, name, ...attributes });
}

function choice(name, options, value) {
  return h("select", { id: `f-${name}`, name }, options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)));
}

// --- index system and AHP ------------------------------------------------------------------------------------

function groupsOf(indexSystem) {
  const groups = [["top", t("ahp_top"), indexSystem.indicators]];
  const walk = (indicators) => {
    for (const indicator of indicators) {
      if (indicator.children) {
        groups.push([indicator.id, indicator.name, indicator.children]);
        walk(indicator.children);
      }
    }
  };
  walk(indexSystem.indicators);
  return groups;
}

function draftOf(indicators, ahpGroup, matrix, groupId = "top") {
  return indicators.map((indicator) => {
    const draft = { id: indicator.id, name: indicator.name, kind: indicator.kind };
    if (groupId !== ahpGroup) draft.weight = indicator.weight;
    if (indicator.kind === "group") {
      draft.children = draftOf(indicator.children, ahpGroup, matrix, indicator.id);
      if (indicator.id === ahpGroup) draft.ahp = matrix;
    } else {
      draft.metric = indicator.metric;
      if (indicator.target != null) draft.target = indicator.target;
      if (indicator.direction != null) draft.direction = indicator.direction;
    }
    return draft;
  });
}

function judgementText(value) {
  const inverse = 1 / value;
  if (value < 1 && Math.abs(inverse - Math.round(inverse)) < 1e-9) return `1/${Math.round(inverse)}`;
  return String(Math.round(value * 100) / 100);
}

function indexTab(data, { go, refresh }) {
  const read = data.indexSystem;
  if (!read) return h("p", {}, t("none"));
  const system = read.index_system;
  const groups = groupsOf(system);
  const [groupId, , members] = groups.find(([id]) => id === data.group) || groups[0];
  const n = members.length;
  const cells = [];
  const result = h("p", { id: "ahp-cr", "aria-live": "polite" });
  const weightCells = members.map(() => h("td", { class: "num" }));
  const save = h("button", { id: "ahp-save" }, t("ahp_save"));
  const upper = () => {
    const values = Array.from({ length: n }, () => new Array(n).fill(1));
    for (const { i, j, element } of cells) values[i][j] = parseJudgement(element.value);
    return values;
  };
  const recompute = () => {
    const values = upper();
    const valid = cells.every(({ i, j }) => Number.isFinite(values[i][j]));
    for (const { i, j, mirror } of cells) mirror.textContent = Number.isFinite(values[i][j]) ? judgementText(1 / values[i][j]) : "?";
    if (!valid || n < 1) {
      result.replaceChildren("?");
      save.disabled = true;
      return;
    }
    const outcome = ahp(reciprocal(n, values));
    outcome.weights.forEach((w, i) => { weightCells[i].textContent = number(w, 3); });
    result.replaceChildren(
      h("span", { dataset: { cr: outcome.cr.toFixed(4) } }, t("ahp_result", { lambda: number(outcome.lambdaMax, 3), ci: number(outcome.ci, 3), cr: number(outcome.cr, 3) })),
      " ", h("span", { class: outcome.consistent ? "cr-ok" : "cr-bad" }, outcome.consistent ? t("ahp_ok") : t("ahp_bad")));
    save.disabled = !outcome.consistent;
  };
  const rows = members.map((row, i) => h("tr", {}, h("th", { scope: "row" }, row.name),
    members.map((column, j) => {
      if (i === j) return h("td", {}, "1");
      if (i < j) {
        const element = h("input", { id: `ahp-${i}-${j}`, "aria-label": `${row.name} : ${column.name}`, value: judgementText(row.weight / column.weight), inputmode: "decimal", oninput: recompute });
        const cell = { i, j, element };
        cells.push(cell);
        return h("td", {}, element);
      }
      const mirror = h("span", { id: `ahp-${i}-${j}` });
      const owner = cells.find((c) => c.i === j && c.j === i);
      if (owner) owner.mirror = mirror;
      return h("td", { class: "hint" }, mirror);
    }),
    weightCells[i]));
  save.addEventListener("click", async () => {
    const values = reciprocal(n, upper());
    const body = { name: system.name, version: system.version, indicators: draftOf(system.indicators, groupId, values) };
    if (groupId === "top") body.ahp = values;
    await call(api("/index-systems/current", { method: "PUT", body }), refresh);
  });
  const section = h("div", {},
    h("p", {}, t("index_version", { name: system.name, version: system.version, min: read.min_samples })),
    h("div", { class: "controls" }, h("label", { class: "inline", for: "ahp-group" }, t("ahp_group"),
      h("select", { id: "ahp-group", onchange: (e) => go("admin", "", { tab: "index", group: e.target.value }) }, groups.map(([id, name]) => h("option", { value: id, selected: id === groupId }, name))))),
    h("p", { class: "hint" }, t("ahp_help")),
    // Columns by id keep the matrix narrow enough for a phone; rows carry the full names.
    table(["", ...members.map((m) => m.id), t("weight")], rows, { class: "ahp-matrix", id: "ahp-matrix" }),
    result, save,
    read.consistency.length ? h("p", { class: "hint" }, read.consistency.map((c) => `${c.group}: CR ${number(c.consistency_ratio, 3)}`).join(" · ")) : null);
  queueMicrotask(recompute);
  return section;
}

// --- rules and try against history ---------------------------------------------------------------------------

function ruleSummary(rule) {
  if (rule.kind === "threshold") return `${t(rule.comparison)} ${number(rule.threshold)}${rule.clear_bound != null ? ` (${t("clear_bound", { value: number(rule.clear_bound) })})` : ""}`;
  if (rule.kind === "baseline") return `${rule.direction} ${rule.change} ${rule.change_unit}`;
  if (rule.kind === "spc") return `${rule.chart || "shewhart"} ${rule.sides || ""}`;
  return rule.kind;
}

function rulesTab(data, { refresh, tree }) {
  const indicators = indicatorOptions(data.indexSystem);
  const units = [...tree.byId.values()];
  const rows = data.rules.map((rule) => h("tr", { dataset: { rule: rule.id } },
    h("th", { scope: "row" }, rule.name), h("td", {}, rule.kind), h("td", {}, rule.indicator), h("td", {}, ruleSummary(rule)),
    h("td", {}, levelBadge(rule.level)), h("td", {}, rule.scope), h("td", {}, rule.enabled ? t("yes") : t("no"))));
  const form = h("form", { class: "inline-form", id: "new-rule" },
    field("name", t("name"), input("name", { required: true })),
    field("indicator", t("indicator"), choice("indicator", indicators, "csat")),
    field("comparison", t("comparison"), choice("comparison", [["below", t("below")], ["above", t("above")]], "below")),
    field("threshold", t("threshold_label"), input("threshold", { type: "number", step: "any", required: true })),
    field("clear_bound", t("clear_bound", { value: "" }), input("clear_bound", { type: "number", step: "any" })),
    field("min_samples", t("min_samples"), input("min_samples", { type: "number", value: "5", min: "1" })),
    field("level", t("level"), choice("level", LEVELS.map((l) => [l, t(`levels.${l}`)]), "yellow")),
    field("scope", t("scope"), input("scope", { value: "*" })),
    h("button", { type: "submit" }, t("create")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const v = formValues(form);
    const body = { kind: "threshold", name: v.name, indicator: v.indicator, comparison: v.comparison, threshold: Number(v.threshold), min_samples: Number(v.min_samples), level: v.level, scope: v.scope || "*" };
    if (v.clear_bound !== "") body.clear_bound = Number(v.clear_bound);
    await call(api("/rules", { method: "POST", body }), refresh);
  });
  const tryResult = h("p", { id: "try-result", "aria-live": "polite" });
  const tryChart = h("div", { class: "chart", id: "try-chart" });
  const tryForm = h("form", { class: "inline-form", id: "try-rule" },
    field("try_rule", t("rules"), choice("rule_id", data.rules.map((r) => [r.id, r.name]), data.rules[0]?.id)),
    field("try_unit", t("try_unit"), choice("unit_id", units.map((u) => [u.id, `${u.name} (${u.path})`]), units[0]?.id)),
    h("button", { type: "submit" }, t("try_rule")));
  tryForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const v = formValues(tryForm);
    const rule = data.rules.find((r) => r.id === v.rule_id);
    if (!rule) return;
    try {
      const outcome = await api(`/rules/${rule.id}/try`, { method: "POST", body: { unit_id: v.unit_id } });
      tryResult.replaceChildren(t("try_result", { points: outcome.points, transitions: outcome.transitions.length, firing: outcome.firing_at_end ? t("yes") : t("no") }));
      const points = await series(v.unit_id, rule.indicator, ["hour", "day", "week", "month"].includes(rule.period) ? rule.period : "hour");
      const marks = outcome.transitions.map((tr) => ({ at: tr.at, value: tr.value, colour: tr.firing ? LEVEL_COLOURS[rule.level] : "#1b6e2b", label: `${tr.firing ? "▲" : "✓"} ${tr.reason}` }));
      const instance = chart(tryChart);
      instance.setOption(trendOption({ title: `${rule.name} · ${v.unit_id}`, points, lines: ruleLines(rule, points), marks }));
    } catch (error) {
      tryResult.replaceChildren(t("error", { detail: error.message }));
    }
  });
  return h("div", {},
    table([t("name"), t("kind"), t("indicator"), t("condition"), t("level"), t("scope"), t("enabled")], rows),
    h("h2", {}, t("new_rule")), form,
    h("h2", {}, t("try_rule")), tryForm, tryResult, tryChart);
}

// --- silences, responsibilities, channels, risks ------------------------------------------------------------

function silencesTab(data, { refresh }) {
  const rows = data.silences.map((s) => h("tr", {},
    h("td", {}, s.matchers.scope, s.matchers.rule_ids.length ? ` · ${s.matchers.rule_ids.join(", ")}` : "", s.matchers.levels.length ? ` · ${s.matchers.levels.map((l) => t(`levels.${l}`)).join(", ")}` : ""),
    h("td", {}, dateTime(s.starts_at)), h("td", {}, dateTime(s.ends_at)), h("td", {}, s.comment),
    h("td", {}, s.expired ? t("no") : h("button", { class: "secondary", onclick: () => call(api(`/silences/${s.id}`, { method: "DELETE" }), refresh) }, t("expire")))));
  const form = h("form", { class: "inline-form" },
    field("scope", t("scope"), input("scope", { value: "*", required: true })),
    field("hours", t("silence_hours"), input("hours", { type: "number", value: "4", min: "0.1", step: "any" })),
    field("comment", t("comment"), input("comment")),
    h("button", { type: "submit" }, t("create")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const v = formValues(form);
    const now = new Date();
    await call(api("/silences", { method: "POST", body: { matchers: { scope: v.scope }, starts_at: now.toISOString(), ends_at: new Date(now.getTime() + Number(v.hours) * 3600000).toISOString(), comment: v.comment } }), refresh);
  });
  return h("div", {}, table([t("scope"), t("started"), t("ends"), t("comment"), ""], rows), form);
}

function responsibilitiesTab(data, { refresh }) {
  const rows = data.responsibilities.map((r) => h("tr", {},
    h("td", {}, r.scope), h("td", {}, r.indicators.join(", ") || "*"), h("td", {}, r.levels.map((l) => t(`levels.${l}`)).join(", ") || "*"),
    h("td", {}, r.responsible), h("td", {}, r.accountable || "–"),
    h("td", {}, h("button", { class: "secondary", onclick: () => call(api(`/responsibilities/${r.id}`, { method: "DELETE" }), refresh) }, "✕"))));
  const form = h("form", { class: "inline-form" },
    field("scope", t("scope"), input("scope", { value: "*", required: true })),
    field("responsible", t("responsible"), input("responsible", { required: true })),
    field("accountable", t("accountable"), input("accountable")),
    h("button", { type: "submit" }, t("create")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const v = formValues(form);
    const body = { scope: v.scope, responsible: v.responsible };
    if (v.accountable) body.accountable = v.accountable;
    await call(api("/responsibilities", { method: "POST", body }), refresh);
  });
  return h("div", {}, table([t("scope"), t("indicator"), t("level"), t("responsible"), t("accountable"), ""], rows), form);
}

function channelsTab(data) {
  const rows = data.channels.map((c) => {
    const outcome = h("span", { class: "hint", "aria-live": "polite", id: `test-${c.id}` });
    return h("tr", {},
      h("th", { scope: "row" }, c.name), h("td", {}, c.config.type || ""), h("td", {}, c.scope), h("td", {}, c.levels.map((l) => t(`levels.${l}`)).join(", ")),
      h("td", {}, c.enabled ? t("yes") : t("no")),
      h("td", {}, h("button", { class: "secondary", onclick: async () => {
        try {
          const attempt = await api(`/channels/${c.id}/test`, { method: "POST" });
          const result = attempt.ok ? `${t("test_ok")} (HTTP ${attempt.status_code ?? "–"})` : `${t("test_failed")}: ${attempt.error || `HTTP ${attempt.status_code}`}`;
          outcome.textContent = t("test_result", { result });
          outcome.dataset.ok = String(Boolean(attempt.ok));
        } catch (error) {
          outcome.textContent = t("test_result", { result: error.message });
        }
      } }, t("test_send")), " ", outcome));
  });
  return h("div", {}, table([t("name"), t("kind"), t("scope"), t("level"), t("enabled"), ""], rows));
}

function risksTab(data, { refresh }) {
  const rows = data.risks.map((r) => h("tr", {},
    h("th", { scope: "row" }, r.title), h("td", {}, r.scope), h("td", { class: "num" }, `${r.likelihood} × ${r.impact} = ${r.score}`), h("td", {}, r.rating),
    h("td", {}, r.owner), h("td", {}, r.playbook.map((step) => `${step.title} (${step.assignee}, ${number(step.due_in_hours)} h)`).join("; ") || "–"), h("td", { class: "num" }, r.firings)));
  const form = h("form", { class: "inline-form" },
    field("title", t("name"), input("title", { required: true })),
    field("scope", t("scope"), input("scope", { value: "*" })),
    field("likelihood", t("likelihood"), choice("likelihood", [1, 2, 3, 4, 5].map((x) => [String(x), String(x)]), "3")),
    field("impact", t("impact"), choice("impact", [1, 2, 3, 4, 5].map((x) => [String(x), String(x)]), "3")),
    field("owner", t("owner"), input("owner", { required: true })),
    h("button", { type: "submit" }, t("create")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const v = formValues(form);
    await call(api("/risks", { method: "POST", body: { title: v.title, scope: v.scope || "*", likelihood: Number(v.likelihood), impact: Number(v.impact), owner: v.owner } }), refresh);
  });
  return h("div", {}, table([t("name"), t("scope"), t("score"), t("rating"), t("owner"), t("playbook"), "#"], rows), form);
}

const DRAW = { index: indexTab, rules: rulesTab, silences: silencesTab, responsibilities: responsibilitiesTab, channels: channelsTab, risks: risksTab };

/** Draw the page. */
export function draw(data, context) {
  return h("section", { class: "admin-page" },
    h("h1", {}, t("admin")),
    h("div", { class: "tabs", role: "tablist" }, TABS.map((tab) => h("button", { role: "tab", id: `tab-${tab}`, "aria-selected": String(tab === data.tab), onclick: () => context.go("admin", "", { tab }) }, t(`tab_${tab}`)))),
    h("div", { role: "tabpanel", "aria-labelledby": `tab-${data.tab}` }, DRAW[data.tab](data, { ...context, tree: data.tree })));
}
