// The sign-in page: the development command, a pasted token, or the configured OIDC provider.
import { startOidc, useToken } from "../auth.js";
import { t } from "../i18n.js";
import { h } from "../ui.js";

/** The sign-in form; `done` redraws the console once a token is stored. */
export function draw(config, done) {
  const area = h("textarea", { id: "token-input", rows: 4, "aria-label": t("sign_in_paste") });
  return h("section", { class: "signin card" },
    h("h1", {}, t("not_signed_in")),
    config.oidc ? h("p", {}, h("button", { id: "sso", onclick: () => startOidc(config.oidc) },
      t("sign_in_sso", { provider: config.oidc.name || config.oidc.issuer }))) : null,
    h("p", {}, t("sign_in_dev")),
    h("pre", {}, h("code", {}, ".venv/bin/qualityloop console --org demo --role quality_manager")),
    h("p", {}, h("label", { for: "token-input" }, t("sign_in_paste"))),
    area,
    h("p", {}, h("button", { onclick: () => { if (area.value.trim()) { useToken(area.value); done(); } } }, t("sign_in_button"))));
}
