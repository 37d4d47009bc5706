// Unit page: every indicator with its interval, a trend per indicator with thresholds and alerts, children
// ranked, recent comments with sentiment and keywords, open alerts and actions.
import { api, listAll, orNull } from "../api.js";
import { chart } from "../charts.js";
import { dateTime, number, t } from "../i18n.js";
import { LEVEL_ORDER, bandBadge, bandOf, h, levelBadge, select } from "../ui.js";
import { alertMarks, covers, ruleLines, series, trendOption } from "../trend.js";
import { PERIODS, indicatorOptions, openAlertLevels, rankingTable } from "./map.js";

const GRANULARITIES = ["hour", "day", "week", "month"];
const OPEN_STATES = ["open", "in_progress", "done", "reopened"];
const MAX_TRENDS = 8;

/** The page's data. */
export async function load({ arg, params, tree }) {
  const unit = tree.byId.get(arg) || (await api(`/units/${encodeURIComponent(arg)}`));
  const period = PERIODS.includes(params.period) ? params.period : "all";
  const by = GRANULARITIES.includes(params.by) ? params.by : "day";
  const id = encodeURIComponent(unit.id);
  const weekAgo = new Date(Date.now() - 7 * 86400000).toISOString();
  const [score, indexSystem, rules, alerts, actions, comments, ranking, alertLevels] = await Promise.all([
    orNull(api(`/scores/${id}`, { params: { period } })),
    orNull(api("/index-systems/current")),
    listAll("/rules", {}, 500),
    listAll("/alerts", { unit: unit.path, since: new Date(Date.now() - 30 * 86400000).toISOString() }, 500),
    listAll("/actions", { unit_id: unit.id }, 500),
    // The week's commented feedback (a page may be partial: follow the cursor), newest shown first.
    listAll("/feedback", { unit_id: unit.id, has_comment: true, from: weekAgo }, 500),
    tree.children.has(unit.id) ? api(`/scores/${id}/children`, { params: { indicator: "composite", period } }) : null,
    openAlertLevels(),
  ]);
  const applicable = rules.filter((r) => r.enabled && covers(r.scope, unit.path));
  const watched = new Set(applicable.map((r) => r.indicator));
  const indicators = Object.entries(score ? score.indicators : {})
    .filter(([name, figure]) => name === "composite" || figure.sample_size > 0 || watched.has(name))
    .map(([name]) => name)
    .slice(0, MAX_TRENDS);
  const trends = await Promise.all(indicators.map(async (indicator) => ({ indicator, points: await series(unit.id, indicator, by) })));
  return {
    unit, period, by, score, indicators: indicatorOptions(indexSystem), rules: applicable, trends,
    alerts: alerts.filter((a) => a.unit_id === unit.id),
    actions: actions.filter((a) => OPEN_STATES.includes(a.status)),
    keywords: keywordCounts(comments),
    comments: [...comments].sort((a, b) => String(b.occurred_at).localeCompare(String(a.occurred_at))).slice(0, 20),
    children: ranking ? ranking.children.map((c) => ({ id: c.unit_id, name: c.name, rank: c.rank, figure: c, hasChildren: tree.children.has(c.unit_id) })) : [],
    alertLevels,
  };
}

function nameOf(data, indicator) {
  return (data.indicators.find(([id]) => id === indicator) || [indicator, indicator])[1].replace(/^(· )+/, "");
}

function figureCard(data, indicator, figure) {
  const band = bandOf(figure);
  return h("div", { class: "card figure", dataset: { indicator, band } },
    h("div", {}, h("strong", {}, nameOf(data, indicator))),
    h("div", { class: "big" }, number(figure.value)),
    h("div", {}, bandBadge(band), " ", t("score"), " ", number(figure.score, 0)),
    h("div", { class: "small" }, `${t("interval")}: ${figure.ci_low == null ? "–" : `${number(figure.ci_low)} – ${number(figure.ci_high)}`}`),
    h("div", { class: "small" }, `${t("samples")}: ${figure.sample_size}${figure.insufficient ? t("too_few") : ""}`));
}

function keywordCounts(comments) {
  const counts = new Map();
  for (const c of comments) for (const k of c.keywords || []) counts.set(k, (counts.get(k) || 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]).slice(0, 12);
}

function alertRow(alert) {
  return h("li", { class: `item level-border-${alert.level}`, dataset: { alert: alert.id } },
    levelBadge(alert.level), " ", h("span", { class: "badge state" }, t(`statuses.${alert.status}`)), " ",
    h("strong", {}, alert.rule_name), " · ", alert.indicator, " ", number(alert.value), " / ", number(alert.threshold),
    h("div", { class: "meta" }, `${t("started")} ${dateTime(alert.started_at)}`));
}

function actionRow(action) {
  return h("li", { class: `item level-border-${action.level}` },
    h("a", { href: `#/actions?open=${encodeURIComponent(action.id)}` }, action.title), " ",
    h("span", { class: "badge state" }, t(`states.${action.status}`)), action.overdue ? [" ", h("span", { class: "badge overdue" }, t("overdue"))] : null,
    h("div", { class: "meta" }, `${action.assignee || "–"} · ${t("due", { date: dateTime(action.due_at) })}`));
}

/** Draw the page. */
export function draw(data, { go }) {
  const { unit } = data;
  const params = { period: data.period, by: data.by };
  const open = data.alerts.filter((a) => a.status !== "resolved").sort((a, b) => LEVEL_ORDER.indexOf(a.level) - LEVEL_ORDER.indexOf(b.level));
  const { keywords } = data;
  return h("section", { class: "unit-page" },
    h("nav", { class: "crumbs" }, h("a", { href: `#/map?unit=${encodeURIComponent(unit.parent_id || "")}` }, t("nav_map")), " › ", unit.path),
    h("h1", {}, `${t("unit_page")}: ${unit.name}`),
    h("div", { class: "controls" },
      select("period", t("period"), PERIODS.map((p) => [p, t(`periods.${p}`)]), data.period, (value) => go("unit", unit.id, { ...params, period: value })),
      select("granularity", t("granularity"), GRANULARITIES.map((g) => [g, t(`granularities.${g}`)]), data.by, (value) => go("unit", unit.id, { ...params, by: value }))),
    h("h2", {}, t("indicators")),
    data.score ? h("div", { class: "cards", id: "figures" }, Object.entries(data.score.indicators).filter(([name, f]) => name === "composite" || f.sample_size > 0).map(([name, f]) => figureCard(data, name, f))) : h("p", {}, t("bands.none")),
    h("h2", {}, t("open_alerts")),
    open.length ? h("ul", { class: "plain", id: "unit-alerts" }, open.map(alertRow)) : h("p", {}, t("none")),
    h("h2", {}, t("trends")),
    h("div", { class: "trend-grid" }, data.trends.map((trend) => h("div", { class: "chart trend", id: `trend-${trend.indicator}`, dataset: { indicator: trend.indicator }, role: "img", "aria-label": `${t("trends")}: ${nameOf(data, trend.indicator)}` }))),
    h("div", { class: "two" },
      h("div", {}, h("h2", {}, t("ranking")), rankingTable(data.children, data, go, null)),
      h("div", {}, h("h2", {}, t("open_actions")), data.actions.length ? h("ul", { class: "plain" }, data.actions.map(actionRow)) : h("p", {}, t("none")))),
    h("div", { class: "two" },
      h("div", {}, h("h2", {}, t("comments")),
        data.comments.length ? data.comments.map((c) => h("div", { class: "comment" },
          h("div", {}, c.comment),
          h("div", { class: "meta hint" }, dateTime(c.occurred_at), " · ", t("sentiment"), " ", number(c.sentiment, 2), c.polarity ? ` (${t(`polarity.${c.polarity}`)})` : "", c.keywords?.length ? ` · ${c.keywords.join("、")}` : ""))) : h("p", {}, t("no_comments"))),
      h("div", {}, h("h2", {}, t("keywords")), keywords.length ? h("div", { class: "chart", id: "keywords", role: "img", "aria-label": keywords.map(([k, n]) => `${k} ${n}`).join(", ") }) : h("p", {}, t("none")))));
}

/** Draw the charts once their elements are in the page. */
export function afterDraw(data) {
  for (const trend of data.trends) {
    const element = document.getElementById(`trend-${trend.indicator}`);
    const lines = data.rules.filter((r) => r.indicator === trend.indicator).flatMap((r) => ruleLines(r, trend.points));
    const marks = alertMarks(data.alerts.filter((a) => a.indicator === trend.indicator));
    chart(element).setOption(trendOption({ title: nameOf(data, trend.indicator), points: trend.points, lines, marks }));
  }
  const keywordElement = document.getElementById("keywords");
  if (keywordElement) {
    const keywords = [...data.keywords].reverse();
    chart(keywordElement).setOption({
      animation: false,
      grid: { left: 90, right: 24, top: 8, bottom: 24 },
      xAxis: { type: "value", minInterval: 1 },
      yAxis: { type: "category", data: keywords.map(([k]) => k) },
      series: [{ type: "bar", data: keywords.map(([, n]) => n), itemStyle: { color: "#5470c6" }, label: { show: true, position: "right" } }],
    });
  }
}
