// Sign-in: a development token handed over in the URL fragment, or OpenID Connect (authorization code + PKCE).
// The token lives in sessionStorage (this tab only, gone when it closes); the APIs check it on every request,
// so the claims read here only decide what the page offers, never what the user may see.

const TOKEN_KEY = "ql.token";
const OIDC_KEY = "ql.oidc";

/** Take a token from #token=… (then strip it from the address bar) or from an OIDC redirect. */
export async function captureSignIn(config) {
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  if (fragment.has("token")) {
    sessionStorage.setItem(TOKEN_KEY, fragment.get("token"));
    history.replaceState(null, "", location.pathname + "#/map");
    return;
  }
  const query = new URLSearchParams(location.search);
  if (query.has("code") && query.has("state") && config.oidc) {
    await finishOidc(config.oidc, query.get("code"), query.get("state"));
    history.replaceState(null, "", location.pathname + "#/map");
  }
}

/** The bearer token, or null when not signed in or expired. */
export function token() {
  const value = sessionStorage.getItem(TOKEN_KEY);
  if (!value) return null;
  const claims = decode(value);
  if (claims && claims.exp && claims.exp * 1000 < Date.now()) {
    sessionStorage.removeItem(TOKEN_KEY);
    return null;
  }
  return value;
}

/** Store a pasted token. */
export function useToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value.trim());
}

/** Forget the token. */
export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** The token's claims (unverified: for display only). */
export function claims() {
  const value = token();
  return value ? decode(value) || {} : {};
}

function decode(jwt) {
  try {
    const payload = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = payload + "=".repeat((4 - (payload.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

// --- OpenID Connect, authorization code with PKCE (RFC 7636) -------------------------------------------------

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(size = 32) {
  return base64url(crypto.getRandomValues(new Uint8Array(size)));
}

async function discovery(oidc) {
  const response = await fetch(`${oidc.issuer.replace(/\/$/, "")}/.well-known/openid-configuration`);
  if (!response.ok) throw new Error(`OIDC discovery failed: ${response.status}`);
  return response.json();
}

function redirectUri(oidc) {
  return oidc.redirect_uri || `${location.origin}${location.pathname}`;
}

/** Send the browser to the provider's authorization endpoint with a fresh PKCE verifier, state and nonce. */
export async function startOidc(oidc) {
  const provider = await discovery(oidc);
  const verifier = randomString(48);
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const state = randomString();
  const nonce = randomString();
  sessionStorage.setItem(OIDC_KEY, JSON.stringify({ verifier, state, nonce, token_endpoint: provider.token_endpoint }));
  const params = new URLSearchParams({
    response_type: "code",
    client_id: oidc.client_id,
    redirect_uri: redirectUri(oidc),
    scope: oidc.scope || "openid profile",
    code_challenge: challenge,
    code_challenge_method: "S256",
    state,
    nonce,
  });
  if (oidc.audience) params.set("audience", oidc.audience);
  location.assign(`${provider.authorization_endpoint}?${params}`);
}

async function finishOidc(oidc, code, state) {
  const pending = JSON.parse(sessionStorage.getItem(OIDC_KEY) || "null");
  sessionStorage.removeItem(OIDC_KEY);
  if (!pending || pending.state !== state) throw new Error("OIDC state does not match: sign in again");
  const response = await fetch(pending.token_endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: redirectUri(oidc),
      client_id: oidc.client_id,
      code_verifier: pending.verifier,
    }),
  });
  if (!response.ok) throw new Error(`OIDC token exchange failed: ${response.status}`);
  const tokens = await response.json();
  const idClaims = tokens.id_token ? decode(tokens.id_token) : null;
  if (idClaims && idClaims.nonce !== pending.nonce) throw new Error("OIDC nonce does not match: sign in again");
  // The services verify the access token against the provider's JWKS; the ID token only proves the nonce.
  sessionStorage.setItem(TOKEN_KEY, tokens.access_token);
}
