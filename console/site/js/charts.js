// Apache ECharts (vendored, see vendor/echarts/VERSIONS.txt), rendered as SVG so text stays text.
import * as echarts from "../vendor/echarts/echarts.esm.min.mjs";
import { currentLanguage } from "./i18n.js";

const live = new Set();
const observer = new ResizeObserver((entries) => {
  for (const entry of entries) echarts.getInstanceByDom(entry.target)?.resize();
});

/** A chart in the element, sized to it and resized with it. */
export function chart(element) {
  const instance = echarts.init(element, null, { renderer: "svg", locale: currentLanguage() === "zh" ? "ZH" : "EN" });
  live.add(instance);
  observer.observe(element);
  return instance;
}

/** Dispose every chart (before a page is drawn again). */
export function disposeCharts() {
  for (const instance of live) {
    observer.unobserve(instance.getDom());
    instance.dispose();
  }
  live.clear();
}

/** The option a chart in the element was drawn with (for tests and debugging). */
export function optionOf(elementId) {
  const element = document.getElementById(elementId);
  const instance = element && echarts.getInstanceByDom(element);
  return instance ? instance.getOption() : null;
}

export { echarts };
