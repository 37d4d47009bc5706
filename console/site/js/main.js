// The console's shell: sign-in, navigation by the URL fragment, language switch, live refresh by polling.
import { listAll } from "./api.js";
import { captureSignIn, claims, signOut, token } from "./auth.js";
import { disposeCharts, optionOf } from "./charts.js";
import { currentLanguage, dateTime, setLanguage, t } from "./i18n.js";
import * as actions from "./pages/actions.js";
import * as admin from "./pages/admin.js";
import * as alerts from "./pages/alerts.js";
import * as map from "./pages/map.js";
import * as signin from "./pages/signin.js";
import * as unit from "./pages/unit.js";
import { h } from "./ui.js";

const PAGES = { map, unit, alerts, actions, admin };
const view = document.getElementById("view");
let config = { poll_seconds: 10, oidc: null };
let shown = { key: null, snapshot: null };
let timer = null;

/** The route in the fragment: #/page/arg?name=value. */
export function route() {
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [page, ...rest] = path.split("/");
  return { page: PAGES[page] ? page : "map", arg: rest.map(decodeURIComponent).join("/"), params: Object.fromEntries(new URLSearchParams(query)) };
}

/** Go to a route (params with empty values are left out). */
export function go(page, arg = "", params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v != null && v !== "")).toString();
  location.hash = `#/${page}${arg ? `/${encodeURIComponent(arg)}` : ""}${query ? `?${query}` : ""}`;
}

/** The units the caller may see, indexed by id, with children lists and roots (units whose parent is not visible). */
async function loadTree() {
  const units = (await listAll("/units")).filter((u) => u.active !== false);
  const byId = new Map(units.map((u) => [u.id, u]));
  const children = new Map();
  const roots = [];
  for (const u of units) {
    if (u.parent_id && byId.has(u.parent_id)) {
      if (!children.has(u.parent_id)) children.set(u.parent_id, []);
      children.get(u.parent_id).push(u);
    } else roots.push(u);
  }
  return { byId, children, roots };
}

function header() {
  const who = claims();
  const current = route().page;
  const link = (page, label) => h("a", { href: `#/${page}`, "aria-current": current === page ? "page" : null }, label);
  return h("header", { class: "top" },
    h("a", { class: "skip", href: "#view", onclick: (e) => { e.preventDefault(); view.focus(); } }, t("skip")),
    h("strong", { class: "brand" }, t("app")),
    token() && h("nav", { "aria-label": "main" }, link("map", t("nav_map")), link("alerts", t("nav_alerts")), link("actions", t("nav_actions")), link("admin", t("nav_admin"))),
    h("div", { class: "who" },
      token() ? h("span", { class: "subject", title: (who.scopes || []).join(", ") },
        t("signed_in_as", { subject: who.sub, org: who.org, roles: (who.roles || []).join(", ") }),
        " · ", (who.scopes || []).map((s) => (s === "*" ? t("scope_all") : s)).join(", ")) : null,
      h("button", { class: "secondary", lang: currentLanguage() === "zh" ? "en" : "zh", "aria-label": t("language_label"),
        onclick: () => { setLanguage(currentLanguage() === "zh" ? "en" : "zh"); render(true); } }, t("language")),
      token() ? h("button", { class: "secondary", onclick: () => { signOut(); render(true); } }, t("sign_out")) : null));
}

function status(text) {
  return h("p", { class: "live", id: "live-status", "aria-live": "polite" }, text);
}

/** Draw the current route; with `force` even when the data did not change. */
async function render(force = false) {
  const headerSlot = document.getElementById("header");
  if (!token()) {
    headerSlot.replaceChildren(header());
    disposeCharts();
    view.replaceChildren(signin.draw(config, () => render(true)));
    return;
  }
  const { page, arg, params } = route();
  const key = `${page}|${arg}|${JSON.stringify(params)}|${currentLanguage()}`;
  if (force || key !== shown.key) {
    headerSlot.replaceChildren(header());
    if (key !== shown.key) view.replaceChildren(h("p", { class: "loading" }, t("loading")));
  }
  const module = PAGES[page];
  let snapshot;
  try {
    const tree = await loadTree();
    snapshot = await module.load({ arg, params, tree, claims: claims() });
    snapshot.tree = tree;
  } catch (error) {
    const detail = error.status === 404 ? t("not_found") : t("error", { detail: error.message });
    view.replaceChildren(h("p", { class: "error", role: "alert" }, detail));
    shown = { key, snapshot: null };
    return;
  }
  const serialised = JSON.stringify(snapshot, (k, v) => (v instanceof Map ? [...v] : v));
  if (!force && key === shown.key && serialised === shown.snapshot) {
    document.getElementById("live-status")?.replaceChildren(t("updated_at", { time: dateTime(new Date()) }));
    return;
  }
  const focusedId = document.activeElement && view.contains(document.activeElement) ? document.activeElement.id : null;
  const scroll = window.scrollY;
  disposeCharts();
  const content = module.draw(snapshot, { arg, params, go, refresh: () => render(true), claims: claims(), config });
  const updated = t("updated_at", { time: dateTime(new Date()) });
  view.replaceChildren(content, status(module.live === false ? updated : `${t("live", { seconds: config.poll_seconds })} · ${updated}`));
  module.afterDraw?.(snapshot, { arg, params, go });
  if (key === shown.key) window.scrollTo(0, scroll);
  if (focusedId) document.getElementById(focusedId)?.focus();
  shown = { key, snapshot: serialised };
  document.title = `${t(`nav_${page === "unit" ? "map" : page}`)} · ${t("app")}`;
}

function poll() {
  clearTimeout(timer);
  timer = setTimeout(async () => {
    const busy = document.querySelector("dialog[open]") || (document.activeElement && document.activeElement.matches("input, textarea, select"));
    const { page } = route();
    if (token() && document.visibilityState === "visible" && !busy && PAGES[page].live !== false) {
      await render(false);
    }
    poll();
  }, config.poll_seconds * 1000);
}

async function start() {
  try {
    const response = await fetch("config.json", { cache: "no-cache" });
    if (response.ok) config = { ...config, ...(await response.json()) };
  } catch {
    // No config.json: development defaults (polling every 10 s, no OIDC).
  }
  try {
    await captureSignIn(config);
  } catch (error) {
    document.getElementById("messages").append(h("div", { class: "message error" }, error.message));
  }
  window.addEventListener("hashchange", async () => {
    document.getElementById("messages").replaceChildren();
    // A sign-in URL opened in a tab already showing the console changes only the fragment.
    if (location.hash.startsWith("#token=")) {
      await captureSignIn(config);
      await render(true);
      return;
    }
    render(false);
  });
  window.addEventListener("ql:unauthorised", () => { signOut(); render(true); });
  await render(true);
  poll();
}

window.qualityConsole = { render: () => render(true), optionOf };
start();
