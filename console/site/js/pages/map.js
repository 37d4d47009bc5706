// Tree heat map: the units as a treemap coloured by a score for a period, and the selected unit's children ranked.
import { api, listAll, orNull } from "../api.js";
import { chart } from "../charts.js";
import { number, t } from "../i18n.js";
import { BAND_COLOURS, LEVEL_ORDER, bandBadge, bandOf, h, levelBadge, select, table } from "../ui.js";

export const PERIODS = ["all", "hour", "day", "week", "month", "rolling_24h", "rolling_7d", "rolling_30d"];
const HATCH = { symbol: "rect", dashArrayX: [1, 0], dashArrayY: [3, 5], rotation: Math.PI / 4, color: "rgba(60,60,60,0.35)" };

/** The indicators of an index system as [id, name] pairs, composite first. */
export function indicatorOptions(indexSystem) {
  const options = [["composite", t("composite")]];
  const walk = (indicators, depth) => {
    for (const indicator of indicators) {
      options.push([indicator.id, `${"· ".repeat(depth)}${indicator.name}`]);
      if (indicator.children) walk(indicator.children, depth + 1);
    }
  };
  walk(indexSystem?.index_system?.indicators || [], 0);
  return options;
}

/** The highest open alert level per unit id. */
export async function openAlertLevels() {
  const open = [...(await listAll("/alerts", { status: "firing" }, 500)), ...(await listAll("/alerts", { status: "acknowledged" }, 500))];
  const levels = {};
  for (const alert of open) {
    const known = levels[alert.unit_id];
    if (!known || LEVEL_ORDER.indexOf(alert.level) < LEVEL_ORDER.indexOf(known)) levels[alert.unit_id] = alert.level;
  }
  return levels;
}

async function childrenOf(unitId, tree, indicator, period, depth) {
  if (!tree.children.has(unitId)) return [];
  const ranking = await api(`/scores/${encodeURIComponent(unitId)}/children`, { params: { indicator, period } });
  return Promise.all(ranking.children.map(async (child) => ({
    id: child.unit_id,
    name: child.name,
    rank: child.rank,
    figure: child,
    hasChildren: tree.children.has(child.unit_id),
    children: depth > 1 ? await childrenOf(child.unit_id, tree, indicator, period, depth - 1) : [],
  })));
}

/** The page's data: figures of the shown subtree (two levels under the root) and open alerts. */
export async function load({ params, tree }) {
  const indicator = params.indicator || "composite";
  const period = PERIODS.includes(params.period) ? params.period : "all";
  const rootId = params.unit && tree.byId.has(params.unit) ? params.unit : null;
  const top = rootId ? [tree.byId.get(rootId)] : tree.roots;
  const [indexSystem, alertLevels, nodes] = await Promise.all([
    orNull(api("/index-systems/current")),
    openAlertLevels(),
    Promise.all(top.map(async (unit) => {
      const score = await orNull(api(`/scores/${encodeURIComponent(unit.id)}`, { params: { period } }));
      return {
        id: unit.id,
        name: unit.name,
        figure: score ? score.indicators[indicator] || null : null,
        hasChildren: tree.children.has(unit.id),
        children: await childrenOf(unit.id, tree, indicator, period, 2),
      };
    })),
  ]);
  return { indicator, period, rootId, indicators: indicatorOptions(indexSystem), nodes, alertLevels };
}

function treemapNode(node, data) {
  const band = bandOf(node.figure);
  const level = data.alertLevels[node.id];
  const children = node.children.map((child) => treemapNode(child, data));
  return {
    name: node.name,
    id: node.id,
    value: children.length ? children.reduce((sum, c) => sum + c.value, 0) : 1,
    band,
    level,
    figure: node.figure,
    hasChildren: node.hasChildren,
    itemStyle: { color: BAND_COLOURS[band], decal: band === "insufficient" || band === "none" ? HATCH : undefined, borderColor: "#fff" },
    upperLabel: { backgroundColor: BAND_COLOURS[band] },
    children: children.length ? children : undefined,
  };
}

function label(node) {
  // Below the minimum sample a score says nothing either way: show how few feedback there are instead.
  const score = node.band === "insufficient" ? ` (n = ${node.figure.sample_size})` : node.figure && node.figure.score != null ? ` ${number(node.figure.score, 0)}` : "";
  const alert = node.level ? `\n▲ ${t("open_alert", { level: t(`levels.${node.level}`) })}` : "";
  return `${node.name}\n${t(`bands.${node.band}`)}${score}${alert}`;
}

function tooltip(info, indicatorName) {
  const node = info.data;
  const f = node.figure || {};
  return t("tooltip", {
    name: node.name,
    indicator: indicatorName,
    value: number(f.value),
    score: number(f.score, 0),
    low: number(f.ci_low),
    high: number(f.ci_high),
    n: f.sample_size ?? 0,
    flag: f.insufficient ? t("too_few") : "",
  });
}

function breadcrumb(data, tree, go) {
  const trail = [];
  for (let id = data.rootId; id && tree.byId.has(id); id = tree.byId.get(id).parent_id) trail.unshift(tree.byId.get(id));
  const params = { indicator: data.indicator, period: data.period };
  return h("nav", { class: "crumbs", "aria-label": "breadcrumb" },
    h("a", { href: "#", onclick: (e) => { e.preventDefault(); go("map", "", params); } }, t("organisation")),
    trail.map((unit) => [" › ", h("a", { href: "#", onclick: (e) => { e.preventDefault(); go("map", "", { ...params, unit: unit.id }); } }, unit.name)]));
}

/** The ranking table of a unit's children (rows link to the unit page; units with children drill down). */
export function rankingTable(children, data, go, drillParams) {
  if (!children.length) return h("p", {}, t("no_children"));
  const rows = children.map((child) => {
    const f = child.figure || {};
    const band = bandOf(f);
    const level = data.alertLevels[child.id];
    return h("tr", { id: `rank-${child.id}`, dataset: { unit: child.id, band } },
      h("td", {}, child.rank ?? ""),
      h("th", { scope: "row" },
        h("a", { href: `#/unit/${encodeURIComponent(child.id)}` }, child.name),
        child.hasChildren && drillParams ? [" ", h("button", { class: "link", "aria-label": `${child.name}: drill down`, onclick: () => go("map", "", { ...drillParams, unit: child.id }) }, "⤵")] : null),
      h("td", { class: "num" }, number(f.value)),
      h("td", { class: "num" }, number(f.score, 0)),
      h("td", { class: "num" }, f.ci_low == null ? "–" : `${number(f.ci_low)} – ${number(f.ci_high)}`),
      h("td", { class: "num" }, f.sample_size ?? 0),
      h("td", {}, bandBadge(band), level ? [" ", levelBadge(level)] : null));
  });
  return table([t("rank"), t("unit"), t("value"), t("score"), t("interval"), t("samples"), t("band")], rows, { class: "ranking" });
}

/** Draw the page. */
export function draw(data, { go }) {
  const tree = data.tree;
  const params = { indicator: data.indicator, period: data.period, unit: data.rootId };
  const controls = h("div", { class: "controls" },
    select("indicator", t("indicator"), data.indicators, data.indicator, (value) => go("map", "", { ...params, indicator: value })),
    select("period", t("period"), PERIODS.map((p) => [p, t(`periods.${p}`)]), data.period, (value) => go("map", "", { ...params, period: value })));
  if (!data.nodes.length) return h("section", {}, h("h1", {}, t("nav_map")), h("p", {}, t("no_units")));
  const selected = data.nodes.length === 1 ? data.nodes[0] : null;
  const rankingOf = selected ? selected.children : data.nodes.map((node, i) => ({ ...node, rank: i + 1 }));
  return h("section", { class: "map-page" },
    h("h1", {}, t("nav_map")),
    breadcrumb(data, tree, go),
    controls,
    h("p", { class: "legend" }, [["good"], ["watch"], ["poor"], ["insufficient"]].map(([band]) => [bandBadge(band), " "]), h("span", { class: "hint" }, t("band_legend"))),
    h("div", { class: "map-grid" },
      h("div", { id: "treemap", class: "chart treemap", role: "img", "aria-label": `${t("nav_map")}: ${data.nodes.map((n) => n.name).join(", ")}` }),
      h("div", { class: "ranking-panel" },
        h("h2", {}, selected ? `${selected.name}: ${t("ranking")}` : t("ranking")),
        selected ? h("p", {}, h("a", { href: `#/unit/${encodeURIComponent(selected.id)}`, id: "open-unit" }, `${t("open_unit")} →`), " ",
          selected.figure ? [bandBadge(bandOf(selected.figure)), " ", number(selected.figure.score, 0)] : null) : null,
        rankingTable(rankingOf, data, go, params))));
}

/** Draw the treemap once the element is in the page. */
export function afterDraw(data, { go }) {
  const element = document.getElementById("treemap");
  if (!element) return;
  const indicatorName = (data.indicators.find(([id]) => id === data.indicator) || [data.indicator, data.indicator])[1];
  const instance = chart(element);
  instance.setOption({
    animation: false,
    tooltip: { formatter: (info) => tooltip(info, indicatorName) },
    series: [{
      type: "treemap",
      roam: false,
      nodeClick: false,
      breadcrumb: { show: false },
      left: 4,
      right: 4,
      top: 4,
      bottom: 4,
      label: { show: true, formatter: (info) => label(info.data), color: "#111", fontSize: 13, textBorderColor: "#fff", textBorderWidth: 2, overflow: "break" },
      upperLabel: { show: true, height: 22, color: "#111", formatter: (info) => label(info.data).split("\n").slice(0, 2).join(" · "), textBorderColor: "#fff", textBorderWidth: 2 },
      // Level 0 is ECharts' own root around the data: no label of its own.
      levels: [
        { upperLabel: { show: false }, itemStyle: { borderWidth: 0, gapWidth: 4 } },
        { itemStyle: { borderWidth: 3, gapWidth: 2, borderColor: "#fff" } },
        { itemStyle: { borderWidth: 2, gapWidth: 1, borderColor: "#fff" } },
      ],
      data: data.nodes.map((node) => treemapNode(node, data)),
    }],
  });
  instance.on("click", (info) => {
    if (!info.data || !info.data.id) return;
    if (info.data.hasChildren) go("map", "", { indicator: data.indicator, period: data.period, unit: info.data.id });
    else go("unit", info.data.id, { period: data.period });
  });
}
