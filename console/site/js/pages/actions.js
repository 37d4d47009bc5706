// Actions board: by state and owner, overdue first; each with history, root cause, verification and the
// indicator's curve since it started; moved through its states from the page.
import { ApiError, api, listAll } from "../api.js";
import { chart } from "../charts.js";
import { dateTime, t } from "../i18n.js";
import { askDialog, h, levelBadge, notify, select } from "../ui.js";
import { series, trendOption } from "../trend.js";

const COLUMNS = ["open", "in_progress", "reopened", "done", "verified", "cancelled"];
// As services/improvement/domain/lifecycle.py allows; the service has the last word (409 names what it allows).
const NEXT = { open: ["in_progress", "cancelled"], in_progress: ["done", "cancelled"], done: ["verified", "reopened"], reopened: ["in_progress", "cancelled"], verified: [], cancelled: [] };
const NEEDS_REASON = ["cancelled", "reopened"];
const CATEGORIES = ["people", "machine", "material", "method", "environment", "measurement"];
const CATEGORY_NAMES = { people: "人 people", machine: "机 machine", material: "料 material", method: "法 method", environment: "环 environment", measurement: "测 measurement" };

/** The page's data: the actions the caller may see and, when one is opened, its indicator's curve. */
export async function load({ params }) {
  const actions = await listAll("/actions", {}, 1000);
  const opened = params.open ? actions.find((a) => a.id === params.open) || (await api(`/actions/${encodeURIComponent(params.open)}`)) : null;
  let curve = null;
  if (opened && opened.indicator) {
    const start = new Date(Date.parse(opened.created_at) - 86400000).toISOString();
    curve = await series(opened.unit_id, opened.indicator, "hour", start);
  }
  return { actions, opened, curve, owner: params.owner || "" };
}

function ordered(actions) {
  return [...actions].sort((a, b) => Number(b.overdue) - Number(a.overdue) || String(a.due_at).localeCompare(String(b.due_at)));
}

async function move(action, target, refresh) {
  let reason;
  if (NEEDS_REASON.includes(target)) {
    const values = await askDialog(t("move_to", { state: t(`states.${target}`) }), [{ name: "reason", label: t("reason_needed"), multiline: true, required: true }]);
    if (!values) return;
    reason = values.reason;
  }
  try {
    await api(`/actions/${action.id}/transitions`, { method: "POST", body: reason ? { to: target, reason } : { to: target } });
    notify(t("saved"));
  } catch (error) {
    notify(error instanceof ApiError && error.status === 403 ? t("forbidden") : t("error", { detail: error.message }), "error");
  }
  refresh();
}

async function rootCause(action, refresh) {
  const current = action.root_cause || {};
  const values = await askDialog(t("root_cause"), [
    { name: "category", label: t("root_cause_category"), options: CATEGORIES.map((c) => [c, CATEGORY_NAMES[c]]), value: current.category || "method" },
    { name: "description", label: t("root_cause_description"), multiline: true, required: true, value: current.description || "" },
  ], { confirm: t("save") });
  if (!values) return;
  try {
    await api(`/actions/${action.id}/root-cause`, { method: "PUT", body: values });
    notify(t("saved"));
  } catch (error) {
    notify(t("error", { detail: error.message }), "error");
  }
  refresh();
}

function transitions(action, refresh) {
  const targets = NEXT[action.status].filter((s) => !(s === "verified" && action.indicator));
  return targets.map((target) => h("button", { class: target === "cancelled" || target === "reopened" ? "secondary" : "", dataset: { to: target },
    onclick: () => move(action, target, refresh) }, t("move_to", { state: t(`states.${target}`) })));
}

function card(action, go, owner) {
  return h("article", { class: `item level-border-${action.level}`, id: `action-${action.id}`, dataset: { action: action.id, status: action.status } },
    h("div", {}, levelBadge(action.level), action.overdue ? [" ", h("span", { class: "badge overdue" }, `⏰ ${t("overdue")}`)] : null),
    h("div", {}, h("a", { href: "#", onclick: (e) => { e.preventDefault(); go("actions", "", { owner, open: action.id }); } }, action.title)),
    h("div", { class: "meta" }, `${action.unit_path} · ${t("owner")}: ${action.assignee || "–"}`),
    h("div", { class: "meta" }, t("due", { date: dateTime(action.due_at) })));
}

function verificationText(action) {
  const v = action.verification;
  if (!v) return t("not_verified");
  return [v.outcome, v.reason, v.streak != null ? `streak ${v.streak}/${v.periods}` : null, v.window_ends ? `→ ${dateTime(v.window_ends)}` : null].filter(Boolean).join(" · ");
}

function detail(action, { refresh, go, owner }) {
  const history = [...(action.history || [])].reverse();
  return h("section", { class: "card", id: "action-detail", "aria-label": t("details") },
    h("div", { class: "controls" }, h("h2", {}, action.title), h("button", { class: "secondary", onclick: () => go("actions", "", { owner }) }, t("close"))),
    h("p", {}, levelBadge(action.level), " ", h("span", { class: "badge state", id: "action-state" }, t(`states.${action.status}`)), " ",
      h("a", { href: `#/unit/${encodeURIComponent(action.unit_id)}` }, action.unit_path), ` · ${t("owner")}: ${action.assignee || "–"} · ${t("due", { date: dateTime(action.due_at) })}`),
    action.description ? h("p", {}, action.description) : null,
    h("div", { class: "buttons" }, transitions(action, refresh), h("button", { class: "secondary", onclick: () => rootCause(action, refresh) }, t("root_cause"))),
    h("div", { class: "two" },
      h("div", {},
        h("h3", {}, t("root_cause")), h("p", { id: "root-cause" }, action.root_cause ? `${CATEGORY_NAMES[action.root_cause.category] || action.root_cause.category}: ${action.root_cause.description}` : "–"),
        h("h3", {}, t("verification")), h("p", { id: "verification" }, verificationText(action)),
        h("h3", {}, t("history")),
        h("ol", { class: "history" }, history.map((entry) => h("li", {}, `${dateTime(entry.at)} · ${entry.by} · ${entry.what}`, entry.to ? ` → ${entry.to}` : "", entry.why || entry.reason ? ` (${entry.why || entry.reason})` : "")))),
      action.indicator ? h("div", { class: "chart", id: "action-curve", role: "img", "aria-label": t("curve_since", { indicator: action.indicator }) }) : null));
}

/** Draw the page. */
export function draw(data, { refresh, go }) {
  const owners = [...new Set(data.actions.map((a) => a.assignee).filter(Boolean))].sort();
  const shown = data.actions.filter((a) => !data.owner || a.assignee === data.owner);
  return h("section", { class: "actions-page" },
    h("h1", {}, t("actions_board")),
    h("div", { class: "controls" }, select("owner", t("owner"), [["", t("all_owners")], ...owners.map((o) => [o, o])], data.owner, (value) => go("actions", "", { owner: value }))),
    data.opened ? detail(data.opened, { refresh, go, owner: data.owner }) : null,
    h("div", { class: "board" }, COLUMNS.map((state) => {
      const items = ordered(shown.filter((a) => a.status === state));
      return h("section", { class: "column", id: `column-${state}`, "aria-label": t(`states.${state}`) },
        h("h2", {}, `${t(`states.${state}`)} (${items.length})`),
        items.length ? items.map((a) => card(a, go, data.owner)) : h("p", { class: "hint" }, t("none")));
    })));
}

/** Draw the opened action's curve since it started. */
export function afterDraw(data) {
  const element = document.getElementById("action-curve");
  if (!element || !data.opened) return;
  const action = data.opened;
  const marks = [{ at: action.created_at, value: null, colour: "#555", label: t("states.open") }];
  if (action.done_at) marks.push({ at: action.done_at, value: null, colour: "#1b6e2b", label: t("states.done") });
  if (action.verified_at) marks.push({ at: action.verified_at, value: null, colour: "#2166ac", label: t("states.verified") });
  chart(element).setOption(trendOption({ title: t("curve_since", { indicator: action.indicator }), points: data.curve || [], marks }));
}
