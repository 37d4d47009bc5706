// Alerts board: firing, acknowledged and resolved alerts by level, grouped as the alerts service groups them,
// with acknowledge-with-comment, silence and resolve.
import { ApiError, api, listAll } from "../api.js";
import { dateTime, number, t } from "../i18n.js";
import { LEVEL_ORDER, askDialog, h, levelBadge, notify, select } from "../ui.js";

const STATUSES = ["firing", "acknowledged", "resolved"];

/** The page's data: open alerts, the last week's resolved ones, and counts. */
export async function load({ params }) {
  const weekAgo = new Date(Date.now() - 7 * 86400000).toISOString();
  const [firing, acknowledged, resolved] = await Promise.all([
    listAll("/alerts", { status: "firing" }, 500),
    listAll("/alerts", { status: "acknowledged" }, 500),
    listAll("/alerts", { status: "resolved", since: weekAgo }, 500),
  ]);
  const level = LEVEL_ORDER.includes(params.level) ? params.level : "";
  const only = (alerts) => (level ? alerts.filter((a) => a.level === level) : alerts);
  return { level, alerts: { firing: only(firing), acknowledged: only(acknowledged), resolved: only(resolved) }, all: [...firing, ...acknowledged] };
}

function severity(a, b) {
  return LEVEL_ORDER.indexOf(a.level) - LEVEL_ORDER.indexOf(b.level) || String(b.started_at).localeCompare(String(a.started_at));
}

async function act(promise, done) {
  try {
    await promise;
    notify(t("saved"));
  } catch (error) {
    notify(error instanceof ApiError && error.status === 403 ? t("forbidden") : t("error", { detail: error.message }), "error");
  }
  done();
}

async function acknowledge(alert, refresh) {
  const values = await askDialog(t("acknowledge_title"), [{ name: "comment", label: t("comment"), multiline: true, required: true }], { confirm: t("acknowledge") });
  if (values) await act(api(`/alerts/${alert.id}/acknowledge`, { method: "POST", body: { comment: values.comment } }), refresh);
}

async function silence(alert, refresh) {
  const values = await askDialog(t("silence_title"), [
    { name: "hours", label: t("silence_hours"), type: "number", value: "4", required: true },
    { name: "comment", label: t("comment"), multiline: true },
  ], { confirm: t("silence") });
  if (!values) return;
  const now = new Date();
  const ends = new Date(now.getTime() + Math.max(Number(values.hours) || 1, 0.1) * 3600000);
  const body = { matchers: { scope: alert.unit_path, rule_ids: [alert.rule_id] }, starts_at: now.toISOString(), ends_at: ends.toISOString(), comment: values.comment || "" };
  await act(api("/silences", { method: "POST", body }), refresh);
}

async function resolve(alert, refresh) {
  const values = await askDialog(t("resolve"), [{ name: "comment", label: t("comment"), multiline: true }], { confirm: t("resolve") });
  if (values) await act(api(`/alerts/${alert.id}/resolve`, { method: "POST", body: { comment: values.comment || "" } }), refresh);
}

function card(alert, refresh) {
  const open = alert.status !== "resolved";
  return h("article", { class: `item level-border-${alert.level}`, id: `alert-${alert.id}`, dataset: { alert: alert.id, status: alert.status, unit: alert.unit_id } },
    h("div", {}, levelBadge(alert.level), " ", h("span", { class: "badge state" }, t(`statuses.${alert.status}`)), alert.suppressed ? [" ", h("span", { class: "badge state" }, alert.suppressed)] : null),
    h("div", {}, h("a", { href: `#/unit/${encodeURIComponent(alert.unit_id)}` }, alert.unit_path), " · ", h("strong", {}, alert.rule_name)),
    h("div", {}, `${alert.indicator}: ${number(alert.value)} · ${t("threshold_label")} ${alert.comparison ? t(alert.comparison) : ""} ${number(alert.threshold)} · ${t("samples")} ${alert.sample_size}`),
    h("div", { class: "meta" }, `${t("started")} ${dateTime(alert.started_at)}`),
    alert.acknowledged_by ? h("div", { class: "meta" }, t("acknowledged_by", { by: alert.acknowledged_by, comment: alert.comment || "" })) : null,
    open ? h("div", { class: "buttons" },
      alert.status === "firing" ? h("button", { onclick: () => acknowledge(alert, refresh), "aria-label": `${t("acknowledge")}: ${alert.unit_path} ${alert.rule_name}` }, t("acknowledge")) : null,
      h("button", { class: "secondary", onclick: () => silence(alert, refresh) }, t("silence")),
      h("button", { class: "secondary", onclick: () => resolve(alert, refresh) }, t("resolve"))) : null);
}

function grouped(alerts, refresh) {
  const groups = new Map();
  for (const alert of [...alerts].sort(severity)) {
    if (!groups.has(alert.group_id)) groups.set(alert.group_id, []);
    groups.get(alert.group_id).push(alert);
  }
  return [...groups].map(([groupId, members]) => members.length === 1
    ? card(members[0], refresh)
    : h("section", { class: "group", dataset: { group: groupId } },
      h("h3", {}, `${t("group")}: ${members[0].rule_name} · ${members.length}`), members.map((a) => card(a, refresh))));
}

/** Draw the page. */
export function draw(data, { refresh, go }) {
  const counts = LEVEL_ORDER.map((level) => [level, data.all.filter((a) => a.level === level).length]);
  return h("section", { class: "alerts-page" },
    h("h1", {}, t("alerts_board")),
    h("div", { class: "counts", "aria-label": t("by_level") },
      select("level", t("level"), [["", t("all_levels")], ...LEVEL_ORDER.map((l) => [l, t(`levels.${l}`)])], data.level, (value) => go("alerts", "", { level: value })),
      counts.map(([level, n]) => h("span", {}, levelBadge(level), ` ${n}`))),
    h("div", { class: "board" }, STATUSES.map((status) => h("section", { class: "column", id: `column-${status}`, "aria-label": t(`statuses.${status}`) },
      h("h2", {}, `${t(`statuses.${status}`)} (${data.alerts[status].length})`),
      data.alerts[status].length ? grouped(data.alerts[status], refresh) : h("p", { class: "hint" }, t("none"))))));
}
