// Trend charts: an indicator's series with its 95% interval, rule thresholds, control limits and alert marks.
import { api } from "./api.js";
import { dateTime, number, t } from "./i18n.js";
import { LEVEL_COLOURS } from "./ui.js";

const SPAN_DAYS = { hour: 2, day: 30, week: 26 * 7, month: 365 * 2 };

/** An indicator's series of a unit at a granularity (hour, day, week, month), from `start` or a sensible span. */
export async function series(unitId, indicator, by, start) {
  const from = start ? new Date(start) : new Date(Date.now() - SPAN_DAYS[by] * 86400000);
  const read = await api(`/scores/${encodeURIComponent(unitId)}/series`, { params: { indicator, period: by, start: from.toISOString() } });
  return read.points;
}

/** Whether a rule's scope covers a unit path. */
export function covers(scope, path) {
  return scope === "*" || path === scope || path.startsWith(`${scope}/`);
}

/** The lines a rule draws on an indicator's chart: its threshold and clearing bound, or its control limits. */
export function ruleLines(rule, points) {
  const colour = LEVEL_COLOURS[rule.level] || "#555";
  if (rule.kind === "threshold") {
    const lines = [{ value: rule.threshold, label: t("threshold", { name: rule.name, comparison: t(rule.comparison || "below"), value: number(rule.threshold) }), colour, kind: "threshold" }];
    if (rule.clear_bound != null && rule.clear_bound !== rule.threshold) lines.push({ value: rule.clear_bound, label: t("clear_bound", { value: number(rule.clear_bound) }), colour, dashed: true, kind: "clear" });
    return lines;
  }
  if (rule.kind === "spc" && (rule.chart || "shewhart") === "shewhart") {
    // Given centre and σ, or estimated from the first baseline periods shown (the rule estimates its own the same way).
    const values = points.slice(0, rule.baseline_periods || 20).map((p) => p.value).filter((v) => v != null);
    const centre = rule.centre ?? (values.length ? values.reduce((a, b) => a + b, 0) / values.length : null);
    const sigma = rule.sigma ?? (values.length > 1 ? Math.sqrt(values.reduce((s, v) => s + (v - centre) ** 2, 0) / (values.length - 1)) : null);
    if (centre == null || !sigma) return [];
    return [
      { value: centre, label: `${rule.name}: CL ${number(centre)}`, colour: "#666", dashed: true, kind: "centre" },
      { value: centre + 3 * sigma, label: `UCL ${number(centre + 3 * sigma)}`, colour, dashed: true, kind: "ucl" },
      { value: centre - 3 * sigma, label: `LCL ${number(centre - 3 * sigma)}`, colour, dashed: true, kind: "lcl" },
    ];
  }
  return [];
}

/** The ECharts option of a trend: value line, interval lines, horizontal rule lines, alert marks. */
export function trendOption({ title, points, lines = [], marks = [] }) {
  const values = points.flatMap((p) => [p.value, p.ci_low, p.ci_high]).concat(lines.map((l) => l.value), marks.map((m) => m.value)).filter((v) => v != null);
  const low = values.length ? Math.min(...values) : 0;
  const high = values.length ? Math.max(...values) : 100;
  const pad = Math.max((high - low) * 0.1, 1);
  const times = points.map((p) => Date.parse(p.period_start)).concat(marks.map((m) => Date.parse(m.at)));
  const first = times.length ? Math.min(...times) : Date.now() - 86400000;
  const last = times.length ? Math.max(...times) : Date.now();
  const margin = Math.max((last - first) * 0.05, 3600000);
  return {
    // No animation: every poll would replay it, and a still chart reads (and screenshots) the same at once.
    animation: false,
    title: { text: title, left: 8, top: 4, textStyle: { fontSize: 13 } },
    grid: { left: 48, right: 16, top: 36, bottom: 32 },
    tooltip: { trigger: "axis", valueFormatter: (v) => number(v) },
    xAxis: { type: "time", min: first - margin, max: last + margin, axisLabel: { hideOverlap: true } },
    yAxis: { type: "value", min: Math.floor(low - pad), max: Math.ceil(high + pad) },
    series: [
      {
        name: t("value"),
        type: "line",
        symbol: "circle",
        symbolSize: 9,
        itemStyle: { color: "#1f4e99" },
        lineStyle: { color: "#1f4e99", width: 2 },
        data: points.map((p) => [p.period_start, p.value]),
        markLine: {
          symbol: "none",
          data: [
            ...lines.map((l) => ({ yAxis: l.value, name: l.label, lineStyle: { color: l.colour, type: l.dashed ? "dashed" : "solid", width: 2 }, label: { formatter: l.label, position: l.kind === "threshold" || l.kind === "clear" ? "insideStartTop" : "insideEndTop", color: l.colour } })),
            ...marks.map((m) => ({ xAxis: m.at, name: m.label, lineStyle: { color: m.colour, type: "dotted", width: 2 }, label: { formatter: m.label, position: "insideEndTop", color: m.colour } })),
          ],
        },
        markPoint: {
          symbol: "pin",
          symbolSize: 36,
          data: marks.filter((m) => m.value != null).map((m) => ({ coord: [m.at, m.value], name: m.label, itemStyle: { color: m.colour }, label: { formatter: "!" } })),
        },
      },
      { name: `${t("interval")} ↓`, type: "line", symbol: "none", lineStyle: { type: "dashed", width: 1, color: "#8a94a6" }, data: points.filter((p) => p.ci_low != null).map((p) => [p.period_start, p.ci_low]) },
      { name: `${t("interval")} ↑`, type: "line", symbol: "none", lineStyle: { type: "dashed", width: 1, color: "#8a94a6" }, data: points.filter((p) => p.ci_high != null).map((p) => [p.period_start, p.ci_high]) },
    ],
  };
}

/** Alert marks for a chart: when each alert started, at its value, in its level's colour with its name. */
export function alertMarks(alerts) {
  return alerts.map((a) => ({ at: a.started_at, value: a.value, colour: LEVEL_COLOURS[a.level], label: `${t("alert_marker", { level: t(`levels.${a.level}`) })} ${dateTime(a.started_at)}` }));
}
